"""Media attached to posts: one row per attachment, in the author's order. Written in the
transaction that stores or updates the post (synchronous, for Database.write_batch); read for a
whole page of posts at once."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import aiosqlite

from fedserver.store.rows import fetch_all


@dataclass(frozen=True)
class CachedMedia:
    """A remote attachment's row in the media cache (store/remote_media.py), as pages show it."""
    url_hash: str
    state: str
    file_name: str | None
    thumb_name: str | None
    blur_name: str | None
    width: int | None
    height: int | None
    thumb_width: int | None
    thumb_height: int | None
    blurhash: str | None


@dataclass(frozen=True)
class Attachment:
    position: int
    media_type: str
    url: str
    description: str | None
    width: int | None
    height: int | None
    # Remote pictures only, read with the attachment (attachments_for); None for local media.
    cached: CachedMedia | None = None
    # Pictures posted here: their thumbnail and blurhash picture (migration 0053), on this server.
    thumb_url: str | None = None
    thumb_width: int | None = None
    thumb_height: int | None = None
    blur_url: str | None = None
    blurhash: str | None = None
    # Video and audio: seconds they play (migration 0095), when known.
    duration: float | None = None
    # A video posted here without sound: shown as a looping animation (Mastodon's gifv, migration 0145).
    looping: bool = False

    @property
    def kind(self) -> str:
        """image, video, audio or file: how a page presents it."""
        major = self.media_type.partition("/")[0].lower()
        return major if major in ("image", "video", "audio") else "file"


_DELETE = "DELETE FROM post_attachments WHERE post_id = ?"
_INSERT = ("INSERT INTO post_attachments (post_id, position, media_type, url, description, width, height,"
           " thumb_url, thumb_width, thumb_height, blur_url, blurhash, duration, looping)"
           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def _row(post_id: int, a: Attachment) -> tuple:
    return (post_id, a.position, a.media_type, a.url, a.description, a.width, a.height, a.thumb_url, a.thumb_width,
            a.thumb_height, a.blur_url, a.blurhash, a.duration, int(a.looping))


def set_attachments_sync(conn: sqlite3.Connection, post_id: int, attachments: list[Attachment], *,
                         new: bool = False) -> None:
    """Replace the post's attachments (an edit may add, remove or reorder them)."""
    if not new:
        conn.execute(_DELETE, (post_id,))
    if attachments:
        conn.executemany(_INSERT, [_row(post_id, a) for a in attachments])


async def add_attachments(conn: aiosqlite.Connection, post_id: int, attachments: list[Attachment]) -> None:
    """A new post's attachments (set_attachments_sync with new=True, for aiosqlite transactions)."""
    await conn.executemany(_INSERT, [_row(post_id, a) for a in attachments])


async def replace_attachments(conn: aiosqlite.Connection, post_id: int, attachments: list[Attachment]) -> None:
    """An edited post's attachments (set_attachments_sync, for aiosqlite transactions)."""
    await conn.execute(_DELETE, (post_id,))
    if attachments:
        await conn.executemany(_INSERT, [_row(post_id, a) for a in attachments])


async def attachments_for(conn: aiosqlite.Connection, post_ids: list[int]) -> dict[int, list[Attachment]]:
    """Each post's attachments in order; posts without any are left out."""
    if not post_ids:
        return {}
    marks = ", ".join("?" for _ in post_ids)
    # The cache's row joins by URL (remote_media.url is unique): one read for the whole page.
    rows = await fetch_all(
        conn, "SELECT a.post_id, a.position, a.media_type, a.url, a.description, a.width, a.height, m.url_hash,"
              " m.state, m.file_name, m.thumb_name, m.blur_name, m.width, m.height, m.thumb_width, m.thumb_height,"
              " m.blurhash, a.thumb_url, a.thumb_width, a.thumb_height, a.blur_url, a.blurhash, a.duration, a.looping"
              " FROM post_attachments a LEFT JOIN remote_media m ON m.url = a.url"
              f" WHERE a.post_id IN ({marks}) ORDER BY a.post_id, a.position", post_ids)
    found: dict[int, list[Attachment]] = {}
    for row in rows:
        cached = CachedMedia(*row[7:17]) if row[7] is not None else None
        found.setdefault(row[0], []).append(Attachment(*row[1:7], cached, *row[17:23], bool(row[23])))
    return found
