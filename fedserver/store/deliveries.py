"""Outbound activities and the durable delivery queue (one row per activity and target inbox)."""
from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from typing import Mapping

import aiosqlite

from fedserver.store.rows import fetch_all, fetch_one, fetch_value, from_row, skip_locked


@dataclass
class OutboundActivity:
    id: int
    uri: str
    actor_id: int
    activity_type: str
    object_uri: str | None
    is_public: int
    body: str
    created_at: str


@dataclass
class ClaimedDelivery:
    id: int
    activity_id: int
    inbox_url: str
    host: str
    attempts: int


@dataclass
class OutboundForDelivery:
    """What sending an activity needs: its id, body and its author's key."""
    id: int
    uri: str
    body: str
    key_id: str
    private_key_pem: str


async def insert_outbound_activity(conn: aiosqlite.Connection, *, uri: str, actor_id: int, activity_type: str,
                                   object_uri: str | None, is_public: bool, body: str, now: str) -> int:
    cur = await conn.execute(
        "INSERT INTO outbound_activities (uri, actor_id, activity_type, object_uri, is_public, body, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)", (uri, actor_id, activity_type, object_uri, int(is_public), body, now))
    return int(cur.lastrowid)


async def get_outbound_activity_by_uri(conn: aiosqlite.Connection, uri: str) -> OutboundActivity | None:
    row = await fetch_one(conn, "SELECT * FROM outbound_activities WHERE uri = ?", (uri,))
    return from_row(OutboundActivity, row)


async def enqueue_deliveries(conn: aiosqlite.Connection, activity_id: int, inboxes: list[tuple[str, str]],
                             *, due_ms: int, now: str) -> int:
    """Queue one delivery per (inbox_url, host); a repeated inbox for the same activity is ignored."""
    cur = await conn.executemany(
        "INSERT INTO deliveries (activity_id, inbox_url, host, next_attempt_at, created_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (activity_id, inbox_url) DO NOTHING",
        [(activity_id, inbox, host, due_ms, now) for inbox, host in inboxes])
    return cur.rowcount


async def claim_due_deliveries(conn: aiosqlite.Connection, *, now_ms: int, lease_ms: int, limit: int,
                               per_host: int, in_flight: Mapping[str, int] | None = None
                               ) -> list[ClaimedDelivery]:
    """Lease up to limit due deliveries to this worker, oldest due first, such that no host has more
    than per_host in flight here (in_flight: this worker's claimed, unfinished deliveries per host).
    Another worker skips rows whose lease has not expired, so several processes can share the queue;
    a crashed worker's rows come back when the lease expires. What the rows' activities need for
    sending is read apart (outbound_for_delivery), outside the write transaction: all rows of a
    fan-out share one activity."""
    claim = _Claim(now_ms=now_ms, lease_ms=lease_ms, limit=limit, per_host=per_host, in_flight=in_flight,
                   lock=skip_locked(conn))
    while (page := claim.next_page()) is not None:
        claim.choose(await fetch_all(conn, *page))
    update = claim.lease()
    return claim.claimed(await fetch_all(conn, *update)) if update is not None else []


def claim_due_deliveries_now(conn: sqlite3.Connection, *, now_ms: int, lease_ms: int, limit: int,
                             per_host: int, in_flight: Mapping[str, int] | None = None,
                             owner: str | None = None) -> list[ClaimedDelivery]:
    """claim_due_deliveries, synchronous: for Database.write_batch (the whole claim in one thread hop,
    which is what the delivery worker needs while its event loop is busy sending). The rows are
    leased to `owner`, who renews the lease while it holds them (renew_leases)."""
    claim = _Claim(now_ms=now_ms, lease_ms=lease_ms, limit=limit, per_host=per_host, in_flight=in_flight,
                   owner=owner, lock=skip_locked(conn))
    while (page := claim.next_page()) is not None:
        claim.choose(conn.execute(*page).fetchall())
    update = claim.lease()
    return claim.claimed(conn.execute(*update).fetchall()) if update is not None else []


