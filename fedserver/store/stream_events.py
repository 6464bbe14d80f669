"""The stream_events table: compact rows that tell every serving process what happened (a post,
an edit, a deletion, a boost, a notification, a filter change), tailed by id: ids become visible
in id order on both engines (store/commit_order.py)."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import aiosqlite

from fedserver.store import commit_order
from fedserver.store.rows import fetch_all, fetch_one, from_rows

_INSERT = "INSERT INTO stream_events (kind, subject_id, sort_id, actor_id, created_at) VALUES (?, ?, ?, ?, ?)"


@dataclass(frozen=True)
class StreamEvent:
    id: int
    kind: str
    subject_id: int | None
    sort_id: int | None
    actor_id: int | None
    created_at: str


async def add(conn: aiosqlite.Connection, *, kind: str, subject_id: int | None, sort_id: int | None,
              actor_id: int | None, now: str) -> None:
    await commit_order.insert_last(conn, commit_order.STREAM_EVENTS, _INSERT, (kind, subject_id, sort_id, actor_id, now))


def add_sync(conn: sqlite3.Connection, *, kind: str, subject_id: int | None, sort_id: int | None,
             actor_id: int | None, now: str) -> None:
    """add, synchronous: for Database.write_batch."""
    commit_order.insert_last_sync(conn, commit_order.STREAM_EVENTS, _INSERT, (kind, subject_id, sort_id, actor_id, now))


async def after(conn: aiosqlite.Connection, last_id: int, limit: int) -> list[StreamEvent]:
    """The events written after last_id, oldest first."""
    rows = await fetch_all(conn, "SELECT id, kind, subject_id, sort_id, actor_id, created_at FROM stream_events"
                                 " WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit))
    return from_rows(StreamEvent, rows)


async def latest_id(conn: aiosqlite.Connection) -> int:
    row = await fetch_one(conn, "SELECT id FROM stream_events ORDER BY id DESC LIMIT 1", ())
    return int(row["id"]) if row is not None else 0


async def prune(conn: aiosqlite.Connection, before: str) -> int:
    """Delete the events older than `before`, always keeping the newest: SQLite numbers a row
    max(id) + 1, so an emptied table would start again at 1, below where every process reads from."""
    cur = await conn.execute("DELETE FROM stream_events WHERE created_at < ?"
                             " AND id < (SELECT max(id) FROM stream_events)", (before,))
    return cur.rowcount
