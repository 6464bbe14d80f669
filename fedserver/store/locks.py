"""Locks that make a read-then-write transaction correct with several writing processes.

SQLite needs none: every write transaction starts with BEGIN IMMEDIATE, which excludes every other
writer in any process until it ends, so what a transaction reads stays true until it commits.
PostgreSQL runs writers in other processes and machines at once (READ COMMITTED): a transaction
that decides what to write from what it read ("not voted yet", "this post is live", "this name is
free") first takes a lock here, which every transaction deciding about the same thing takes too.
Held until the transaction ends; each later statement of the transaction sees everything committed
before the lock was granted (READ COMMITTED reads a new snapshot per statement)."""
from __future__ import annotations

import hashlib
import sqlite3

import aiosqlite

from fedserver.store.rows import engine


def _key(name: str) -> int:
    """A signed 64-bit advisory lock key for a name (the same in every process and machine)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


_ADVISORY = "SELECT pg_advisory_xact_lock(?)"


async def lock_name(conn: aiosqlite.Connection, name: str) -> None:
    """Serialise the transactions that decide about `name` (e.g. "account:alice") for what is left
    of this one: a transaction-scoped advisory lock on PostgreSQL, nothing on SQLite."""
    if engine(conn) == "postgresql":
        await conn.execute(_ADVISORY, (_key(name),))


# Rows are locked in the order of the first column selected (a key: an id, a tag): two transactions
# locking overlapping sets of rows then take them in the same order, and cannot deadlock on them.
# (PostgreSQL locks the rows as they leave the sort.) What still deadlocks (row locks taken by plain
# UPDATEs, in data order) is retried by the storage layer: fedserver/transaction_retry.py.
_IN_KEY_ORDER = " ORDER BY 1 FOR UPDATE"


async def lock_rows(conn: aiosqlite.Connection, select: str, params: tuple = ()) -> None:
    """Lock the rows `select` (a plain SELECT of one table, its first column a key, no ORDER BY)
    finds, in key order, for what is left of this transaction: SELECT ... FOR UPDATE on PostgreSQL
    (every UPDATE or DELETE of them, and every other lock_rows of them, waits), nothing on SQLite.
    A row that does not exist is not locked."""
    if engine(conn) == "postgresql":
        await conn.execute(select + _IN_KEY_ORDER, params)


def lock_rows_sync(conn: sqlite3.Connection, select: str, params: tuple = ()) -> None:
    """lock_rows, synchronous: for Database.write_batch."""
    if engine(conn) == "postgresql":
        conn.execute(select + _IN_KEY_ORDER, params)
