"""A person's own lists of posts: bookmarks and favourites, newest first, paged by the bookmark's
or like's id (Link headers only, as Mastodon pages them)."""
from __future__ import annotations

from aiohttp import web

from fedserver.api.errors import json_response
from fedserver.api.pagination import COUNTER_SPAN, link_header, page_request, read_page
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.api.statuses import statuses_json
from fedserver.services import bookmarks
from fedserver.services.timelines import Page, PostCard

routes = ApiRoutes()


async def _listed(call: ApiCall, reader) -> web.Response:
    async def fetch(max_id: int | None, limit: int) -> tuple[list[PostCard], int | None]:
        page: Page = await reader(call.ctx, call.me, max_id=max_id, limit=limit)
        return page.cards, page.next_max_id
    # Bookmark and like ids count up one by one: min_id's search starts with a small window.
    cards = await read_page(fetch, page_request(call.params), key=lambda card: card.sort_id, first_span=COUNTER_SPAN)
    return json_response(await statuses_json(call.ctx, cards, call.viewer),
                         headers=link_header(call.ctx.urls.base, call.request, [card.sort_id for card in cards]))


@routes.get("/api/v1/bookmarks", scope=("read:bookmarks",))
async def list_bookmarks(call: ApiCall) -> web.Response:
    return await _listed(call, bookmarks.bookmarks_page)


@routes.get("/api/v1/favourites", scope=("read:favourites",))
async def list_favourites(call: ApiCall) -> web.Response:
    return await _listed(call, bookmarks.favourites_page)
