"""Reading timelines: the home feed (posts and boosts of followed accounts), the local and hashtag
timelines, notifications, the batch look-ups that turn a page of posts into cards (posts and
authors by id) and a profile's counts. Every list pages by id: items older than max_id, newest
first."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import aiosqlite

from fedserver.store.actors import Actor
from fedserver.store.posts import Post
from fedserver.store.rows import engine, fetch_all, fetch_one, from_rows

# Larger than any time-ordered id (milliseconds << 16 fits well under 2**62).
NO_MAX_ID = 2**62


@dataclass
class TimelineEntry:
    """One line of the home feed: a post, or a boost of it (sort_id is then the boost's id)."""
    sort_id: int
    post_id: int
    boosted_by_id: int | None


# Feeds of followed accounts (home, a list) are planned per author, in two steps. A plain "author
# IN (follows) ORDER BY id DESC LIMIT n" is answered by reading and sorting every older post of
# every followed account (a multi-index OR cannot stop early): p50 310 ms on 1M posts. Instead:
# 1. heads: each author's newest candidate, one index seek each.
# 2. Only the `limit` authors with the newest heads can have a candidate among the newest `limit`:
#    any other author's candidates are older than that author's head, which is older than `limit`
#    heads, each a newer candidate. Nor can a candidate older than the `limit`-th head (the same
#    count). So only those authors' candidates are read, from their head down to that floor, at
#    most `limit` each, and the newest `limit` of all are taken.
# Reading `limit` candidates of every author instead (the plan before) took 1.6 ms for 121
# follows and 5.3 ms for 400 on 1M posts; the two steps 0.8 and 1.7 ms (bench/RESULTS.md, pages).
# The heads are MATERIALIZED: computed once, not once per use.

def newest_per_author(name: str, authors: str, key: str, candidates: str) -> str:
    """The CTEs `{name}_heads`, `{name}_authors` and `{name}_floor` of step 1 for `candidates`, a
    FROM ... WHERE clause of one author's candidates in which the author is `au.actor_id` and
    `key` is the candidate's id, over the authors in the CTE `authors`."""
    return f"""{name}_heads(actor_id, id) AS MATERIALIZED (
            SELECT au.actor_id, (SELECT {key} {candidates} ORDER BY {key} DESC LIMIT 1) FROM {authors} au),
        {name}_authors(actor_id, id) AS MATERIALIZED (
            SELECT actor_id, id FROM {name}_heads WHERE id IS NOT NULL ORDER BY id DESC LIMIT :limit),
        {name}_floor(id) AS (
            SELECT CASE WHEN count(*) = :limit THEN min(id) ELSE 0 END FROM {name}_authors)"""


def candidates_of_newest(name: str, key: str, candidates: str, columns: str | None = None) -> str:
    """Step 2's rows (`columns`, by default the key): candidates of one of `{name}_authors` (as
    au), from its head down to the floor."""
    return (f"SELECT {columns or key} {candidates} AND {key} >= (SELECT id FROM {name}_floor)"
            f" ORDER BY {key} DESC LIMIT :limit")


# Step 2 is a correlated "newest `limit` of this author" per author. SQLite plans it as an IN list
# per author; PostgreSQL turns that IN into a scan of the whole table checking the list per row
# (every older boost on the instance, every post of each author: a page took 30 ms on 3,000 posts
# and grew with each), so there it is a LATERAL subquery, which SQLite does not have.

def posts_branch(candidates: str, engine: str) -> str:
    """The posts of a feed's authors, newest first (after newest_per_author("post", ...) over the
    same `candidates`, whose key is q.id); on SQLite read from the covering index."""
    newest = candidates_of_newest("post", "q.id", candidates)
    if engine == "postgresql":
        return f"""SELECT sort_id, post_id, boosted_by_id FROM (
            SELECT c.id AS sort_id, c.id AS post_id, CAST(NULL AS INTEGER) AS boosted_by_id
              FROM post_authors au CROSS JOIN LATERAL ({newest}) AS c(id)
             ORDER BY c.id DESC LIMIT :limit) AS own"""
    return f"""SELECT sort_id, post_id, boosted_by_id FROM (
            SELECT p.id AS sort_id, p.id AS post_id, CAST(NULL AS INTEGER) AS boosted_by_id
              FROM post_authors au JOIN posts p INDEXED BY posts_actor_cover
                ON p.actor_id = au.actor_id AND p.id IN ({newest})
             ORDER BY p.id DESC LIMIT :limit) AS own"""


# An author's boosts that a feed shows: of live public or unlisted posts.
BOOST_CANDIDATES = """FROM announces a JOIN posts p ON p.id = a.post_id
                 WHERE a.actor_id = au.actor_id AND a.id < :before AND p.deleted_at IS NULL
                   AND p.visibility IN ('public', 'unlisted')"""


def boosts_branch(engine: str) -> str:
    """The boosts of a feed's authors, newest first (after newest_per_author("boost", ...))."""
    if engine == "postgresql":
        newest = candidates_of_newest("boost", "a.id", BOOST_CANDIDATES, "a.id, a.post_id, a.actor_id")
        return f"""SELECT sort_id, post_id, boosted_by_id FROM (
            SELECT c.id AS sort_id, c.post_id AS post_id, c.actor_id AS boosted_by_id
              FROM boost_authors au CROSS JOIN LATERAL ({newest}) AS c
             ORDER BY c.id DESC LIMIT :limit) AS boosts"""
    return f"""SELECT sort_id, post_id, boosted_by_id FROM (
            SELECT b.id AS sort_id, b.post_id AS post_id, b.actor_id AS boosted_by_id
              FROM boost_authors au JOIN announces b ON b.id IN (
                {candidates_of_newest("boost", "a.id", BOOST_CANDIDATES)})
             ORDER BY b.id DESC LIMIT :limit) AS boosts"""


def _tagged_branch(engine: str) -> str:
    """Public posts with one of the viewer's followed hashtags, newest first: the newest `limit`
    of each tag, then of all."""
    newest = """SELECT u.post_id FROM post_tags u JOIN posts p ON p.id = u.post_id
                 WHERE u.tag = ft.tag AND u.post_id < :before AND p.visibility = 'public'
                   AND p.deleted_at IS NULL
                 ORDER BY u.post_id DESC LIMIT :limit"""
    if engine == "postgresql":
        return f"""SELECT sort_id, post_id, boosted_by_id FROM (
            SELECT c.post_id AS sort_id, c.post_id AS post_id, CAST(NULL AS INTEGER) AS boosted_by_id
              FROM followed_tags ft CROSS JOIN LATERAL ({newest}) AS c
             WHERE ft.actor_id = :viewer
             ORDER BY c.post_id DESC LIMIT :limit) AS tagged"""
    return f"""SELECT sort_id, post_id, boosted_by_id FROM (
            SELECT t.post_id AS sort_id, t.post_id AS post_id, CAST(NULL AS INTEGER) AS boosted_by_id
              FROM followed_tags ft JOIN post_tags t ON t.tag = ft.tag AND t.post_id IN ({newest})
             WHERE ft.actor_id = :viewer
             ORDER BY t.post_id DESC LIMIT :limit) AS tagged"""


async def home_entries(conn: aiosqlite.Connection, viewer_id: int, *, max_id: int | None,
                       limit: int) -> list[TimelineEntry]:
    """The viewer's own posts; posts of accounts they follow (accepted follows only) that they may
    see; boosts of public or unlisted posts by those accounts or by the viewer; and public posts
    with a hashtag the viewer follows (one entry per followed tag: the caller shows a post once).
    Accounts on one of the viewer's exclusive lists are read on that list, not here. Planned per
    author (newest_per_author). Posts are read from the covering index (actor_id, id, visibility,
    deleted_at), not the table; INDEXED BY keeps that plan whatever statistics the database has."""
    before = max_id if max_id is not None else NO_MAX_ID
    posts = """FROM posts q INDEXED BY posts_actor_cover
                 WHERE q.actor_id = au.actor_id AND q.id < :before AND q.deleted_at IS NULL
                   AND (q.actor_id = :viewer OR q.visibility != 'direct'
                        OR EXISTS (SELECT 1 FROM post_mentions m WHERE m.post_id = q.id
                                   AND m.actor_id = :viewer))"""
    kind = engine(conn)
    rows = await fetch_all(conn, f"""
        WITH authors(actor_id) AS (
            SELECT followee_id FROM follows WHERE follower_id = :viewer AND state = 'accepted'
               AND followee_id NOT IN (SELECT m.actor_id FROM lists l JOIN list_members m ON m.list_id = l.id
                                        WHERE l.owner_id = :viewer AND l.exclusive = 1)
            UNION SELECT :viewer),
        {newest_per_author("post", "authors", "q.id", posts)},
        {newest_per_author("boost", "authors", "a.id", BOOST_CANDIDATES)}
        {posts_branch(posts, kind)}
        UNION ALL
        {boosts_branch(kind)}
        UNION ALL
        {_tagged_branch(kind)}
        ORDER BY sort_id DESC LIMIT :limit""",
        {"viewer": viewer_id, "before": before, "limit": limit})  # type: ignore[arg-type]
    return [TimelineEntry(row["sort_id"], row["post_id"], row["boosted_by_id"]) for row in rows]


# A public timeline leaves out posts by suspended, silenced or deleted accounts. Asked as a
# correlated EXISTS on the author's row (one primary-key look-up per post read), not as a JOIN:
# for the JOIN SQLite builds a Bloom filter over every row of actors before reading the first post
# (1.1 ms for 5,000 accounts on bench/pages.py's 1M posts, growing with every account known here),
# where the page needs twenty look-ups (0.06 ms). Both mean the same: an actor id is one row.
AUTHOR_SHOWN = ("EXISTS (SELECT 1 FROM actors a WHERE a.id = p.actor_id AND a.suspended_at IS NULL"
                " AND a.silenced_at IS NULL AND a.deleted_at IS NULL)")


async def local_public_posts(conn: aiosqlite.Connection, *, max_id: int | None, limit: int) -> list[Post]:
    """Public posts of local accounts that are not suspended or silenced."""
    rows = await fetch_all(
        conn, "SELECT p.* FROM posts p"
              " WHERE p.is_local = 1 AND p.visibility = 'public' AND p.deleted_at IS NULL AND p.id < ?"
              " AND " + AUTHOR_SHOWN + " ORDER BY p.id DESC LIMIT ?",
        (max_id if max_id is not None else NO_MAX_ID, limit))
    return from_rows(Post, rows)


async def remote_public_posts(conn: aiosqlite.Connection, *, max_id: int | None, limit: int) -> list[Post]:
    """Public posts from other servers (the federated timeline), none by suspended, silenced or
    deleted accounts: the posts_local_public index (is_local, visibility, id) read backwards."""
    rows = await fetch_all(
        conn, "SELECT p.* FROM posts p"
              " WHERE p.is_local = 0 AND p.visibility = 'public' AND p.deleted_at IS NULL AND p.id < ?"
              " AND " + AUTHOR_SHOWN + " ORDER BY p.id DESC LIMIT ?",
        (max_id if max_id is not None else NO_MAX_ID, limit))
    return from_rows(Post, rows)


async def tagged_public_posts(conn: aiosqlite.Connection, tag: str, *, include_remote: bool,
                              max_id: int | None, limit: int) -> list[Post]:
    """Public posts carrying the hashtag (uses the post_tags_tag index), but none by suspended or
    silenced accounts (an admin's silence keeps an account out of every public timeline)."""
    rows = await fetch_all(
        conn, "SELECT p.* FROM post_tags t JOIN posts p ON p.id = t.post_id"
              " WHERE t.tag = ? AND t.post_id < ? AND p.visibility = 'public' AND p.deleted_at IS NULL"
              " AND (p.is_local = 1 OR ? = 1) AND " + AUTHOR_SHOWN +
              " ORDER BY t.post_id DESC LIMIT ?",
        (tag.lower(), max_id if max_id is not None else NO_MAX_ID, int(include_remote), limit))
    return from_rows(Post, rows)


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


async def posts_by_ids(conn: aiosqlite.Connection, post_ids: list[int]) -> dict[int, Post]:
    if not post_ids:
        return {}
    rows = await fetch_all(conn, f"SELECT * FROM posts WHERE id IN ({_marks(post_ids)})", tuple(post_ids))
    return {post.id: post for post in from_rows(Post, rows)}


async def actors_by_ids(conn: aiosqlite.Connection, actor_ids: list[int]) -> dict[int, Actor]:
    if not actor_ids:
        return {}
    rows = await fetch_all(conn, f"SELECT * FROM actors WHERE id IN ({_marks(actor_ids)})", tuple(actor_ids))
    return {actor.id: actor for actor in from_rows(Actor, rows)}


async def notifications(conn: aiosqlite.Connection, recipient_id: int, *, max_id: int | None,
                        limit: int) -> list[dict]:
    """Notifications newest first, with the id of the actor they come from (for links and cards)."""
    rows = await fetch_all(
        conn, f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications"
              " WHERE recipient_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
        (recipient_id, max_id if max_id is not None else NO_MAX_ID, limit))
    return [dict(row) for row in rows]


# The kind as shown (migrations/0141: kinds the first CHECK lacks are kept in shown_kind).
_NOTIFICATION_COLUMNS = ("id, coalesce(shown_kind, kind) AS kind, from_actor_id, post_id, created_at, read_at,"
                         " group_key")


async def notifications_in_group(conn: aiosqlite.Connection, recipient_id: int, group_key: str, *,
                                 limit: int) -> list[dict]:
    """The notifications of one group (notifications_group index), newest first."""
    rows = await fetch_all(
        conn, f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE recipient_id = ? AND group_key = ?"
              " ORDER BY id DESC LIMIT ?", (recipient_id, group_key, limit))
    return [dict(row) for row in rows]


async def notification_by_id(conn: aiosqlite.Connection, recipient_id: int, notification_id: int) -> list[dict]:
    rows = await fetch_all(
        conn, f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE recipient_id = ? AND id = ?",
        (recipient_id, notification_id))
    return [dict(row) for row in rows]


async def unread_notification_kinds(conn: aiosqlite.Connection, recipient_id: int, *,
                                    limit: int) -> list[dict]:
    """(id, kind, group_key) of the newest unread notifications, for counting unread groups."""
    rows = await fetch_all(
        conn, "SELECT id, coalesce(shown_kind, kind) AS kind, group_key FROM notifications"
              " WHERE recipient_id = ? AND read_at IS NULL ORDER BY id DESC LIMIT ?", (recipient_id, limit))
    return [dict(row) for row in rows]


async def profile_counts(conn: aiosqlite.Connection, actor_id: int, visibilities: tuple[str, ...]
                         ) -> tuple[int, int, int]:
    """(live posts with one of the visibilities, followers, followed accounts) of a profile,
    accepted follows only, in one query: posts from account_post_counts (kept by store/posts.py),
    the follows each a range of one index (follows_followee, the (follower_id, followee_id) unique)."""
    marks = _marks(visibilities)
    row = await fetch_one(
        conn, f"SELECT (SELECT COALESCE(sum(posts), 0) FROM account_post_counts WHERE actor_id = ?"
              f" AND visibility IN ({marks})),"
              " (SELECT count(*) FROM follows WHERE followee_id = ? AND state = 'accepted'),"
              " (SELECT count(*) FROM follows WHERE follower_id = ? AND state = 'accepted')",
        (actor_id, *visibilities, actor_id, actor_id))
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


@dataclass(frozen=True)
class AccountCounts:
    """What an account entity counts (profile_counts) and when the account last posted."""
    posts: int
    followers: int
    following: int
    last_status_at: str | None


async def account_counts(conn: aiosqlite.Connection, visibilities_of: dict[int, tuple[str, ...]]
                         ) -> dict[int, AccountCounts]:
    """profile_counts and the newest counted post's time for many accounts at once (the authors
    and boosters on a page of statuses), each account's posts counted over its own visibilities:
    one read for the whole page, not three per account. Posts from account_post_counts; follows
    counted per account in subqueries (a range of one index each), which walks them about twice as
    fast as one GROUP BY over all of them; the newest post from the end of its posts_actor_cover range."""
    if not visibilities_of:
        return {}
    groups: dict[tuple[str, ...], list[int]] = {}
    for actor_id, visibilities in visibilities_of.items():
        groups.setdefault(tuple(visibilities), []).append(actor_id)
    ctes, parts, params = [], [], []
    for n, (visibilities, ids) in enumerate(groups.items()):
        ctes.append(f"w{n}(actor_id) AS (VALUES {', '.join('(?)' for _ in ids)})")
        params += ids
    for n, visibilities in enumerate(groups):
        marks = _marks(visibilities)
        parts.append(
            f"SELECT w.actor_id,"
            f" (SELECT COALESCE(sum(c.posts), 0) FROM account_post_counts c WHERE c.actor_id = w.actor_id"
            f"  AND c.visibility IN ({marks})),"
            f" (SELECT count(*) FROM follows f WHERE f.followee_id = w.actor_id AND f.state = 'accepted'),"
            f" (SELECT count(*) FROM follows f WHERE f.follower_id = w.actor_id AND f.state = 'accepted'),"
            f" (SELECT p.published_at FROM posts p WHERE p.actor_id = w.actor_id AND p.deleted_at IS NULL"
            f"  AND p.visibility IN ({marks}) ORDER BY p.id DESC LIMIT 1)"
            f" FROM w{n} w")
        params += [*visibilities, *visibilities]
    rows = await fetch_all(conn, "WITH " + ", ".join(ctes) + " " + " UNION ALL ".join(parts), tuple(params))
    return {int(row[0]): AccountCounts(posts=int(row[1]), followers=int(row[2]), following=int(row[3]),
                                       last_status_at=row[4]) for row in rows}


async def public_posts(conn: aiosqlite.Connection, *, local: bool, remote: bool, max_id: int | None,
                       limit: int) -> list[Post]:
    """Public posts we hold, newest first (the client API's public timeline): local ones, remote
    ones or both, of accounts that are not suspended or deleted. Walks posts by id (the primary
    key) from max_id down."""
    rows = await fetch_all(
        conn, "SELECT p.* FROM posts p"
              " WHERE p.id < ? AND p.visibility = 'public' AND p.deleted_at IS NULL"
              " AND ((p.is_local = 1 AND ? = 1) OR (p.is_local = 0 AND ? = 1))"
              " AND EXISTS (SELECT 1 FROM actors a WHERE a.id = p.actor_id"
              " AND a.suspended_at IS NULL AND a.deleted_at IS NULL) ORDER BY p.id DESC LIMIT ?",
        (max_id if max_id is not None else NO_MAX_ID, int(local), int(remote), limit))
    return from_rows(Post, rows)
