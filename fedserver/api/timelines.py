"""The home and public timelines, paged as Mastodon pages them (max_id, since_id, min_id, limit;
Link headers)."""
from __future__ import annotations

from aiohttp import web

from fedserver.api.errors import json_response
from fedserver.api.pagination import link_header, page_request, read_page
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.api.statuses import statuses_json
from fedserver.services import timelines
from fedserver.services.timelines import PostCard

routes = ApiRoutes()


async def _respond(call: ApiCall, cards: list[PostCard]) -> web.Response:
    return json_response(await statuses_json(call.ctx, cards, call.viewer),
                         headers=link_header(call.ctx.urls.base, call.request, [card.sort_id for card in cards]))


@routes.get("/api/v1/timelines/home", scope=("read:statuses",))
async def home(call: ApiCall) -> web.Response:
    async def fetch(max_id: int | None, limit: int) -> tuple[list[PostCard], int | None]:
        page = await timelines.home(call.ctx, call.me, max_id=max_id, limit=limit)
        return page.cards, page.next_max_id
    cards = await read_page(fetch, page_request(call.params), key=lambda card: card.sort_id)
    return await _respond(call, cards)


@routes.get("/api/v1/timelines/public", auth="public", scope=("read:statuses",))
async def public(call: ApiCall) -> web.Response:
    local, remote = call.params.bool("local"), call.params.bool("remote")
    only_media = call.params.bool("only_media")

    async def fetch(max_id: int | None, limit: int) -> tuple[list[PostCard], int | None]:
        page = await timelines.public(call.ctx, call.viewer, local=local or not remote, remote=remote or not local,
                                      max_id=max_id, limit=limit)
        # only_media filters the page read (no media index yet): pages may come out short, and the
        # Link header still leads on from where the read stopped.
        return [card for card in page.cards if card.attachments or not only_media], page.next_max_id
    cards = await read_page(fetch, page_request(call.params), key=lambda card: card.sort_id)
    return await _respond(call, cards)


@routes.get("/api/v1/timelines/tag/{hashtag}", auth="public", scope=("read:statuses",))
async def tag(call: ApiCall) -> web.Response:
    """Public posts with the hashtag; other servers' only for signed-in callers (the tag page's rule)."""
    name = call.match("hashtag").lstrip("#").lower()
    local_only = call.params.bool("local")
    only_media = call.params.bool("only_media")

    async def fetch(max_id: int | None, limit: int) -> tuple[list[PostCard], int | None]:
        page = await timelines.tagged(call.ctx, name, call.viewer, max_id=max_id, limit=limit)
        return [card for card in page.cards if (card.attachments or not only_media)
                and (card.post.is_local or not local_only)], page.next_max_id
    cards = await read_page(fetch, page_request(call.params), key=lambda card: card.sort_id)
    return await _respond(call, cards)
