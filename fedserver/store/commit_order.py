"""Ids in commit order for the tables that are tailed by id (stream_events by every serving
process's hub, corpus_changes by researchers' cursors): a reader that has moved past an id must
never see a smaller one appear later, or it misses that row for good (a removal a researcher
must apply, a post a stream must show).

SQLite has one writer at a time, so ids are visible in the order they are drawn. PostgreSQL draws
ids from a sequence at INSERT and transactions commit in any order: a transaction holding id 7
may commit after one holding id 8 has been read. On PostgreSQL the writer therefore takes a
transaction-scoped advisory lock per table before it inserts: the next writer waits until this
one has committed (the lock is released after the commit is visible) before drawing its id, so
ids become visible in id order. This was chosen over a tailer that re-reads a window behind its
cursor: that needs a bound on how long a transaction may stay open, and a researcher's cursor is
a number the server has handed out, which it cannot take back.

What the lock costs: writers of one table in different processes take turns from their insert to
their commit (within a process, writes already take turns: db.WriteLock). So that turn is short,
a stream event (whose id nobody reads back) is inserted last in its transaction, right before the
commit (insert_last: postgres.py at_commit), not where it is published: an inbox worker's batch
of Creates publishes an event per post and would otherwise hold the lock through the rest of the
batch. corpus_changes rows are written by the reconciler alone (a named lease), which needs each
seq at once."""
from __future__ import annotations

import sqlite3
from typing import Any

import aiosqlite

from fedserver.store.rows import engine

# Advisory lock keys (one 64-bit key each; any fixed numbers, distinct from db._MIGRATION_LOCK).
STREAM_EVENTS = 0x6673747265616D  # "fstream"
CORPUS_CHANGES = 0x66636F72707573  # "fcorpus"

_LOCK = "SELECT pg_advisory_xact_lock(?)"


async def before_insert(conn: aiosqlite.Connection, key: int) -> None:
    """Call in the writing transaction right before inserting into the table of `key`."""
    if engine(conn) == "postgresql":
        await conn.execute(_LOCK, (key,))


def before_insert_sync(conn: sqlite3.Connection, key: int) -> None:
    """before_insert, synchronous: for Database.write_batch."""
    if engine(conn) == "postgresql":
        conn.execute(_LOCK, (key,))


async def insert_last(conn: aiosqlite.Connection, key: int, sql: str, params: Any) -> None:
    """Insert a row whose id is not needed back, in commit order: on SQLite now; on PostgreSQL as
    the last statements of the transaction, under the lock of `key`."""
    if engine(conn) != "postgresql":
        await conn.execute(sql, params)
        return

    async def insert() -> None:
        await conn.execute(_LOCK, (key,))
        await conn.execute(sql, params)
    conn.at_commit(insert)  # type: ignore[attr-defined]


def insert_last_sync(conn: sqlite3.Connection, key: int, sql: str, params: Any) -> None:
    """insert_last, synchronous: for Database.write_batch."""
    if engine(conn) != "postgresql":
        conn.execute(sql, params)
        return

    def insert() -> None:
        conn.execute(_LOCK, (key,))
        conn.execute(sql, params)
    conn.at_commit(insert)  # type: ignore[attr-defined]
