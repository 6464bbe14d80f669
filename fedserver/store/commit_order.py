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
a number the server has handed out, which it cannot take back. What the lock costs: writers of
one table in different processes take turns between their insert and their commit (within a
process, writes already take turns: db.WriteLock); the inserts come late in their transactions."""
from __future__ import annotations

import sqlite3

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
