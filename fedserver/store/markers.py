"""Read positions (markers) of the client API: one per person and timeline."""
from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from fedserver.store.rows import fetch_all, from_rows


@dataclass
class Marker:
    timeline: str
    last_read_id: str
    version: int
    updated_at: str


async def get_markers(conn: aiosqlite.Connection, actor_id: int, timelines: list[str]) -> list[Marker]:
    if not timelines:
        return []
    marks = ", ".join("?" for _ in timelines)
    rows = await fetch_all(conn, f"SELECT timeline, last_read_id, version, updated_at FROM markers"
                                 f" WHERE actor_id = ? AND timeline IN ({marks})", (actor_id, *timelines))
    return from_rows(Marker, rows)


async def set_marker(conn: aiosqlite.Connection, actor_id: int, timeline: str, last_read_id: str, now: str) -> None:
    await conn.execute(
        "INSERT INTO markers (actor_id, timeline, last_read_id, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (actor_id, timeline) DO UPDATE SET last_read_id = excluded.last_read_id,"
        " version = markers.version + 1, updated_at = excluded.updated_at", (actor_id, timeline, last_read_id, now))
