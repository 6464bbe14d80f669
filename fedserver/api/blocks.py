"""GET /api/v1/blocks and /api/v1/mutes: the accounts one blocks or mutes, newest first, paged by
Link headers only as Mastodon pages them, through the same service as the settings pages. TWBlue
(Mastodon.py) reads the mutes at start-up (client-api.md §2, GTS#2845)."""
from __future__ import annotations

from aiohttp import web

from fedserver.api import serializers
from fedserver.api.errors import json_response
from fedserver.api.pagination import COUNTER_SPAN, link_header, page_request, read_page
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.services import directory, social_lists
from fedserver.store.relations import Related

routes = ApiRoutes()


async def _accounts(call: ApiCall, items: list[Related]) -> list[dict]:
    return [serializers.account(await directory.account_view(call.ctx, item.actor, call.me), call.ctx.urls)
            for item in items]


@routes.get("/api/v1/blocks", scope=("read:blocks",))
async def blocks(call: ApiCall) -> web.Response:
    async def fetch(max_id: int | None, limit: int) -> tuple[list[Related], int | None]:
        page = await social_lists.blocked_accounts(call.ctx, call.me.username, max_id=max_id, limit=limit)
        return page.items, page.next_max_id
    # Block ids count up one by one, so every cursor (max_id, since_id, min_id) works on them.
    items = await read_page(fetch, page_request(call.params, default=40, maximum=80), key=lambda item: item.cursor,
                            first_span=COUNTER_SPAN)
    return json_response(await _accounts(call, items),
                         headers=link_header(call.ctx.urls.base, call.request, [item.cursor for item in items]))


@routes.get("/api/v1/mutes", scope=("read:mutes",))
async def mutes(call: ApiCall) -> web.Response:
    """A mute has no id of its own: its cursor is the muted account's id, which does not follow the
    list's order (newest mute first). So only `next` (max_id) pages; a request for what is newer than
    a cursor (min_id, since_id) gets an empty page rather than a wrong one, and no `prev` is offered."""
    request = page_request(call.params, default=40, maximum=80)
    if request.min_id is not None or request.since_id is not None:
        return json_response([])
    page = await social_lists.muted_accounts(call.ctx, call.me.username, max_id=request.max_id, limit=request.limit)
    return json_response(await _accounts(call, page.items), headers=link_header(
        call.ctx.urls.base, call.request, [item.cursor for item in page.items], prev=False))
