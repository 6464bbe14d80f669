"""Web Push: the instance's VAPID key pair, push subscriptions (one per access token) and the
durable, leased queue of pushes (one row per notification and subscription)."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import aiosqlite

from fedserver.store.rows import fetch_all, fetch_one, fetch_value, from_row, skip_locked


@dataclass
class VapidKey:
    private_key_pem: str
    public_key: str


@dataclass
class PushSubscription:
    id: int
    token_id: int
    actor_id: int
    endpoint: str
    key_p256dh: str
    key_auth: str
    alerts: str
    policy: str
    standard: int
    created_at: str
    updated_at: str

    @property
    def alert_types(self) -> frozenset[str]:
        return frozenset(self.alerts.split())


@dataclass
class ClaimedPush:
    id: int
    subscription_id: int
    notification_id: int
    attempts: int


@dataclass
class PushJob:
    """What sending one push needs: the subscription, the notification, who it is from and the post."""
    push_id: int
    attempts: int
    subscription_id: int
    endpoint: str
    key_p256dh: str
    key_auth: str
    standard: int
    access_token: str
    alerts: str
    policy: str
    notification_id: int
    kind: str
    from_actor_id: int
    post_summary: str | None
    post_text: str | None
    # The recipient follows the sender / the sender follows the recipient (accepted follows):
    # what the subscription's policy "followed" / "follower" asks.
    recipient_follows: int
    follows_recipient: int
    # The recipient's account was deleted or suspended since: its apps no longer hear from us.
    recipient_gone: int


# --- the VAPID key ------------------------------------------------------------------------

async def get_vapid_key(conn: aiosqlite.Connection) -> VapidKey | None:
    return from_row(VapidKey, await fetch_one(conn, "SELECT private_key_pem, public_key FROM vapid_keys WHERE id = 1"))


async def insert_vapid_key(conn: aiosqlite.Connection, *, private_key_pem: str, public_key: str, now: str) -> None:
    """Store the key pair unless one exists (two processes starting at once keep the first)."""
    await conn.execute("INSERT INTO vapid_keys (id, private_key_pem, public_key, created_at) VALUES (1, ?, ?, ?)"
                       " ON CONFLICT (id) DO NOTHING", (private_key_pem, public_key, now))


# --- subscriptions ------------------------------------------------------------------------

_SUBSCRIPTION_COLUMNS = ("id, token_id, actor_id, endpoint, key_p256dh, key_auth, alerts, policy, standard,"
                         " created_at, updated_at")


async def put_subscription(conn: aiosqlite.Connection, *, token_id: int, actor_id: int, access_token: str,
                           endpoint: str, key_p256dh: str, key_auth: str, alerts: str, policy: str, standard: bool,
                           now: str) -> None:
    """Create the token's subscription, or replace it whole (a POST replaces, as Mastodon's does)."""
    await conn.execute(
        "INSERT INTO push_subscriptions (token_id, actor_id, access_token, endpoint, key_p256dh, key_auth, alerts,"
        " policy, standard, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (token_id) DO UPDATE SET endpoint = excluded.endpoint, key_p256dh = excluded.key_p256dh,"
        " key_auth = excluded.key_auth, alerts = excluded.alerts, policy = excluded.policy,"
        " standard = excluded.standard, access_token = excluded.access_token, created_at = excluded.created_at,"
        " updated_at = excluded.updated_at",
        (token_id, actor_id, access_token, endpoint, key_p256dh, key_auth, alerts, policy, int(standard), now, now))


async def get_subscription_of_token(conn: aiosqlite.Connection, token_id: int) -> PushSubscription | None:
    row = await fetch_one(conn, f"SELECT {_SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE token_id = ?",
                          (token_id,))
    return from_row(PushSubscription, row)


async def update_subscription_data(conn: aiosqlite.Connection, token_id: int, *, alerts: str, policy: str,
                                   now: str) -> bool:
    cur = await conn.execute("UPDATE push_subscriptions SET alerts = ?, policy = ?, updated_at = ? WHERE token_id = ?",
                             (alerts, policy, now, token_id))
    return cur.rowcount > 0


async def delete_subscription_of_token(conn: aiosqlite.Connection, token_id: int) -> bool:
    cur = await conn.execute("DELETE FROM push_subscriptions WHERE token_id = ?", (token_id,))
    return cur.rowcount > 0


async def delete_subscription(conn: aiosqlite.Connection, subscription_id: int) -> None:
    """The push service said the subscription is gone (404/410): its queued pushes go with it."""
    await conn.execute("DELETE FROM push_subscriptions WHERE id = ?", (subscription_id,))


# --- the queue ----------------------------------------------------------------------------

_ENQUEUE = ("INSERT INTO push_deliveries (subscription_id, notification_id, attempts, next_attempt_at, created_at)"
            " SELECT id, ?, 0, ?, ? FROM push_subscriptions WHERE actor_id = ? AND policy <> 'none'"
            " ORDER BY id")


async def enqueue_pushes(conn: aiosqlite.Connection, *, notification_id: int, recipient_id: int, due_ms: int,
                         now: str) -> None:
    """Queue a push of the notification to each of the recipient's subscriptions, in the
    notification's own transaction (so a notification is never without its pushes). Alerts and
    the follow policies are checked when the push is sent."""
    await conn.execute(_ENQUEUE, (notification_id, due_ms, now, recipient_id))


def enqueue_pushes_sync(conn: sqlite3.Connection, *, notification_id: int, recipient_id: int, due_ms: int,
                        now: str) -> None:
    """enqueue_pushes, synchronous: for Database.write_batch."""
    conn.execute(_ENQUEUE, (notification_id, due_ms, now, recipient_id))


async def claim_due_pushes(conn: aiosqlite.Connection, *, now_ms: int, lease_ms: int, limit: int) -> list[ClaimedPush]:
    """Lease up to limit due pushes to this worker, oldest due first. Rows another worker holds
    (lease not run out) are skipped; a crashed worker's rows come back when the lease runs out."""
    rows = await fetch_all(
        conn, "UPDATE push_deliveries SET locked_until = ? WHERE id IN (SELECT id FROM push_deliveries"
              " WHERE next_attempt_at <= ? AND (locked_until IS NULL OR locked_until <= ?)"
              f" ORDER BY next_attempt_at, id LIMIT ?{skip_locked(conn)})"
              " AND (locked_until IS NULL OR locked_until <= ?)"
              " RETURNING id, subscription_id, notification_id, attempts",
        (now_ms + lease_ms, now_ms, now_ms, limit, now_ms))
    return sorted((ClaimedPush(*row) for row in rows), key=lambda push: push.id)


