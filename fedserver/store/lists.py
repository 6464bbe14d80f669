"""A person's lists of followed accounts (lists, list_members) and the list timeline's posts."""
from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from fedserver.store.rows import engine, fetch_all, fetch_one, from_row, from_rows
from fedserver.store.timelines import (BOOST_CANDIDATES, NO_MAX_ID, TimelineEntry, boosts_branch,
                                       newest_per_author, posts_branch)


@dataclass
class AccountList:
    id: int
    owner_id: int
    title: str
    replies_policy: str
    exclusive: int
    created_at: str


async def create_list(conn: aiosqlite.Connection, *, list_id: int, owner_id: int, title: str,
                      replies_policy: str, exclusive: bool, now: str) -> None:
    await conn.execute("INSERT INTO lists (id, owner_id, title, replies_policy, exclusive, created_at)"
                       " VALUES (?, ?, ?, ?, ?, ?)", (list_id, owner_id, title, replies_policy, int(exclusive), now))


async def update_list(conn: aiosqlite.Connection, list_id: int, *, title: str, replies_policy: str,
                      exclusive: bool) -> None:
    await conn.execute("UPDATE lists SET title = ?, replies_policy = ?, exclusive = ? WHERE id = ?",
                       (title, replies_policy, int(exclusive), list_id))


async def delete_list(conn: aiosqlite.Connection, list_id: int) -> None:
    await conn.execute("DELETE FROM list_members WHERE list_id = ?", (list_id,))
    await conn.execute("DELETE FROM lists WHERE id = ?", (list_id,))


async def get_list(conn: aiosqlite.Connection, owner_id: int, list_id: int) -> AccountList | None:
    """The list, only if it belongs to owner_id (nobody reads another person's lists)."""
    return from_row(AccountList, await fetch_one(conn, "SELECT * FROM lists WHERE id = ? AND owner_id = ?",
                                                 (list_id, owner_id)))


async def lists_of(conn: aiosqlite.Connection, owner_id: int) -> list[AccountList]:
    return from_rows(AccountList, await fetch_all(conn, "SELECT * FROM lists WHERE owner_id = ? ORDER BY id",
                                                  (owner_id,)))


async def count_lists(conn: aiosqlite.Connection, owner_id: int) -> int:
    row = await fetch_one(conn, "SELECT count(*) FROM lists WHERE owner_id = ?", (owner_id,))
    return int(row[0]) if row else 0


async def add_member(conn: aiosqlite.Connection, list_id: int, actor_id: int, now: str) -> None:
    await conn.execute("INSERT INTO list_members (list_id, actor_id, created_at) VALUES (?, ?, ?)"
                       " ON CONFLICT (list_id, actor_id) DO NOTHING", (list_id, actor_id, now))


async def remove_member(conn: aiosqlite.Connection, list_id: int, actor_id: int) -> None:
    await conn.execute("DELETE FROM list_members WHERE list_id = ? AND actor_id = ?", (list_id, actor_id))


async def remove_from_owner_lists(conn: aiosqlite.Connection, owner_id: int, actor_id: int) -> None:
    """Take an account off every list of owner_id (it was unfollowed: lists hold followed accounts)."""
    await conn.execute("DELETE FROM list_members WHERE actor_id = ? AND list_id IN"
                       " (SELECT id FROM lists WHERE owner_id = ?)", (actor_id, owner_id))


async def member_ids(conn: aiosqlite.Connection, list_id: int) -> list[int]:
    rows = await fetch_all(conn, "SELECT actor_id FROM list_members WHERE list_id = ? ORDER BY created_at",
                           (list_id,))
    return [int(row[0]) for row in rows]


async def lists_with_member(conn: aiosqlite.Connection, owner_id: int, actor_id: int) -> set[int]:
    rows = await fetch_all(conn, "SELECT m.list_id FROM list_members m JOIN lists l ON l.id = m.list_id"
                                 " WHERE m.actor_id = ? AND l.owner_id = ?", (actor_id, owner_id))
    return {int(row[0]) for row in rows}


async def list_entries(conn: aiosqlite.Connection, lst: AccountList, viewer_id: int, *, max_id: int | None,
                       limit: int) -> list[TimelineEntry]:
    """The list timeline: posts of the members the viewer still follows (however the follow ended:
    an Undo, a peer's Reject or Block), not direct ones unless they mention the viewer, and their
    boosts of public or unlisted posts, newest first. A member's reply shows when it answers the
    member themself, or, by the list's replies_policy, anyone the viewer follows (followed), another
    member (list), or nobody else (none), as Mastodon decides it. Planned per member like
    timelines.home_entries: each member's newest candidate, then the candidates of the `limit`
    members with the newest ones, then the newest `limit` of those (timelines.newest_per_author)."""
    before = max_id if max_id is not None else NO_MAX_ID
    posts = """FROM posts q
                  LEFT JOIN posts parent ON q.in_reply_to_uri IS NOT NULL AND parent.uri = q.in_reply_to_uri
                 WHERE q.actor_id = au.actor_id AND q.id < :before AND q.deleted_at IS NULL
                   AND (q.visibility != 'direct'
                        OR EXISTS (SELECT 1 FROM post_mentions m WHERE m.post_id = q.id
                                   AND m.actor_id = :viewer))
                   AND (q.in_reply_to_uri IS NULL OR parent.actor_id = q.actor_id
                        OR (:policy = 'followed' AND (parent.actor_id = :viewer OR EXISTS (
                            SELECT 1 FROM follows f WHERE f.follower_id = :viewer
                               AND f.followee_id = parent.actor_id AND f.state = 'accepted')))
                        OR (:policy = 'list' AND parent.actor_id IN (SELECT actor_id FROM members)))"""
    rows = await fetch_all(conn, f"""
        WITH members(actor_id) AS (
            SELECT m.actor_id FROM list_members m JOIN follows f
                ON f.follower_id = :viewer AND f.followee_id = m.actor_id AND f.state = 'accepted'
             WHERE m.list_id = :list),
        {newest_per_author("post", "members", "q.id", posts)},
        {newest_per_author("boost", "members", "a.id", BOOST_CANDIDATES)}
        {posts_branch(posts, engine(conn))}
        UNION ALL
        {boosts_branch(engine(conn))}
        ORDER BY sort_id DESC LIMIT :limit""",
        {"list": lst.id, "viewer": viewer_id, "policy": lst.replies_policy, "before": before,
         "limit": limit})  # type: ignore[arg-type]
    return [TimelineEntry(row["sort_id"], row["post_id"], row["boosted_by_id"]) for row in rows]


