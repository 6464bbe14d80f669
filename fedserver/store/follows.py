"""The social graph: follows (pending and accepted) and blocks."""
from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from fedserver.store.actors import Actor
from fedserver.store.rows import fetch_all, fetch_one, fetch_value, from_row


@dataclass
class Follow:
    id: int
    uri: str
    follower_id: int
    followee_id: int
    state: str
    created_at: str
    updated_at: str


async def upsert_follow(conn: aiosqlite.Connection, *, uri: str, follower_id: int, followee_id: int,
                        state: str, now: str) -> Follow:
    """Create the follow, or refresh an existing one's id and state (a repeated Follow)."""
    await conn.execute(
        "INSERT INTO follows (uri, follower_id, followee_id, state, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (follower_id, followee_id) DO UPDATE SET"
        " uri = excluded.uri, state = CASE WHEN follows.state = 'accepted' THEN 'accepted' ELSE excluded.state END,"
        " updated_at = excluded.updated_at",
        (uri, follower_id, followee_id, state, now, now))
    follow = await get_follow(conn, follower_id, followee_id)
    assert follow is not None
    return follow


async def get_follow(conn: aiosqlite.Connection, follower_id: int, followee_id: int) -> Follow | None:
    row = await fetch_one(conn, "SELECT * FROM follows WHERE follower_id = ? AND followee_id = ?",
                          (follower_id, followee_id))
    return from_row(Follow, row)


async def follow_states(conn: aiosqlite.Connection, follower_id: int, followee_ids: list[int]) -> dict[int, str]:
    """The state of follower_id's follow of each of followee_ids that it follows or asked to."""
    if not followee_ids:
        return {}
    marks = ", ".join("?" for _ in followee_ids)
    rows = await fetch_all(conn, f"SELECT followee_id, state FROM follows WHERE follower_id = ?"
                                 f" AND followee_id IN ({marks})", (follower_id, *followee_ids))
    return {int(row[0]): str(row[1]) for row in rows}


async def get_follow_by_uri(conn: aiosqlite.Connection, uri: str) -> Follow | None:
    return from_row(Follow, await fetch_one(conn, "SELECT * FROM follows WHERE uri = ?", (uri,)))


async def set_follow_state(conn: aiosqlite.Connection, follow_id: int, state: str, now: str) -> None:
    await conn.execute("UPDATE follows SET state = ?, updated_at = ? WHERE id = ?", (state, now, follow_id))


async def delete_follow(conn: aiosqlite.Connection, follow_id: int) -> bool:
    """False when it was gone already (another process ended it since it was read)."""
    cur = await conn.execute("DELETE FROM follows WHERE id = ?", (follow_id,))
    return cur.rowcount > 0


async def delete_follows_of_actor(conn: aiosqlite.Connection, actor_id: int) -> None:
    await conn.execute("DELETE FROM follows WHERE follower_id = ? OR followee_id = ?", (actor_id, actor_id))


async def follows_involving(conn: aiosqlite.Connection, actor_id: int) -> list[Follow]:
    """Every follow, pending or accepted, from or to the actor."""
    rows = await fetch_all(conn, "SELECT * FROM follows WHERE follower_id = ? UNION SELECT * FROM follows"
                                 " WHERE followee_id = ?", (actor_id, actor_id))
    return [follow for follow in (from_row(Follow, row) for row in rows) if follow is not None]


async def list_followers(conn: aiosqlite.Connection, followee_id: int, *, state: str = "accepted",
                         after_id: int | None = None, limit: int = 1000) -> list[tuple[Follow, Actor]]:
    """Followers in follow order, paged by follow id."""
    return await _list_side(conn, "followee_id", "follower_id", followee_id, state, after_id, limit)


async def list_following(conn: aiosqlite.Connection, follower_id: int, *, state: str = "accepted",
                         after_id: int | None = None, limit: int = 1000) -> list[tuple[Follow, Actor]]:
    return await _list_side(conn, "follower_id", "followee_id", follower_id, state, after_id, limit)


async def _list_side(conn: aiosqlite.Connection, own: str, other: str, actor_id: int, state: str,
                     after_id: int | None, limit: int) -> list[tuple[Follow, Actor]]:
    rows = await fetch_all(
        conn, f"SELECT f.id AS f_id, f.uri AS f_uri, f.follower_id, f.followee_id, f.state,"
              f" f.created_at AS f_created_at, f.updated_at AS f_updated_at, a.* FROM follows f"
              f" JOIN actors a ON a.id = f.{other} WHERE f.{own} = ? AND f.state = ? AND f.id > ?"
              f" ORDER BY f.id LIMIT ?", (actor_id, state, after_id or 0, limit))
    result = []
    for row in rows:
        follow = Follow(id=row["f_id"], uri=row["f_uri"], follower_id=row["follower_id"],
                        followee_id=row["followee_id"], state=row["state"], created_at=row["f_created_at"],
                        updated_at=row["f_updated_at"])
        actor = from_row(Actor, row)
        assert actor is not None
        result.append((follow, actor))
    return result


async def count_followers(conn: aiosqlite.Connection, followee_id: int) -> int:
    return int(await fetch_value(
        conn, "SELECT count(*) FROM follows WHERE followee_id = ? AND state = 'accepted'", (followee_id,)) or 0)


async def count_following(conn: aiosqlite.Connection, follower_id: int) -> int:
    return int(await fetch_value(
        conn, "SELECT count(*) FROM follows WHERE follower_id = ? AND state = 'accepted'", (follower_id,)) or 0)


