"""Mastodon paging over newest-first reads (api/pagination.read_page), as a property: for any set
of time-ordered ids, hidden items and cursors, a page is exactly what Mastodon's definition says
(max_id: the newest below it; since_id: the newest above it; min_id: the oldest above it)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fedserver.api.pagination import PageRequest, read_page

MINUTE = 60_000 << 16


def run(coroutine):
    """Drive a coroutine that never suspends (the fetcher below awaits nothing): asyncio.run would
    refuse inside the event loop that the browser tests' Playwright keeps in this thread."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the coroutine suspended")


def _fetcher(ids: list[int], hidden: set[int]):
    newest_first = sorted(ids, reverse=True)

    async def fetch(max_id, limit):
        rows = [i for i in newest_first if max_id is None or i < max_id][:limit]
        # Like the services: rows the viewer may not see are read but left out of the items.
        return [i for i in rows if i not in hidden], (rows[-1] if len(rows) == limit else None)
    return fetch


ids_strategy = st.sets(st.one_of(st.integers(1, 40 * MINUTE), st.integers(1, 2**50)), min_size=0, max_size=60)


@settings(max_examples=300, deadline=None)
@given(ids=ids_strategy, data=st.data())
def test_min_id_pages_are_the_oldest_items_above_the_cursor(ids, data):
    listed = sorted(ids)
    hidden = set(data.draw(st.lists(st.sampled_from(listed), max_size=10))) if listed else set()
    cursor = data.draw(st.one_of(st.sampled_from(listed), st.integers(0, 2**50))) if listed else 0
    limit = data.draw(st.integers(1, 10))
    page = run(read_page(_fetcher(listed, hidden), PageRequest(None, None, cursor, limit), key=lambda i: i))
    visible_above = [i for i in listed if i > cursor and i not in hidden]
    # Never a skipped item: the page is a prefix (oldest first) of what lies above the cursor.
    assert list(reversed(page)) == visible_above[:len(page)]
    assert len(page) <= limit
    if visible_above and len(listed) <= 60:
        assert page, "no progress although visible items lie above the cursor"


@settings(max_examples=200, deadline=None)
@given(ids=ids_strategy, data=st.data())
def test_max_id_and_since_id_pages_are_the_newest_items_in_range(ids, data):
    listed = sorted(ids)
    limit = data.draw(st.integers(1, 10))
    max_id = data.draw(st.one_of(st.none(), st.integers(0, 2**50)))
    since_id = data.draw(st.one_of(st.none(), st.integers(0, 2**50)))
    page = run(read_page(_fetcher(listed, set()), PageRequest(max_id, since_id, None, limit),
                                 key=lambda i: i))
    below = [i for i in reversed(listed) if max_id is None or i < max_id][:limit]
    assert page == [i for i in below if since_id is None or i > since_id]
