"""Polls of posts (ActivityPub Question): the choices and their counts. Written in the transaction
that stores or updates the post (synchronous, for Database.write_batch); read for a whole page of
posts at once."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import aiosqlite

from fedserver.store.locks import lock_rows
from fedserver.store.rows import fetch_all


@dataclass(frozen=True)
class PollChoice:
    name: str
    votes: int


@dataclass(frozen=True)
class Poll:
    multiple: bool
    ends_at: str | None
    closed_at: str | None
    voters: int | None
    choices: tuple[PollChoice, ...]
    # Mastodon's hide_totals: counts are shown only once the poll has ended.
    hide_totals: bool = False

    @property
    def total_votes(self) -> int:
        return sum(choice.votes for choice in self.choices)

    def share(self, choice: PollChoice) -> int:
        """The choice's share of the votes in whole percent (of voters when several may be picked,
        as Mastodon shows it)."""
        base = (self.voters or self.total_votes) if self.multiple else self.total_votes
        return round(100 * choice.votes / base) if base else 0


def set_poll_sync(conn: sqlite3.Connection, post_id: int, poll: Poll | None, *, new: bool = False) -> None:
    """Replace the post's poll (an Update brings new counts, or ends the poll)."""
    if not new:
        conn.execute("DELETE FROM polls WHERE post_id = ?", (post_id,))
    if poll is None:
        return
    conn.execute("INSERT INTO polls (post_id, multiple, ends_at, closed_at, voters) VALUES (?, ?, ?, ?, ?)",
                 (post_id, int(poll.multiple), poll.ends_at, poll.closed_at, poll.voters))
    conn.executemany("INSERT INTO poll_options (post_id, position, name, votes) VALUES (?, ?, ?, ?)",
                     [(post_id, position, choice.name, choice.votes) for position, choice in enumerate(poll.choices)])


async def polls_for(conn: aiosqlite.Connection, post_ids: list[int]) -> dict[int, Poll]:
    """Each post's poll; posts without one are left out."""
    if not post_ids:
        return {}
    marks = ", ".join("?" for _ in post_ids)
    polls = await fetch_all(conn, f"SELECT post_id, multiple, ends_at, closed_at, voters, hide_totals FROM polls"
                                  f" WHERE post_id IN ({marks})", post_ids)
    if not polls:
        return {}
    choices: dict[int, list[PollChoice]] = {}
    for post_id, name, votes in await fetch_all(
            conn, f"SELECT post_id, name, votes FROM poll_options WHERE post_id IN ({marks})"
                  " ORDER BY post_id, position", post_ids):
        choices.setdefault(post_id, []).append(PollChoice(name, votes))
    return {row[0]: Poll(bool(row[1]), row[2], row[3], row[4], tuple(choices.get(row[0], [])), bool(row[5]))
            for row in polls}


async def lock_poll(conn: aiosqlite.Connection, post_id: int) -> None:
    """Hold the poll for this transaction before reading whether, and how, someone voted in it: two
    votes of one person reaching two processes at once (a double submit, two tabs) must not both
    find "not voted yet" on PostgreSQL and both count (store/locks.py). The post's row is the one
    locked: a remote poll's row is replaced whenever its server sends new counts."""
    await lock_rows(conn, "SELECT id FROM posts WHERE id = ?", (post_id,))


async def has_voted(conn: aiosqlite.Connection, post_id: int, actor_id: int) -> bool:
    rows = await fetch_all(conn, "SELECT 1 FROM poll_votes WHERE post_id = ? AND actor_id = ? LIMIT 1",
                           (post_id, actor_id))
    return bool(rows)


async def add_vote(conn: aiosqlite.Connection, *, post_id: int, actor_id: int, positions: list[int],
                   uris: list[str], now: str) -> None:
    """Record a vote and count it in the shown totals until the author's server sends its own."""
    await conn.executemany(
        "INSERT INTO poll_votes (post_id, actor_id, position, uri, created_at) VALUES (?, ?, ?, ?, ?)",
        [(post_id, actor_id, position, uri, now) for position, uri in zip(positions, uris)])
    await conn.execute(f"UPDATE poll_options SET votes = votes + 1 WHERE post_id = ?"
                       f" AND position IN ({', '.join('?' for _ in positions)})", (post_id, *positions))
    await conn.execute("UPDATE polls SET voters = voters + 1 WHERE post_id = ? AND voters IS NOT NULL", (post_id,))


async def votes_of(conn: aiosqlite.Connection, actor_id: int, post_ids: list[int]) -> dict[int, tuple[int, ...]]:
    """The choices this person voted for in each of these polls (polls not voted in are left out)."""
    if not post_ids:
        return {}
    marks = ", ".join("?" for _ in post_ids)
    found: dict[int, list[int]] = {}
    for post_id, position in await fetch_all(
            conn, f"SELECT post_id, position FROM poll_votes WHERE actor_id = ? AND post_id IN ({marks})"
                  " ORDER BY post_id, position", (actor_id, *post_ids)):
        found.setdefault(post_id, []).append(position)
    return {post_id: tuple(positions) for post_id, positions in found.items()}


