"""Consent choices and the append-only, hash-chained consent log."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import AsyncIterator

import aiosqlite

from fedserver.store.rows import engine, fetch_all, fetch_one, fetch_value, from_row, from_rows

GENESIS_HASH = "0" * 64
_HASHED_FIELDS = ("actor_id", "actor_uri", "purpose", "choice", "license", "scope", "include_unlisted",
                  "terms_version", "terms_hash", "source", "note", "created_at")


@dataclass
class ConsentEvent:
    id: int
    actor_id: int
    actor_uri: str
    purpose: str
    choice: str
    license: str | None
    scope: str | None
    include_unlisted: int
    terms_version: str | None
    terms_hash: str | None
    source: str
    note: str
    created_at: str
    prev_hash: str
    hash: str


@dataclass
class ConsentChoice:
    actor_id: int
    purpose: str
    choice: str
    license: str | None
    scope: str | None
    include_unlisted: int
    effective_from: str | None
    event_id: int
    updated_at: str


def event_hash(prev_hash: str, fields: dict[str, object]) -> str:
    """SHA-256 over the previous hash and the event's fields in a canonical JSON form."""
    canonical = json.dumps({"prev": prev_hash, **{k: fields[k] for k in _HASHED_FIELDS}},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def head_hash(conn: aiosqlite.Connection) -> str:
    value = await fetch_value(conn, "SELECT hash FROM consent_events ORDER BY id DESC LIMIT 1")
    return value or GENESIS_HASH


async def lock_log(conn: aiosqlite.Connection) -> None:
    """Hold the log for the rest of this transaction: no other transaction appends until it ends.
    SQLite's write transaction already excludes other writers; PostgreSQL's do not, and writers in
    other processes or machines must not chain to the same head (nor decide from a choice another
    is changing). Readers pass."""
    if engine(conn) == "postgresql":
        await conn.execute("LOCK TABLE consent_events IN EXCLUSIVE MODE")


async def append_event(conn: aiosqlite.Connection, **fields: object) -> ConsentEvent:
    """Append an event, chained to the current head. Must run inside a write transaction so that
    two writers cannot both chain to the same head."""
    fields = {k: fields.get(k) for k in _HASHED_FIELDS}
    fields["include_unlisted"] = int(bool(fields["include_unlisted"]))
    fields["note"] = fields["note"] or ""
    await lock_log(conn)
    prev = await head_hash(conn)
    digest = event_hash(prev, fields)
    cur = await conn.execute(
        f"INSERT INTO consent_events ({', '.join(_HASHED_FIELDS)}, prev_hash, hash)"
        f" VALUES ({', '.join('?' for _ in _HASHED_FIELDS)}, ?, ?)",
        (*[fields[k] for k in _HASHED_FIELDS], prev, digest))
    event = from_row(ConsentEvent, await fetch_one(conn, "SELECT * FROM consent_events WHERE id = ?",
                                                   (cur.lastrowid,)))
    assert event is not None
    return event


async def set_choice(conn: aiosqlite.Connection, *, actor_id: int, purpose: str, choice: str, license: str | None,
                     scope: str | None, include_unlisted: bool, effective_from: str | None, event_id: int,
                     now: str) -> None:
    await conn.execute(
        "INSERT INTO consent_choices (actor_id, purpose, choice, license, scope, include_unlisted, effective_from,"
        " event_id, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (actor_id, purpose) DO UPDATE SET"
        " choice = excluded.choice, license = excluded.license, scope = excluded.scope,"
        " include_unlisted = excluded.include_unlisted, effective_from = excluded.effective_from,"
        " event_id = excluded.event_id, updated_at = excluded.updated_at",
        (actor_id, purpose, choice, license, scope, int(include_unlisted), effective_from, event_id, now))


async def get_choice(conn: aiosqlite.Connection, actor_id: int, purpose: str) -> ConsentChoice | None:
    row = await fetch_one(conn, "SELECT * FROM consent_choices WHERE actor_id = ? AND purpose = ?",
                          (actor_id, purpose))
    return from_row(ConsentChoice, row)


async def list_events_of_actor(conn: aiosqlite.Connection, actor_id: int) -> list[ConsentEvent]:
    rows = await fetch_all(conn, "SELECT * FROM consent_events WHERE actor_id = ? ORDER BY id", (actor_id,))
    return from_rows(ConsentEvent, rows)


async def iter_all_events(conn: aiosqlite.Connection, batch: int = 1000) -> AsyncIterator[ConsentEvent]:
    last = 0
    while True:
        rows = await fetch_all(conn, "SELECT * FROM consent_events WHERE id > ? ORDER BY id LIMIT ?", (last, batch))
        if not rows:
            return
        for event in from_rows(ConsentEvent, rows):
            yield event
            last = event.id


async def get_event(conn: aiosqlite.Connection, event_id: int) -> ConsentEvent | None:
    return from_row(ConsentEvent, await fetch_one(conn, "SELECT * FROM consent_events WHERE id = ?", (event_id,)))


async def count_choices(conn: aiosqlite.Connection, purpose: str, choice: str) -> int:
    return int(await fetch_value(conn, "SELECT count(*) FROM consent_choices WHERE purpose = ? AND choice = ?",
                                 (purpose, choice)) or 0)
