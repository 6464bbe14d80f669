"""Who holds whose corpus records and whether they applied removals: the per-(researcher, author)
receipt aggregate written when a pull or a release hands records over, researchers' removal
acknowledgements, and the releases given to each researcher.

The one rule of who owes a removal, written here in SQL and in services.corpus_custody in Python:
a researcher owes the removal of a record (at feed position seq) when they were sent records of
its author before that position (a receipt's first_seq < seq) and the record had been added by
the last position they were sent that author's records at (added seq <= the receipt's last_seq)."""
from __future__ import annotations

from typing import Any

import aiosqlite

from fedserver.store.rows import fetch_all, fetch_one

API, RELEASE = "api", "release"


async def add_receipts(conn: aiosqlite.Connection, *, researcher_id: int, channel: str, counts: dict[int, int],
                       seq: int, now: str) -> None:
    """Count records of each author (actor id -> records) sent to a researcher at corpus cursor seq."""
    await conn.executemany(
        "INSERT INTO researcher_receipts (researcher_id, actor_id, channel, records, first_seq, last_seq,"
        " first_at, last_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (researcher_id, actor_id, channel) DO UPDATE SET"
        " records = researcher_receipts.records + excluded.records,"
        " last_seq = CASE WHEN excluded.last_seq > researcher_receipts.last_seq THEN excluded.last_seq"
        " ELSE researcher_receipts.last_seq END, last_at = excluded.last_at",
        [(researcher_id, actor_id, channel, count, seq, seq, now, now) for actor_id, count in sorted(counts.items())
         if count > 0])


async def receipts_of_author(conn: aiosqlite.Connection, actor_id: int) -> list[dict[str, Any]]:
    """Every researcher sent records of this author, per channel, with what the person may know of
    them (never anything about other authors). Uses index researcher_receipts_actor."""
    rows = await fetch_all(
        conn, "SELECT t.researcher_id, t.channel, t.records, t.first_seq, t.last_seq, t.first_at, t.last_at,"
              " r.name, r.organisation, r.contact, r.purpose, r.scrub, r.revoked_at, r.removals_acked_seq,"
              " r.removals_acked_at FROM researcher_receipts t JOIN researchers r ON r.id = t.researcher_id"
              " WHERE t.actor_id = ? ORDER BY r.name, t.channel", (actor_id,))
    return [dict(row) for row in rows]


async def removals_of_author(conn: aiosqlite.Connection, actor_id: int, limit: int) -> list[dict[str, Any]]:
    """The author's latest removals from the corpus, newest first, each with the position it was
    first added at. Uses the posts-by-author index and corpus_changes_post."""
    rows = await fetch_all(
        conn, "SELECT c.seq, c.record_id, c.reason, c.created_at,"
              " (SELECT min(a.seq) FROM corpus_changes a WHERE a.record_id = c.record_id AND a.action = 'added')"
              " AS added_seq FROM posts p JOIN corpus_changes c ON c.post_id = p.id"
              " WHERE p.actor_id = ? AND c.action = 'removed' ORDER BY c.seq DESC LIMIT ?", (actor_id, limit))
    return [dict(row) for row in rows]


async def oldest_owed_removal(conn: aiosqlite.Connection, *, researcher_id: int, after_seq: int,
                              removed_by: str) -> dict[str, Any] | None:
    """The oldest removal after the researcher's acknowledged cursor, made at or before removed_by,
    that the researcher owes (see the module docstring). Walks index corpus_changes_removals from
    the acknowledged cursor; receipts and the record's additions are looked up by key."""
    row = await fetch_one(
        conn, "SELECT c.seq, c.record_id, c.reason, c.created_at FROM corpus_changes c"
              " WHERE c.action = 'removed' AND c.seq > ? AND c.created_at <= ?"
              " AND EXISTS (SELECT 1 FROM posts p JOIN researcher_receipts t ON t.actor_id = p.actor_id"
              " WHERE p.id = c.post_id AND t.researcher_id = ? AND t.first_seq < c.seq"
              " AND EXISTS (SELECT 1 FROM corpus_changes a WHERE a.record_id = c.record_id AND a.action = 'added'"
              " AND a.seq <= t.last_seq))"
              " ORDER BY c.seq LIMIT 1", (after_seq, removed_by, researcher_id))
    return dict(row) if row else None


async def set_removals_acked(conn: aiosqlite.Connection, researcher_id: int, seq: int, now: str) -> bool:
    """Move the researcher's acknowledged cursor forward to seq (never back); True if it moved."""
    cur = await conn.execute("UPDATE researchers SET removals_acked_seq = ?, removals_acked_at = ?"
                             " WHERE id = ? AND removals_acked_seq < ?", (seq, now, researcher_id, seq))
    return cur.rowcount > 0


async def set_scrub(conn: aiosqlite.Connection, researcher_id: int, scrub: bool) -> None:
    await conn.execute("UPDATE researchers SET scrub = ? WHERE id = ?", (int(scrub), researcher_id))


async def add_release_receipt(conn: aiosqlite.Connection, *, researcher_id: int, version: str, seq: int,
                              now: str) -> None:
    await conn.execute("INSERT INTO researcher_releases (researcher_id, version, seq, received_at)"
                       " VALUES (?, ?, ?, ?) ON CONFLICT (researcher_id, version) DO NOTHING",
                       (researcher_id, version, seq, now))


async def set_release_acked(conn: aiosqlite.Connection, *, researcher_id: int, version: str, seq: int,
                            now: str) -> None:
    """Mark a release's removals applied (recorded as received too: the researcher holds it)."""
    await conn.execute("INSERT INTO researcher_releases (researcher_id, version, seq, received_at, acked_at)"
                       " VALUES (?, ?, ?, ?, ?) ON CONFLICT (researcher_id, version) DO UPDATE SET"
                       " acked_at = COALESCE(researcher_releases.acked_at, excluded.acked_at)",
                       (researcher_id, version, seq, now, now))


async def releases_of(conn: aiosqlite.Connection, researcher_id: int) -> list[dict[str, Any]]:
    rows = await fetch_all(conn, "SELECT version, seq, received_at, acked_at FROM researcher_releases"
                                 " WHERE researcher_id = ? ORDER BY seq", (researcher_id,))
    return [dict(row) for row in rows]


async def release_by_version(conn: aiosqlite.Connection, version: str) -> dict[str, Any] | None:
    row = await fetch_one(conn, "SELECT version, seq, records, created_at FROM corpus_releases WHERE version = ?",
                          (version,))
    return dict(row) if row else None


async def removals_after(conn: aiosqlite.Connection, seq: int, limit: int) -> list[dict[str, Any]]:
    """Removals in the change feed after a cursor, oldest first (index corpus_changes_removals)."""
    rows = await fetch_all(conn, "SELECT seq, record_id, reason, created_at FROM corpus_changes"
                                 " WHERE action = 'removed' AND seq > ? ORDER BY seq LIMIT ?", (seq, limit))
    return [dict(row) for row in rows]
