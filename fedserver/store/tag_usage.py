"""How much hashtags were used, day by day: the posts we hold that carry them (post_tags) and how
many accounts wrote those posts. Read for Mastodon's Tag.history."""
from __future__ import annotations

import aiosqlite

from fedserver.store.rows import fetch_all

# Post ids are time-ordered ((unix ms << 16) | seq, clock.time_ordered_id): an id divided by one
# day of ids is its UTC day number, so the days come from the post_tags_tag index alone.
DAY_OF_IDS = 86_400_000 << 16


async def daily_uses(conn: aiosqlite.Connection, tags: list[str], *, first_day: int) -> dict[str, dict[int, tuple[int, int]]]:
    """tag -> {UTC day number: (posts, distinct authors)} for public and unlisted live posts from
    first_day on (days without posts are left out)."""
    if not tags:
        return {}
    marks = ", ".join("?" for _ in tags)
    rows = await fetch_all(
        conn, f"SELECT pt.tag, pt.post_id / ? AS day, count(*), count(DISTINCT p.actor_id)"
              f" FROM post_tags pt JOIN posts p ON p.id = pt.post_id"
              f" WHERE pt.tag IN ({marks}) AND pt.post_id >= ? AND p.deleted_at IS NULL"
              f" AND p.visibility IN ('public', 'unlisted')"
              f" GROUP BY 1, 2 ORDER BY 1, 2",
        (DAY_OF_IDS, *tags, first_day * DAY_OF_IDS))
    found: dict[str, dict[int, tuple[int, int]]] = {}
    for tag, day, uses, accounts in rows:
        found.setdefault(tag, {})[int(day)] = (int(uses), int(accounts))
    return found