async def jobs_for(conn: aiosqlite.Connection, push_ids: list[int]) -> list[PushJob]:
    """The claimed pushes with what sending them needs; a push whose subscription or notification
    is gone meanwhile is not among them (its row went with them)."""
    if not push_ids:
        return []
    marks = ", ".join("?" for _ in push_ids)
    rows = await fetch_all(
        conn, "SELECT d.id AS push_id, d.attempts, s.id AS subscription_id, s.endpoint, s.key_p256dh, s.key_auth,"
              " s.standard, s.access_token, s.alerts, s.policy, n.id AS notification_id, n.kind, n.from_actor_id,"
              " p.summary AS post_summary, p.content_text AS post_text,"
              " EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = n.recipient_id"
              "  AND f.followee_id = n.from_actor_id AND f.state = 'accepted') AS recipient_follows,"
              " EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = n.from_actor_id"
              "  AND f.followee_id = n.recipient_id AND f.state = 'accepted') AS follows_recipient,"
              " (r.deleted_at IS NOT NULL OR r.suspended_at IS NOT NULL) AS recipient_gone"
              " FROM push_deliveries d JOIN push_subscriptions s ON s.id = d.subscription_id"
              " JOIN notifications n ON n.id = d.notification_id JOIN actors r ON r.id = n.recipient_id"
              " LEFT JOIN posts p ON p.id = n.post_id AND p.deleted_at IS NULL"
              f" WHERE d.id IN ({marks}) ORDER BY d.id", tuple(push_ids))
    return [PushJob(**dict(row)) for row in rows]


async def delete_pushes(conn: aiosqlite.Connection, push_ids: list[int]) -> None:
    """Sent, not wanted (alerts, policy) or given up: the row has nothing more to do."""
    await conn.executemany("DELETE FROM push_deliveries WHERE id = ?", [(push_id,) for push_id in push_ids])


async def retry_push(conn: aiosqlite.Connection, push_id: int, *, next_attempt_ms: int, error: str) -> None:
    await conn.execute("UPDATE push_deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,"
                       " locked_until = NULL WHERE id = ?", (next_attempt_ms, error[:500], push_id))


async def next_due_ms(conn: aiosqlite.Connection, now_ms: int) -> int | None:
    """When the earliest claimable push is due (leased rows left out, as for deliveries)."""
    value = await fetch_value(
        conn, "SELECT next_attempt_at FROM push_deliveries WHERE locked_until IS NULL OR locked_until <= ?"
              " ORDER BY next_attempt_at LIMIT 1", (now_ms,))
    return None if value is None else int(value)
