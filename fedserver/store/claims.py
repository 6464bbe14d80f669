"""Every queue claim of the background workers, one function per queue: the seam where an engine's
own claim goes. Each claim leases rows to a worker (owner) until a time in epoch ms; a worker renews
what it still holds and another takes a row over once its lease runs out (docs/scaling.md).

On SQLite every claim is one UPDATE ... RETURNING inside a write transaction, which SQLite runs one
at a time, so two workers can never lease the same row, and the inbox claim's "skip signers with
leased rows" sees every lease committed before it. On PostgreSQL (READ COMMITTED) concurrent claims
choose rows from their own snapshots: each UPDATE re-checks the lease condition on the rows it
takes, so no row is leased twice, but two claims could still each take a different row of one
signer. The PostgreSQL bodies of these functions therefore take the candidates with SELECT ...
FOR UPDATE SKIP LOCKED and, for the inbox, serialise claims per signer (a transaction-scoped
advisory lock on the signer's hash, or one claim at a time), leaving callers unchanged. Synchronous (for Database.write_batch)
but for the media claim, which runs in an aiosqlite transaction."""
from __future__ import annotations

import sqlite3
from typing import Mapping

import aiosqlite

from fedserver.store import deliveries, inbox, remote_media, worker_leases
from fedserver.store.deliveries import ClaimedDelivery
from fedserver.store.inbox import InboxItem
from fedserver.store.remote_media import RemoteMedia


def claim_inbox_items(conn: sqlite3.Connection, *, owner: str, now_ms: int, lease_ms: int,
                      limit: int) -> list[InboxItem]:
    """Due inbound activities, skipping signers another claim holds (per-signer order)."""
    return inbox.claim_due_items(conn, now_ms=now_ms, lease_ms=lease_ms, limit=limit, owner=owner)


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
