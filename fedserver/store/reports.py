"""Reports for the admin: from other servers about local accounts (ActivityPub Flag), and from
local people about any account; and their handling."""
from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from fedserver.store.rows import fetch_all


@dataclass(frozen=True)
class OpenReport:
    id: int
    uri: str
    comment: str
    created_at: str
    reporter_uri: str
    reporter_handle: str
    target_id: int
    target_handle: str
    target_is_local: bool
    forwarded: bool
    post_ids: tuple[int, ...]


async def insert_report(conn: aiosqlite.Connection, *, uri: str, reporter_id: int, target_id: int, comment: str,
                        post_ids: list[int], now: str, forwarded: bool = False) -> int | None:
    """The new report's id, or None when a report with this uri exists (a repeated delivery)."""
    cur = await conn.execute(
        "INSERT INTO reports (uri, reporter_id, target_id, comment, created_at, forwarded) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (uri) DO NOTHING", (uri, reporter_id, target_id, comment, now, int(forwarded)))
    if cur.rowcount == 0:
        return None
    report_id = int(cur.lastrowid)
    if post_ids:
        await conn.executemany("INSERT INTO report_posts (report_id, post_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                               [(report_id, post_id) for post_id in post_ids])
    return report_id


async def list_open_reports(conn: aiosqlite.Connection, limit: int = 100) -> list[OpenReport]:
    rows = await fetch_all(
        conn, "SELECT r.id, r.uri, r.comment, r.created_at, a.uri, '@' || a.username || '@' || a.domain,"
              " t.id, '@' || t.username || '@' || t.domain, t.is_local, r.forwarded FROM reports r"
              " JOIN actors a ON a.id = r.reporter_id JOIN actors t ON t.id = r.target_id"
              " WHERE r.resolved_at IS NULL ORDER BY r.id LIMIT ?", (limit,))
    if not rows:
        return []
    marks = ", ".join("?" for _ in rows)
    posts: dict[int, list[int]] = {}
    for report_id, post_id in await fetch_all(
            conn, f"SELECT report_id, post_id FROM report_posts WHERE report_id IN ({marks}) ORDER BY post_id",
            [row[0] for row in rows]):
        posts.setdefault(report_id, []).append(post_id)
    return [OpenReport(*row[:8], target_is_local=bool(row[8]), forwarded=bool(row[9]),
                       post_ids=tuple(posts.get(row[0], []))) for row in rows]


async def resolve_report(conn: aiosqlite.Connection, report_id: int, *, admin_id: int, now: str) -> bool:
    cur = await conn.execute("UPDATE reports SET resolved_at = ?, resolved_by = ? WHERE id = ? AND resolved_at IS NULL",
                             (now, admin_id, report_id))
    return cur.rowcount == 1
