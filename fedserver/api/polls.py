"""Polls: read one (GET /api/v1/polls/:id) and vote in it (POST /api/v1/polls/:id/votes). A poll's
id is its post's: a post has at most one poll."""
from __future__ import annotations

from aiohttp import web

from fedserver.api import serializers
from fedserver.api.errors import ApiError, json_response
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.api.statuses import visible_post
from fedserver.services import polls, timelines
from fedserver.store.posts import Post

routes = ApiRoutes()


async def _poll_json(call: ApiCall, post: Post) -> web.Response:
    card = await timelines.card_of(call.ctx, post, call.viewer)
    body = serializers.poll(post.id, card)
    if body is None:
        raise ApiError(404, "Record not found")
    return json_response(body)


@routes.get(r"/api/v1/polls/{id:\d+}", auth="public", scope=("read:statuses",))
async def get_poll(call: ApiCall) -> web.Response:
    return await _poll_json(call, await visible_post(call, call.match("id")))


@routes.post(r"/api/v1/polls/{id:\d+}/votes", scope=("write:statuses",))
async def vote(call: ApiCall) -> web.Response:
    """choices[]: option indexes. The same rules as the post page's vote form (services.polls)."""
    post = await visible_post(call, call.match("id"))
    choices = call.params.list("choices")
    if not choices or any(not choice.isdigit() or len(choice) > 3 for choice in choices):
        raise ApiError(422, "Validation failed: choices[] must name the options by their index")
    try:
        await polls.vote(call.ctx, call.me.username, post, [int(choice) for choice in choices])
    except polls.VoteError as exc:
        raise ApiError(422, f"Validation failed: {exc}") from None
    return await _poll_json(call, post)
