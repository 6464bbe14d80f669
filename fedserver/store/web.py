"""Web sessions, invites and uploaded media, and the instance settings every page
shows."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import aiosqlite

from fedserver.store.actors import Actor, LocalAccount
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


async def get_session_account(conn: aiosqlite.Connection, token_hash: str, now: str
                              ) -> tuple[WebSession, Actor, LocalAccount] | None:
    """The live session with its local account and actor, in one query: every signed-in page
    starts with this lookup. The session's and the account's own columns are renamed so that
    `a.*` alone fills the Actor."""
    row = await fetch_one(
        conn, "SELECT s.token_hash AS s_token_hash, s.csrf_token AS s_csrf_token, s.created_at AS s_created_at,"
              " s.expires_at AS s_expires_at, s.user_agent AS s_user_agent, l.username AS l_username,"
              " l.private_key_pem AS l_private_key_pem, l.password_hash AS l_password_hash,"
              " l.is_admin AS l_is_admin, l.is_instance_actor AS l_is_instance_actor, l.created_at AS l_created_at, a.*"
              " FROM web_sessions s JOIN actors a ON a.id = s.actor_id"
              " JOIN local_accounts l ON l.actor_id = s.actor_id"
              " WHERE s.token_hash = ? AND s.expires_at > ?", (token_hash, now))
    if row is None:
        return None
    actor = from_row(Actor, row)
    assert actor is not None
    session = WebSession(token_hash=row["s_token_hash"], actor_id=actor.id, csrf_token=row["s_csrf_token"],
                         created_at=row["s_created_at"], expires_at=row["s_expires_at"],
                         user_agent=row["s_user_agent"])
    account = LocalAccount(actor_id=actor.id, username=row["l_username"], private_key_pem=row["l_private_key_pem"],
                           password_hash=row["l_password_hash"], is_admin=row["l_is_admin"],
                           is_instance_actor=row["l_is_instance_actor"], created_at=row["l_created_at"])
    return session, actor, account


async def delete_session(conn: aiosqlite.Connection, token_hash: str) -> None:
    await conn.execute("DELETE FROM web_sessions WHERE token_hash = ?", (token_hash,))


async def delete_sessions_of(conn: aiosqlite.Connection, actor_id: int, *, except_hash: str | None = None) -> None:
    await conn.execute("DELETE FROM web_sessions WHERE actor_id = ? AND token_hash != ?",
                       (actor_id, except_hash or ""))


async def set_password_hash(conn: aiosqlite.Connection, actor_id: int, password_hash: str) -> None:
    await conn.execute("UPDATE local_accounts SET password_hash = ? WHERE actor_id = ?", (password_hash, actor_id))


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


async def delete_media(conn: aiosqlite.Connection, media_ids: list[str]) -> None:
    if media_ids:
        await conn.execute(f"DELETE FROM media WHERE id IN ({', '.join('?' for _ in media_ids)})", media_ids)


async def get_media(conn: aiosqlite.Connection, media_id: str) -> dict | None:
    row = await fetch_one(conn, "SELECT * FROM media WHERE id = ?", (media_id,))
    return dict(row) if row else None


async def get_instance_settings(conn: aiosqlite.Connection, keys: Sequence[str]) -> dict[str, str]:
    """Several instance_state values in one read (store.corpus.get_state reads one): every page
    shows the instance's name and sign-up mode. Keys without a row are left out."""
    if not keys:
        return {}
    marks = ", ".join("?" for _ in keys)
    rows = await fetch_all(conn, f"SELECT key, value FROM instance_state WHERE key IN ({marks})", tuple(keys))
    return {row[0]: row[1] for row in rows}
