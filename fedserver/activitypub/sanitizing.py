"""Remote HTML cleaned off the event loop, within a time budget.

Cleaning is bounded (sanitize.bound_html: worst case tens of ms), but even that is too long to hold
every other request on the event loop, and a post cleaned on the loop is time nobody else gets.
nh3 releases the GIL while it parses (measured: the loop thread keeps running every few ms while
another thread cleans 48 KB of nested lists), so a small thread pool keeps the loop free. A thread
cannot be stopped: when cleaning overruns the budget the caller stops waiting and stores the
linear-time escaped-text fallback instead (logged), and the bounds keep the abandoned thread's
remaining work short."""
from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from fedserver.activitypub.normalize import content_of
from fedserver.activitypub.notes import ParsedNote, parse_note
from fedserver.activitypub.sanitize import html_as_escaped_text, sanitize_html

log = logging.getLogger(__name__)

T = TypeVar("T")

# What one post or profile may cost before it is stored as escaped text: ~100x the bounded worst
# case, so only an overloaded machine (or an unknown slow path in the parser) ever reaches it.
BUDGET_SECONDS = 2.0
# Two cores is the small server this runs on; the pool also must not crowd out aiosqlite's threads.
THREADS = 2

# HTML this small is cleaned on the event loop instead: at most INLINE_MAX_TAGS tags bound html5ever's
# quadratic work to well under a millisecond, while a thread hop per post, and pure-Python parsing
# in another thread contending for the GIL, cost the loop more than that (bench.inbound: with every
# post sent to the pool, requests at half load waited 110 ms at p50 instead of 6 ms).
INLINE_MAX_CHARS = 8_000
INLINE_MAX_TAGS = 100

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="sanitize")
        return _pool


async def _within_budget(work: Callable[[], T], fallback: Callable[[], T], *, what: str,
                         budget: float) -> T:
    future = asyncio.get_running_loop().run_in_executor(_executor(), work)
    try:
        return await asyncio.wait_for(future, budget)
    except asyncio.TimeoutError:
        log.warning("cleaning the HTML of %s took over %.1f s: kept as escaped plain text", what, budget)
        return fallback()


async def clean_html(html: str, *, what: str, budget: float = BUDGET_SECONDS) -> str:
    """sanitize_html(html) computed off the event loop; html_as_escaped_text(html) if that takes
    longer than budget seconds. `what` names the source in the log (an actor or object id)."""
    if not html:
        return ""
    if _cheap(html):
        return sanitize_html(html)
    return await _within_budget(lambda: sanitize_html(html), lambda: html_as_escaped_text(html),
                                what=what, budget=budget)


async def parse_note_off_loop(obj: Any, *, followers_url: str | None = None,
                              budget: float = BUDGET_SECONDS) -> tuple[ParsedNote, str]:
    """notes.parse_note (which cleans content and summary) off the event loop; past the budget the
    note is parsed with its HTML kept as escaped text. Raises InvalidNote like parse_note."""
    if isinstance(obj, dict) and _cheap(*(value for value in (content_of(obj), obj.get("summary"), obj.get("name"))
                                          if isinstance(value, str))):
        return parse_note(obj, followers_url=followers_url)
    what = obj.get("id") if isinstance(obj, dict) else None
    return await _within_budget(
        lambda: parse_note(obj, followers_url=followers_url),
        lambda: parse_note(obj, followers_url=followers_url, clean=html_as_escaped_text),
        what=f"note {what!r}", budget=budget)


def _cheap(*htmls: str) -> bool:
    """Whether cleaning these costs so little that the event loop does it sooner than a thread.
    Counting "<" over-counts tags, never under-counts, and runs at C speed."""
    return (sum(len(html) for html in htmls) <= INLINE_MAX_CHARS
            and sum(html.count("<") for html in htmls) <= INLINE_MAX_TAGS)
