"""Custom emoji of remote posts: one row per (post, shortcode), written with the post (synchronous,
for Database.write_batch); read for a whole page of posts at once, with the media cache's row."""
from __future__ import annotations

import sqlite3

import aiosqlite

from fedserver.store.attachments import CachedMedia
from fedserver.store.rows import fetch_all


def set_emojis_sync(conn: sqlite3.Connection, post_id: int, emojis: list[tuple[str, str]], *,
                    new: bool = False) -> None:
    """Replace the post's emoji ((shortcode, url) each): an edit may change them."""
    if not new:
        conn.execute("DELETE FROM post_emojis WHERE post_id = ?", (post_id,))
    if emojis:
        conn.executemany("INSERT INTO post_emojis (post_id, shortcode, url) VALUES (?, ?, ?)",
                         [(post_id, shortcode, url) for shortcode, url in emojis])


async def emojis_for(conn: aiosqlite.Connection,
                     post_ids: list[int]) -> dict[int, dict[str, tuple[str, CachedMedia | None]]]:
    """Each post's emoji: shortcode -> (url, its media cache row); posts without any are left out."""
    if not post_ids:
        return {}
    marks = ", ".join("?" for _ in post_ids)
    rows = await fetch_all(
        conn, "SELECT e.post_id, e.shortcode, e.url, m.url_hash, m.state, m.file_name, m.thumb_name, m.blur_name,"
              " m.width, m.height, m.thumb_width, m.thumb_height, m.blurhash FROM post_emojis e"
              f" LEFT JOIN remote_media m ON m.url = e.url WHERE e.post_id IN ({marks})", post_ids)
    found: dict[int, dict[str, tuple[str, CachedMedia | None]]] = {}
    for row in rows:
        found.setdefault(row[0], {})[row[1]] = (row[2], CachedMedia(*row[3:]) if row[3] is not None else None)
    return found
