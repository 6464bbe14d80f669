"""Pictures, video and audio uploaded through the client API before their post exists (migrations
0085, 0144): owned by the uploader, attached at most once, pruned when left unattached."""
from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from fedserver.store.rows import fetch_all, fetch_one

_COLUMNS = ("id, actor_id, file_id, content_type, size, width, height, thumb_id, thumb_width, thumb_height,"
            " blur_id, blurhash, description, focus_x, focus_y, created_at, post_id, kind, state, error, duration,"
            " frame_rate")
_FIELDS = 22


@dataclass(frozen=True)
class Upload:
    id: int
    actor_id: int
    file_id: str
    content_type: str
    size: int
    width: int
    height: int
    thumb_id: str
    thumb_width: int
    thumb_height: int
    blur_id: str
    blurhash: str | None
    description: str
    focus_x: float
    focus_y: float
    created_at: str
    post_id: int | None
    kind: str = "image"  # image | video | audio
    state: str = "ready"  # processing | ready | failed (video and audio are cleaned after the answer)
    error: str | None = None
    duration: float | None = None
    frame_rate: str | None = None

    @property
    def file_ids(self) -> list[str]:
        """The files it wrote ('' stands for none: audio without a picture, or still processing)."""
        return [name for name in (self.file_id, self.thumb_id, self.blur_id) if name]


async def insert_upload(conn: aiosqlite.Connection, upload: Upload) -> bool:
    """False when the id is taken (the caller picks another)."""
    cur = await conn.execute(f"INSERT INTO media_uploads ({_COLUMNS}) VALUES ({', '.join('?' * _FIELDS)})"
                             " ON CONFLICT (id) DO NOTHING", (
        upload.id, upload.actor_id, upload.file_id, upload.content_type, upload.size, upload.width, upload.height,
        upload.thumb_id, upload.thumb_width, upload.thumb_height, upload.blur_id, upload.blurhash,
        upload.description, upload.focus_x, upload.focus_y, upload.created_at, upload.post_id, upload.kind,
        upload.state, upload.error, upload.duration, upload.frame_rate))
    return cur.rowcount == 1


async def finish_processing(conn: aiosqlite.Connection, done: Upload) -> None:
    """A video or audio upload cleaned (state ready) or refused (state failed, with the error)."""
    await conn.execute(
        "UPDATE media_uploads SET file_id = ?, content_type = ?, size = ?, width = ?, height = ?, thumb_id = ?,"
        " thumb_width = ?, thumb_height = ?, blur_id = ?, blurhash = ?, kind = ?, state = ?, error = ?, duration = ?,"
        " frame_rate = ? WHERE id = ? AND state = 'processing'",
        (done.file_id, done.content_type, done.size, done.width, done.height, done.thumb_id, done.thumb_width,
         done.thumb_height, done.blur_id, done.blurhash, done.kind, done.state, done.error, done.duration,
         done.frame_rate, done.id))


async def get_upload(conn: aiosqlite.Connection, upload_id: int) -> Upload | None:
    row = await fetch_one(conn, f"SELECT {_COLUMNS} FROM media_uploads WHERE id = ?", (upload_id,))
    return Upload(*row) if row is not None else None


async def uploads_by_id(conn: aiosqlite.Connection, upload_ids: list[int]) -> dict[int, Upload]:
    if not upload_ids:
        return {}
    marks = ", ".join("?" for _ in upload_ids)
    rows = await fetch_all(conn, f"SELECT {_COLUMNS} FROM media_uploads WHERE id IN ({marks})", upload_ids)
    return {row[0]: Upload(*row) for row in rows}


async def set_description(conn: aiosqlite.Connection, upload_id: int, description: str,
                          focus: tuple[float, float]) -> None:
    await conn.execute("UPDATE media_uploads SET description = ?, focus_x = ?, focus_y = ? WHERE id = ?",
                       (description, focus[0], focus[1], upload_id))


async def attach(conn: aiosqlite.Connection, actor_id: int, upload_ids: list[int], post_id: int) -> bool:
    """Mark the uploads as the post's, all or none: False when any is not the actor's or is already
    attached (checked in the same statement, so two posts racing for one upload cannot both win)."""
    if not upload_ids:
        return True
    marks = ", ".join("?" for _ in upload_ids)
    cur = await conn.execute(f"UPDATE media_uploads SET post_id = ? WHERE actor_id = ? AND post_id IS NULL"
                             f" AND id IN ({marks})", (post_id, actor_id, *upload_ids))
    return cur.rowcount == len(set(upload_ids))


async def unattached_before(conn: aiosqlite.Connection, cutoff: str, limit: int = 500) -> list[Upload]:
    rows = await fetch_all(conn, f"SELECT {_COLUMNS} FROM media_uploads WHERE post_id IS NULL AND created_at < ?"
                                 " ORDER BY created_at LIMIT ?", (cutoff, limit))
    return [Upload(*row) for row in rows]


async def delete_uploads(conn: aiosqlite.Connection, upload_ids: list[int]) -> None:
    """Only still-unattached ones: one attached meanwhile stays."""
    if upload_ids:
        marks = ", ".join("?" for _ in upload_ids)
        await conn.execute(f"DELETE FROM media_uploads WHERE post_id IS NULL AND id IN ({marks})", upload_ids)
