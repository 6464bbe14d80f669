"""Per-host delivery health (Mastodon's DeliveryFailureTracker) and admin domain blocks."""
from __future__ import annotations

import sqlite3

import aiosqlite

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


async def is_domain_blocked(conn: aiosqlite.Connection, domain: str) -> bool:
    host = domain.split(":")[0].lower()
    return await fetch_value(conn, "SELECT 1 FROM domain_blocks WHERE domain = ? OR domain = ?",
                             (domain.lower(), host)) is not None


async def add_domain_block(conn: aiosqlite.Connection, domain: str, reason: str, now: str) -> None:
    await conn.execute("INSERT INTO domain_blocks (domain, reason, created_at) VALUES (?, ?, ?)"
                       " ON CONFLICT (domain) DO UPDATE SET reason = excluded.reason", (domain.lower(), reason, now))


async def remove_domain_block(conn: aiosqlite.Connection, domain: str) -> None:
    await conn.execute("DELETE FROM domain_blocks WHERE domain = ?", (domain.lower(),))


async def list_domain_blocks(conn: aiosqlite.Connection) -> list[dict]:
    return [dict(row) for row in await fetch_all(conn, "SELECT * FROM domain_blocks ORDER BY domain")]
