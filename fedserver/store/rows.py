"""Turning result rows into dataclasses, shared by the store modules."""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Iterable, TypeVar

import aiosqlite

T = TypeVar("T")

_FIELD_CACHE: dict[type, tuple[str, ...]] = {}


def from_row(cls: type[T], row: aiosqlite.Row | None) -> T | None:
    if row is None:
        return None
    names = _FIELD_CACHE.get(cls)
    if names is None:
        names = _FIELD_CACHE[cls] = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    keys = row.keys()
    return cls(**{name: row[name] for name in names if name in keys})


def from_rows(cls: type[T], rows: Iterable[aiosqlite.Row]) -> list[T]:
    return [from_row(cls, row) for row in rows]  # type: ignore[misc]


async def fetch_one(conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...] = ()) -> aiosqlite.Row | None:
    async with conn.execute(sql, params) as cur:
        return await cur.fetchone()


async def fetch_all(conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[aiosqlite.Row]:
    async with conn.execute(sql, params) as cur:
        return list(await cur.fetchall())


async def fetch_value(conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = await fetch_one(conn, sql, params)
    return None if row is None else row[0]
