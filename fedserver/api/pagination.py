"""Mastodon's paging: max_id / since_id / min_id / limit in, a Link header out (client-api.md §5.2).
`next` (older items, max_id = the last item) comes first, then `prev` (newer, min_id = the first
item), each without the current items, so that clients never loop."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Optional, TypeVar
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


def link_header(base_url: str, request: web.Request, item_ids: list[int], *, prev: bool = True) -> dict[str, str]:
    """Headers with a Link for a page of items listed newest first; none for an empty page.
    prev=False: `next` only, for lists whose cursors cannot say what is newer."""
    if not item_ids:
        return {}
    kept = [(key, value) for key, value in request.query.items() if key not in CURSORS]
    url = base_url + request.path

    def link(cursor: str, value: int, rel: str) -> str:
        return f'<{url}?{urlencode([*kept, (cursor, ids.encode(value))])}>; rel="{rel}"'
    links = [link("max_id", item_ids[-1], "next")] + ([link("min_id", item_ids[0], "prev")] if prev else [])
    return {"Link": ", ".join(links)}


# --- reading pages of time-ordered lists -----------------------------------------------------

T = TypeVar("T")
# (max_id, limit) -> the items below max_id, newest first, and where the underlying read stopped:
# None when it reached the end, else the lowest id it read (items may be fewer than the read rows,
# when some are hidden from the viewer).
Fetch = Callable[[Optional[int], int], Awaitable[tuple[list[T], Optional[int]]]]
NO_MAX_ID = 2**62
# Where the search for min_id's window starts: one minute of snowflake ids ((unix ms << 16) | seq)
# for time-ordered ids (posts, boosts); a few ids for ids that count up one by one (notifications,
# likes, bookmarks, follows).
SNOWFLAKE_SPAN = 60_000 << 16
COUNTER_SPAN = 64
_MAX_PROBES = 40


async def read_page(fetch: Fetch[T], request: PageRequest, key: Callable[[T], int], *,
                    first_span: int = SNOWFLAKE_SPAN) -> list[T]:
    """The page the request names, newest first: below max_id; above since_id (the newest such);
    or, with min_id, the items immediately above it (the oldest such, listed newest first)."""
    if request.min_id is not None:
        return await _just_above(fetch, request.min_id, request.limit, key, top=request.max_id or NO_MAX_ID,
                                 span=first_span)
    items, _ = await fetch(request.max_id, request.limit)
    if request.since_id is not None:
        items = [item for item in items if key(item) > request.since_id]
    return items


async def _just_above(fetch: Fetch[T], min_id: int, limit: int, key: Callable[[T], int], *, top: int,
                      span: int) -> list[T]:
    """The services read newest first only; ids are time-ordered, so the items just above min_id
    are found window by window: a window (cursor, cursor + span) read whole in one newest-first
    page gives all its items (the cursor then moves to its top, and the next window is wider); a
    window too full for one page is halved. Each probe is one read with the timeline's usual rules,
    so nothing here shows more than the timeline itself would, and no item is ever skipped: items
    hidden from the viewer only use up probes. After _MAX_PROBES what was found is returned (fewer
    items; the app pages on with min_id from the newest it got)."""
    found: list[T] = []  # oldest first
    cursor = min_id
    for _ in range(_MAX_PROBES):
        if len(found) >= limit or cursor >= top - 1:
            break
        upper = min(cursor + span + 1, top)  # the window holds ids cursor + 1 .. upper - 1
        items, stopped_at = await fetch(upper, limit + 1)
        # Read whole when the read ran out of rows, or its lowest row is the window's lowest id.
        if stopped_at is None or stopped_at <= cursor + 1:
            found += sorted((item for item in items if key(item) > cursor), key=key)
            cursor = upper - 1  # every id below upper is now known
            span *= 4
        else:
            span = max(1, span // 4)
    return list(reversed(found[:limit]))
