"""The media cache's rows (remote_media): which remote picture URLs this server shows, whether their
cleaned copies are on disk, and the queue the cache's worker claims them from with leases."""
from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass

import aiosqlite

from fedserver.store.rows import fetch_all, fetch_one, from_row, from_rows, skip_locked

QUEUED, ABSENT, CACHED, FAILED = "queued", "absent", "cached", "failed"


@dataclass(frozen=True)
class RemoteMedia:
    id: int
    url: str
    url_hash: str
    purpose: str
    state: str
    attempts: int
    retry_at: int | None
    file_name: str | None
    thumb_name: str | None
    blur_name: str | None
    width: int | None
    height: int | None
    thumb_width: int | None
    thumb_height: int | None
    blurhash: str | None
    stored_bytes: int
    fetched_at: int | None


@dataclass(frozen=True)
class CachedCopy:
    """What caching one picture wrote: the content-addressed names and the picture's measures."""
    file_name: str
    # None for audio (no poster); width and height None for audio too.
    thumb_name: str | None
    blur_name: str | None
    width: int | None
    height: int | None
    thumb_width: int | None
    thumb_height: int | None
    blurhash: str | None
    stored_bytes: int


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


_COLUMNS = ("id, url, url_hash, purpose, state, attempts, retry_at, file_name, thumb_name, blur_name, width,"
            " height, thumb_width, thumb_height, blurhash, stored_bytes, fetched_at")
# A URL seen again: a queued sighting (a post for people here) wakes an absent row (never fetched,
# or pruned); nothing else changes an existing row.
_NOTE = ("INSERT INTO remote_media (url, url_hash, purpose, state, created_at) VALUES (?, ?, ?, ?, ?)"
         " ON CONFLICT (url) DO UPDATE SET state = excluded.state"
         " WHERE remote_media.state = 'absent' AND excluded.state = 'queued'")


def _note_rows(urls: list[tuple[str, str]], state: str, now: str) -> list[tuple]:
    return [(url, url_hash(url), purpose, state, now) for url, purpose in dict(urls).items()]


def note_urls_sync(conn: sqlite3.Connection, urls: list[tuple[str, str]], *, state: str, now: str) -> None:
    """Remember remote picture URLs ((url, purpose) each): queued for the worker, or absent (fetched
    when first shown). For Database.write_batch transactions."""
    if urls:
        conn.executemany(_NOTE, _note_rows(urls, state, now))


async def note_urls(conn: aiosqlite.Connection, urls: list[tuple[str, str]], *, state: str, now: str) -> None:
    """note_urls_sync for aiosqlite transactions."""
    if urls:
        await conn.executemany(_NOTE, _note_rows(urls, state, now))


async def claim_queued(conn: aiosqlite.Connection, *, now_ms: int, lease_ms: int, limit: int) -> list[RemoteMedia]:
    """Lease up to limit queued rows, oldest first; another worker skips them until the lease ends."""
    rows = await fetch_all(
        conn, "UPDATE remote_media SET lease_until = ? WHERE id IN (SELECT id FROM remote_media"
              " WHERE state = 'queued' AND (lease_until IS NULL OR lease_until <= ?)"
              f" ORDER BY id LIMIT ?{skip_locked(conn)})"
              f" AND state = 'queued' RETURNING {_COLUMNS}", (now_ms + lease_ms, now_ms, limit))
    return sorted(from_rows(RemoteMedia, rows), key=lambda r: r.id)


async def by_hash(conn: aiosqlite.Connection, key: str) -> RemoteMedia | None:
    return from_row(RemoteMedia, await fetch_one(conn, f"SELECT {_COLUMNS} FROM remote_media WHERE url_hash = ?",
                                                 (key,)))


