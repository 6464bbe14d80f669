"""Following, blocking and muting from apps, and answering follow requests: each answers the
Relationship as it now stands, through the services the profile pages use."""
from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web

from fedserver.api import ids, serializers
from fedserver.api.errors import ApiError, json_response
from fedserver.api.pagination import COUNTER_SPAN, link_header, page_request, read_page
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.services import directory, follows
from fedserver.services.follows import FollowError
from fedserver.store.actors import Actor

routes = ApiRoutes()

Action = Callable[[ApiCall, Actor], Awaitable[None]]


def _handle(actor: Actor) -> str:
    return f"@{actor.username}@{actor.domain}"


async def _target(call: ApiCall) -> Actor:
    actor = await directory.account_by_id(call.ctx, ids.require(call.match("id")))
    if actor is None:
        raise ApiError(404, "Record not found")
    return actor


async def _relationship(call: ApiCall, target: Actor) -> web.Response:
    return json_response(serializers.relationship(await directory.relationship(call.ctx, call.me, target.id)))


def _relationship_action(action: Action, *, lenient: bool) -> Callable[[ApiCall], Awaitable[web.Response]]:
    """lenient: undoing what is not there answers the relationship unchanged (Mastodon's way)."""
    async def handle(call: ApiCall) -> web.Response:
        target = await _target(call)
        try:
            await action(call, target)
        except FollowError as exc:
            if not lenient:
                raise ApiError(422, f"Validation failed: {exc}") from None
        return await _relationship(call, target)
    return handle


async def _follow(call: ApiCall, target: Actor) -> None:
    # A locked account leaves it pending: the relationship then says `requested`.
    await follows.follow(call.ctx, call.me.username, _handle(target))


async def _unfollow(call: ApiCall, target: Actor) -> None:
    await follows.unfollow(call.ctx, call.me.username, _handle(target))


async def _block(call: ApiCall, target: Actor) -> None:
    await follows.block(call.ctx, call.me.username, target)


async def _unblock(call: ApiCall, target: Actor) -> None:
    await follows.unblock(call.ctx, call.me.username, target)


async def _mute(call: ApiCall, target: Actor) -> None:
    await follows.mute(call.ctx, call.me.username, target, muted=True)


async def _unmute(call: ApiCall, target: Actor) -> None:
    await follows.mute(call.ctx, call.me.username, target, muted=False)


for _name, _action, _scope, _lenient in (("follow", _follow, "write:follows", False),
                                          ("unfollow", _unfollow, "write:follows", True),
                                          ("block", _block, "write:blocks", False),
                                          ("unblock", _unblock, "write:blocks", True),
                                          ("mute", _mute, "write:mutes", False),
                                          ("unmute", _unmute, "write:mutes", True)):
    routes.post(rf"/api/v1/accounts/{{id:\d+}}/{_name}", scope=(_scope,))(
        _relationship_action(_action, lenient=_lenient))


@routes.get("/api/v1/follow_requests", scope=("read:follows",))
async def follow_requests(call: ApiCall) -> web.Response:
    """Newest first, paged by the follow's id with Link headers, as Mastodon pages them."""
    async def fetch(max_id: int | None, limit: int) -> tuple[list[tuple[int, Actor]], int | None]:
        return await follows.requests_page(call.ctx, call.me.username, max_id=max_id, limit=limit)
    rows = await read_page(fetch, page_request(call.params, default=40, maximum=80), key=lambda row: row[0],
                           first_span=COUNTER_SPAN)
    accounts = [serializers.account(await directory.account_view(call.ctx, actor, call.me), call.ctx.urls)
                for _, actor in rows]
    return json_response(accounts, headers=link_header(call.ctx.urls.base, call.request, [fid for fid, _ in rows]))


async def _answer(call: ApiCall, *, accept: bool) -> web.Response:
    target = await _target(call)
    try:
        await follows.answer_follow_request(call.ctx, call.me.username, _handle(target), accept=accept)
    except FollowError:
        raise ApiError(404, "Record not found") from None
    return await _relationship(call, target)


@routes.post(r"/api/v1/follow_requests/{id:\d+}/authorize", scope=("write:follows",))
async def authorize_request(call: ApiCall) -> web.Response:
    return await _answer(call, accept=True)


@routes.post(r"/api/v1/follow_requests/{id:\d+}/reject", scope=("write:follows",))
async def reject_request(call: ApiCall) -> web.Response:
    return await _answer(call, accept=False)
