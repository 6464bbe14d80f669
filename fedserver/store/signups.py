"""Sign-ups waiting for approval: one row per requested username until an admin approves or
rejects it."""
from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from fedserver.store.rows import fetch_all, fetch_one, fetch_value, from_row, from_rows


@dataclass
class PendingSignup:
    username: str
    password_hash: str
    reason: str
    created_at: str


async def insert_pending(conn: aiosqlite.Connection, *, username: str, password_hash: str, reason: str,
                         now: str) -> bool:
    """False when the name is already waiting (two sign-ups racing for it)."""
    cur = await conn.execute(
        "INSERT INTO pending_signups (username, password_hash, reason, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (username) DO NOTHING", (username.lower(), password_hash, reason, now))
    return cur.rowcount > 0


async def get_pending(conn: aiosqlite.Connection, username: str) -> PendingSignup | None:
    row = await fetch_one(conn, "SELECT * FROM pending_signups WHERE username = ?", (username.lower(),))
    return from_row(PendingSignup, row)


async def list_pending(conn: aiosqlite.Connection) -> list[PendingSignup]:
    rows = await fetch_all(conn, "SELECT * FROM pending_signups ORDER BY created_at, username")
    return from_rows(PendingSignup, rows)


async def delete_pending(conn: aiosqlite.Connection, username: str) -> bool:
    """False when there was no such pending sign-up (already approved or rejected)."""
    cur = await conn.execute("DELETE FROM pending_signups WHERE username = ?", (username.lower(),))
    return cur.rowcount > 0


async def count_pending(conn: aiosqlite.Connection) -> int:
    return int(await fetch_value(conn, "SELECT count(*) FROM pending_signups") or 0)
