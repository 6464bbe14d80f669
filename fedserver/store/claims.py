"""Every queue claim of the background workers, one function per queue: the seam where an engine's
own claim goes. Each claim leases rows to a worker (owner) until a time in epoch ms; a worker renews
what it still holds and another takes a row over once its lease runs out (docs/scaling.md).

On SQLite every claim is one UPDATE ... RETURNING inside a write transaction, which SQLite runs one
at a time, so two workers can never lease the same row, and the inbox claim's "skip signers with
leased rows" sees every lease committed before it. On PostgreSQL (READ COMMITTED) concurrent claims
choose rows from their own snapshots, so every claim's choice ends FOR UPDATE SKIP LOCKED
(rows.skip_locked: deliveries' pages, pushes, media): a row another claim is taking is passed over,
never waited for, and the UPDATE that leases re-checks the lease condition. The inbox claim also
keeps one signer with one worker, in id order (_claim_inbox_items_postgresql: a transaction-scoped
advisory lock per signer, tried without waiting). Periodic jobs' named leases are one INSERT ... ON
CONFLICT DO UPDATE ... WHERE, atomic on both engines. Callers are the same for both. Synchronous
(for Database.write_batch) but for the media claim, which runs in an aiosqlite transaction (and the
push claim, store/push.py, likewise)."""
from __future__ import annotations

import sqlite3
from typing import Mapping

import aiosqlite

from fedserver.store import deliveries, inbox, remote_media, worker_leases
from fedserver.store.deliveries import ClaimedDelivery
from fedserver.store.inbox import InboxItem
from fedserver.store.remote_media import RemoteMedia
from fedserver.store.rows import engine


def claim_inbox_items(conn: sqlite3.Connection, *, owner: str, now_ms: int, lease_ms: int,
                      limit: int) -> list[InboxItem]:
    """Due inbound activities, skipping signers another claim holds (per-signer order)."""
    if engine(conn) == "postgresql":
        return _claim_inbox_items_postgresql(conn, owner=owner, now_ms=now_ms, lease_ms=lease_ms, limit=limit)
    return inbox.claim_due_items(conn, now_ms=now_ms, lease_ms=lease_ms, limit=limit, owner=owner)


# The first key of the transaction-scoped advisory locks an inbox claim takes on PostgreSQL, one per
# signer (the second key is hashtext(signer_uri); two signers sharing a hash are only claimed one
# at a time, never wrongly). Any fixed number: "fin".
INBOX_SIGNER_LOCKS = 0x66696E


def _claim_inbox_items_postgresql(conn: sqlite3.Connection, *, owner: str, now_ms: int, lease_ms: int,
                                  limit: int) -> list[InboxItem]:
    """inbox.claim_due_items for PostgreSQL, where concurrent claims each see their own snapshot:
    1. the candidates, as on SQLite, read FOR UPDATE SKIP LOCKED (rows another claim is taking
       are passed over, never waited for);
    2. each candidate signer's advisory lock, tried without waiting: a signer another claim is
       leasing right now is skipped, and this claim holds its signers until it commits;
    3. one UPDATE, whose snapshot is taken after the locks and so sees every lease committed by
       earlier holders, leases the candidates of the locked signers that have no leased pending
       row, and of each only those with no claimable row of the same signer before them that
       this claim did not lock (one another claim's step 1 holds): a signer's items go out in
       id order, to one worker at a time."""
    candidates = conn.execute(
        "SELECT id, signer_uri FROM inbox_items WHERE state = 'pending' AND next_attempt_at <= ?"
        " AND (locked_until IS NULL OR locked_until <= ?)"
        " AND signer_uri NOT IN (SELECT signer_uri FROM inbox_items WHERE locked_until > ? AND state = 'pending')"
        " ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED", (now_ms, now_ms, now_ms, limit)).fetchall()
    if not candidates:
        return []
    signers = list(dict.fromkeys(row[1] for row in candidates))
    held = {row[0] for row in conn.execute(
        "SELECT s FROM unnest(?::text[]) AS s WHERE pg_try_advisory_xact_lock(?, hashtext(s))",
        (signers, INBOX_SIGNER_LOCKS)).fetchall()}
    ids = [row[0] for row in candidates if row[1] in held]
    if not ids:
        return []
    rows = conn.execute(
        "UPDATE inbox_items AS i SET locked_until = ?, lease_owner = ? WHERE i.id = ANY(?)"
        " AND i.state = 'pending' AND (i.locked_until IS NULL OR i.locked_until <= ?)"
        " AND NOT EXISTS (SELECT 1 FROM inbox_items l WHERE l.signer_uri = i.signer_uri"
        " AND l.state = 'pending' AND l.locked_until > ?)"
        " AND NOT EXISTS (SELECT 1 FROM inbox_items o WHERE o.signer_uri = i.signer_uri AND o.state = 'pending'"
        " AND o.id < i.id AND o.next_attempt_at <= ? AND (o.locked_until IS NULL OR o.locked_until <= ?)"
        " AND NOT (o.id = ANY(?)))"
        " RETURNING i.id, i.activity_uri, i.activity_type, i.signer_uri, i.body, i.attempts",
        (now_ms + lease_ms, owner, ids, now_ms, now_ms, now_ms, now_ms, ids)).fetchall()
    return sorted((InboxItem(*row) for row in rows), key=lambda item: item.id)


def renew_inbox_leases(conn: sqlite3.Connection, item_ids: list[int], *, owner: str, until_ms: int) -> set[int]:
    return inbox.renew_leases(conn, item_ids, owner=owner, until_ms=until_ms)


def claim_deliveries(conn: sqlite3.Connection, *, owner: str, now_ms: int, lease_ms: int, limit: int,
                     per_host: int, in_flight: Mapping[str, int] | None = None) -> list[ClaimedDelivery]:
    """Due deliveries, at most per_host in flight per host for this worker."""
    return deliveries.claim_due_deliveries_now(conn, now_ms=now_ms, lease_ms=lease_ms, limit=limit,
                                               per_host=per_host, in_flight=in_flight, owner=owner)


def renew_delivery_leases(conn: sqlite3.Connection, delivery_ids: list[int], *, owner: str,
                          until_ms: int) -> set[int]:
    return deliveries.renew_leases(conn, delivery_ids, owner=owner, until_ms=until_ms)


async def claim_media_fetches(conn: aiosqlite.Connection, *, now_ms: int, lease_ms: int,
                              limit: int) -> list[RemoteMedia]:
    """Queued remote pictures to fetch (a fetch done twice after a lease ran out only writes the
    same content-addressed file again)."""
    return await remote_media.claim_queued(conn, now_ms=now_ms, lease_ms=lease_ms, limit=limit)


def claim_job(conn: sqlite3.Connection, name: str, *, owner: str, now_ms: int, lease_ms: int) -> bool:
    """The lease of a periodic job that runs in one process at a time (taken or renewed)."""
    return worker_leases.acquire(conn, name, owner=owner, now_ms=now_ms, lease_ms=lease_ms)


def release_job(conn: sqlite3.Connection, name: str, *, owner: str) -> None:
    worker_leases.release(conn, name, owner=owner)
