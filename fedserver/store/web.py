"""Web sessions, sign-in failures, invites and uploaded media."""
from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from fedserver.store.rows import fetch_all, fetch_one, fetch_value, from_row


@dataclass
class WebSession:
    token_hash: str
    actor_id: int
    csrf_token: str
    created_at: str
    expires_at: str
    user_agent: str


async def insert_session(conn: aiosqlite.Connection, *, token_hash: str, actor_id: int, csrf_token: str,
                         now: str, expires_at: str, user_agent: str) -> None:
    await conn.execute(
        "INSERT INTO web_sessions (token_hash, actor_id, csrf_token, created_at, expires_at, user_agent)"
        " VALUES (?, ?, ?, ?, ?, ?)", (token_hash, actor_id, csrf_token, now, expires_at, user_agent[:300]))


async def get_session(conn: aiosqlite.Connection, token_hash: str, now: str) -> WebSession | None:
    row = await fetch_one(conn, "SELECT * FROM web_sessions WHERE token_hash = ? AND expires_at > ?",
                          (token_hash, now))
    return from_row(WebSession, row)


async def delete_session(conn: aiosqlite.Connection, token_hash: str) -> None:
    await conn.execute("DELETE FROM web_sessions WHERE token_hash = ?", (token_hash,))


async def delete_sessions_of(conn: aiosqlite.Connection, actor_id: int, *, except_hash: str | None = None) -> None:
    await conn.execute("DELETE FROM web_sessions WHERE actor_id = ? AND token_hash != ?",
                       (actor_id, except_hash or ""))


async def set_password_hash(conn: aiosqlite.Connection, actor_id: int, password_hash: str) -> None:
    await conn.execute("UPDATE local_accounts SET password_hash = ? WHERE actor_id = ?", (password_hash, actor_id))


async def record_login_failure(conn: aiosqlite.Connection, username: str, client: str, now_ms: int) -> None:
    await conn.execute("INSERT INTO login_failures (username, client, created_ms) VALUES (?, ?, ?)",
                       (username.lower(), client, now_ms))
    # Old rows only ever matter inside the throttling window.
    await conn.execute("DELETE FROM login_failures WHERE created_ms < ?", (now_ms - 86_400_000,))


async def count_login_failures(conn: aiosqlite.Connection, *, username: str, client: str,
                               since_ms: int) -> tuple[int, int]:
    by_user = await fetch_value(conn, "SELECT count(*) FROM login_failures WHERE username = ? AND created_ms >= ?",
                                (username.lower(), since_ms))
    by_client = await fetch_value(conn, "SELECT count(*) FROM login_failures WHERE client = ? AND created_ms >= ?",
                                  (client, since_ms))
    return int(by_user or 0), int(by_client or 0)


async def clear_login_failures(conn: aiosqlite.Connection, username: str) -> None:
    await conn.execute("DELETE FROM login_failures WHERE username = ?", (username.lower(),))


async def insert_invite(conn: aiosqlite.Connection, *, code: str, now: str, expires_at: str | None,
                        max_uses: int, created_by: str) -> None:
    await conn.execute("INSERT INTO invites (code, created_by, created_at, expires_at, max_uses) VALUES (?, ?, ?, ?, ?)",
                       (code, created_by, now, expires_at, max_uses))


async def use_invite(conn: aiosqlite.Connection, code: str, now: str) -> bool:
    """Consume one use of a valid invite; False when unknown, expired or used up."""
    cur = await conn.execute(
        "UPDATE invites SET uses = uses + 1 WHERE code = ? AND uses < max_uses"
        " AND (expires_at IS NULL OR expires_at > ?)", (code, now))
    return cur.rowcount > 0


async def list_invites(conn: aiosqlite.Connection) -> list[dict]:
    return [dict(row) for row in await fetch_all(conn, "SELECT * FROM invites ORDER BY created_at DESC")]


async def insert_media(conn: aiosqlite.Connection, *, media_id: str, actor_id: int, content_type: str, size: int,
                       sha256: str, now: str) -> None:
    await conn.execute("INSERT INTO media (id, actor_id, content_type, size, sha256, created_at)"
                       " VALUES (?, ?, ?, ?, ?, ?)", (media_id, actor_id, content_type, size, sha256, now))


async def get_media(conn: aiosqlite.Connection, media_id: str) -> dict | None:
    row = await fetch_one(conn, "SELECT * FROM media WHERE id = ?", (media_id,))
    return dict(row) if row else None
