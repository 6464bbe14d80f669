"""Idempotency keys of the client API's creates: (account, key) -> the post the first request made."""
from __future__ import annotations

import aiosqlite

from fedserver.store.rows import fetch_value


async def post_for_key(conn: aiosqlite.Connection, account_id: int, key: str, *, since_ms: int) -> int | None:
    value = await fetch_value(conn, "SELECT post_id FROM api_idempotency_keys WHERE account_id = ?"
                                    " AND idempotency_key = ? AND created_at_ms > ?", (account_id, key, since_ms))
    return None if value is None else int(value)


async def remember(conn: aiosqlite.Connection, account_id: int, key: str, post_id: int, *, now_ms: int,
                   forget_before_ms: int) -> None:
    """Remember the key's post (a later key of the same value, after the first expired, replaces
    it), and forget keys older than forget_before_ms."""
    await conn.execute("DELETE FROM api_idempotency_keys WHERE created_at_ms <= ?", (forget_before_ms,))
    await conn.execute(
        "INSERT INTO api_idempotency_keys (account_id, idempotency_key, post_id, created_at_ms) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (account_id, idempotency_key) DO UPDATE SET post_id = excluded.post_id,"
        " created_at_ms = excluded.created_at_ms", (account_id, key, post_id, now_ms))
