"""Hashtags people follow (followed_tags)."""
from __future__ import annotations

import aiosqlite

from fedserver.store.rows import fetch_all, fetch_one


async def follow_tag(conn: aiosqlite.Connection, actor_id: int, tag: str, now: str) -> None:
    await conn.execute("INSERT INTO followed_tags (actor_id, tag, created_at) VALUES (?, ?, ?)"
                       " ON CONFLICT (actor_id, tag) DO NOTHING", (actor_id, tag, now))


async def unfollow_tag(conn: aiosqlite.Connection, actor_id: int, tag: str) -> None:
    await conn.execute("DELETE FROM followed_tags WHERE actor_id = ? AND tag = ?", (actor_id, tag))


async def follows_tag(conn: aiosqlite.Connection, actor_id: int, tag: str) -> bool:
    return await fetch_one(conn, "SELECT 1 FROM followed_tags WHERE actor_id = ? AND tag = ?",
                           (actor_id, tag)) is not None


async def followed_tags(conn: aiosqlite.Connection, actor_id: int) -> list[str]:
    rows = await fetch_all(conn, "SELECT tag FROM followed_tags WHERE actor_id = ? ORDER BY tag", (actor_id,))
    return [str(row[0]) for row in rows]


async def count_followed(conn: aiosqlite.Connection, actor_id: int) -> int:
    row = await fetch_one(conn, "SELECT count(*) FROM followed_tags WHERE actor_id = ?", (actor_id,))
    return int(row[0]) if row else 0
