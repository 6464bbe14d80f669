"""Failed sign-ins and sign-up attempts, counted per client address and per account, for the
throttles in services/auth.py. Rows older than a day are pruned as new ones arrive."""
from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from fedserver.store.rows import fetch_one, fetch_value

KEEP_MS = 86_400_000


@dataclass(frozen=True)
class FailureCounts:
    """Failed sign-ins since some moment: from one address (on any account), on one account (from
    any address), and from that address on that account; with the latest of each of the first and
    last (epoch ms, 0 when none)."""
    by_client: int
    by_client_last_ms: int
    by_account: int
    by_account_from_client: int
    by_account_from_client_last_ms: int


async def login_failure_counts(conn: aiosqlite.Connection, *, username: str, client: str,
                               since_ms: int) -> FailureCounts:
    by_client = await fetch_one(conn, "SELECT count(*), coalesce(max(created_ms), 0) FROM login_failures"
                                      " WHERE client = ? AND created_ms >= ?", (client, since_ms))
    by_account = await fetch_value(conn, "SELECT count(*) FROM login_failures WHERE username = ? AND created_ms >= ?",
                                   (username, since_ms))
    both = await fetch_one(conn, "SELECT count(*), coalesce(max(created_ms), 0) FROM login_failures"
                                 " WHERE username = ? AND client = ? AND created_ms >= ?", (username, client, since_ms))
    assert by_client is not None and both is not None
    return FailureCounts(by_client=int(by_client[0]), by_client_last_ms=int(by_client[1]),
                         by_account=int(by_account or 0), by_account_from_client=int(both[0]),
                         by_account_from_client_last_ms=int(both[1]))


async def record_login_failure(conn: aiosqlite.Connection, username: str, client: str, now_ms: int) -> int:
    """Count an attempt as failed (until forget_login_failure says otherwise); returns its row id."""
    cur = await conn.execute("INSERT INTO login_failures (username, client, created_ms) VALUES (?, ?, ?)",
                             (username, client, now_ms))
    await conn.execute("DELETE FROM login_failures WHERE created_ms < ?", (now_ms - KEEP_MS,))
    assert cur.lastrowid is not None
    return cur.lastrowid


async def forget_login_failures(conn: aiosqlite.Connection, username: str, client: str) -> None:
    """A correct password from this address for this account: its failures there are forgiven.
    Other addresses' failures on the account stay, so signing in does not reset an attacker."""
    await conn.execute("DELETE FROM login_failures WHERE username = ? AND client = ?", (username, client))


async def count_sign_up_attempts(conn: aiosqlite.Connection, client: str, since_ms: int) -> int:
    return int(await fetch_value(conn, "SELECT count(*) FROM sign_up_attempts WHERE client = ? AND created_ms >= ?",
                                 (client, since_ms)) or 0)


async def record_sign_up_attempt(conn: aiosqlite.Connection, client: str, now_ms: int) -> None:
    await conn.execute("INSERT INTO sign_up_attempts (client, created_ms) VALUES (?, ?)", (client, now_ms))
    await conn.execute("DELETE FROM sign_up_attempts WHERE created_ms < ?", (now_ms - KEEP_MS,))
