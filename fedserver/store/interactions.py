"""Likes, boosts (announces) and notifications."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import aiosqlite

from fedserver.clock import parse_time
from fedserver.store import push as push_store
from fedserver.store import stream_events
from fedserver.store.actors import Actor
from fedserver.store.rows import fetch_all, fetch_one, fetch_value, from_row


@dataclass
class Like:
    id: int
    uri: str
    actor_id: int
    post_id: int
    created_at: str


@dataclass
class Announce:
    id: int
    uri: str
    actor_id: int
    post_id: int
    published_at: str
    created_at: str


async def add_like(conn: aiosqlite.Connection, *, uri: str, actor_id: int, post_id: int, now: str) -> bool:
    """True when a new like was recorded (a repeated Like changes nothing)."""
    cur = await conn.execute(
        "INSERT INTO likes (uri, actor_id, post_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (uri, actor_id, post_id, now))
    return cur.rowcount > 0


async def get_like(conn: aiosqlite.Connection, actor_id: int, post_id: int) -> Like | None:
    row = await fetch_one(conn, "SELECT * FROM likes WHERE actor_id = ? AND post_id = ?", (actor_id, post_id))
    return from_row(Like, row)


async def get_like_by_uri(conn: aiosqlite.Connection, uri: str) -> Like | None:
    return from_row(Like, await fetch_one(conn, "SELECT * FROM likes WHERE uri = ?", (uri,)))


async def delete_like(conn: aiosqlite.Connection, like_id: int) -> bool:
    """False when it was gone already (another process removed it since it was read)."""
    cur = await conn.execute("DELETE FROM likes WHERE id = ?", (like_id,))
    return cur.rowcount > 0


async def count_likes(conn: aiosqlite.Connection, post_id: int) -> int:
    return int(await fetch_value(conn, "SELECT count(*) FROM likes WHERE post_id = ?", (post_id,)) or 0)


async def add_announce(conn: aiosqlite.Connection, *, announce_id: int, uri: str, actor_id: int, post_id: int,
                       published_at: str, now: str) -> bool:
    cur = await conn.execute(
        "INSERT INTO announces (id, uri, actor_id, post_id, published_at, created_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING", (announce_id, uri, actor_id, post_id, published_at, now))
    if cur.rowcount > 0:
        # Corpus records carry a post's boost count: mark the post changed for reconciliation.
        await conn.execute("UPDATE posts SET updated_at = ? WHERE id = ?", (now, post_id))
    return cur.rowcount > 0


async def get_announce(conn: aiosqlite.Connection, actor_id: int, post_id: int) -> Announce | None:
    row = await fetch_one(conn, "SELECT * FROM announces WHERE actor_id = ? AND post_id = ?", (actor_id, post_id))
    return from_row(Announce, row)


async def get_announce_by_uri(conn: aiosqlite.Connection, uri: str) -> Announce | None:
    return from_row(Announce, await fetch_one(conn, "SELECT * FROM announces WHERE uri = ?", (uri,)))


async def delete_announce(conn: aiosqlite.Connection, announce_id: int, now: str) -> bool:
    """False when it was gone already (another process removed it since it was read)."""
    await conn.execute("UPDATE posts SET updated_at = ? WHERE id = (SELECT post_id FROM announces WHERE id = ?)",
                       (now, announce_id))
    cur = await conn.execute("DELETE FROM announces WHERE id = ?", (announce_id,))
    return cur.rowcount > 0


async def count_announces(conn: aiosqlite.Connection, post_id: int) -> int:
    return int(await fetch_value(conn, "SELECT count(*) FROM announces WHERE post_id = ?", (post_id,)) or 0)


# Nobody is notified of what an account they blocked or muted does.
_INSERT_NOTIFICATION = ("INSERT INTO notifications (recipient_id, kind, shown_kind, from_actor_id, post_id, created_at,"
                        " group_key) SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS"
                        " (SELECT 1 FROM blocks WHERE actor_id = ? AND target_id = ?"
                        "  UNION ALL SELECT 1 FROM mutes WHERE actor_id = ? AND target_id = ?) RETURNING id")
# Kinds the first migration's CHECK does not list, stored as one it does plus shown_kind
# (migrations/0141_poll_notifications.sql).
_STORED_AS = {"poll": "mention"}
# What a notification is read as (the SELECT expression), for every reader of the table.
KIND_COLUMN = "coalesce(shown_kind, kind)"
# Likes and boosts of one post, and follows, within one slot of this many seconds are one group
# (Mastodon 4.3 groups within a 12-hour span too).
GROUP_SLOT_SECONDS = 12 * 3600
GROUPED_KINDS = ("like", "boost", "follow")


def group_key(kind: str, post_id: int | None, now: str) -> str | None:
    """The group a new notification joins, or None for kinds that are never grouped."""
    if kind not in GROUPED_KINDS:
        return None
    slot = int((parse_time(now) or 0) // GROUP_SLOT_SECONDS)
    return f"{kind}-{post_id}-{slot}" if kind != "follow" else f"follow-{slot}"


def _notification_params(recipient_id: int, kind: str, from_actor_id: int, post_id: int | None,
                         now: str) -> tuple:
    stored = _STORED_AS.get(kind, kind)
    return (recipient_id, stored, kind if stored != kind else None, from_actor_id, post_id, now,
            group_key(kind, post_id, now), recipient_id, from_actor_id, recipient_id, from_actor_id)


# Every notification is announced to the streaming API (services/events.py) in the transaction that
# writes it, here where all notifications are written, so no caller can forget it.


async def add_notification(conn: aiosqlite.Connection, *, recipient_id: int, kind: str, from_actor_id: int,
                           post_id: int | None, now: str) -> int | None:
    """The new notification's id, or None when the recipient blocked or muted the sender."""
    row = await fetch_one(conn, _INSERT_NOTIFICATION, _notification_params(recipient_id, kind, from_actor_id, post_id, now))
    if row is None:
        return None
    notification_id = int(row[0])
    # Its Web Push messages (due at once: 0) and its stream event, in the same transaction.
    await push_store.enqueue_pushes(conn, notification_id=notification_id, recipient_id=recipient_id,
                                    due_ms=0, now=now)
    await stream_events.add(conn, kind="notification", subject_id=notification_id, sort_id=notification_id,
                            actor_id=recipient_id, now=now)
    return notification_id


