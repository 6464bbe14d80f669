"""Mastodon's paging: max_id / since_id / min_id / limit in, a Link header out (client-api.md §5.2).
`next` (older items, max_id = the last item) comes first, then `prev` (newer, min_id = the first
item), each without the current items, so that clients never loop."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

from fedserver.api import ids
from fedserver.api.params import Params

CURSORS = ("max_id", "since_id", "min_id")


@dataclass(frozen=True)
class PageRequest:
    max_id: int | None
    since_id: int | None
    min_id: int | None
    limit: int


def page_request(params: Params, *, default: int = 20, maximum: int = 40) -> PageRequest:
    """Cursors that are not ids are ignored; limit is clamped to 1..maximum, never refused (Ivory
    asks for 100 notifications)."""
    limit = params.int("limit", default) or default
    return PageRequest(max_id=ids.decode(params.get("max_id")), since_id=ids.decode(params.get("since_id")),
                       min_id=ids.decode(params.get("min_id")), limit=max(1, min(limit, maximum)))


def link_header(base_url: str, request: web.Request, item_ids: list[int]) -> dict[str, str]:
    """Headers with a Link for a page of items listed newest first; none for an empty page."""
    if not item_ids:
        return {}
    kept = [(key, value) for key, value in request.query.items() if key not in CURSORS]
    url = base_url + request.path

    def link(cursor: str, value: int, rel: str) -> str:
        return f'<{url}?{urlencode([*kept, (cursor, ids.encode(value))])}>; rel="{rel}"'
    return {"Link": ", ".join([link("max_id", item_ids[-1], "next"), link("min_id", item_ids[0], "prev")])}
