"""Per-host delivery health (Mastodon's DeliveryFailureTracker) and admin domain blocks."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import aiosqlite

from fedserver.activitypub.domains import block_keys
from fedserver.store.rows import fetch_all, fetch_value


# record_successes, record_failure and mark_unavailable run in the delivery outcome writer's
# Database.write_batch transaction: synchronous.

def record_successes(conn: sqlite3.Connection, successes: list[tuple[str, str]]) -> None:
    """A delivery to each host succeeded at the given time: the host is healthy again (its failure
    days and any hold are cleared). One statement of each kind for the whole batch."""
    if not successes:
        return
    conn.executemany(
        "INSERT INTO hosts (host, last_success_at) VALUES (?, ?) ON CONFLICT (host) DO UPDATE SET"
        " last_success_at = excluded.last_success_at, unavailable_since = NULL, unavailable_until = NULL",
        successes)
    conn.executemany("DELETE FROM host_failure_days WHERE host = ?", [(host,) for host, _ in successes])


def record_failure(conn: sqlite3.Connection, host: str, now: str) -> int:
    """Record a failed attempt today; return how many distinct days the host has failed on."""
    conn.execute(
        "INSERT INTO hosts (host, last_failure_at) VALUES (?, ?) ON CONFLICT (host) DO UPDATE SET"
        " last_failure_at = excluded.last_failure_at", (host, now))
    conn.execute("INSERT INTO host_failure_days (host, day) VALUES (?, ?) ON CONFLICT DO NOTHING", (host, now[:10]))
    return int(conn.execute("SELECT count(*) FROM host_failure_days WHERE host = ?", (host,)).fetchone()[0])


def mark_unavailable(conn: sqlite3.Connection, host: str, *, now: str, until_ms: int) -> None:
    conn.execute(
        "UPDATE hosts SET unavailable_since = COALESCE(unavailable_since, ?), unavailable_until = ? WHERE host = ?",
        (now, until_ms, host))


async def unavailable_until(conn: aiosqlite.Connection, host: str) -> int | None:
    value = await fetch_value(conn, "SELECT unavailable_until FROM hosts WHERE host = ?", (host,))
    return None if value is None else int(value)


async def held_hosts(conn: aiosqlite.Connection, now_ms: int) -> dict[str, int]:
    """Hosts whose deliveries are held back at now_ms, with the end of each hold."""
    rows = await fetch_all(conn, "SELECT host, unavailable_until FROM hosts WHERE unavailable_until > ?", (now_ms,))
    return {row[0]: int(row[1]) for row in rows}


async def clear_unavailable(conn: aiosqlite.Connection, host: str) -> None:
    """Inbound signed traffic from a host shows it is alive again."""
    await conn.execute("UPDATE hosts SET unavailable_since = NULL, unavailable_until = NULL WHERE host = ?"
                       " AND unavailable_since IS NOT NULL", (host,))
    await conn.execute("DELETE FROM host_failure_days WHERE host = ?", (host,))


async def list_failing_hosts(conn: aiosqlite.Connection) -> list[dict]:
    rows = await fetch_all(
        conn, "SELECT h.host, h.unavailable_since, h.last_failure_at, h.last_success_at,"
              " (SELECT count(*) FROM host_failure_days d WHERE d.host = h.host) AS failure_days"
              " FROM hosts h WHERE h.unavailable_since IS NOT NULL"
              " OR EXISTS (SELECT 1 FROM host_failure_days d WHERE d.host = h.host) ORDER BY h.host")
    return [dict(row) for row in rows]


# Domain blocks hold canonical domains (activitypub/domains.py parse_domain); a host is blocked
# when one of its block_keys (itself and every parent domain, with and without its port) is. The
# callers pass canonical hosts (host_of).

async def blocking_domain(conn: aiosqlite.Connection, host: str) -> str | None:
    """The blocked domain that covers the canonical host, if any."""
    keys = block_keys(host)
    marks = ", ".join("?" for _ in keys)
    return await fetch_value(conn, f"SELECT domain FROM domain_blocks WHERE domain IN ({marks}) LIMIT 1", tuple(keys))


async def is_domain_blocked(conn: aiosqlite.Connection, host: str) -> bool:
    return await blocking_domain(conn, host) is not None


async def blocked_among(conn: aiosqlite.Connection, hosts: Iterable[str]) -> set[str]:
    """Which of these canonical hosts a domain block covers."""
    keys_of = {host: block_keys(host) for host in set(hosts)}
    wanted = sorted({key for keys in keys_of.values() for key in keys})
    if not wanted:
        return set()  # (and `IN ()` is SQLite's alone)
    if len(wanted) > 500:  # a large fan-out: one read of the whole list is cheaper
        blocked = await blocked_domains(conn)
    else:
        marks = ", ".join("?" for _ in wanted)
        blocked = {row[0] for row in await fetch_all(
            conn, f"SELECT domain FROM domain_blocks WHERE domain IN ({marks})", tuple(wanted))}
    if not blocked:
        return set()
    return {host for host, keys in keys_of.items() if not blocked.isdisjoint(keys)}


async def blocked_domains(conn: aiosqlite.Connection) -> set[str]:
    """Every blocked domain (the delivery worker keeps them in memory)."""
    return {row[0] for row in await fetch_all(conn, "SELECT domain FROM domain_blocks")}


async def add_domain_block(conn: aiosqlite.Connection, domain: str, reason: str, now: str) -> None:
    await conn.execute("INSERT INTO domain_blocks (domain, reason, created_at) VALUES (?, ?, ?)"
                       " ON CONFLICT (domain) DO UPDATE SET reason = excluded.reason", (domain, reason, now))


async def remove_domain_block(conn: aiosqlite.Connection, domains: Iterable[str]) -> int:
    """Remove the blocks stored under any of these spellings; how many there were."""
    removed = 0
    for domain in set(domains):
        cur = await conn.execute("DELETE FROM domain_blocks WHERE domain = ?", (domain,))
        removed += max(cur.rowcount, 0)
    return removed


async def list_domain_blocks(conn: aiosqlite.Connection) -> list[dict]:
    return [dict(row) for row in await fetch_all(conn, "SELECT * FROM domain_blocks ORDER BY domain")]
