"""Keyword filters (keyword_filters, keyword_filter_keywords, keyword_filter_statuses): a person's
filters with their keywords and the single posts they also apply to."""
from __future__ import annotations

from dataclasses import dataclass, field

import aiosqlite

from fedserver.store.rows import fetch_all, fetch_one


@dataclass
class Keyword:
    keyword: str
    whole_word: bool


@dataclass(frozen=True)
class FilterStatus:
    """A post a filter applies to (Mastodon's FilterStatus); its id is time-ordered."""
    id: int
    filter_id: int
    post_id: int


@dataclass
class KeywordFilter:
    id: int
    owner_id: int
    title: str
    contexts: tuple[str, ...]
    action: str
    expires_at: str | None
    created_at: str
    keywords: list[Keyword] = field(default_factory=list)
    statuses: list[FilterStatus] = field(default_factory=list)


def _filter(row: aiosqlite.Row) -> KeywordFilter:
    return KeywordFilter(id=row["id"], owner_id=row["owner_id"], title=row["title"],
                         contexts=tuple(c for c in row["contexts"].split(",") if c), action=row["action"],
                         expires_at=row["expires_at"], created_at=row["created_at"])


async def filters_of(conn: aiosqlite.Connection, owner_id: int, *, live_at: str | None = None) -> list[KeywordFilter]:
    """The person's filters with their keywords, oldest first; with live_at, only those not expired
    by then (two queries, whatever the number of filters)."""
    sql = "SELECT * FROM keyword_filters WHERE owner_id = ?"
    params: tuple = (owner_id,)
    if live_at is not None:
        sql += " AND (expires_at IS NULL OR expires_at > ?)"
        params = (owner_id, live_at)
    filters = [_filter(row) for row in await fetch_all(conn, sql + " ORDER BY id", params)]
    if not filters:
        return []
    by_id = {f.id: f for f in filters}
    marks = ", ".join("?" for _ in by_id)
    for row in await fetch_all(conn, f"SELECT filter_id, keyword, whole_word FROM keyword_filter_keywords"
                                     f" WHERE filter_id IN ({marks}) ORDER BY id", tuple(by_id)):
        by_id[row["filter_id"]].keywords.append(Keyword(row["keyword"], bool(row["whole_word"])))
    await _add_statuses(conn, by_id)
    return filters


async def _add_statuses(conn: aiosqlite.Connection, by_id: dict[int, KeywordFilter]) -> None:
    marks = ", ".join("?" for _ in by_id)
    for row in await fetch_all(conn, f"SELECT id, filter_id, post_id FROM keyword_filter_statuses"
                                     f" WHERE filter_id IN ({marks}) ORDER BY id", tuple(by_id)):
        by_id[row["filter_id"]].statuses.append(FilterStatus(row["id"], row["filter_id"], row["post_id"]))


async def get_filter(conn: aiosqlite.Connection, owner_id: int, filter_id: int) -> KeywordFilter | None:
    row = await fetch_one(conn, "SELECT * FROM keyword_filters WHERE id = ? AND owner_id = ?", (filter_id, owner_id))
    if row is None:
        return None
    found = _filter(row)
    for kw in await fetch_all(conn, "SELECT keyword, whole_word FROM keyword_filter_keywords WHERE filter_id = ?"
                                    " ORDER BY id", (filter_id,)):
        found.keywords.append(Keyword(kw["keyword"], bool(kw["whole_word"])))
    await _add_statuses(conn, {found.id: found})
    return found


async def count_filters(conn: aiosqlite.Connection, owner_id: int) -> int:
    row = await fetch_one(conn, "SELECT count(*) FROM keyword_filters WHERE owner_id = ?", (owner_id,))
    return int(row[0]) if row else 0


async def save_filter(conn: aiosqlite.Connection, *, filter_id: int, owner_id: int, title: str,
                      contexts: tuple[str, ...], action: str, expires_at: str | None, keywords: list[Keyword],
                      now: str, new: bool) -> None:
    """Insert (new) or replace a filter and all its keywords."""
    if new:
        await conn.execute("INSERT INTO keyword_filters (id, owner_id, title, contexts, action, expires_at, created_at)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (filter_id, owner_id, title, ",".join(contexts), action, expires_at, now))
    else:
        await conn.execute("UPDATE keyword_filters SET title = ?, contexts = ?, action = ?, expires_at = ?"
                           " WHERE id = ? AND owner_id = ?",
                           (title, ",".join(contexts), action, expires_at, filter_id, owner_id))
        await conn.execute("DELETE FROM keyword_filter_keywords WHERE filter_id = ?", (filter_id,))
    await conn.executemany("INSERT INTO keyword_filter_keywords (filter_id, keyword, whole_word) VALUES (?, ?, ?)",
                           [(filter_id, kw.keyword, int(kw.whole_word)) for kw in keywords])


async def delete_filter(conn: aiosqlite.Connection, owner_id: int, filter_id: int) -> None:
    await conn.execute("DELETE FROM keyword_filter_keywords WHERE filter_id IN"
                       " (SELECT id FROM keyword_filters WHERE id = ? AND owner_id = ?)", (filter_id, owner_id))
    await conn.execute("DELETE FROM keyword_filter_statuses WHERE filter_id IN"
                       " (SELECT id FROM keyword_filters WHERE id = ? AND owner_id = ?)", (filter_id, owner_id))
    await conn.execute("DELETE FROM keyword_filters WHERE id = ? AND owner_id = ?", (filter_id, owner_id))


async def add_status(conn: aiosqlite.Connection, *, status_id: int, filter_id: int, post_id: int, now: str) -> bool:
    """False when the post is in the filter already."""
    cursor = await conn.execute("INSERT INTO keyword_filter_statuses (id, filter_id, post_id, created_at)"
                                " VALUES (?, ?, ?, ?) ON CONFLICT (filter_id, post_id) DO NOTHING",
                                (status_id, filter_id, post_id, now))
    return cursor.rowcount > 0


async def count_statuses(conn: aiosqlite.Connection, filter_id: int) -> int:
    row = await fetch_one(conn, "SELECT count(*) FROM keyword_filter_statuses WHERE filter_id = ?", (filter_id,))
    return int(row[0]) if row else 0


async def get_status(conn: aiosqlite.Connection, owner_id: int, status_id: int) -> FilterStatus | None:
    """One of the person's filter statuses (None when it is not theirs)."""
    row = await fetch_one(conn, "SELECT s.id, s.filter_id, s.post_id FROM keyword_filter_statuses s"
                                " JOIN keyword_filters f ON f.id = s.filter_id WHERE s.id = ? AND f.owner_id = ?",
                          (status_id, owner_id))
    return FilterStatus(row[0], row[1], row[2]) if row is not None else None


async def delete_status(conn: aiosqlite.Connection, status_id: int) -> None:
    await conn.execute("DELETE FROM keyword_filter_statuses WHERE id = ?", (status_id,))
