"""Actors (local and remote) and local accounts."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

import aiosqlite

from fedserver.store import remote_media
from fedserver.store.rows import fetch_all, fetch_one, fetch_value, from_row, from_rows


@dataclass
class Actor:
    id: int
    uri: str
    username: str
    domain: str
    is_local: int
    actor_type: str
    display_name: str
    summary_html: str
    url: str | None
    inbox_url: str | None
    shared_inbox_url: str | None
    outbox_url: str | None
    followers_url: str | None
    following_url: str | None
    featured_url: str | None
    icon_url: str | None
    icon_media_type: str | None
    key_id: str | None
    public_key_pem: str | None
    manually_approves_followers: int
    discoverable: int
    indexable: int
    raw_json: str | None
    created_at: str
    updated_at: str
    fetched_at: str | None
    deleted_at: str | None
    suspended_at: str | None
    # Account migration: the account it moved to (its movedTo), and when we last carried out a Move.
    moved_to_uri: str | None = None
    moved_at: str | None = None
    # A local account's aliases (JSON list of actor ids), published as alsoKnownAs.
    also_known_as: str = "[]"
    # An admin silenced the account (migration 0020): out of public timelines, shown to followers.
    silenced_at: str | None = None
    # Profile fields (migration 0073): JSON list of {"name", "value" (sanitized HTML), "source",
    # "verified_at"}; see services.profile_fields.
    fields_json: str = "[]"
    # The profile's header picture (its `image`, migration 0052).
    image_url: str | None = None
    image_media_type: str | None = None
    # A remote account's custom emoji (migration 0142): JSON list of [shortcode, picture URL].
    emojis_json: str = "[]"

    @property
    def emojis(self) -> list[tuple[str, str]]:
        try:
            found = json.loads(self.emojis_json or "[]")
        except ValueError:
            return []
        return [(str(item[0]), str(item[1])) for item in found if isinstance(item, list) and len(item) == 2] \
            if isinstance(found, list) else []

    @property
    def aliases(self) -> list[str]:
        return json.loads(self.also_known_as or "[]")

    @property
    def fields(self) -> list[dict]:
        try:
            fields = json.loads(self.fields_json or "[]")
        except ValueError:
            return []
        return fields if isinstance(fields, list) else []

    @property
    def handle(self) -> str:
        return f"@{self.username}@{self.domain}"

    @property
    def preferred_inbox(self) -> str | None:
        """Mastodon delivers to the shared inbox when there is one (preferred_inbox_url)."""
        return self.shared_inbox_url or self.inbox_url

    @property
    def is_gone(self) -> bool:
        return self.deleted_at is not None or self.suspended_at is not None


@dataclass
class LocalAccount:
    actor_id: int
    username: str
    private_key_pem: str
    password_hash: str | None
    is_admin: int
    is_instance_actor: int
    created_at: str


# Columns a remote actor document may set (see activitypub.actors.ActorFields).
ACTOR_PROFILE_COLUMNS = (
    "username", "domain", "actor_type", "display_name", "summary_html", "url", "inbox_url",
    "shared_inbox_url", "outbox_url", "followers_url", "following_url", "featured_url", "icon_url",
    "icon_media_type", "key_id", "public_key_pem", "manually_approves_followers", "discoverable",
    "indexable", "raw_json", "moved_to_uri", "fields_json", "image_url", "image_media_type", "emojis_json",
)


def _checked_profile(profile: dict[str, object]) -> None:
    unknown = set(profile) - set(ACTOR_PROFILE_COLUMNS)
    if unknown:
        raise ValueError(f"unknown actor columns {unknown}")


# Each statement is built once here and run by both the async functions (aiosqlite) and their
# synchronous twins (a plain sqlite3 connection inside Database.write_batch).

_ACTOR_ID_BY_URI = "SELECT id FROM actors WHERE uri = ?"


def _insert_statement(*, uri: str, is_local: bool, now: str, fetched_at: str | None,
                      profile: dict[str, object]) -> tuple[str, tuple]:
    _checked_profile(profile)
    columns = ["uri", "is_local", "created_at", "updated_at", "fetched_at", *profile]
    values = [uri, int(is_local), now, now, fetched_at, *profile.values()]
    placeholders = ", ".join("?" for _ in columns)
    return f"INSERT INTO actors ({', '.join(columns)}) VALUES ({placeholders})", tuple(values)


def _update_statement(actor_id: int, *, now: str, fetched_at: str | None,
                      profile: dict[str, object]) -> tuple[str, tuple]:
    _checked_profile(profile)
    assignments = [f"{name} = ?" for name in profile] + ["updated_at = ?"]
    values: list[object] = [*profile.values(), now]
    if fetched_at is not None:
        assignments.append("fetched_at = ?")
        values.append(fetched_at)
    values.append(actor_id)
    return f"UPDATE actors SET {', '.join(assignments)} WHERE id = ?", tuple(values)


def _upsert_statement(*, uri: str, now: str, profile: dict[str, object]) -> tuple[str, tuple]:
    """A remote actor's row written whether or not it exists, in one statement: two processes
    storing the same newly fetched actor at once (its first activities reaching two web processes)
    each get its id, where "look it up, insert if missing" made the second fail on the unique uri
    on PostgreSQL. The same columns as _update_statement when it exists."""
    insert, values = _insert_statement(uri=uri, is_local=False, now=now, fetched_at=now, profile=profile)
    assignments = ", ".join(f"{name} = excluded.{name}" for name in (*profile, "updated_at", "fetched_at"))
    return f"{insert} ON CONFLICT (uri) DO UPDATE SET {assignments} RETURNING id", values


async def insert_actor(conn: aiosqlite.Connection, *, uri: str, is_local: bool, now: str,
                       fetched_at: str | None, **profile: object) -> int:
    cur = await conn.execute(*_insert_statement(uri=uri, is_local=is_local, now=now, fetched_at=fetched_at,
                                                profile=profile))
    return int(cur.lastrowid)


async def update_actor_profile(conn: aiosqlite.Connection, actor_id: int, *, now: str,
                               fetched_at: str | None = None, **profile: object) -> None:
    await conn.execute(*_update_statement(actor_id, now=now, fetched_at=fetched_at, profile=profile))


async def upsert_remote_actor(conn: aiosqlite.Connection, *, uri: str, now: str, **profile: object) -> int:
    await remote_media.note_urls(conn, _pictures(profile), state=remote_media.ABSENT, now=now)
    return int(await fetch_value(conn, *_upsert_statement(uri=uri, now=now, profile=profile)))


def _pictures(profile: dict[str, object]) -> list[tuple[str, str]]:
    """A remote actor's avatar and header for the media cache: pages show them from there, fetched
    on first view."""
    pictures = [(profile.get("icon_url"), "avatar"), (profile.get("image_url"), "header")]
    # Its custom emoji too (Account.emojis shows them from the cache).
    try:
        pictures += [(item[1], "emoji") for item in json.loads(str(profile.get("emojis_json") or "[]"))]
    except (ValueError, IndexError, TypeError):
        pass
    return [(url, purpose) for url, purpose in pictures if isinstance(url, str) and url]


def actor_id_by_uri_sync(conn: sqlite3.Connection, uri: str) -> int | None:
    """The id of the actor with this uri. Synchronous: for Database.write_batch."""
    row = conn.execute(_ACTOR_ID_BY_URI, (uri,)).fetchone()
    return None if row is None else int(row[0])


def upsert_remote_actor_sync(conn: sqlite3.Connection, *, uri: str, now: str, existing: int | None,
                             profile: dict[str, object]) -> int:
    """upsert_remote_actor for Database.write_batch, the caller having looked up `existing`
    (actor_id_by_uri_sync) in the same transaction."""
    remote_media.note_urls_sync(conn, _pictures(profile), state=remote_media.ABSENT, now=now)
    if existing is None:
        # (Stored by another process since the look-up: written over, as a refresh would.)
        return int(conn.execute(*_upsert_statement(uri=uri, now=now, profile=profile)).fetchone()[0])
    conn.execute(*_update_statement(existing, now=now, fetched_at=now, profile=profile))
    return existing


def get_actors_by_ids_sync(conn: sqlite3.Connection, actor_ids: list[int]) -> dict[int, Actor]:
    """These actors by id (at most 999 at once). Synchronous: for Database.write_batch."""
    if not actor_ids:
        return {}
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    rows = cur.execute(f"SELECT * FROM actors WHERE id IN ({', '.join('?' for _ in actor_ids)})",
                       tuple(actor_ids)).fetchall()
    actors = from_rows(Actor, rows)
    return {actor.id: actor for actor in actors}


async def set_aliases(conn: aiosqlite.Connection, actor_id: int, aliases: list[str], now: str) -> None:
    await conn.execute("UPDATE actors SET also_known_as = ?, updated_at = ? WHERE id = ?",
                       (json.dumps(aliases), now, actor_id))


async def set_moved(conn: aiosqlite.Connection, actor_id: int, *, target_uri: str, now: str) -> None:
    """A verified Move of this actor to target_uri was carried out now."""
    await conn.execute("UPDATE actors SET moved_to_uri = ?, moved_at = ?, updated_at = ? WHERE id = ?",
                       (target_uri, now, now, actor_id))


async def mark_actor_deleted(conn: aiosqlite.Connection, actor_id: int, now: str) -> None:
    await conn.execute("UPDATE actors SET deleted_at = COALESCE(deleted_at, ?), updated_at = ? WHERE id = ?",
                       (now, now, actor_id))


async def get_actor(conn: aiosqlite.Connection, actor_id: int) -> Actor | None:
    return from_row(Actor, await fetch_one(conn, "SELECT * FROM actors WHERE id = ?", (actor_id,)))


async def get_actor_by_uri(conn: aiosqlite.Connection, uri: str) -> Actor | None:
    return from_row(Actor, await fetch_one(conn, "SELECT * FROM actors WHERE uri = ?", (uri,)))


async def get_actor_by_key_id(conn: aiosqlite.Connection, key_id: str) -> Actor | None:
    """The actor publishing key_id; when several claim it, the one whose id is the key id without
    its fragment wins (how Mastodon finds the owner)."""
    row = await fetch_one(conn, "SELECT * FROM actors WHERE key_id = ? ORDER BY uri = ? DESC, id LIMIT 1",
                          (key_id, key_id.split("#", 1)[0]))
    return from_row(Actor, row)


async def get_actor_by_handle(conn: aiosqlite.Connection, username: str, domain: str) -> Actor | None:
    row = await fetch_one(
        conn, "SELECT * FROM actors WHERE lower(username) = lower(?) AND domain = ? AND deleted_at IS NULL"
              " ORDER BY is_local DESC, id LIMIT 1", (username, domain))
    return from_row(Actor, row)


async def get_actors_by_uris(conn: aiosqlite.Connection, uris: list[str]) -> list[Actor]:
    if not uris:
        return []
    placeholders = ", ".join("?" for _ in uris)
    return from_rows(Actor, await fetch_all(conn, f"SELECT * FROM actors WHERE uri IN ({placeholders})", tuple(uris)))


async def insert_local_account(conn: aiosqlite.Connection, *, actor_id: int, username: str,
                               private_key_pem: str, password_hash: str | None, is_admin: bool,
                               is_instance_actor: bool, now: str) -> None:
    await conn.execute(
        "INSERT INTO local_accounts (actor_id, username, private_key_pem, password_hash, is_admin,"
        " is_instance_actor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (actor_id, username.lower(), private_key_pem, password_hash, int(is_admin), int(is_instance_actor), now))


async def get_local_account(conn: aiosqlite.Connection, username: str) -> LocalAccount | None:
    row = await fetch_one(conn, "SELECT * FROM local_accounts WHERE username = ?", (username.lower(),))
    return from_row(LocalAccount, row)


async def get_local_account_by_actor(conn: aiosqlite.Connection, actor_id: int) -> LocalAccount | None:
    row = await fetch_one(conn, "SELECT * FROM local_accounts WHERE actor_id = ?", (actor_id,))
    return from_row(LocalAccount, row)


async def get_local_actor(conn: aiosqlite.Connection, username: str) -> Actor | None:
    row = await fetch_one(
        conn, "SELECT a.* FROM actors a JOIN local_accounts l ON l.actor_id = a.id"
              " WHERE l.username = ? AND l.is_instance_actor = 0", (username.lower(),))
    return from_row(Actor, row)


async def get_instance_actor(conn: aiosqlite.Connection) -> tuple[Actor, LocalAccount] | None:
    row = await fetch_one(
        conn, "SELECT a.* FROM actors a JOIN local_accounts l ON l.actor_id = a.id WHERE l.is_instance_actor = 1")
    actor = from_row(Actor, row)
    if actor is None:
        return None
    account = await get_local_account_by_actor(conn, actor.id)
    assert account is not None
    return actor, account


async def list_local_actors(conn: aiosqlite.Connection) -> list[tuple[Actor, LocalAccount]]:
    rows = await fetch_all(
        conn, "SELECT a.*, l.username AS l_username, l.private_key_pem, l.password_hash, l.is_admin,"
              " l.is_instance_actor, l.created_at AS l_created_at FROM actors a"
              " JOIN local_accounts l ON l.actor_id = a.id WHERE l.is_instance_actor = 0 ORDER BY a.id")
    result = []
    for row in rows:
        actor = from_row(Actor, row)
        assert actor is not None
        account = LocalAccount(actor_id=actor.id, username=row["l_username"], private_key_pem=row["private_key_pem"],
                               password_hash=row["password_hash"], is_admin=row["is_admin"],
                               is_instance_actor=row["is_instance_actor"], created_at=row["l_created_at"])
        result.append((actor, account))
    return result


async def count_local_users(conn: aiosqlite.Connection) -> int:
    return int(await fetch_value(
        conn, "SELECT count(*) FROM local_accounts l JOIN actors a ON a.id = l.actor_id"
              " WHERE l.is_instance_actor = 0 AND a.deleted_at IS NULL") or 0)


async def count_active_local_users(conn: aiosqlite.Connection, since_iso: str) -> int:
    """Local accounts that posted since the given time (NodeInfo activeMonth/activeHalfyear)."""
    return int(await fetch_value(
        conn, "SELECT count(DISTINCT p.actor_id) FROM posts p JOIN local_accounts l ON l.actor_id = p.actor_id"
              " WHERE p.published_at >= ? AND p.deleted_at IS NULL", (since_iso,)) or 0)


async def set_local_bio_source(conn: aiosqlite.Connection, actor_id: int, bio: str) -> None:
    await conn.execute("UPDATE local_accounts SET bio_source = ? WHERE actor_id = ?", (bio, actor_id))


async def get_local_bio_source(conn: aiosqlite.Connection, actor_id: int) -> str:
    return str(await fetch_value(conn, "SELECT bio_source FROM local_accounts WHERE actor_id = ?", (actor_id,)) or "")


async def list_all_local_accounts(conn: aiosqlite.Connection) -> list[dict]:
    """Admin view: every local account with its flags and post count."""
    rows = await fetch_all(
        conn, "SELECT a.id, a.username, a.uri, a.display_name, a.created_at, a.deleted_at, a.suspended_at,"
              " a.manually_approves_followers, l.is_admin,"
              " (SELECT count(*) FROM posts p WHERE p.actor_id = a.id AND p.deleted_at IS NULL) AS posts"
              " FROM actors a JOIN local_accounts l ON l.actor_id = a.id WHERE l.is_instance_actor = 0"
              " ORDER BY a.username")
    return [dict(row) for row in rows]


async def set_suspended(conn: aiosqlite.Connection, actor_id: int, suspended_at: str | None, now: str) -> None:
    await conn.execute("UPDATE actors SET suspended_at = ?, updated_at = ? WHERE id = ?", (suspended_at, now, actor_id))


async def set_admin(conn: aiosqlite.Connection, actor_id: int, admin: bool) -> None:
    await conn.execute("UPDATE local_accounts SET is_admin = ? WHERE actor_id = ?", (int(admin), actor_id))


async def set_silenced(conn: aiosqlite.Connection, actor_id: int, silenced_at: str | None, now: str) -> None:
    await conn.execute("UPDATE actors SET silenced_at = ?, updated_at = ? WHERE id = ?", (silenced_at, now, actor_id))


async def list_moderated_remote_actors(conn: aiosqlite.Connection) -> list[Actor]:
    """Remote accounts an admin suspended or silenced, for the admin page and `account list`."""
    rows = await fetch_all(conn, "SELECT * FROM actors WHERE is_local = 0"
                                 " AND (suspended_at IS NOT NULL OR silenced_at IS NOT NULL) ORDER BY domain, username")
    return from_rows(Actor, rows)


async def count_known_domains(conn: aiosqlite.Connection) -> int:
    """Other servers we hold accounts of (the client API's instance stats.domain_count)."""
    return int(await fetch_value(conn, "SELECT count(DISTINCT domain) FROM actors WHERE is_local = 0") or 0)
