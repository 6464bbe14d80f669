"""Verified inbound activities: deduplication by activity id (on a fixed-size hash of it), the
processing queue, and pruning what is finished once a duplicate can no longer arrive."""
from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass

import aiosqlite

from fedserver.store.rows import fetch_value


@dataclass
class InboxItem:
    id: int
    activity_uri: str
    activity_type: str
    signer_uri: str
    body: str
    attempts: int


@dataclass(frozen=True)
class NewInboxItem:
    """A verified activity waiting to be stored (signer_host: whose unavailable mark it clears)."""
    activity_uri: str
    activity_type: str
    signer_uri: str
    body: str
    signer_host: str | None = None


@dataclass(frozen=True)
class SignerState:
    """The columns of a signer's actor row that its signature verification depended on."""
    actor_id: int
    key_id: str | None
    public_key_pem: str | None
    updated_at: str
    deleted_at: str | None
    suspended_at: str | None


def activity_key(activity_uri: str) -> bytes:
    """The deduplication key of an activity id: SHA-256 of its UTF-8 bytes (migration 0019 derives
    the same for rows stored before it). Fixed-size, so the unique index stays small whatever length
    of id a peer sends."""
    return hashlib.sha256(activity_uri.encode("utf-8")).digest()


async def enqueue_inbox_item(conn: aiosqlite.Connection, *, activity_uri: str, activity_type: str,
                             signer_uri: str, body: str, now: str, now_ms: int) -> bool:
    """Store a verified activity for processing; False when its id was seen before (duplicate)."""
    cur = await conn.execute(
        "INSERT INTO inbox_items (activity_hash, activity_uri, activity_type, signer_uri, body, next_attempt_at,"
        " received_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (activity_hash) DO NOTHING",
        (activity_key(activity_uri), activity_uri, activity_type, signer_uri, body, now_ms, now))
    return cur.rowcount > 0


def insert_inbox_items(conn: sqlite3.Connection, items: list[NewInboxItem], *, now: str,
                       now_ms: int) -> set[str]:
    """Store verified activities in one statement; the activity ids that were new (a duplicate,
    seen before or twice in items, is left out and not returned). Synchronous: for Database.write_batch."""
    placeholders = ", ".join("(?, ?, ?, ?, ?, ?, ?)" for _ in items)
    params: list[object] = []
    for item in items:
        params += (activity_key(item.activity_uri), item.activity_uri, item.activity_type, item.signer_uri,
                   item.body, now_ms, now)
    rows = conn.execute(
        "INSERT INTO inbox_items (activity_hash, activity_uri, activity_type, signer_uri, body, next_attempt_at,"
        f" received_at) VALUES {placeholders} ON CONFLICT (activity_hash) DO NOTHING RETURNING activity_uri",
        params).fetchall()
    return {row[0] for row in rows}


def signer_states(conn: sqlite3.Connection, actor_ids: list[int]) -> dict[int, SignerState]:
    """The current SignerState of each of these actors. Synchronous: for Database.write_batch."""
    rows = conn.execute(
        "SELECT id, key_id, public_key_pem, updated_at, deleted_at, suspended_at FROM actors"
        f" WHERE id IN ({', '.join('?' for _ in actor_ids)})", actor_ids).fetchall()
    return {row[0]: SignerState(*row) for row in rows}


def clear_unavailable_hosts(conn: sqlite3.Connection, hosts: list[str]) -> None:
    """Inbound signed traffic from a host shows it is alive again: its unavailable mark and failure
    days go, as hosts.clear_unavailable does for one host. Synchronous: for Database.write_batch
    (the inbox writer calls it for every batch, so the usual case, no host marked, is one read)."""
    marks = ", ".join("?" for _ in hosts)
    marked = [row[0] for row in conn.execute(
        f"SELECT host FROM hosts h WHERE host IN ({marks}) AND (unavailable_until IS NOT NULL"
        " OR EXISTS (SELECT 1 FROM host_failure_days d WHERE d.host = h.host))", hosts)]
    if not marked:
        return
    marks = ", ".join("?" for _ in marked)
    conn.execute(f"DELETE FROM host_failure_days WHERE host IN ({marks})", marked)
    conn.execute(f"UPDATE hosts SET unavailable_since = NULL, unavailable_until = NULL WHERE host IN ({marks})",
                 marked)


# The inbox worker's claim and outcomes are synchronous, for Database.write_batch: each is one
# thread hop where an aiosqlite transaction took three (BEGIN, the statement, COMMIT), and marking
# a batch done can join the transaction that applied it.