async def follower_inboxes(conn: aiosqlite.Connection, followee_id: int) -> list[str]:
    """Distinct preferred inboxes (shared inbox when known) of remote accepted followers."""
    rows = await fetch_all(
        conn, "SELECT DISTINCT COALESCE(a.shared_inbox_url, a.inbox_url) FROM follows f"
              " JOIN actors a ON a.id = f.follower_id WHERE f.followee_id = ? AND f.state = 'accepted'"
              " AND a.is_local = 0 AND a.deleted_at IS NULL AND COALESCE(a.shared_inbox_url, a.inbox_url) IS NOT NULL",
        (followee_id,))
    return [row[0] for row in rows]


async def local_followers_of(conn: aiosqlite.Connection, followee_id: int) -> list[int]:
    rows = await fetch_all(
        conn, "SELECT f.follower_id FROM follows f JOIN local_accounts l ON l.actor_id = f.follower_id"
              " WHERE f.followee_id = ? AND f.state = 'accepted'", (followee_id,))
    return [row[0] for row in rows]


async def add_block(conn: aiosqlite.Connection, *, uri: str, actor_id: int, target_id: int, now: str) -> None:
    await conn.execute(
        "INSERT INTO blocks (uri, actor_id, target_id, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (actor_id, target_id) DO NOTHING", (uri, actor_id, target_id, now))


async def remove_block(conn: aiosqlite.Connection, actor_id: int, target_id: int) -> None:
    await conn.execute("DELETE FROM blocks WHERE actor_id = ? AND target_id = ?", (actor_id, target_id))


async def hidden_ids(conn: aiosqlite.Connection, actor_id: int) -> set[int]:
    """The accounts this account blocked or muted: nothing of theirs is shown to it."""
    rows = await fetch_all(conn, "SELECT target_id FROM blocks WHERE actor_id = ?"
                                 " UNION SELECT target_id FROM mutes WHERE actor_id = ?", (actor_id, actor_id))
    return {row[0] for row in rows}


async def add_mute(conn: aiosqlite.Connection, actor_id: int, target_id: int, now: str) -> None:
    await conn.execute("INSERT INTO mutes (actor_id, target_id, created_at) VALUES (?, ?, ?)"
                       " ON CONFLICT (actor_id, target_id) DO NOTHING", (actor_id, target_id, now))


async def remove_mute(conn: aiosqlite.Connection, actor_id: int, target_id: int) -> None:
    await conn.execute("DELETE FROM mutes WHERE actor_id = ? AND target_id = ?", (actor_id, target_id))


async def is_muted_by(conn: aiosqlite.Connection, actor_id: int, muter_id: int) -> bool:
    return await fetch_value(conn, "SELECT 1 FROM mutes WHERE actor_id = ? AND target_id = ?",
                             (muter_id, actor_id)) is not None


async def get_block_uri(conn: aiosqlite.Connection, actor_id: int, target_id: int) -> str | None:
    return await fetch_value(conn, "SELECT uri FROM blocks WHERE actor_id = ? AND target_id = ?", (actor_id, target_id))


async def is_blocked_by(conn: aiosqlite.Connection, actor_id: int, blocker_id: int) -> bool:
    return await fetch_value(conn, "SELECT 1 FROM blocks WHERE actor_id = ? AND target_id = ?",
                             (blocker_id, actor_id)) is not None


async def list_follow_requests(conn: aiosqlite.Connection, followee_id: int) -> list[tuple[Follow, Actor]]:
    return await list_followers(conn, followee_id, state="pending")


async def remote_domains_in_follows(conn: aiosqlite.Connection) -> list[str]:
    """The domains (actors.domain, as stored) of remote accounts on either side of a follow."""
    rows = await fetch_all(
        conn, "SELECT DISTINCT a.domain FROM follows f JOIN actors a ON a.id = f.follower_id WHERE a.is_local = 0"
              " UNION SELECT DISTINCT a.domain FROM follows f JOIN actors a ON a.id = f.followee_id"
              " WHERE a.is_local = 0")
    return [row[0] for row in rows]


async def delete_follows_with_domains(conn: aiosqlite.Connection, domains: list[str]) -> int:
    """End every follow, either way and in any state, with a remote account on these domains."""
    ended = 0
    for start in range(0, len(domains), 400):
        chunk = domains[start:start + 400]
        marks = ", ".join("?" for _ in chunk)
        accounts = f"SELECT id FROM actors WHERE is_local = 0 AND domain IN ({marks})"
        cur = await conn.execute(f"DELETE FROM follows WHERE follower_id IN ({accounts}) OR followee_id IN ({accounts})",
                                 (*chunk, *chunk))
        ended += max(cur.rowcount, 0)
    return ended


async def list_side_before(conn: aiosqlite.Connection, actor_id: int, *, followers: bool, max_id: int | None,
                           limit: int, state: str = "accepted") -> list[tuple[int, Actor]]:
    """(follow id, the other account) of follows in `state`, newest first, below follow id max_id:
    the client API's followers and following lists (and follow requests, state 'pending'), paged
    by follow id."""
    own, other = ("followee_id", "follower_id") if followers else ("follower_id", "followee_id")
    rows = await fetch_all(
        conn, f"SELECT f.id AS f_id, a.* FROM follows f JOIN actors a ON a.id = f.{other}"
              f" WHERE f.{own} = ? AND f.state = ? AND f.id < ? ORDER BY f.id DESC LIMIT ?",
        (actor_id, state, max_id if max_id is not None else 2**62, limit))
    result = []
    for row in rows:
        actor = from_row(Actor, row)
        assert actor is not None
        result.append((row["f_id"], actor))
    return result
