"""Lists (Mastodon's /api/v1/lists): a person's named sets of accounts they follow, their members
and their timelines, over services/lists.py (the rules the web's list pages obey: only accounts
one follows, the caps, the replies policy and the home keyword filters on the timeline)."""
from __future__ import annotations

from aiohttp import web

from fedserver.api import ids, serializers
from fedserver.api.errors import ApiError, json_response
from fedserver.api.pagination import link_header, page_request, read_page
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.api.statuses import statuses_json
from fedserver.services import directory, lists
from fedserver.services.lists import ListError, ListNotFound
from fedserver.services.timelines import PostCard
from fedserver.store.lists import AccountList
from fedserver.store.actors import Actor

routes = ApiRoutes()


async def _list(call: ApiCall) -> AccountList:
    try:
        return await lists.get_list(call.ctx, call.me, ids.require(call.match("id")))
    except ListNotFound:
        raise ApiError(404, "Record not found") from None


def _failed(exc: ListError) -> ApiError:
    if isinstance(exc, ListNotFound):
        return ApiError(404, "Record not found")
    return ApiError(422, f"Validation failed: {exc}")


@routes.get("/api/v1/lists", scope=("read:lists",))
async def all_lists(call: ApiCall) -> web.Response:
    return json_response([serializers.account_list(found) for found in await lists.lists_of(call.ctx, call.me)])


@routes.post("/api/v1/lists", scope=("write:lists",))
async def create(call: ApiCall) -> web.Response:
    params = call.params
    try:
        created = await lists.create_list(call.ctx, call.me, params.text("title"),
                                          replies_policy=params.get("replies_policy") or "list",
                                          exclusive=params.bool("exclusive"))
    except ListError as exc:
        raise _failed(exc) from None
    return json_response(serializers.account_list(created))


@routes.get(r"/api/v1/lists/{id:\d+}", scope=("read:lists",))
async def one(call: ApiCall) -> web.Response:
    return json_response(serializers.account_list(await _list(call)))


@routes.put(r"/api/v1/lists/{id:\d+}", scope=("write:lists",))
async def update(call: ApiCall) -> web.Response:
    found, params = await _list(call), call.params
    try:
        updated = await lists.update_list(call.ctx, call.me, found.id, params.get("title") or found.title,
                                          replies_policy=params.get("replies_policy") or found.replies_policy,
                                          exclusive=params.bool("exclusive", bool(found.exclusive)))
    except ListError as exc:
        raise _failed(exc) from None
    return json_response(serializers.account_list(updated))


@routes.delete(r"/api/v1/lists/{id:\d+}", scope=("write:lists",))
async def delete(call: ApiCall) -> web.Response:
    found = await _list(call)
    try:
        await lists.delete_list(call.ctx, call.me, found.id)
    except ListError as exc:
        raise _failed(exc) from None
    return json_response({})


@routes.get(r"/api/v1/lists/{id:\d+}/accounts", scope=("read:lists",))
async def members(call: ApiCall) -> web.Response:
    """The members, all on one page (a list holds at most lists.MAX_MEMBERS; limit=0 asks for all,
    as in Mastodon, and any other limit is clamped to 80)."""
    found = await _list(call)
    limit = call.params.int("limit", 40)
    people = await lists.members(call.ctx, call.me, found.id)
    if limit:
        people = people[:max(1, min(limit, 80))]
    return json_response([serializers.account(await directory.account_view(call.ctx, actor, call.me), call.ctx.urls)
                          for actor in people])


async def _accounts(call: ApiCall) -> list[Actor]:
    wanted = [ids.decode(value) for value in call.params.list("account_ids")]
    if not wanted or any(value is None for value in wanted):
        raise ApiError(422, "Validation failed: account_ids must name accounts")
    out = []
    for account_id in dict.fromkeys(wanted):
        actor = await directory.account_by_id(call.ctx, account_id)  # type: ignore[arg-type]
        if actor is None:
            raise ApiError(404, "Record not found")
        out.append(actor)
    return out


@routes.post(r"/api/v1/lists/{id:\d+}/accounts", scope=("write:lists",))
async def add_members(call: ApiCall) -> web.Response:
    found = await _list(call)
    try:
        for actor in await _accounts(call):
            await lists.add_member(call.ctx, call.me, found.id, actor)
    except ListError as exc:
        raise _failed(exc) from None
    return json_response({})


@routes.delete(r"/api/v1/lists/{id:\d+}/accounts", scope=("write:lists",))
async def remove_members(call: ApiCall) -> web.Response:
    found = await _list(call)
    try:
        for actor in await _accounts(call):
            await lists.remove_member(call.ctx, call.me, found.id, actor)
    except ListError as exc:
        raise _failed(exc) from None
    return json_response({})


@routes.get(r"/api/v1/timelines/list/{id:\d+}", scope=("read:lists",))
async def timeline(call: ApiCall) -> web.Response:
    found = await _list(call)

    async def fetch(max_id: int | None, limit: int) -> tuple[list[PostCard], int | None]:
        page = await lists.timeline(call.ctx, call.me, found.id, max_id=max_id, limit=limit)
        return page.cards, page.next_max_id
    cards = await read_page(fetch, page_request(call.params), key=lambda card: card.sort_id)
    return json_response(await statuses_json(call.ctx, cards, call.viewer),
                         headers=link_header(call.ctx.urls.base, call.request, [card.sort_id for card in cards]))


@routes.get(r"/api/v1/accounts/{id:\d+}/lists", scope=("read:lists",))
async def lists_with(call: ApiCall) -> web.Response:
    """The caller's lists that hold the account."""
    actor = await directory.account_by_id(call.ctx, ids.require(call.match("id")))
    if actor is None:
        raise ApiError(404, "Record not found")
    holding = await lists.lists_with(call.ctx, call.me, actor)
    return json_response([serializers.account_list(found) for found in await lists.lists_of(call.ctx, call.me)
                          if found.id in holding])
