"""Full-text search over posts and account names, and hashtags by prefix (migration 0060).

The interface is plain phrases (what the person typed, split by services.search): turning them
into the engine's query language happens here alone: SQLite's FTS5 tables, or on PostgreSQL GIN
indexes over a tsvector expression (migration 0060's .postgresql.sql: fedserver_search_vector and
fedserver_search_query, the phrases passed as an array, never as query syntax). Who may find what
is decided in the queries below, at search time, the same on both engines."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from fedserver.store.actors import Actor
from fedserver.store.posts import Post
from fedserver.store.rows import engine, fetch_all, fetch_value, from_rows

# Accounts of a domain an admin blocked (or of its subdomains): their stored posts and profiles
# stay out of search.
_DOMAIN_BLOCKED = ("EXISTS (SELECT 1 FROM domain_blocks d WHERE a.domain = d.domain"
                   " OR a.domain LIKE '%.' || d.domain)")
# Posts ids are below this (time-ordered 64-bit ids): "no max_id" without a second query shape.
NO_MAX_ID = 2 ** 63 - 1
# Full-text matches one page of results looks at, at most (search_posts).
SCAN_WINDOW = 2000
# ... and first: most pages fill within it.
FIRST_WINDOW = 200


def fts5_phrases(phrases: Sequence[str], *, prefix_last: bool = False) -> str:
    """FTS5 query text matching every phrase (AND). Each is quoted as an FTS5 string (a double
    quote doubled), so nothing typed is read as query syntax: NEAR(, AND, *, ^, column filters
    and stray quotes are just text. prefix_last: the last phrase may be the start of a word."""
    quoted = ['"' + phrase.replace('"', '""') + '"' for phrase in phrases]
    if prefix_last and quoted:
        quoted[-1] += "*"
    return " ".join(quoted)


# The searcher's own posts of any visibility; others' only if public or unlisted and their author
# opted into search (indexable, Mastodon 4.2's flag; a local person's setting). Never posts of
# suspended or deleted accounts, of accounts the searcher blocked or muted or that block the
# searcher, nor of silenced accounts the searcher does not follow (as the public timelines do), nor
# of blocked domains.
_POST_VISIBLE = (
    " p.deleted_at IS NULL AND a.suspended_at IS NULL AND a.deleted_at IS NULL"
    " AND NOT " + _DOMAIN_BLOCKED +
    " AND (p.actor_id = :viewer OR (p.visibility IN ('public', 'unlisted') AND a.indexable = 1"
    "      AND (a.silenced_at IS NULL OR EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = :viewer"
    "           AND f.followee_id = a.id AND f.state = 'accepted'))"
    "      AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.actor_id = :viewer AND b.target_id = a.id)"
    "           OR (b.actor_id = a.id AND b.target_id = :viewer))"
    "      AND NOT EXISTS (SELECT 1 FROM mutes m WHERE m.actor_id = :viewer AND m.target_id = a.id)))")


_FTS5_POSTS_BEYOND = ("SELECT rowid FROM post_search WHERE post_search MATCH ? AND rowid < ?"
                      " ORDER BY rowid DESC LIMIT 1 OFFSET ?")
_FTS5_POSTS_PAGE = (
    "SELECT p.* FROM post_search s JOIN posts p ON p.id = s.rowid JOIN actors a ON a.id = p.actor_id"
    " WHERE post_search MATCH :match AND s.rowid < :max_id AND s.rowid > :beyond AND" + _POST_VISIBLE +
    " ORDER BY s.rowid DESC LIMIT :limit OFFSET :offset")
# PostgreSQL: the post_search GIN index finds the matches; they are read newest first by id.
_PG_POST_MATCH = "fedserver_search_vector(p.content_text, p.summary) @@ fedserver_search_query({}, false)"
_PG_POSTS_BEYOND = ("SELECT p.id FROM posts p WHERE " + _PG_POST_MATCH.format("?") + " AND p.id < ?"
                    " ORDER BY p.id DESC LIMIT 1 OFFSET ?")
_PG_POSTS_PAGE = (
    "SELECT p.* FROM posts p JOIN actors a ON a.id = p.actor_id"
    " WHERE " + _PG_POST_MATCH.format(":match") + " AND p.id < :max_id AND p.id > :beyond AND" + _POST_VISIBLE +
    " ORDER BY p.id DESC LIMIT :limit OFFSET :offset")


@dataclass
class PostMatches:
    """One page of found posts; next_max_id is where the next page starts when more may follow
    (also when this page is short because its window of matches held few the searcher may find)."""
    posts: list[Post]
    next_max_id: int | None


async def search_posts(conn: aiosqlite.Connection, phrases: Sequence[str], *, viewer_id: int,
                       max_id: int | None = None, offset: int = 0, limit: int = 20,
                       window: int = SCAN_WINDOW) -> PostMatches:
    """Posts containing every phrase (text or content warning) that viewer_id may find, newest
    first, older than max_id. FTS5 walks its matches in rowid (= post id, time-ordered) order, so
    a page stops after `limit` visible matches; and it looks at no more than `window` matches, so a
    common word in many posts nobody may find costs a bounded amount of work per page."""
    if not phrases:
        return PostMatches([], None)
    below = max_id if max_id is not None else NO_MAX_ID
    if engine(conn) == "postgresql":
        match, beyond_sql, page_sql = list(phrases), _PG_POSTS_BEYOND, _PG_POSTS_PAGE
    else:
        match, beyond_sql, page_sql = fts5_phrases(phrases), _FTS5_POSTS_BEYOND, _FTS5_POSTS_PAGE
    # A small window first: a page that fills within it is the page the whole window gives (the
    # visible matches of a smaller window are the newest of a larger one's), and finding where a
    # window ends costs a walk through all its matches (7 ms for a phrase of two common words over
    # 2,000 matches on the 1M-post benchmark). Only a page that stays short looks further.
    for scan in dict.fromkeys((min(window, FIRST_WINDOW), window)):
        # The first match beyond this window (None: the window holds every match left).
        beyond = await fetch_value(conn, beyond_sql, (match, below, scan))
        rows = await fetch_all(
            conn, page_sql,
            {"match": match, "max_id": below, "beyond": beyond if beyond is not None else -1,
             "viewer": viewer_id, "limit": limit, "offset": offset})
        posts = from_rows(Post, rows)
        if len(posts) == limit:
            return PostMatches(posts, posts[-1].id)
        if beyond is None:
            break  # every match left was looked at: a larger window holds no more
    # A short page: the next one starts at the first match it did not look at.
    return PostMatches(posts, int(beyond) + 1 if beyond is not None else None)


_ACCOUNT_VISIBLE = (
    " AND a.suspended_at IS NULL AND a.deleted_at IS NULL AND NOT " + _DOMAIN_BLOCKED +
    " AND NOT EXISTS (SELECT 1 FROM local_accounts l WHERE l.actor_id = a.id AND l.is_instance_actor = 1)"
    " AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.actor_id = :viewer AND b.target_id = a.id)"
    "     OR (b.actor_id = a.id AND b.target_id = :viewer))"
    " AND NOT EXISTS (SELECT 1 FROM mutes m WHERE m.actor_id = :viewer AND m.target_id = a.id)")
_ACCOUNT_ORDER = (" ORDER BY lower(a.username) = :exact DESC,"
                  " EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = :viewer AND f.followee_id = a.id) DESC,"
                  " a.is_local DESC, {rank}, a.id LIMIT :limit OFFSET :offset")
_FTS5_ACCOUNTS = ("SELECT a.* FROM actor_search s JOIN actors a ON a.id = s.rowid WHERE actor_search MATCH :match"
                  + _ACCOUNT_VISIBLE + _ACCOUNT_ORDER.format(rank="s.rank"))
# ts_rank: higher is better (FTS5's rank: lower is better).
_PG_ACCOUNT_VECTOR = "fedserver_search_vector(a.username, a.display_name)"
_PG_ACCOUNTS = ("SELECT a.* FROM actors a WHERE " + _PG_ACCOUNT_VECTOR + " @@ fedserver_search_query(:match, true)"
                + _ACCOUNT_VISIBLE + _ACCOUNT_ORDER.format(
                    rank=f"ts_rank({_PG_ACCOUNT_VECTOR}, fedserver_search_query(:match, true)) DESC"))


async def search_accounts(conn: aiosqlite.Connection, phrases: Sequence[str], *, viewer_id: int,
                          offset: int = 0, limit: int = 20) -> list[Actor]:
    """Known accounts, local and remote, whose username or display name has every phrase (the
    last one may be the start of a word: people type names partly). An exact username first, then
    people the viewer follows, then local ones, then the best match. Not the server's own
    instance actor, suspended or deleted accounts, accounts of blocked domains, nor accounts blocked
    or muted either way (Mastodon's AccountSearchService leaves out the same)."""
    if not phrases:
        return []
    if engine(conn) == "postgresql":
        sql, match = _PG_ACCOUNTS, list(phrases)
    else:
        sql, match = _FTS5_ACCOUNTS, fts5_phrases(phrases, prefix_last=True)
    rows = await fetch_all(conn, sql, {"match": match, "exact": " ".join(phrases).lower().lstrip("@"),
                                       "viewer": viewer_id, "limit": limit, "offset": offset})
    return from_rows(Actor, rows)


async def search_tags(conn: aiosqlite.Connection, prefix: str, *, offset: int = 0,
                      limit: int = 20) -> list[tuple[str, int]]:
    """Hashtags starting with prefix (lower case, as stored) with how many live public posts carry
    each, the exact tag first, then the most used. The names and counts come from tag_post_counts
    (migration 0180, kept by store/posts.py) in one range read of its primary key: counting each
    tag's posts here looked up to 1,000 posts per tag on every search."""
    if not prefix:
        return []
    rows = await fetch_all(
        conn, "SELECT tag, posts FROM tag_post_counts WHERE tag >= ? AND tag < ? AND posts > 0 ORDER BY tag LIMIT 50",
        (prefix, prefix + "\U0010ffff"))
    counted = [(tag, int(count)) for tag, count in rows]
    counted.sort(key=lambda item: (item[0] != prefix, -item[1], item[0]))
    return counted[offset:offset + limit]
