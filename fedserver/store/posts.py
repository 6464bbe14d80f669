"""Posts, their mentions, hashtags, revisions, and tombstones of deleted remote objects."""
from __future__ import annotations

import json
from dataclasses import dataclass

import aiosqlite

from fedserver.store.rows import fetch_all, fetch_one, fetch_value, from_row, from_rows


@dataclass
class Post:
    id: int
    uri: str
    url: str | None
    actor_id: int
    is_local: int
    object_type: str
    visibility: str
    content_html: str
    content_text: str
    source_text: str | None
    summary: str | None
    sensitive: int
    language: str | None
    in_reply_to_uri: str | None
    audience_json: str
    published_at: str
    edited_at: str | None
    deleted_at: str | None
    created_at: str
    updated_at: str
    corpus_excluded: int = 0

    @property
    def audience(self) -> dict[str, list[str]]:
        return json.loads(self.audience_json)

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass
class NewPost:
    id: int
    uri: str
    url: str | None
    actor_id: int
    is_local: bool
    object_type: str
    visibility: str
    content_html: str
    content_text: str
    source_text: str | None
    summary: str | None
    sensitive: bool
    language: str | None
    in_reply_to_uri: str | None
    audience: dict[str, list[str]]
    published_at: str
    corpus_excluded: bool = False

    def stored(self, now: str) -> Post:
        """The row as insert_post writes it (saves reading it back)."""
        return Post(id=self.id, uri=self.uri, url=self.url, actor_id=self.actor_id, is_local=int(self.is_local),
                    object_type=self.object_type, visibility=self.visibility, content_html=self.content_html,
                    content_text=self.content_text, source_text=self.source_text, summary=self.summary,
                    sensitive=int(self.sensitive), language=self.language, in_reply_to_uri=self.in_reply_to_uri,
                    audience_json=json.dumps(self.audience), published_at=self.published_at, edited_at=None,
                    deleted_at=None, created_at=now, updated_at=now, corpus_excluded=int(self.corpus_excluded))


async def insert_post(conn: aiosqlite.Connection, post: NewPost, now: str) -> bool:
    """Insert the post; False when its time-ordered id is already taken (the caller draws another)."""
    cur = await conn.execute(
        "INSERT INTO posts (id, uri, url, actor_id, is_local, object_type, visibility, content_html,"
        " content_text, source_text, summary, sensitive, language, in_reply_to_uri, audience_json,"
        " published_at, created_at, updated_at, corpus_excluded)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (post.id, post.uri, post.url, post.actor_id, int(post.is_local), post.object_type, post.visibility,
         post.content_html, post.content_text, post.source_text, post.summary, int(post.sensitive),
         post.language, post.in_reply_to_uri, json.dumps(post.audience), post.published_at, now, now,
         int(post.corpus_excluded)))
    return cur.rowcount > 0


async def update_post_content(conn: aiosqlite.Connection, post_id: int, *, content_html: str, content_text: str,
                              source_text: str | None, summary: str | None, sensitive: bool,
                              language: str | None, visibility: str, audience: dict[str, list[str]],
                              edited_at: str, now: str) -> None:
    """Apply an edit, keeping the previous version in post_revisions."""
    await conn.execute(
        "INSERT INTO post_revisions (post_id, content_html, summary, sensitive, revised_at)"
        " SELECT id, content_html, summary, sensitive, COALESCE(edited_at, published_at) FROM posts WHERE id = ?",
        (post_id,))
    await conn.execute(
        "UPDATE posts SET content_html = ?, content_text = ?, source_text = ?, summary = ?, sensitive = ?,"
        " language = ?, visibility = ?, audience_json = ?, edited_at = ?, updated_at = ? WHERE id = ?",
        (content_html, content_text, source_text, summary, int(sensitive), language, visibility,
         json.dumps(audience), edited_at, now, post_id))


async def mark_post_deleted(conn: aiosqlite.Connection, post_id: int, now: str) -> None:
    """Keep the row (so the id answers 410 and the corpus can emit a removal) but drop its content."""
    await conn.execute(
        "UPDATE posts SET deleted_at = ?, updated_at = ?, content_html = '', content_text = '',"
        " source_text = NULL, summary = NULL WHERE id = ? AND deleted_at IS NULL", (now, now, post_id))
    await conn.execute("DELETE FROM post_revisions WHERE post_id = ?", (post_id,))


async def get_post(conn: aiosqlite.Connection, post_id: int) -> Post | None:
    return from_row(Post, await fetch_one(conn, "SELECT * FROM posts WHERE id = ?", (post_id,)))


