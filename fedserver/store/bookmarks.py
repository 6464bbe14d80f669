"""Bookmarks: posts a local person kept for later, newest bookmark first."""
from __future__ import annotations

import aiosqlite

from fedserver.store.posts import Post
from fedserver.store.rows import fetch_all, from_row

NO_MAX_ID = 2**62


async def add_bookmark(conn: aiosqlite.Connection, actor_id: int, post_id: int, now: str) -> None:
    await conn.execute("INSERT INTO bookmarks (actor_id, post_id, created_at) VALUES (?, ?, ?)"
                       " ON CONFLICT (actor_id, post_id) DO NOTHING", (actor_id, post_id, now))


async def remove_bookmark(conn: aiosqlite.Connection, actor_id: int, post_id: int) -> None:
    await conn.execute("DELETE FROM bookmarks WHERE actor_id = ? AND post_id = ?", (actor_id, post_id))


async def bookmarked_among(conn: aiosqlite.Connection, actor_id: int, post_ids: list[int]) -> set[int]:
    """Which of these posts the account bookmarked (one read for a page of cards)."""
    if not post_ids:
        return set()
    marks = ", ".join("?" for _ in post_ids)
    rows = await fetch_all(conn, f"SELECT post_id FROM bookmarks WHERE actor_id = ? AND post_id IN ({marks})",
                           (actor_id, *post_ids))
    return {row[0] for row in rows}


async def list_bookmarks(conn: aiosqlite.Connection, actor_id: int, *, max_id: int | None,
                         limit: int) -> list[tuple[int, Post]]:
    """(bookmark id, post) pairs, newest bookmark first, deleted posts left out (bookmarks_actor)."""
    rows = await fetch_all(
        conn, "SELECT b.id AS bookmark_id, p.* FROM bookmarks b JOIN posts p ON p.id = b.post_id"
              " WHERE b.actor_id = ? AND b.id < ? AND p.deleted_at IS NULL ORDER BY b.id DESC LIMIT ?",
        (actor_id, max_id if max_id is not None else NO_MAX_ID, limit))
    out = []
    for row in rows:
        post = from_row(Post, row)
        assert post is not None
        out.append((row["bookmark_id"], post))
    return out