def claim_due_items(conn: sqlite3.Connection, *, now_ms: int, lease_ms: int, limit: int,
                    owner: str | None = None) -> list[InboxItem]:
    """Lease up to `limit` due pending items to `owner`, oldest first, skipping every signer that
    has a leased pending item: with several inbox workers (`fedserver worker`, docs/scaling.md) a
    signer's items are then held by one worker at a time, which applies them in arrival order, so
    that a Create, its Update and its Delete are never applied side by side out of order. A signer's
    later items wait for its leased ones (their lease is renewed while they are worked on, and runs
    out if the worker dies). Through store.claims (the seam for an engine-specific claim)."""
    # "next_attempt_at + 0": the range on next_attempt_at would otherwise make SQLite prefer
    # inbox_items_due and sort every pending row; inbox_items_pending yields them in id order and
    # the scan stops after `limit` (migration 0005). The leased signers come from the few rows with
    # a lease in the future (inbox_items_leased, migration 0110).
    rows = conn.execute(
        "UPDATE inbox_items SET locked_until = ?, lease_owner = ? WHERE id IN ("
        " SELECT id FROM inbox_items WHERE state = 'pending' AND next_attempt_at + 0 <= ?"
        " AND (locked_until IS NULL OR locked_until <= ?)"
        " AND signer_uri NOT IN (SELECT signer_uri FROM inbox_items WHERE locked_until > ? AND state = 'pending')"
        " ORDER BY id LIMIT ?)"
        # Checked again on each row taken (under concurrent claims, an engine that chose the rows
        # from an older snapshot must not lease a row someone else has just leased).
        " AND state = 'pending' AND (locked_until IS NULL OR locked_until <= ?)"
        " RETURNING id, activity_uri, activity_type, signer_uri, body, attempts",
        (now_ms + lease_ms, owner, now_ms, now_ms, now_ms, limit, now_ms)).fetchall()
    items = [InboxItem(*row) for row in rows]
    items.sort(key=lambda item: item.id)
    return items


def renew_leases(conn: sqlite3.Connection, item_ids: list[int], *, owner: str, until_ms: int) -> set[int]:
    """Extend the leases `owner` still holds on these items; the ids it still holds (an item
    missing was finished, or its lease ran out and another worker took it)."""
    kept: set[int] = set()
    for start in range(0, len(item_ids), 500):
        chunk = item_ids[start:start + 500]
        kept.update(row[0] for row in conn.execute(
            "UPDATE inbox_items SET locked_until = ? WHERE state = 'pending' AND lease_owner = ?"
            f" AND id IN ({', '.join('?' for _ in chunk)}) RETURNING id", (until_ms, owner, *chunk)))
    return kept


def mark_many_done(conn: sqlite3.Connection, item_ids: list[int], now: str) -> None:
    # The body is no longer needed once processed; the id stays for deduplication.
    conn.execute("UPDATE inbox_items SET state = 'done', body = '', locked_until = NULL, processed_at = ?,"
                 f" attempts = attempts + 1 WHERE id IN ({', '.join('?' for _ in item_ids)})", (now, *item_ids))


def mark_retry(conn: sqlite3.Connection, item_id: int, *, error: str, next_attempt_ms: int) -> None:
    conn.execute("UPDATE inbox_items SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,"
                 " locked_until = NULL WHERE id = ?", (error[:500], next_attempt_ms, item_id))


def defer_items(conn: sqlite3.Connection, due: list[tuple[int, int]]) -> None:
    """Give leased items back to the queue, due again at the given times (ms), without counting an
    attempt: the worker put them off (a fetch budget was spent), they did not fail."""
    # Leased (by no worker) until they are due: until then every inbox worker's claim skips their
    # signer, whose later items must not overtake them (claim_due_items).
    conn.executemany("UPDATE inbox_items SET next_attempt_at = ?, locked_until = ?, lease_owner = NULL WHERE id = ?",
                     [(due_ms, due_ms, item_id) for item_id, due_ms in due])


def mark_item_failed(conn: sqlite3.Connection, item_id: int, *, error: str, now: str) -> None:
    conn.execute("UPDATE inbox_items SET state = 'failed', attempts = attempts + 1, last_error = ?,"
                 " locked_until = NULL, processed_at = ? WHERE id = ?", (error[:500], now, item_id))


async def pending_count(conn: aiosqlite.Connection) -> int:
    return int(await fetch_value(conn, "SELECT count(*) FROM inbox_items WHERE state = 'pending'") or 0)


async def next_due_ms(conn: aiosqlite.Connection, now_ms: int) -> int | None:
    """When the earliest claimable item is due; leased rows are left out (their past due time
    would make an idle worker poll in a tight loop until the lease runs out)."""
    value = await fetch_value(
        conn, "SELECT next_attempt_at FROM inbox_items WHERE state = 'pending'"
              " AND (locked_until IS NULL OR locked_until <= ?) ORDER BY next_attempt_at LIMIT 1", (now_ms,))
    return None if value is None else int(value)


def prune_finished_items(conn: sqlite3.Connection, *, processed_before: str, limit: int) -> int:
    """Delete up to `limit` done or failed items processed before `processed_before` (oldest first,
    through inbox_items_finished); how many went. Synchronous: for Database.write_batch, one short
    transaction per call."""
    cur = conn.execute(
        "DELETE FROM inbox_items WHERE id IN (SELECT id FROM inbox_items WHERE state <> 'pending'"
        " AND processed_at < ? ORDER BY processed_at LIMIT ?)", (processed_before, limit))
    return cur.rowcount


async def pending_count_by_signer(conn: aiosqlite.Connection, *, at_least: int) -> dict[str, int]:
    """Pending items per signer, or {} when fewer than `at_least` are pending in all (then no host
    can have that many, and the usual case costs one count over the inbox_items_pending index)."""
    total = int(await fetch_value(conn, "SELECT count(*) FROM inbox_items WHERE state = 'pending'") or 0)
    if total < at_least:
        return {}
    async with conn.execute("SELECT signer_uri, count(*) FROM inbox_items WHERE state = 'pending'"
                            " GROUP BY signer_uri") as cur:
        return {row[0]: int(row[1]) for row in await cur.fetchall()}