def add_notification_sync(conn: sqlite3.Connection, *, recipient_id: int, kind: str, from_actor_id: int,
                          post_id: int | None, now: str) -> int | None:
    """add_notification, synchronous: for Database.write_batch."""
    row = conn.execute(_INSERT_NOTIFICATION, _notification_params(recipient_id, kind, from_actor_id, post_id, now)).fetchone()
    if row is None:
        return None
    notification_id = int(row[0])
    push_store.enqueue_pushes_sync(conn, notification_id=notification_id, recipient_id=recipient_id,
                                   due_ms=0, now=now)
    stream_events.add_sync(conn, kind="notification", subject_id=notification_id, sort_id=notification_id,
                           actor_id=recipient_id, now=now)
    return notification_id


async def delete_notifications_from(conn: aiosqlite.Connection, recipient_id: int, from_actor_id: int) -> None:
    await conn.execute("DELETE FROM notifications WHERE recipient_id = ? AND from_actor_id = ?",
                       (recipient_id, from_actor_id))


async def list_notifications(conn: aiosqlite.Connection, recipient_id: int, *, max_id: int | None = None,
                             limit: int = 40) -> list[dict]:
    rows = await fetch_all(
        conn, "SELECT n.id, coalesce(n.shown_kind, n.kind) AS kind, n.post_id, n.created_at, n.read_at, a.uri AS from_uri,"
              " a.username AS from_username, a.domain AS from_domain, a.display_name AS from_display_name"
              " FROM notifications n JOIN actors a ON a.id = n.from_actor_id"
              " WHERE n.recipient_id = ? AND n.id < ? ORDER BY n.id DESC LIMIT ?",
        (recipient_id, max_id if max_id is not None else 2**62, limit))
    return [dict(row) for row in rows]


async def count_unread_notifications(conn: aiosqlite.Connection, recipient_id: int) -> int:
    return int(await fetch_value(conn, "SELECT count(*) FROM notifications WHERE recipient_id = ? AND read_at IS NULL",
                                 (recipient_id,)) or 0)


async def mark_notifications_read(conn: aiosqlite.Connection, recipient_id: int, now: str) -> None:
    await conn.execute("UPDATE notifications SET read_at = ? WHERE recipient_id = ? AND read_at IS NULL",
                       (now, recipient_id))


async def delete_notification(conn: aiosqlite.Connection, recipient_id: int, notification_id: int) -> bool:
    cur = await conn.execute("DELETE FROM notifications WHERE id = ? AND recipient_id = ?",
                             (notification_id, recipient_id))
    return cur.rowcount > 0


async def delete_notification_group(conn: aiosqlite.Connection, recipient_id: int, group_key: str) -> int:
    cur = await conn.execute("DELETE FROM notifications WHERE recipient_id = ? AND group_key = ?",
                             (recipient_id, group_key))
    return cur.rowcount


async def delete_notifications_of(conn: aiosqlite.Connection, recipient_id: int) -> None:
    await conn.execute("DELETE FROM notifications WHERE recipient_id = ?", (recipient_id,))


async def interactors_before(conn: aiosqlite.Connection, post_id: int, *, boosts: bool, max_id: int | None,
                             limit: int) -> list[tuple[int, Actor]]:
    """(like or boost id, the account) of a post's likes or boosts, newest first, below max_id:
    the client API's favourited_by and reblogged_by."""
    table = "announces" if boosts else "likes"
    rows = await fetch_all(
        conn, f"SELECT x.id AS x_id, a.* FROM {table} x JOIN actors a ON a.id = x.actor_id"
              f" WHERE x.post_id = ? AND x.id < ? ORDER BY x.id DESC LIMIT ?",
        (post_id, max_id if max_id is not None else 2**62, limit))
    result = []
    for row in rows:
        actor = from_row(Actor, row)
        assert actor is not None
        result.append((row["x_id"], actor))
    return result
