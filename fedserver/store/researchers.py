"""Registered researchers (token hashes, accepted data-use terms) and the log of their API pulls,
which is also what per-researcher rate limiting counts."""
from __future__ import annotations

from dataclasses import dataclass, fields

import aiosqlite

from fedserver.store.rows import fetch_all, fetch_one, fetch_value, from_row

# A pull still being answered (or whose process died before it finished) has this status.
PULL_IN_PROGRESS = 0
PULL_RATE_LIMITED = 429


@dataclass
class Researcher:
    id: int
    name: str
    token_hash: str
    contact: str
    created_at: str
    revoked_at: str | None
    terms_version: str | None
    terms_hash: str | None
    terms_accepted_at: str | None
    organisation: str = ""
    purpose: str = ""
    scrub: int = 0  # 1: API records reach this researcher scrubbed
    removals_acked_seq: int = 0  # every removal up to this cursor confirmed applied
    removals_acked_at: str | None = None


_FIELDS = tuple(f.name for f in fields(Researcher))


@dataclass
class ResearcherSummary:
    researcher: Researcher
    pulls: int
    last_pull_at: str | None


async def insert_researcher(conn: aiosqlite.Connection, *, name: str, token_hash: str, contact: str,
                            now: str, organisation: str = "", purpose: str = "", scrub: bool = False) -> int:
    cur = await conn.execute("INSERT INTO researchers (name, token_hash, contact, created_at, organisation, purpose,"
                             " scrub) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (name, token_hash, contact, now, organisation, purpose, int(scrub)))
    assert cur.lastrowid is not None
    return cur.lastrowid


async def get_researcher_by_name(conn: aiosqlite.Connection, name: str) -> Researcher | None:
    return from_row(Researcher, await fetch_one(conn, "SELECT * FROM researchers WHERE name = ?", (name,)))


async def get_researcher_by_token_hash(conn: aiosqlite.Connection, token_hash: str) -> Researcher | None:
    return from_row(Researcher, await fetch_one(conn, "SELECT * FROM researchers WHERE token_hash = ?",
                                                (token_hash,)))


async def get_researcher(conn: aiosqlite.Connection, researcher_id: int) -> Researcher | None:
    return from_row(Researcher, await fetch_one(conn, "SELECT * FROM researchers WHERE id = ?", (researcher_id,)))


async def list_researchers(conn: aiosqlite.Connection) -> list[ResearcherSummary]:
    rows = await fetch_all(
        conn, "SELECT r.*, count(p.id) AS pulls, max(p.created_at) AS last_pull_at FROM researchers r"
              " LEFT JOIN researcher_pulls p ON p.researcher_id = r.id GROUP BY r.id ORDER BY r.name")
    return [ResearcherSummary(researcher=Researcher(**{f: row[f] for f in _FIELDS}), pulls=row["pulls"],
                              last_pull_at=row["last_pull_at"]) for row in rows]


async def revoke_researcher(conn: aiosqlite.Connection, researcher_id: int, now: str) -> None:
    await conn.execute("UPDATE researchers SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                       (now, researcher_id))


async def set_token_hash(conn: aiosqlite.Connection, researcher_id: int, new_hash: str) -> None:
    await conn.execute("UPDATE researchers SET token_hash = ? WHERE id = ?", (new_hash, researcher_id))


async def set_terms_accepted(conn: aiosqlite.Connection, researcher_id: int, *, version: str, sha256: str,
                             now: str) -> None:
    await conn.execute("UPDATE researchers SET terms_version = ?, terms_hash = ?, terms_accepted_at = ?"
                       " WHERE id = ?", (version, sha256, now, researcher_id))


async def count_recent_pulls(conn: aiosqlite.Connection, researcher_id: int, since_ms: int) -> int:
    """Pulls that count against the rate limit: every request since the time given, except those
    that were themselves refused for going over it (so a client that keeps knocking while limited
    is let in again once its real requests have aged out). Uses index researcher_pulls_recent."""
    return int(await fetch_value(
        conn, "SELECT count(*) FROM researcher_pulls WHERE researcher_id = ? AND created_ms > ? AND status != ?",
        (researcher_id, since_ms, PULL_RATE_LIMITED)) or 0)


async def oldest_recent_pull_ms(conn: aiosqlite.Connection, researcher_id: int, since_ms: int) -> int | None:
    value = await fetch_value(
        conn, "SELECT min(created_ms) FROM researcher_pulls WHERE researcher_id = ? AND created_ms > ?"
              " AND status != ?", (researcher_id, since_ms, PULL_RATE_LIMITED))
    return None if value is None else int(value)


async def insert_pull(conn: aiosqlite.Connection, *, researcher_id: int, endpoint: str, params: str, status: int,
                      records: int, now: str, now_ms: int) -> int:
    cur = await conn.execute(
        "INSERT INTO researcher_pulls (researcher_id, endpoint, params, status, records, created_at, created_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)", (researcher_id, endpoint, params, status, records, now, now_ms))
    assert cur.lastrowid is not None
    return cur.lastrowid


async def finish_pull(conn: aiosqlite.Connection, pull_id: int, *, status: int, records: int) -> None:
    await conn.execute("UPDATE researcher_pulls SET status = ?, records = ? WHERE id = ?", (status, records, pull_id))