async def by_file_name(conn: aiosqlite.Connection, name: str) -> RemoteMedia | None:
    """The row that wrote (or last wrote) a content-addressed file, of any of its three kinds."""
    for column in ("file_name", "thumb_name", "blur_name"):
        row = await fetch_one(conn, f"SELECT {_COLUMNS} FROM remote_media WHERE {column} = ? LIMIT 1", (name,))
        if row is not None:
            return from_row(RemoteMedia, row)
    return None


_MARK_CACHED = (
    "UPDATE remote_media SET state = 'cached', lease_until = NULL, retry_at = NULL, last_error = NULL,"
    " attempts = attempts + 1, file_name = ?, thumb_name = ?, blur_name = ?, width = ?, height = ?,"
    " thumb_width = ?, thumb_height = ?, blurhash = ?, stored_bytes = ?, fetched_at = ? WHERE id = ?")


def _mark_cached_params(media_id: int, copy: CachedCopy, fetched_at: int) -> tuple:
    return (copy.file_name, copy.thumb_name, copy.blur_name, copy.width, copy.height, copy.thumb_width,
            copy.thumb_height, copy.blurhash, copy.stored_bytes, fetched_at, media_id)


def mark_cached_sync(conn: sqlite3.Connection, media_id: int, copy: CachedCopy, *,
                     fetched_at: int) -> RemoteMedia | None:
    """A picture's files are written: the row cached, as it now is (for Database.write_now/write_batch)."""
    row = conn.execute(f"{_MARK_CACHED} RETURNING {_COLUMNS}",
                       _mark_cached_params(media_id, copy, fetched_at)).fetchone()
    return RemoteMedia(*row) if row is not None else None


async def mark_failed(conn: aiosqlite.Connection, media_id: int, error: str, *, retry_at_ms: int) -> None:
    """Not cached (refused or unreachable); not asked again before retry_at_ms. A row cached meanwhile
    (by another process) stays cached."""
    await conn.execute(
        "UPDATE remote_media SET state = 'failed', lease_until = NULL, attempts = attempts + 1, last_error = ?,"
        " retry_at = ? WHERE id = ? AND state <> 'cached'", (error[:500], retry_at_ms, media_id))


async def cached_before(conn: aiosqlite.Connection, fetched_before: int, limit: int) -> list[RemoteMedia]:
    rows = await fetch_all(conn, f"SELECT {_COLUMNS} FROM remote_media WHERE state = 'cached' AND fetched_at < ?"
                                 " ORDER BY fetched_at LIMIT ?", (fetched_before, limit))
    return from_rows(RemoteMedia, rows)


async def mark_absent(conn: aiosqlite.Connection, media_ids: list[int]) -> None:
    """Pruned: the files go, the names and measures stay (pages keep their layout, and a request
    for the picture fetches it again)."""
    if media_ids:
        marks = ", ".join("?" for _ in media_ids)
        await conn.execute(f"UPDATE remote_media SET state = 'absent', stored_bytes = 0 WHERE id IN ({marks})"
                           " AND state = 'cached'", media_ids)


async def names_still_cached(conn: aiosqlite.Connection, names: list[str]) -> set[str]:
    """Of these file names, those a cached row still uses (the same picture at several URLs)."""
    if not names:
        return set()
    marks = ", ".join("?" for _ in names)
    found: set[str] = set()
    for column in ("file_name", "thumb_name", "blur_name"):
        rows = await fetch_all(conn, f"SELECT {column} FROM remote_media WHERE state = 'cached'"
                                     f" AND {column} IN ({marks})", names)
        found.update(row[0] for row in rows)
    return found


@dataclass(frozen=True)
class MediaUsage:
    cached_files: int
    cached_bytes: int
    local_files: int
    local_bytes: int


async def usage(conn: aiosqlite.Connection) -> MediaUsage:
    cached = await fetch_one(conn, "SELECT COUNT(*), COALESCE(SUM(stored_bytes), 0) FROM remote_media"
                                   " WHERE state = 'cached'")
    local = await fetch_one(conn, "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM media")
    assert cached is not None and local is not None
    return MediaUsage(cached[0], cached[1], local[0], local[1])
