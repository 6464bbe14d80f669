"""Batched reads for applying many delivered activities in one write transaction: one query for a
whole batch of the inbox worker instead of one per activity (each read the worker made through
aiosqlite was a hop to the connection's thread). Synchronous: for Database.write_batch (except
followed_here_of, the same read through the reader before the transaction)."""
from __future__ import annotations

import sqlite3
from typing import Iterator, Sequence, TypeVar

import aiosqlite

T = TypeVar("T")

# Values per IN (...) list: SQLite before 3.32 allows 999 parameters per statement.
CHUNK = 500


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def tombstoned_among(conn: sqlite3.Connection, uris: Sequence[str]) -> set[str]:
    """Which of the object ids were deleted (store.posts.is_tombstoned for many)."""
    found: set[str] = set()
    for chunk in _chunks(list(dict.fromkeys(uris))):
        marks = ", ".join("?" for _ in chunk)
        found.update(row[0] for row in conn.execute(f"SELECT uri FROM tombstones WHERE uri IN ({marks})", chunk))
    return found


_FOLLOWED_HERE = ("SELECT DISTINCT f.followee_id FROM follows f JOIN local_accounts l ON l.actor_id = f.follower_id"
                  " WHERE f.followee_id IN ({marks}) AND f.state = 'accepted'")


def followed_here_among(conn: sqlite3.Connection, actor_ids: Sequence[int]) -> set[int]:
    """Which of the actors a local account follows, accepted follows only (the actors for whom
    store.follows.local_followers_of is not empty)."""
    found: set[int] = set()
    for chunk in _chunks(list(dict.fromkeys(actor_ids))):
        marks = ", ".join("?" for _ in chunk)
        found.update(row[0] for row in conn.execute(_FOLLOWED_HERE.format(marks=marks), chunk))
    return found


async def followed_here_of(reader: aiosqlite.Connection, actor_ids: Sequence[int]) -> set[int]:
    """followed_here_among through the reader, before a batch's transaction: the inbox worker
    decides from it which posts are worth parsing at all."""
    found: set[int] = set()
    for chunk in _chunks(list(dict.fromkeys(actor_ids))):
        marks = ", ".join("?" for _ in chunk)
        async with reader.execute(_FOLLOWED_HERE.format(marks=marks), chunk) as cursor:
            found.update(row[0] for row in await cursor.fetchall())
    return found