class _Claim:
    """A claim's statements, run by either connection kind above. It chooses due, unleased rows in
    (next_attempt_at, id) order, walking the deliveries_due index a page at a time and skipping rows
    whose host is at its cap; the cost is the rows read, not every due row: a window over all due
    rows (ROW_NUMBER per host) cost 8 ms per claim with 10,000 pending, whatever the limit, inside
    the write transaction (bench/RESULTS.md, fanout). Hosts already at their cap are left out in
    SQL, so a host with thousands of queued rows is skipped without handing them to Python."""

    def __init__(self, *, now_ms: int, lease_ms: int, limit: int, per_host: int,
                 in_flight: Mapping[str, int] | None, owner: str | None = None, lock: str = "") -> None:
        self.now_ms, self.lease_ms, self.limit, self.per_host = now_ms, lease_ms, limit, per_host
        self.owner = owner
        # PostgreSQL: each page is read FOR UPDATE SKIP LOCKED (rows.skip_locked), so a concurrent
        # claim passes over the rows this one is choosing instead of waiting for them.
        self.lock = lock
        self.load = Counter({host: count for host, count in (in_flight or {}).items() if count > 0})
        self.chosen: list[int] = []
        self.page = max(4 * limit, 64)
        self.after: tuple[int, int] = (-1, -1)  # (next_attempt_at, id) of the last row read
        self.done = limit <= 0

    def next_page(self) -> tuple[str, tuple] | None:
        if self.done or len(self.chosen) >= self.limit:
            return None
        full = sorted(host for host, count in self.load.items() if count >= self.per_host)
        skip = f" AND host NOT IN ({', '.join('?' for _ in full)})" if full else ""
        after_due, after_id = self.after
        return ("SELECT id, host, next_attempt_at FROM deliveries"
                " WHERE state = 'pending' AND next_attempt_at <= ? AND next_attempt_at >= ?"
                " AND (next_attempt_at > ? OR id > ?) AND (locked_until IS NULL OR locked_until <= ?)"
                f"{skip} ORDER BY next_attempt_at, id LIMIT ?{self.lock}",
                (self.now_ms, after_due, after_due, after_id, self.now_ms, *full, self.page))

    def choose(self, rows: list) -> None:
        for delivery_id, host, _ in rows:
            if self.load[host] >= self.per_host:
                continue
            self.load[host] += 1
            self.chosen.append(delivery_id)
            if len(self.chosen) == self.limit:
                break
        if len(rows) < self.page:
            self.done = True
        else:
            self.after = (rows[-1][2], rows[-1][0])

    def lease(self) -> tuple[str, tuple] | None:
        """The UPDATE that leases the chosen rows. It checks the lease condition again: of the rows
        chosen, only those still pending and unleased are taken (RETURNING says which, in no
        particular order)."""
        if not self.chosen:
            return None
        marks = ", ".join("?" for _ in self.chosen)
        return (f"UPDATE deliveries SET locked_until = ?, lease_owner = ? WHERE id IN ({marks}) AND state = 'pending'"
                " AND (locked_until IS NULL OR locked_until <= ?) RETURNING id, activity_id, inbox_url, host, attempts",
                (self.now_ms + self.lease_ms, self.owner, *self.chosen, self.now_ms))

    def claimed(self, rows: list) -> list[ClaimedDelivery]:
        order = {delivery_id: index for index, delivery_id in enumerate(self.chosen)}
        return sorted((ClaimedDelivery(*row) for row in rows), key=lambda d: order[d.id])


def renew_leases(conn: sqlite3.Connection, delivery_ids: list[int], *, owner: str, until_ms: int) -> set[int]:
    """Extend the leases `owner` still holds on these deliveries; the ids it still holds. One that
    is missing was finished, or its lease ran out (the worker stalled) and another worker may have
    taken it: its holder must not send it (federation/delivery.py checks before every POST)."""
    kept: set[int] = set()
    for start in range(0, len(delivery_ids), 500):
        chunk = delivery_ids[start:start + 500]
        kept.update(row[0] for row in conn.execute(
            "UPDATE deliveries SET locked_until = ? WHERE state = 'pending' AND lease_owner = ?"
            f" AND id IN ({', '.join('?' for _ in chunk)}) RETURNING id", (until_ms, owner, *chunk)))
    return kept


async def outbound_for_delivery(conn: aiosqlite.Connection, activity_ids: list[int]) -> dict[int, OutboundForDelivery]:
    """Outbound activities by id, with their author's key id and private key."""
    if not activity_ids:
        return {}
    marks = ", ".join("?" for _ in activity_ids)
    rows = await fetch_all(
        conn, "SELECT o.id, o.uri, o.body, a.key_id, l.private_key_pem FROM outbound_activities o"
              " JOIN actors a ON a.id = o.actor_id JOIN local_accounts l ON l.actor_id = o.actor_id"
              f" WHERE o.id IN ({marks})", tuple(activity_ids))
    return {row[0]: OutboundForDelivery(*row) for row in rows}


# Outcomes are written in batches (federation/delivery_outcomes.py), each list with one statement,
# all in one Database.write_batch transaction: these are synchronous. None of them checks the lease:
# the row was claimed by this worker and its outcome is final.

def mark_delivered(conn: sqlite3.Connection, rows: list[tuple[int, int, str]]) -> None:
    """rows: (delivery id, HTTP status, finished at)."""
    conn.executemany(
        "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, last_status = ?, last_error = NULL,"
        " locked_until = NULL, finished_at = ? WHERE id = ?",
        [(status, now, delivery_id) for delivery_id, status, now in rows])


