"""Turning result rows into dataclasses, shared by the store modules."""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Iterable, TypeVar

import aiosqlite

T = TypeVar("T")

_FIELD_CACHE: dict[type, tuple[str, ...]] = {}
# (class, the row's column names) -> (field name, column position) for each field the row has. A
# row looked up by name scans its columns each time (sqlite3.Row compares every name): ~6 µs for a
# post, 40+ rows a page. The statements are fixed, so the plans are few; bounded all the same.
_PLAN_CACHE: dict[tuple[type, tuple[str, ...]], tuple[tuple[str, int], ...]] = {}
_PLAN_CACHE_MAX = 1000


def from_row(cls: type[T], row: aiosqlite.Row | None) -> T | None:
    if row is None:
        return None
    keys = tuple(row.keys())
    plan = _PLAN_CACHE.get((cls, keys))
    if plan is None:
        names = _FIELD_CACHE.get(cls)
        if names is None:
            names = _FIELD_CACHE[cls] = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
        position: dict[str, int] = {}
        for index, key in enumerate(keys):
            position.setdefault(key, index)  # the first column of a name, as a lookup by name finds
        plan = tuple((name, position[name]) for name in names if name in position)
        if len(_PLAN_CACHE) >= _PLAN_CACHE_MAX:
            _PLAN_CACHE.clear()
        _PLAN_CACHE[(cls, keys)] = plan
    return cls(**{name: row[index] for name, index in plan})


def from_rows(cls: type[T], rows: Iterable[aiosqlite.Row]) -> list[T]:
    return [from_row(cls, row) for row in rows]  # type: ignore[misc]


# One round trip to the connection's thread per read: execute_fetchall runs the statement and reads
# its rows in a single hop, where `async with conn.execute(...) as cur: await cur.fetchone()` costs
# three (execute, fetch, close): 116 -> 27 us per read (bench/RESULTS.md, micro_db). fetch_one reads
# the whole result, so it is for queries that match one row (a key) or say LIMIT 1.

async def fetch_one(conn: aiosqlite.Connection, sql: str, params: Any = ()) -> aiosqlite.Row | None:
    rows = await conn.execute_fetchall(sql, params)
    return next(iter(rows), None)


async def fetch_all(conn: aiosqlite.Connection, sql: str, params: Any = ()) -> list[aiosqlite.Row]:
    rows = await conn.execute_fetchall(sql, params)
    return rows if isinstance(rows, list) else list(rows)


async def fetch_value(conn: aiosqlite.Connection, sql: str, params: Any = ()) -> Any:
    row = await fetch_one(conn, sql, params)
    return None if row is None else row[0]


def engine(conn: object) -> str:
    """"sqlite" or "postgresql": which engine a connection the store is given talks to (for the
    few statements that have no portable form: full-text search, snapshots, data_version)."""
    return getattr(conn, "engine", "sqlite")


def skip_locked(conn: object) -> str:
    """The clause that ends a queue claim's choice of rows: on PostgreSQL ` FOR UPDATE SKIP LOCKED`
    (rows another claim is taking right now are passed over, not waited for, and cannot be leased
    twice); nothing on SQLite, whose write transactions run one at a time (store/claims.py)."""
    return " FOR UPDATE SKIP LOCKED" if engine(conn) == "postgresql" else ""


async def data_version(conn: aiosqlite.Connection) -> int:
    """SQLite's PRAGMA data_version: changes when another connection (another process, or this
    process's writer seen from the reader) commits. A cheap "anything new?" for the idle worker.
    PostgreSQL: the next transaction id to be assigned, which moves whenever anyone writes (a
    superset of commits: at worst a needless look at the queue)."""
    if engine(conn) == "postgresql":
        return int(await fetch_value(conn, "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint"))
    return int(await fetch_value(conn, "PRAGMA data_version"))
