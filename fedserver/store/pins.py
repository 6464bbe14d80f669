"""Pinned posts: a local person's own pins, and a remote account's featured posts as last fetched."""
from __future__ import annotations

import aiosqlite

from fedserver.store.posts import Post
from fedserver.store.rows import fetch_all, fetch_value, from_rows


async def add_pin(conn: aiosqlite.Connection, actor_id: int, post_id: int, now: str) -> bool:
    """Pin the post; False when it was pinned already."""
    cur = await conn.execute("INSERT INTO pinned_posts (actor_id, post_id, created_at) VALUES (?, ?, ?)"
                             " ON CONFLICT (actor_id, post_id) DO NOTHING", (actor_id, post_id, now))
    return cur.rowcount > 0


async def remove_pin(conn: aiosqlite.Connection, actor_id: int, post_id: int) -> bool:
    cur = await conn.execute("DELETE FROM pinned_posts WHERE actor_id = ? AND post_id = ?", (actor_id, post_id))
    return cur.rowcount > 0


async def count_live_pins(conn: aiosqlite.Connection, actor_id: int) -> int:
    return int(await fetch_value(
        conn, "SELECT count(*) FROM pinned_posts n JOIN posts p ON p.id = n.post_id"
              " WHERE n.actor_id = ? AND p.deleted_at IS NULL", (actor_id,)) or 0)


async def pinned_posts(conn: aiosqlite.Connection, actor_id: int, limit: int) -> list[Post]:
    """The account's live pinned posts, newest pin first (pinned_posts_actor)."""
    rows = await fetch_all(
        conn, "SELECT p.* FROM pinned_posts n JOIN posts p ON p.id = n.post_id"
              " WHERE n.actor_id = ? AND p.deleted_at IS NULL AND p.actor_id = n.actor_id"
              " ORDER BY n.id DESC LIMIT ?", (actor_id, limit))
    return from_rows(Post, rows)


async def pinned_among(conn: aiosqlite.Connection, post_ids: list[int]) -> set[int]:
    """Which of these posts their author pinned."""
    if not post_ids:
        return set()
    marks = ", ".join("?" for _ in post_ids)
    rows = await fetch_all(conn, f"SELECT post_id FROM pinned_posts WHERE post_id IN ({marks})", tuple(post_ids))
    return {row[0] for row in rows}


async def replace_pins(conn: aiosqlite.Connection, actor_id: int, post_ids: list[int], now: str) -> None:
    """A remote account's featured posts, as its collection lists them (first listed = newest pin)."""
    await conn.execute("DELETE FROM pinned_posts WHERE actor_id = ?", (actor_id,))
    for post_id in reversed(post_ids):
        await add_pin(conn, actor_id, post_id, now)
