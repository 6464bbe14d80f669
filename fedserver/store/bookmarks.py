"""Bookmarks (private to their owner), and the lists of bookmarked and liked posts of a person,
newest first, paged by the bookmark's or like's id."""
from __future__ import annotations

from typing import Sequence

import aiosqlite

from fedserver.store.posts import Post
from fedserver.store.rows import fetch_all, from_row

NO_MAX_ID = 2**62


async def add_bookmark(conn: aiosqlite.Connection, actor_id: int, post_id: int, now: str) -> None:
    await conn.execute("INSERT INTO bookmarks (actor_id, post_id, created_at) VALUES (?, ?, ?)"
                       " ON CONFLICT (actor_id, post_id) DO NOTHING", (actor_id, post_id, now))


async def remove_bookmark(conn: aiosqlite.Connection, actor_id: int, post_id: int) -> None:
    await conn.execute("DELETE FROM bookmarks WHERE actor_id = ? AND post_id = ?", (actor_id, post_id))


async def bookmarked_among(conn: aiosqlite.Connection, actor_id: int, post_ids: Sequence[int]) -> set[int]:
    """Which of these posts the account bookmarked (one read for a page of cards)."""
    if not post_ids:
        return set()
    marks = ", ".join("?" for _ in post_ids)
    rows = await fetch_all(conn, f"SELECT post_id FROM bookmarks WHERE actor_id = ? AND post_id IN ({marks})",
                           (actor_id, *post_ids))
    return {row[0] for row in rows}


async def _listed(conn: aiosqlite.Connection, table: str, actor_id: int, max_id: int | None,
                  limit: int) -> list[tuple[int, Post]]:
    """(row id, post) of the person's rows in `table` (bookmarks or likes: a fixed name, never
    input), newest first, deleted posts left out (bookmarks_actor, likes_actor)."""
    rows = await fetch_all(
        conn, f"SELECT x.id AS x_id, p.* FROM {table} x JOIN posts p ON p.id = x.post_id"
              f" WHERE x.actor_id = ? AND x.id < ? AND p.deleted_at IS NULL ORDER BY x.id DESC LIMIT ?",
        (actor_id, max_id if max_id is not None else NO_MAX_ID, limit))
    result = []
    for row in rows:
        post = from_row(Post, row)
        assert post is not None
        result.append((row["x_id"], post))
    return result


async def list_bookmarks(conn: aiosqlite.Connection, actor_id: int, *, max_id: int | None,
                         limit: int) -> list[tuple[int, Post]]:
    """(bookmark id, post), newest bookmark first."""
    return await _listed(conn, "bookmarks", actor_id, max_id, limit)


async def liked_posts(conn: aiosqlite.Connection, actor_id: int, *, max_id: int | None,
                      limit: int) -> list[tuple[int, Post]]:
    """(like id, post), newest like first."""
    return await _listed(conn, "likes", actor_id, max_id, limit)
