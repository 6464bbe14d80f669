"""What a person's archive reads (their posts oldest first, the posts they liked, the accounts they
block or mute and the posts they bookmarked, page by page) and the record of archive downloads that the per-account limit counts."""
from __future__ import annotations

import aiosqlite

from fedserver.store.actors import Actor
from fedserver.store.posts import Post
from fedserver.store.rows import fetch_all, fetch_value, from_row, from_rows

KEEP_MS = 86_400_000


async def own_posts_page(conn: aiosqlite.Connection, actor_id: int, *, after_id: int, limit: int) -> list[Post]:
    """The actor's live posts of every visibility (it is their own archive), oldest first, after after_id
    (posts_actor_cover's (actor_id, id) order: each page is an index range)."""
    rows = await fetch_all(conn, "SELECT * FROM posts WHERE actor_id = ? AND deleted_at IS NULL AND id > ?"
                                 " ORDER BY id LIMIT ?", (actor_id, after_id, limit))
    return from_rows(Post, rows)


async def liked_uris_page(conn: aiosqlite.Connection, actor_id: int, *, after_id: int,
                          limit: int) -> list[tuple[int, str]]:
    """(like id, liked post's id) of the actor's likes, in the order they were made."""
    rows = await fetch_all(conn, "SELECT l.id, p.uri FROM likes l JOIN posts p ON p.id = l.post_id"
                                 " WHERE l.actor_id = ? AND l.id > ? ORDER BY l.id LIMIT ?",
                           (actor_id, after_id, limit))
    return [(row[0], row[1]) for row in rows]


async def bookmarked_uris_page(conn: aiosqlite.Connection, actor_id: int, *, after_id: int,
                               limit: int) -> list[tuple[int, str]]:
    """(bookmark id, post's id) of the actor's bookmarks of live posts, in the order they were made
    (bookmarks_actor's (actor_id, id) order)."""
    rows = await fetch_all(conn, "SELECT b.id, p.uri FROM bookmarks b JOIN posts p ON p.id = b.post_id"
                                 " WHERE b.actor_id = ? AND b.id > ? AND p.deleted_at IS NULL ORDER BY b.id LIMIT ?",
                           (actor_id, after_id, limit))
    return [(row[0], row[1]) for row in rows]


async def blocked_accounts_page(conn: aiosqlite.Connection, actor_id: int, *, after_id: int,
                                limit: int) -> list[tuple[int, Actor]]:
    """(block id, blocked account) in the order the blocks were made."""
    rows = await fetch_all(conn, "SELECT b.id AS block_id, a.* FROM blocks b JOIN actors a ON a.id = b.target_id"
                                 " WHERE b.actor_id = ? AND b.id > ? ORDER BY b.id LIMIT ?",
                           (actor_id, after_id, limit))
    return [(row["block_id"], from_row(Actor, row)) for row in rows]  # type: ignore[misc]


async def muted_accounts_page(conn: aiosqlite.Connection, actor_id: int, *, after_target_id: int,
                              limit: int) -> list[Actor]:
    """Muted accounts, by account id (mutes are keyed by the pair: the primary key's order)."""
    rows = await fetch_all(conn, "SELECT a.* FROM mutes m JOIN actors a ON a.id = m.target_id"
                                 " WHERE m.actor_id = ? AND m.target_id > ? ORDER BY m.target_id LIMIT ?",
                           (actor_id, after_target_id, limit))
    return from_rows(Actor, rows)


async def count_downloads_since(conn: aiosqlite.Connection, actor_id: int, since_ms: int) -> int:
    return int(await fetch_value(conn, "SELECT count(*) FROM archive_downloads WHERE actor_id = ? AND started_ms >= ?",
                                 (actor_id, since_ms)) or 0)


async def record_download(conn: aiosqlite.Connection, actor_id: int, now_ms: int) -> None:
    await conn.execute("INSERT INTO archive_downloads (actor_id, started_ms) VALUES (?, ?)", (actor_id, now_ms))
    await conn.execute("DELETE FROM archive_downloads WHERE started_ms < ?", (now_ms - KEEP_MS,))