# --- polls in local posts --------------------------------------------------------------------

async def add_local_poll(conn: aiosqlite.Connection, post_id: int, poll: Poll) -> None:
    """A new local post's poll (no votes yet) and the job that closes it at its end time."""
    await conn.execute("INSERT INTO polls (post_id, multiple, ends_at, closed_at, voters, hide_totals)"
                       " VALUES (?, ?, ?, NULL, 0, ?)", (post_id, int(poll.multiple), poll.ends_at,
                                                         int(poll.hide_totals)))
    await conn.executemany("INSERT INTO poll_options (post_id, position, name, votes) VALUES (?, ?, ?, 0)",
                           [(post_id, position, choice.name) for position, choice in enumerate(poll.choices)])
    await conn.execute("INSERT INTO poll_closings (post_id, due_at) VALUES (?, ?)", (post_id, poll.ends_at))


async def count_vote(conn: aiosqlite.Connection, *, post_id: int, actor_id: int, positions: list[int],
                     uris: list[str], now: str) -> list[int]:
    """Count a vote in a local poll: each (voter, choice) once, the voter once among the voters,
    however often a vote is delivered. Returns the positions newly counted."""
    first = not await has_voted(conn, post_id, actor_id)
    counted = []
    for position, uri in zip(positions, uris):
        cursor = await conn.execute(
            "INSERT INTO poll_votes (post_id, actor_id, position, uri, created_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING", (post_id, actor_id, position, uri, now))
        if cursor.rowcount:
            counted.append(position)
            await conn.execute("UPDATE poll_options SET votes = votes + 1 WHERE post_id = ? AND position = ?",
                               (post_id, position))
    if counted and first:
        await conn.execute("UPDATE polls SET voters = coalesce(voters, 0) + 1 WHERE post_id = ?", (post_id,))
    return counted


async def add_closing(conn: aiosqlite.Connection, post_id: int, due_at: str) -> None:
    """A closing job for a remote poll someone here voted in (its end is then told to them)."""
    await conn.execute("INSERT INTO poll_closings (post_id, due_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                       (post_id, due_at))


async def due_closings(conn: aiosqlite.Connection, now: str, limit: int = 50) -> list[int]:
    """Local polls whose end time has come and that are not closed yet, earliest first."""
    rows = await fetch_all(conn, "SELECT post_id FROM poll_closings WHERE due_at <= ? ORDER BY due_at LIMIT ?",
                           (now, limit))
    return [row[0] for row in rows]


async def next_closing(conn: aiosqlite.Connection) -> str | None:
    rows = await fetch_all(conn, "SELECT min(due_at) FROM poll_closings")
    return rows[0][0] if rows else None


async def close_poll(conn: aiosqlite.Connection, post_id: int, now: str) -> bool:
    """Close the poll and drop its job; False when another process closed it first."""
    cursor = await conn.execute("DELETE FROM poll_closings WHERE post_id = ?", (post_id,))
    if not cursor.rowcount:
        return False
    await conn.execute("UPDATE polls SET closed_at = ? WHERE post_id = ? AND closed_at IS NULL", (now, post_id))
    return True


async def drop_closing(conn: aiosqlite.Connection, post_id: int) -> bool:
    """Drop a remote poll's job (see add_closing); False when another process took it first."""
    cursor = await conn.execute("DELETE FROM poll_closings WHERE post_id = ?", (post_id,))
    return cursor.rowcount > 0


async def voter_ids(conn: aiosqlite.Connection, post_id: int) -> list[int]:
    rows = await fetch_all(conn, "SELECT DISTINCT actor_id FROM poll_votes WHERE post_id = ?", (post_id,))
    return [row[0] for row in rows]


# --- "the poll has ended" notices ---------------------------------------------------------------

_CLAIM_END_NOTICE = "INSERT INTO poll_end_notices (post_id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING"
_LOCAL_VOTERS = ("SELECT DISTINCT v.actor_id FROM poll_votes v JOIN actors a ON a.id = v.actor_id"
                 " WHERE v.post_id = ? AND a.is_local = 1 ORDER BY v.actor_id")


async def claim_end_notice(conn: aiosqlite.Connection, post_id: int, now: str) -> bool:
    """True the first time only: the poll's end is then announced to its voters and author."""
    cursor = await conn.execute(_CLAIM_END_NOTICE, (post_id, now))
    return cursor.rowcount > 0


def claim_end_notice_sync(conn: sqlite3.Connection, post_id: int, now: str) -> bool:
    return conn.execute(_CLAIM_END_NOTICE, (post_id, now)).rowcount > 0


async def local_voter_ids(conn: aiosqlite.Connection, post_id: int) -> list[int]:
    return [row[0] for row in await fetch_all(conn, _LOCAL_VOTERS, (post_id,))]


def local_voter_ids_sync(conn: sqlite3.Connection, post_id: int) -> list[int]:
    return [row[0] for row in conn.execute(_LOCAL_VOTERS, (post_id,)).fetchall()]