def mark_failed(conn: sqlite3.Connection, rows: list[tuple[int, int | None, str, str]]) -> None:
    """rows: (delivery id, HTTP status or None, error, finished at)."""
    conn.executemany(
        "UPDATE deliveries SET state = 'failed', attempts = attempts + 1, last_status = ?, last_error = ?,"
        " locked_until = NULL, finished_at = ? WHERE id = ?",
        [(status, error[:500], now, delivery_id) for delivery_id, status, error, now in rows])


def schedule_retries(conn: sqlite3.Connection, rows: list[tuple[int, int | None, str, int]]) -> None:
    """rows: (delivery id, HTTP status or None, error, next attempt at in epoch ms)."""
    conn.executemany(
        "UPDATE deliveries SET attempts = attempts + 1, last_status = ?, last_error = ?, next_attempt_at = ?,"
        " locked_until = NULL WHERE id = ?",
        [(status, error[:500], next_ms, delivery_id) for delivery_id, status, error, next_ms in rows])


def hold(conn: sqlite3.Connection, rows: list[tuple[int, int, str]]) -> None:
    """Give claimed deliveries back untried until a time (their host is held): no attempt is
    counted, as no request was made. rows: (delivery id, until epoch ms, reason)."""
    conn.executemany(
        "UPDATE deliveries SET next_attempt_at = ?, last_error = ?, locked_until = NULL WHERE id = ?",
        [(until_ms, reason[:500], delivery_id) for delivery_id, until_ms, reason in rows])


def postpone_host(conn: sqlite3.Connection, host: str, until_ms: int) -> None:
    """Hold back a host's pending deliveries (it is marked unavailable) without counting attempts."""
    conn.execute(
        "UPDATE deliveries SET next_attempt_at = ? WHERE host = ? AND state = 'pending' AND next_attempt_at < ?",
        (until_ms, host, until_ms))


async def release(conn: aiosqlite.Connection, delivery_ids: list[int]) -> None:
    """Give back claimed deliveries that were never started (shutdown), for any worker to take now
    rather than when their lease runs out."""
    await conn.executemany("UPDATE deliveries SET locked_until = NULL WHERE id = ? AND state = 'pending'",
                           [(delivery_id,) for delivery_id in delivery_ids])


async def next_due_ms(conn: aiosqlite.Connection, now_ms: int) -> int | None:
    """When the earliest claimable delivery is due. Leased rows (in flight here or in another worker)
    are left out: their past due time would make an idle worker poll in a tight loop. A lease that
    runs out is noticed by the worker's periodic poll."""
    value = await fetch_value(
        conn, "SELECT next_attempt_at FROM deliveries WHERE state = 'pending'"
              " AND (locked_until IS NULL OR locked_until <= ?) ORDER BY next_attempt_at LIMIT 1", (now_ms,))
    return None if value is None else int(value)


async def queue_stats(conn: aiosqlite.Connection) -> dict[str, int]:
    rows = await fetch_all(conn, "SELECT state, count(*) FROM deliveries GROUP BY state")
    stats = {"pending": 0, "delivered": 0, "failed": 0}
    stats.update({row[0]: row[1] for row in rows})
    return stats


async def list_deliveries_of_activity(conn: aiosqlite.Connection, activity_uri: str) -> list[dict]:
    rows = await fetch_all(
        conn, "SELECT d.inbox_url, d.state, d.attempts, d.last_status, d.last_error FROM deliveries d"
              " JOIN outbound_activities o ON o.id = d.activity_id WHERE o.uri = ? ORDER BY d.id", (activity_uri,))
    return [dict(row) for row in rows]


async def pending_hosts(conn: aiosqlite.Connection) -> list[str]:
    """The hosts with deliveries still to make (deliveries_host index)."""
    return [row[0] for row in await fetch_all(conn, "SELECT DISTINCT host FROM deliveries WHERE state = 'pending'")]


async def cancel_pending_to(conn: aiosqlite.Connection, hosts: list[str], *, error: str, now: str) -> int:
    """Give up, untried, every pending delivery to these hosts (their domain was blocked), leased
    ones included: the delivery worker checks blocks again before it sends what it holds."""
    cancelled = 0
    for start in range(0, len(hosts), 500):
        chunk = hosts[start:start + 500]
        marks = ", ".join("?" for _ in chunk)
        cur = await conn.execute(
            "UPDATE deliveries SET state = 'failed', last_error = ?, locked_until = NULL, finished_at = ?"
            f" WHERE state = 'pending' AND host IN ({marks})", (error[:500], now, *chunk))
        cancelled += max(cur.rowcount, 0)
    return cancelled