async def get_post_by_uri(conn: aiosqlite.Connection, uri: str) -> Post | None:
    return from_row(Post, await fetch_one(conn, "SELECT * FROM posts WHERE uri = ?", (uri,)))


async def list_revisions(conn: aiosqlite.Connection, post_id: int) -> list[dict]:
    rows = await fetch_all(conn, "SELECT content_html, summary, sensitive, revised_at FROM post_revisions"
                                 " WHERE post_id = ? ORDER BY id", (post_id,))
    return [dict(row) for row in rows]


async def list_actor_posts(conn: aiosqlite.Connection, actor_id: int, *, visibilities: tuple[str, ...],
                           max_id: int | None = None, limit: int = 20) -> list[Post]:
    """An actor's live posts newest first, of the given visibilities, older than max_id."""
    placeholders = ", ".join("?" for _ in visibilities)
    params: list[object] = [actor_id, *visibilities]
    extra = ""
    if max_id is not None:
        extra = " AND id < ?"
        params.append(max_id)
    params.append(limit)
    rows = await fetch_all(
        conn, f"SELECT * FROM posts WHERE actor_id = ? AND deleted_at IS NULL AND visibility IN ({placeholders})"
              f"{extra} ORDER BY id DESC LIMIT ?", tuple(params))
    return from_rows(Post, rows)


async def count_actor_posts(conn: aiosqlite.Connection, actor_id: int, visibilities: tuple[str, ...]) -> int:
    placeholders = ", ".join("?" for _ in visibilities)
    return int(await fetch_value(
        conn, f"SELECT count(*) FROM posts WHERE actor_id = ? AND deleted_at IS NULL AND visibility IN ({placeholders})",
        (actor_id, *visibilities)) or 0)


async def count_local_posts(conn: aiosqlite.Connection) -> int:
    return int(await fetch_value(
        conn, "SELECT count(*) FROM posts WHERE is_local = 1 AND deleted_at IS NULL") or 0)


async def set_mentions(conn: aiosqlite.Connection, post_id: int, actor_ids: list[int], *, new: bool = False) -> None:
    """Replace a post's mentions (new=True: a post just inserted has none to remove)."""
    if not new:
        await conn.execute("DELETE FROM post_mentions WHERE post_id = ?", (post_id,))
    if not actor_ids:
        return
    await conn.executemany("INSERT OR IGNORE INTO post_mentions (post_id, actor_id) VALUES (?, ?)",
                           [(post_id, actor_id) for actor_id in actor_ids])


async def list_mentioned_actor_ids(conn: aiosqlite.Connection, post_id: int) -> list[int]:
    rows = await fetch_all(conn, "SELECT actor_id FROM post_mentions WHERE post_id = ? ORDER BY actor_id",
                           (post_id,))
    return [row[0] for row in rows]


async def set_tags(conn: aiosqlite.Connection, post_id: int, tags: list[str], *, new: bool = False) -> None:
    if not new:
        await conn.execute("DELETE FROM post_tags WHERE post_id = ?", (post_id,))
    if not tags:
        return
    await conn.executemany("INSERT OR IGNORE INTO post_tags (post_id, tag) VALUES (?, ?)",
                           [(post_id, tag) for tag in tags])


async def list_tags(conn: aiosqlite.Connection, post_id: int) -> list[str]:
    rows = await fetch_all(conn, "SELECT tag FROM post_tags WHERE post_id = ? ORDER BY tag", (post_id,))
    return [row[0] for row in rows]


async def add_tombstone(conn: aiosqlite.Connection, uri: str, now: str) -> None:
    await conn.execute("INSERT INTO tombstones (uri, deleted_at) VALUES (?, ?) ON CONFLICT (uri) DO NOTHING",
                       (uri, now))


async def is_tombstoned(conn: aiosqlite.Connection, uri: str) -> bool:
    return await fetch_value(conn, "SELECT 1 FROM tombstones WHERE uri = ?", (uri,)) is not None


async def set_corpus_excluded(conn: aiosqlite.Connection, post_id: int, excluded: bool, now: str) -> None:
    await conn.execute("UPDATE posts SET corpus_excluded = ?, updated_at = ? WHERE id = ?",
                       (int(excluded), now, post_id))


async def list_live_post_ids_of_actor(conn: aiosqlite.Connection, actor_id: int) -> list[int]:
    rows = await fetch_all(conn, "SELECT id FROM posts WHERE actor_id = ? AND deleted_at IS NULL", (actor_id,))
    return [row[0] for row in rows]
