"""Lists of accounts a person is related to, paged for people (newest first, by the id of the
follow or block): followers, followed accounts, blocked and muted accounts; and the choice to hide
one's own follow lists (local_accounts.hide_collections)."""
from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from fedserver.store.actors import Actor
from fedserver.store.rows import fetch_all, fetch_value, from_row

NO_MAX_ID = 2**62


@dataclass
class Related:
    """An account on a list, with the id the list pages on (the follow's or block's id; for mutes,
    which have no id of their own, the muted account's id)."""
    cursor: int
    actor: Actor
    since: str


def _related(rows: list[aiosqlite.Row]) -> list[Related]:
    out = []
    for row in rows:
        actor = from_row(Actor, row)
        assert actor is not None
        out.append(Related(cursor=row["r_cursor"], actor=actor, since=row["r_since"]))
    return out


async def follow_list(conn: aiosqlite.Connection, actor_id: int, *, followers: bool, max_id: int | None,
                      limit: int) -> list[Related]:
    """Accepted followers (or followed accounts) that are neither deleted nor suspended, newest
    follow first: a range of follows_followee (or of the (follower_id, followee_id) unique) read
    backwards from max_id."""
    own, other = ("followee_id", "follower_id") if followers else ("follower_id", "followee_id")
    rows = await fetch_all(
        conn, f"SELECT f.id AS r_cursor, f.updated_at AS r_since, a.* FROM follows f JOIN actors a ON a.id = f.{other}"
              f" WHERE f.{own} = ? AND f.state = 'accepted' AND f.id < ?"
              " AND a.deleted_at IS NULL AND a.suspended_at IS NULL ORDER BY f.id DESC LIMIT ?",
        (actor_id, max_id if max_id is not None else NO_MAX_ID, limit))
    return _related(rows)


async def blocked_list(conn: aiosqlite.Connection, actor_id: int, *, max_id: int | None,
                       limit: int) -> list[Related]:
    """The accounts this account blocked, newest block first (by the block's id)."""
    rows = await fetch_all(
        conn, "SELECT b.id AS r_cursor, b.created_at AS r_since, a.* FROM blocks b JOIN actors a ON a.id = b.target_id"
              " WHERE b.actor_id = ? AND b.id < ? ORDER BY b.id DESC LIMIT ?",
        (actor_id, max_id if max_id is not None else NO_MAX_ID, limit))
    return _related(rows)


async def muted_list(conn: aiosqlite.Connection, actor_id: int, *, max_id: int | None,
                     limit: int) -> list[Related]:
    """The accounts this account muted, newest mute first. A mute row has no id of its own, so the
    cursor is the muted account's id and the order (created_at, target_id) descending: the page
    after a cursor starts below that mute's own (created_at, target_id) (plain comparisons, no row
    values, so that PostgreSQL reads it the same). A cursor whose mute is gone starts over."""
    params: tuple = (actor_id, limit)
    after = ""
    if max_id is not None:
        since = await fetch_value(conn, "SELECT created_at FROM mutes WHERE actor_id = ? AND target_id = ?",
                                  (actor_id, max_id))
        if since is not None:
            after = " AND (m.created_at < ? OR (m.created_at = ? AND m.target_id < ?))"
            params = (actor_id, since, since, max_id, limit)
    rows = await fetch_all(
        conn, "SELECT m.target_id AS r_cursor, m.created_at AS r_since, a.* FROM mutes m"
              f" JOIN actors a ON a.id = m.target_id WHERE m.actor_id = ?{after}"
              " ORDER BY m.created_at DESC, m.target_id DESC LIMIT ?", params)
    return _related(rows)


async def hides_collections(conn: aiosqlite.Connection, actor_id: int) -> bool:
    return bool(await fetch_value(conn, "SELECT hide_collections FROM local_accounts WHERE actor_id = ?",
                                  (actor_id,)))


async def set_hide_collections(conn: aiosqlite.Connection, actor_id: int, hide: bool) -> None:
    await conn.execute("UPDATE local_accounts SET hide_collections = ? WHERE actor_id = ?", (int(hide), actor_id))
