"""Hashtags: the Tag entity, following and unfollowing a tag (its posts then reach the home
timeline) and the followed tags list, over services/followed_tags.py. `history` counts the last
seven days' posts with the tag and their authors (followed_tags.history)."""
from __future__ import annotations

from aiohttp import web

from fedserver.api import serializers
from fedserver.api.errors import ApiError, json_response
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.services import followed_tags
from fedserver.services.followed_tags import TagError

routes = ApiRoutes()


def _name(call: ApiCall) -> str:
    try:
        return followed_tags.normalized(call.match("name"))
    except TagError:
        raise ApiError(404, "Record not found") from None


@routes.get("/api/v1/followed_tags", scope=("read:follows",))
async def followed(call: ApiCall) -> web.Response:
    """All of them on one page (a person follows at most followed_tags.MAX_FOLLOWED)."""
    names = await followed_tags.followed(call.ctx, call.me)
    history = await followed_tags.history(call.ctx, names)
    return json_response([serializers.tag(name, call.ctx.urls, following=True, history=history[name])
                          for name in names])


@routes.get(r"/api/v1/tags/{name}", auth="public")
async def tag(call: ApiCall) -> web.Response:
    """Public, as in Mastodon (no scope); `following` only for a signed-in caller."""
    name = _name(call)
    following = await followed_tags.is_following(call.ctx, call.viewer, name) if call.viewer else None
    history = (await followed_tags.history(call.ctx, [name]))[name]
    return json_response(serializers.tag(name, call.ctx.urls, following=following, history=history))


async def _follow(call: ApiCall, *, on: bool) -> web.Response:
    name = _name(call)
    try:
        if on:
            await followed_tags.follow_tag(call.ctx, call.me, name)
        else:
            await followed_tags.unfollow_tag(call.ctx, call.me, name)
    except TagError as exc:
        raise ApiError(422, f"Validation failed: {exc}") from None
    history = (await followed_tags.history(call.ctx, [name]))[name]
    return json_response(serializers.tag(name, call.ctx.urls, following=on, history=history))


@routes.post(r"/api/v1/tags/{name}/follow", scope=("write:follows",))
async def follow(call: ApiCall) -> web.Response:
    return await _follow(call, on=True)


@routes.post(r"/api/v1/tags/{name}/unfollow", scope=("write:follows",))
async def unfollow(call: ApiCall) -> web.Response:
    return await _follow(call, on=False)
