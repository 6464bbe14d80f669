"""OAuth apps, authorization codes and access tokens of the client API (all secrets stored hashed)."""
from __future__ import annotations

import json
from dataclasses import dataclass

import aiosqlite

from fedserver.store.rows import fetch_all, fetch_one, from_row


@dataclass
class OAuthApp:
    id: int
    client_id: str
    client_secret_hash: str
    name: str
    website: str | None
    redirect_uris: str
    scopes: str  # as registered; "" when the app named none
    created_at: str

    @property
    def redirect_uri_list(self) -> list[str]:
        return json.loads(self.redirect_uris)

    @property
    def registered_scopes(self) -> tuple[str, ...]:
        """What the app registered, or Mastodon's default ("read") when it named none."""
        return tuple(self.scopes.split()) or ("read",)


@dataclass
class AuthorizationCode:
    code_hash: str
    app_id: int
    actor_id: int
    redirect_uri: str
    scopes: str
    code_challenge: str | None
    created_at: str
    expires_at: str
    used_at: str | None


@dataclass
class AccessToken:
    id: int
    token_hash: str
    app_id: int
    actor_id: int | None
    scopes: str
    code_hash: str | None
    created_at: str
    last_used_at: str | None


@dataclass
class AuthorizedApp:
    """One app a person has authorized: its scopes (union over its live tokens) and last use."""
    app_id: int
    name: str
    website: str | None
    scopes: str
    authorized_at: str
    last_used_at: str | None


async def insert_app(conn: aiosqlite.Connection, *, client_id: str, client_secret_hash: str, name: str,
                     website: str | None, redirect_uris: list[str], scopes: str, now: str) -> int:
    cur = await conn.execute(
        "INSERT INTO oauth_apps (client_id, client_secret_hash, name, website, redirect_uris, scopes, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (client_id, client_secret_hash, name, website, json.dumps(redirect_uris), scopes, now))
    assert cur.lastrowid is not None
    return cur.lastrowid


async def get_app_by_client_id(conn: aiosqlite.Connection, client_id: str) -> OAuthApp | None:
    return from_row(OAuthApp, await fetch_one(conn, "SELECT * FROM oauth_apps WHERE client_id = ?", (client_id,)))


async def get_app(conn: aiosqlite.Connection, app_id: int) -> OAuthApp | None:
    return from_row(OAuthApp, await fetch_one(conn, "SELECT * FROM oauth_apps WHERE id = ?", (app_id,)))


async def insert_code(conn: aiosqlite.Connection, *, code_hash: str, app_id: int, actor_id: int, redirect_uri: str,
                      scopes: str, code_challenge: str | None, now: str, expires_at: str) -> None:
    await conn.execute("DELETE FROM oauth_codes WHERE expires_at < ?", (now,))
    await conn.execute(
        "INSERT INTO oauth_codes (code_hash, app_id, actor_id, redirect_uri, scopes, code_challenge, created_at,"
        " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (code_hash, app_id, actor_id, redirect_uri, scopes, code_challenge, now, expires_at))


async def get_code(conn: aiosqlite.Connection, code_hash: str) -> AuthorizationCode | None:
    return from_row(AuthorizationCode,
                    await fetch_one(conn, "SELECT * FROM oauth_codes WHERE code_hash = ?", (code_hash,)))


async def mark_code_used(conn: aiosqlite.Connection, code_hash: str, now: str) -> bool:
    """Consume the code; False when it was already used (the UPDATE is the single-use guarantee)."""
    cur = await conn.execute("UPDATE oauth_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL",
                             (now, code_hash))
    return cur.rowcount == 1


async def insert_token(conn: aiosqlite.Connection, *, token_hash: str, app_id: int, actor_id: int | None,
                       scopes: str, code_hash: str | None, now: str) -> None:
    await conn.execute(
        "INSERT INTO oauth_tokens (token_hash, app_id, actor_id, scopes, code_hash, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)", (token_hash, app_id, actor_id, scopes, code_hash, now))


async def get_token(conn: aiosqlite.Connection, token_hash: str) -> AccessToken | None:
    return from_row(AccessToken, await fetch_one(conn, "SELECT * FROM oauth_tokens WHERE token_hash = ?",
                                                 (token_hash,)))


async def touch_token(conn: aiosqlite.Connection, token_id: int, now: str) -> None:
    await conn.execute("UPDATE oauth_tokens SET last_used_at = ? WHERE id = ?", (now, token_id))


async def delete_token(conn: aiosqlite.Connection, token_hash: str, app_id: int) -> bool:
    cur = await conn.execute("DELETE FROM oauth_tokens WHERE token_hash = ? AND app_id = ?", (token_hash, app_id))
    return cur.rowcount > 0


async def delete_tokens_of_code(conn: aiosqlite.Connection, code_hash: str) -> int:
    cur = await conn.execute("DELETE FROM oauth_tokens WHERE code_hash = ?", (code_hash,))
    return cur.rowcount


async def delete_tokens_of_app_for(conn: aiosqlite.Connection, actor_id: int, app_id: int) -> int:
    cur = await conn.execute("DELETE FROM oauth_tokens WHERE actor_id = ? AND app_id = ?", (actor_id, app_id))
    return cur.rowcount


async def list_authorized_apps(conn: aiosqlite.Connection, actor_id: int) -> list[AuthorizedApp]:
    # Grouped here rather than with group_concat (SQLite's; PostgreSQL has string_agg): one
    # person's tokens are few.
    rows = await fetch_all(
        conn, "SELECT a.id, a.name, a.website, t.scopes, t.created_at, t.last_used_at"
              " FROM oauth_tokens t JOIN oauth_apps a ON a.id = t.app_id WHERE t.actor_id = ? ORDER BY t.id",
        (actor_id,))
    apps: dict[int, AuthorizedApp] = {}
    for app_id, name, website, scopes, created_at, last_used_at in rows:
        app = apps.get(app_id)
        if app is None:
            apps[app_id] = AuthorizedApp(app_id, name, website, scopes, created_at, last_used_at)
            continue
        app.scopes = f"{app.scopes} {scopes}"
        app.authorized_at = min(app.authorized_at, created_at)
        if last_used_at is not None and (app.last_used_at is None or last_used_at > app.last_used_at):
            app.last_used_at = last_used_at
    return sorted(apps.values(), key=lambda app: app.authorized_at, reverse=True)
