"""Page latency on a seeded database (see bench/seed.py): the profile page `/@user`, the outbox page
`/users/NAME/outbox?page=true` (first page and deep pages), served by a real `fedserver serve`, and
the home-timeline SQL query the web timeline will need, run the way the server runs queries
(aiosqlite, read connection, WAL) with its EXPLAIN QUERY PLAN.

Then, on a copy of the database with what the seed leaves out added (mentions, hashtags, a thread,
likes, boosts, notifications, a list, a filter, authors opted into search, words to search for, a
session for alice): SQL statements and aiosqlite round trips per page (fedserver's app in this
process), and the latency of the outbox, profile, local and hashtag timelines, a thread, home,
notifications, full-text and account search and a list timeline (`fedserver serve` on the copy).
--no-extras skips this part. --media then adds a picture to every card those pages show (local
uploads with thumbnails, remote pictures in the media cache) and times the same pages again.

    python -m bench.seed --posts 1000000 --dir /tmp/fedserver-seed-1m   # once (~2-3 min)
    python -m bench.pages --dir /tmp/fedserver-seed-1m [--media]
    python -m bench.pages --dir /tmp/fedserver-seed-1m --extras-only --only search --only list --only home

Targets (../shared/perf-targets.md): pages p50 < 10 ms, p99 < 50 ms on 1M posts, with media too;
full-text search p99 < 100 ms.

Latency: one keep-alive connection, requests one after another (p50/p99 of --requests each);
throughput: --connections concurrent keep-alive connections for --duration seconds.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Server, cpu_seconds, header, load_in_subprocess, machine, pct, raw_get, rss_mib
from bench.seed import recount_posts

VISIBLE = "('public', 'unlisted', 'followers')"
# The home timeline: posts of accounts the viewer follows (accepted) and the viewer's own, newest
# first, 20 at a time, that the viewer may see (public, unlisted, followers-only of followed
# accounts, and direct posts that mention the viewer).
TIMELINE_NAIVE = f"""
SELECT p.* FROM posts p
WHERE p.deleted_at IS NULL AND p.id < :max_id
  AND (p.actor_id = :me OR p.actor_id IN (SELECT followee_id FROM follows WHERE follower_id = :me AND state = 'accepted'))
  AND (p.visibility IN {VISIBLE} OR p.actor_id = :me
       OR EXISTS (SELECT 1 FROM post_mentions m WHERE m.post_id = p.id AND m.actor_id = :me))
ORDER BY p.id DESC LIMIT 20"""
# Same result, planned per followed account: the newest 20 candidates of each account through the
# posts_actor_id (actor_id, id) index, then the newest 20 of those.
TIMELINE_PER_AUTHOR = f"""
WITH authors(actor_id) AS (
  SELECT followee_id FROM follows WHERE follower_id = :me AND state = 'accepted' UNION SELECT :me)
SELECT p.* FROM authors a JOIN posts p ON p.id IN (
  SELECT q.id FROM posts q WHERE q.actor_id = a.actor_id AND q.id < :max_id AND q.deleted_at IS NULL
    AND (q.visibility IN {VISIBLE} OR q.actor_id = :me
         OR EXISTS (SELECT 1 FROM post_mentions m WHERE m.post_id = q.id AND m.actor_id = :me))
  ORDER BY q.id DESC LIMIT 20)
ORDER BY p.id DESC LIMIT 20"""
QUERIES = {"naive": TIMELINE_NAIVE, "per_author": TIMELINE_PER_AUTHOR}
# fedserver's home_entries before it was planned per author (first RESULTS.md): kept to measure it
# beside the current one in the same run and to check both return the same entries.
HOME_ENTRIES_BEFORE = """
SELECT sort_id, post_id, boosted_by_id FROM (
    SELECT p.id AS sort_id, p.id AS post_id, NULL AS boosted_by_id FROM posts p
     WHERE p.deleted_at IS NULL AND p.id < :before
       AND (p.actor_id = :viewer
            OR (p.actor_id IN (SELECT followee_id FROM follows WHERE follower_id = :viewer AND state = 'accepted')
                AND (p.visibility != 'direct'
                     OR EXISTS (SELECT 1 FROM post_mentions m WHERE m.post_id = p.id AND m.actor_id = :viewer))))
     ORDER BY p.id DESC LIMIT :limit)
UNION ALL
SELECT sort_id, post_id, boosted_by_id FROM (
    SELECT a.id AS sort_id, a.post_id AS post_id, a.actor_id AS boosted_by_id FROM announces a
      JOIN posts p ON p.id = a.post_id
     WHERE a.id < :before AND p.deleted_at IS NULL AND p.visibility IN ('public', 'unlisted')
       AND (a.actor_id = :viewer
            OR a.actor_id IN (SELECT followee_id FROM follows WHERE follower_id = :viewer AND state = 'accepted'))
     ORDER BY a.id DESC LIMIT :limit)
ORDER BY sort_id DESC LIMIT :limit"""


def plan(db: Path, sql: str, params: dict) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
    finally:
        conn.close()


async def timeline_latency(db: Path, sql: str, viewers: list[int], max_ids: list[int], rounds: int) -> dict:
    """p50/p99 ms of the query through aiosqlite (one call = one thread hop, like the server's reader)."""
    import aiosqlite

    conn = await aiosqlite.connect(db, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA query_only=ON")
    times: list[float] = []
    rows_seen = 0
    try:
        for i in range(rounds):
            params = {"me": viewers[i % len(viewers)], "max_id": max_ids[i % len(max_ids)]}
            t = time.perf_counter()
            rows = await conn.execute_fetchall(sql, params)
            times.append((time.perf_counter() - t) * 1000)
            rows_seen += len(rows)
    finally:
        await conn.close()
    return {"p50": pct(times, 50), "p99": pct(times, 99), "max": max(times), "rows": rows_seen / rounds}


class _Recorder:
    """Stands in for an aiosqlite connection to capture the SQL a store function runs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    async def execute_fetchall(self, sql: str, params: object = ()):
        self.calls.append((sql, params))
        return []

    def execute(self, sql: str, params: object = ()):
        self.calls.append((sql, params))

        class _Cursor:
            async def __aenter__(self):
                return self

            async def __aexit__(self, *exc):
                return False

            async def fetchall(self):
                return []

            async def fetchone(self):
                return None

        return _Cursor()


def fedserver_home_sql(viewer: int, max_id: int) -> tuple[str, object] | None:
    """The SQL of fedserver's own home timeline (store.timelines.home_entries), when it exists."""
    try:
        from fedserver.store.timelines import home_entries
    except ImportError:
        return None
    rec = _Recorder()
    asyncio.run(home_entries(rec, viewer, max_id=max_id, limit=20))  # type: ignore[arg-type]
    return rec.calls[0]


async def fedserver_home_latency(db: Path, viewers: list[int], max_ids: list[int], rounds: int) -> dict:
    """fedserver's home_entries through aiosqlite, as the web timeline calls it."""
    import aiosqlite

    from fedserver.store.timelines import home_entries

    conn = await aiosqlite.connect(db, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    times: list[float] = []
    try:
        for i in range(rounds):
            t = time.perf_counter()
            await home_entries(conn, viewers[i % len(viewers)], max_id=max_ids[i % len(max_ids)], limit=20)
            times.append((time.perf_counter() - t) * 1000)
    finally:
        await conn.close()
    return {"p50": pct(times, 50), "p99": pct(times, 99), "max": max(times)}


async def home_entries_same_as_before(db: Path, viewers: list[int], max_ids: list[int]) -> bool:
    """fedserver's home_entries returns exactly what HOME_ENTRIES_BEFORE returns, for every viewer."""
    import aiosqlite

    from fedserver.store.timelines import home_entries

    conn = await aiosqlite.connect(db, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    try:
        for viewer in viewers:
            for max_id in max_ids:
                now = [(e.sort_id, e.post_id, e.boosted_by_id)
                       for e in await home_entries(conn, viewer, max_id=max_id, limit=20)]
                before = [tuple(r) for r in await conn.execute_fetchall(
                    HOME_ENTRIES_BEFORE, {"viewer": viewer, "before": max_id, "limit": 20})]
                if now != before:
                    return False
    finally:
        await conn.close()
    return True


async def before_latency(db: Path, viewers: list[int], max_ids: list[int], rounds: int) -> dict:
    import aiosqlite

    conn = await aiosqlite.connect(db, isolation_level=None)
    times: list[float] = []
    try:
        for i in range(rounds):
            params = {"viewer": viewers[i % len(viewers)], "before": max_ids[i % len(max_ids)], "limit": 20}
            t = time.perf_counter()
            await conn.execute_fetchall(HOME_ENTRIES_BEFORE, params)
            times.append((time.perf_counter() - t) * 1000)
    finally:
        await conn.close()
    return {"p50": pct(times, 50), "p99": pct(times, 99), "max": max(times)}


def same_results(db: Path, viewers: list[int], max_id: int) -> bool:
    conn = sqlite3.connect(db)
    try:
        results = [[r[0] for r in conn.execute(q, {"me": v, "max_id": max_id})] for q in QUERIES.values()
                   for v in viewers[:3]]
    finally:
        conn.close()
    half = len(results) // 2
    return results[:half] == results[half:]


def http_latency(port: int, path: str, accept: str, n: int) -> dict:
    req = raw_get(path, f"127.0.0.1:{port}", accept)
    r = load_in_subprocess(port, [req] * n, connections=1, duration=60)
    return {"p50": pct(r.latencies_ms, 50), "p99": pct(r.latencies_ms, 99), "ok": r.ok(200), "n": r.sent,
            "other": {k: v for k, v in r.statuses.items() if k != 200}}


# --- pages with mentions, tags, threads, likes, boosts and notifications (on a copy) -------------
# The seed writes plain posts only. These pages need more, so it is added to a copy of the seeded
# database (the seed itself stays as other benchmarks expect it), and the copy is removed after.

EXTRA_TAGS = ("fediverse", "coffee", "python")
SESSION_TOKEN = "bench-pages-session-alice"
PUBLIC_AUDIENCE = json.dumps({"to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": []})


class _Ids:
    """Time-ordered ids after every existing post and boost (as new arrivals would get)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        top = max(conn.execute("SELECT COALESCE(max(id), 0) FROM posts").fetchone()[0],
                  conn.execute("SELECT COALESCE(max(id), 0) FROM announces").fetchone()[0])
        self.value = max(top, int(time.time() * 1000) << 16)

    def next(self) -> int:
        self.value += 1 << 16
        return self.value


def enrich(db: Path, port: int) -> dict:
    """Add mentions and hashtags to alice's posts and to 1% of all public posts, a thread (8
    ancestors, 40 replies of every visibility, one deleted), likes and boosts, alice's notifications
    (mentions in followers-only and direct posts among them) and a web session for alice."""
    import hashlib
    import random

    rng = random.Random(7)
    base = f"http://127.0.0.1:{port}"
    conn = sqlite3.connect(db)
    now = iso_now()
    locals_ = conn.execute("SELECT a.id, a.username FROM actors a JOIN local_accounts l ON l.actor_id = a.id"
                           " WHERE l.is_instance_actor = 0 ORDER BY a.id").fetchall()
    alice = locals_[0][0]
    user_of = dict(locals_)
    remotes = [r[0] for r in conn.execute("SELECT id FROM actors WHERE is_local = 0 ORDER BY id LIMIT 600")]
    followed = [r[0] for r in conn.execute("SELECT followee_id FROM follows WHERE follower_id = ? AND"
                                           " state = 'accepted' ORDER BY followee_id", (alice,))]
    ids = _Ids(conn)
    mentions: list[tuple[int, int]] = []
    tags: list[tuple[int, str]] = []
    alice_posts = [r[0] for r in conn.execute("SELECT id FROM posts WHERE actor_id = ? ORDER BY id", (alice,))]
    for pid in alice_posts:
        if rng.random() < 0.3:
            mentions += [(pid, a) for a in rng.sample(remotes + list(user_of)[1:], rng.randint(1, 3))]
        if rng.random() < 0.4:
            tags += [(pid, t) for t in rng.sample(EXTRA_TAGS, rng.randint(1, 2))]
    tags += [(r[0], "fediverse") for r in conn.execute("SELECT id FROM posts WHERE visibility = 'public'"
                                                       " AND id % 97 = 0")]

    posts: list[tuple] = []

    def add_post(actor: int, visibility: str, reply_to: str | None, *, summary: str | None = None) -> tuple[int, str]:
        pid = ids.next()
        if actor in user_of:
            uri, url = f"{base}/users/{user_of[actor]}/statuses/{pid}", f"{base}/@{user_of[actor]}/{pid}"
        else:
            uri = url = f"https://remote{actor % 200}.example/users/r{actor}/statuses/{pid}"
        audience = PUBLIC_AUDIENCE if visibility == "public" else json.dumps({"to": [], "cc": []})
        published = iso_from_ms(pid >> 16)
        posts.append((pid, uri, url, actor, int(actor in user_of), visibility, f"<p>reply {pid}</p>",
                      f"reply {pid}", None, "en", audience, published, published, published, reply_to, summary,
                      int(summary is not None)))
        return pid, uri

    # A thread: 8 ancestors (remote and local), alice's post, 40 replies as a tree.
    parent_uri = None
    for k in range(8):
        _, parent_uri = add_post(rng.choice(remotes) if k % 2 == 0 else rng.choice(list(user_of)[1:]),
                                 "public", parent_uri)
    focus, focus_uri = add_post(alice, "public", parent_uri, summary="a content warning")
    tags.append((focus, "fediverse"))
    replies = [(focus, focus_uri)]
    depth = {focus: 0}
    notifications: list[tuple] = []
    for k in range(40):
        parent = rng.choice(replies[-6:])
        author = rng.choice(remotes[:50] + list(user_of))
        visibility = rng.choices(("public", "unlisted", "followers", "direct"), (70, 15, 10, 5))[0]
        reply = add_post(author, visibility, parent[1])
        replies.append(reply)
        depth[reply[0]] = depth[parent[0]] + 1
        if visibility == "direct" or rng.random() < 0.3:
            mentions.append((reply[0], alice))
        if parent[0] == focus and author != alice:
            notifications.append(("reply", author, reply[0]))
    deleted = replies[5][0]
    # Mentions of alice in posts only some may see, from people she follows and people she does not.
    for k in range(25):
        author = rng.choice(followed if k % 2 else remotes)
        pid, _ = add_post(author, rng.choice(("followers", "direct")), None)
        mentions.append((pid, alice))
        notifications.append(("mention", author, pid))

    recent = alice_posts[-200:]
    likes = [(f"https://bench.example/likes/{pid}/{a}", a, pid, now)
             for pid in recent for a in rng.sample(remotes, rng.randint(0, 6))]
    boosts = [(pid, a) for pid in recent for a in rng.sample(remotes, rng.randint(0, 2))]
    public_recent = [r[0] for r in conn.execute(
        "SELECT id FROM posts WHERE visibility = 'public' ORDER BY id DESC LIMIT 2000")]
    boosts += [(pid, a) for a in followed[:40] for pid in rng.sample(public_recent, 2)]
    likes += [(f"https://bench.example/likes/{pid}/{alice}", alice, pid, now) for pid in public_recent[:300:7]]
    boosts += [(pid, alice) for pid in public_recent[:300:11]]
    announce_rows = [(ids.next(), f"https://bench.example/announces/{pid}/{a}", a, pid, now, now) for pid, a in boosts]
    notifications = ([("like", a, pid) for _, a, pid, _ in likes[:30] if a != alice]
                     + [("follow", a, None) for a in remotes[:10]] + notifications)
    with conn:
        conn.executemany("INSERT INTO posts (id, uri, url, actor_id, is_local, visibility, content_html, content_text,"
                         " source_text, language, audience_json, published_at, created_at, updated_at,"
                         " in_reply_to_uri, summary, sensitive) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                         " ?, ?, ?)", posts)
        conn.execute("UPDATE posts SET deleted_at = ?, content_html = '' WHERE id = ?", (now, deleted))
        conn.executemany("INSERT OR IGNORE INTO post_mentions (post_id, actor_id) VALUES (?, ?)", mentions)
        conn.executemany("INSERT OR IGNORE INTO post_tags (post_id, tag) VALUES (?, ?)", tags)
        conn.executemany("INSERT OR IGNORE INTO likes (uri, actor_id, post_id, created_at) VALUES (?, ?, ?, ?)", likes)
        conn.executemany("INSERT OR IGNORE INTO announces (id, uri, actor_id, post_id, published_at, created_at)"
                         " VALUES (?, ?, ?, ?, ?, ?)", announce_rows)
        conn.executemany("INSERT INTO notifications (recipient_id, kind, from_actor_id, post_id, created_at)"
                         " VALUES (?, ?, ?, ?, ?)", [(alice, kind, a, pid, now) for kind, a, pid in notifications])
        # A list of 20 accounts alice follows (replies to members only), a followed hashtag and a
        # keyword filter that warns: home and the list timeline pay for them as people's would.
        conn.execute("INSERT INTO lists (id, owner_id, title, replies_policy, exclusive, created_at)"
                     " VALUES (?, ?, 'bench', 'list', 0, ?)", (BENCH_LIST_ID, alice, now))
        conn.executemany("INSERT INTO list_members (list_id, actor_id, created_at) VALUES (?, ?, ?)",
                         [(BENCH_LIST_ID, a, now) for a in followed[:20]])
        conn.execute("INSERT INTO followed_tags (actor_id, tag, created_at) VALUES (?, 'fediverse', ?)", (alice, now))
        conn.execute("INSERT INTO keyword_filters (id, owner_id, title, contexts, action, created_at)"
                     " VALUES (1, ?, 'bench', 'home,public,thread,account,notifications', 'warn', ?)", (alice, now))
        conn.execute("INSERT INTO keyword_filter_keywords (filter_id, keyword, whole_word) VALUES (1, 'reply 1', 1)")
        conn.execute("INSERT INTO web_sessions (token_hash, actor_id, csrf_token, created_at, expires_at)"
                     " VALUES (?, ?, 'bench-csrf', ?, '2999-01-01T00:00:00Z')",
                     (hashlib.sha256(SESSION_TOKEN.encode()).hexdigest(), alice, now))
    search = add_search_data(conn, alice)
    recount_posts(conn)
    conn.execute("ANALYZE")
    conn.close()
    return {"focus": focus, "mentions": len(mentions), "tags": len(tags), "posts": len(posts), "likes": len(likes),
            "boosts": len(announce_rows), "notifications": len(notifications),
            "fifth_oldest": alice_posts[5], "thread_depth": max(depth.values()), **search}


# Full-text search (issue 16) finds the searcher's own posts and public or unlisted posts of authors
# who opted in (`indexable`, Mastodon 4.2's flag). The seed's words are few (WORDS in bench/seed.py),
# so each is in about half of all posts: a common word. Two more words make the other shapes: one
# in about 1 post in 1,000 of any author (a rare word), and one in 1 post in 40 of authors who did
# not opt in (matches the searcher may not see: the search looks at a bounded window of them).
RARE_WORD = "zeppelin"
HIDDEN_WORD = "quokka"


def add_search_data(conn: sqlite3.Connection, alice: int) -> dict:
    """Opt alice, every second local account and every fifth remote one into search, and put
    RARE_WORD and HIDDEN_WORD into posts (the FTS5 index follows through its update trigger)."""
    with conn:
        conn.execute("UPDATE actors SET indexable = 1 WHERE id = ? OR (is_local = 1 AND id % 2 = 0)"
                     " OR (is_local = 0 AND id % 5 = 0)", (alice,))
        for word, where in ((RARE_WORD, "id % 997 = 0"),
                            (HIDDEN_WORD, "id % 40 = 1 AND actor_id IN (SELECT id FROM actors WHERE indexable = 0)")):
            conn.execute(f"UPDATE posts SET content_text = content_text || ' {word}',"
                         f" content_html = substr(content_html, 1, length(content_html) - 4) || ' {word}</p>'"
                         f" WHERE {where} AND content_html LIKE '%</p>'")
    count = {word: conn.execute("SELECT count(*) FROM post_search WHERE post_search MATCH ?", (word,)).fetchone()[0]
             for word in ("coffee", RARE_WORD, HIDDEN_WORD)}
    indexable = conn.execute("SELECT count(*) FROM actors WHERE indexable = 1").fetchone()[0]
    return {"indexable": indexable, "word_posts": count}


# Issue 14: a picture on every card. Local posts get an upload of this server (with its thumbnail
# and blurhash picture), remote posts a remote picture held in the media cache (state cached, with
# its thumbnail), as a post that arrived with a picture for people here would have. The newest
# MEDIA_NEWEST posts get one, and every post of alice, every tagged post and every post with
# RARE_WORD (the older posts the measured pages show): the run prints cards and pictures per page.
MEDIA_NEWEST = 150_000
BLURHASH = "LEHV6nWB2yk8pyo0adR*.7kCMdnj"


def add_pictures(db: Path, port: int) -> dict:
    import hashlib

    base = f"http://127.0.0.1:{port}"
    conn = sqlite3.connect(db)
    conn.create_function("sha256hex", 1, lambda s: hashlib.sha256(str(s).encode()).hexdigest(), deterministic=True)
    alice = conn.execute("SELECT a.id FROM actors a JOIN local_accounts l ON l.actor_id = a.id"
                         " WHERE l.is_instance_actor = 0 ORDER BY a.id LIMIT 1").fetchone()[0]
    cutoff = conn.execute("SELECT id FROM posts ORDER BY id DESC LIMIT 1 OFFSET ?", (MEDIA_NEWEST,)).fetchone()[0]
    chosen = (f"(p.id >= {int(cutoff)} OR p.actor_id = {int(alice)} OR p.id % 997 = 0"
              " OR p.id IN (SELECT post_id FROM post_tags)) AND p.deleted_at IS NULL")
    now = iso_now()
    with conn:
        conn.execute(
            "INSERT INTO post_attachments (post_id, position, media_type, url, description, width, height, thumb_url,"
            " thumb_width, thumb_height, blur_url, blurhash)"
            " SELECT p.id, 0, 'image/jpeg', :base || '/media/' || sha256hex('o' || p.id) || '.jpg', 'A picture, described',"
            " 1600, 1200, :base || '/media/' || sha256hex('t' || p.id) || '.webp', 400, 300,"
            " :base || '/media/' || sha256hex('b' || p.id) || '.png', :blurhash"
            f" FROM posts p WHERE p.is_local = 1 AND {chosen}", {"base": base, "blurhash": BLURHASH})
        conn.execute(
            "INSERT INTO post_attachments (post_id, position, media_type, url, description, width, height)"
            " SELECT p.id, 0, 'image/jpeg', 'https://remote' || (p.actor_id % 200) || '.example/media/' || p.id || '.jpg',"
            f" 'A picture, described', 1600, 1200 FROM posts p WHERE p.is_local = 0 AND {chosen}")
        conn.execute(
            "INSERT INTO remote_media (url, url_hash, purpose, state, attempts, file_name, thumb_name, blur_name, width,"
            " height, thumb_width, thumb_height, blurhash, stored_bytes, fetched_at, created_at)"
            " SELECT a.url, sha256hex(a.url), 'attachment', 'cached', 1, sha256hex('o' || a.url) || '.jpg',"
            " sha256hex('t' || a.url) || '.webp', sha256hex('b' || a.url) || '.png', 1600, 1200, 400, 300, :blurhash,"
            " 250000, :fetched, :now FROM post_attachments a JOIN posts p ON p.id = a.post_id WHERE p.is_local = 0",
            {"blurhash": BLURHASH, "fetched": int(time.time()), "now": now})
    found = {"local": conn.execute("SELECT count(*) FROM post_attachments WHERE thumb_url IS NOT NULL").fetchone()[0],
             "cached": conn.execute("SELECT count(*) FROM remote_media").fetchone()[0]}
    conn.execute("ANALYZE")
    conn.close()
    return found


def pictures_shown(port: int, pages: list[tuple[str, str, str, bool]]) -> dict[str, tuple[int, int]]:
    """(cards, pictures) on each HTML page, as served: what "a picture on every card" means."""
    import urllib.request

    shown = {}
    for label, path, accept, signed_in in pages:
        if accept != "text/html":
            continue
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={
            "Accept": accept, **({"Cookie": f"fs_session={SESSION_TOKEN}"} if signed_in else {})})
        with urllib.request.urlopen(request, timeout=30) as resp:
            html = resp.read().decode()
        shown[label] = (html.count('<article class="post"'), html.count('<li class="picture">'))
    return shown


BENCH_LIST_ID = 1


def iso_now() -> str:
    return iso_from_ms(int(time.time() * 1000))


def iso_from_ms(ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def extra_pages(focus: int, fifth_oldest: int) -> list[tuple[str, str, str, bool]]:
    """(label, path, accept, signed in as alice)."""
    as2 = "application/activity+json"
    return [
        ("outbox first page", "/users/alice/outbox?page=true", as2, False),
        ("outbox page of 5 notes", f"/users/alice/outbox?page=true&max_id={fifth_oldest}", as2, False),
        ("profile /@alice", "/@alice", "text/html", False),
        ("profile /@alice signed in", "/@alice", "text/html", True),
        ("local timeline /local", "/local", "text/html", False),
        ("tag timeline /tags/fediverse", "/tags/fediverse", "text/html", False),
        ("tag timeline, signed in", "/tags/fediverse", "text/html", True),
        ("thread /@alice/ID", f"/@alice/{focus}", "text/html", False),
        ("thread, signed in", f"/@alice/{focus}", "text/html", True),
        ("home /home", "/home", "text/html", True),
        ("notifications", "/notifications", "text/html", True),
        # Full text (FTS5, migration 0060; add_search_data): posts are the searcher's own and those of
        # authors who opted in. The mixed page also looks up accounts and hashtags; type=statuses
        # reads posts only.
        ("search a common word /search?q=coffee", "/search?q=coffee", "text/html", True),
        ("search posts only, common word", "/search?q=coffee&type=statuses", "text/html", True),
        ("search two words", "/search?q=coffee+morning&type=statuses", "text/html", True),
        ("search a quoted phrase", "/search?q=%22quick+brown%22&type=statuses", "text/html", True),
        ("search a rare word", f"/search?q={RARE_WORD}&type=statuses", "text/html", True),
        ("search, matches nobody may find", f"/search?q={HIDDEN_WORD}&type=statuses", "text/html", True),
        ("search accounts by name /search?q=ali", "/search?q=ali", "text/html", True),
        ("list timeline /lists/N", f"/lists/{BENCH_LIST_ID}", "text/html", True),
    ]


def raw_request(path: str, host: str, accept: str, signed_in: bool) -> bytes:
    cookie = f"Cookie: fs_session={SESSION_TOKEN}\r\n" if signed_in else ""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\n{cookie}\r\n".encode("latin-1")


async def count_queries(directory: Path, pages: list[tuple[str, str, str, bool]]) -> dict[str, dict]:
    """SQL statements and aiosqlite round trips (thread hops) per page, served in this process by
    fedserver's own app on the database copy (each page requested once before, to warm caches)."""
    from aiohttp.test_utils import TestClient, TestServer

    from fedserver.app import build_app
    from fedserver.config import load_settings
    from fedserver.context import CTX_KEY

    app = build_app(load_settings(directory / "fedserver.toml"), run_workers=False)
    statements: list[str] = []
    hops = [0]
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        db = app[CTX_KEY].db
        # The writer has no public accessor; a bench may look (notifications mark themselves read).
        for conn in (db.reader, db._writer):
            await conn.set_trace_callback(statements.append)
            execute = conn._execute  # every aiosqlite call is one hop through this method

            async def counted(fn, *args, _execute=execute, **kwargs):
                hops[0] += 1
                return await _execute(fn, *args, **kwargs)

            conn._execute = counted  # type: ignore[method-assign]
        counts: dict[str, dict] = {}
        for label, path, accept, signed_in in pages:
            headers = {"Accept": accept, **({"Cookie": f"fs_session={SESSION_TOKEN}"} if signed_in else {})}
            for attempt in range(2):
                statements.clear()
                hops[0] = 0
                async with client.get(path, headers=headers, allow_redirects=False) as resp:
                    await resp.read()
                    status = resp.status
            counts[label] = {"statements": len(statements), "round_trips": hops[0], "status": status}
    return counts


def time_pages(port: int, pages: list[tuple[str, str, str, bool]], requests: int,
               pid: int | None = None) -> dict[str, dict]:
    """p50/p99 of each page, `requests` times one after another on one keep-alive connection, after
    the same of a bare aiohttp GET (the ceiling, measured in the same run: a busy machine shows).
    With the server's pid, also its CPU time per request (all its threads): what a page costs,
    which other work on the machine changes much less than its latency."""
    from bench.procs import bare_server

    results = {}
    with bare_server() as (bare_port, _):
        r = load_in_subprocess(bare_port, [raw_get("/", f"127.0.0.1:{bare_port}")] * requests, connections=1,
                               duration=60)
        results["bare aiohttp GET (ceiling)"] = {"p50": pct(r.latencies_ms, 50), "p99": pct(r.latencies_ms, 99),
                                                 "ok": r.ok(200), "n": r.sent, "other": {}}
    host = f"127.0.0.1:{port}"
    for label, path, accept, signed_in in pages:
        cpu0 = cpu_seconds(pid) if pid else 0.0
        r = load_in_subprocess(port, [raw_request(path, host, accept, signed_in)] * requests, connections=1,
                               duration=60)
        cpu = (cpu_seconds(pid) - cpu0) * 1000 / max(1, r.sent) if pid else None
        results[label] = {"p50": pct(r.latencies_ms, 50), "p99": pct(r.latencies_ms, 99), "ok": r.ok(200), "n": r.sent,
                          "other": {k: v for k, v in r.statuses.items() if k != 200}, "cpu_ms": cpu}
    return results


def print_times(times: dict[str, dict], shown: dict[str, tuple[int, int]] | None = None) -> None:
    for label, r in times.items():
        other = f" other statuses {r['other']}" if r["other"] else ""
        cards = f"  server CPU {r['cpu_ms']:5.2f} ms/request" if r.get("cpu_ms") is not None else ""
        if shown is not None and label in shown:
            cards += f"  {shown[label][1]:3d} pictures on {shown[label][0]:3d} cards"
        print(f"{label:38s} p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms  ({r['ok']}/{r['n']} 200{other}){cards}")


def measure_extras(args: argparse.Namespace, meta: dict) -> dict:
    import shutil
    import tempfile

    results: dict = {}
    header("pages with mentions, tags, threads, likes, boosts, notifications, search (on a copy of the database)")
    copy = Path(tempfile.mkdtemp(prefix="fedserver-bench-pages-"))
    try:
        t = time.perf_counter()
        for name in ("fedserver.toml", "fedserver.sqlite3", "fedserver.sqlite3-wal"):
            if (args.dir / name).exists():
                shutil.copy2(args.dir / name, copy / name)
        info = enrich(copy / "fedserver.sqlite3", meta["port"])
        print(f"copied and enriched in {time.perf_counter() - t:.1f}s: {info['mentions']} mentions, {info['tags']}"
              f" hashtags, {info['posts']} new posts (a thread: 8 ancestors, the post, 40 replies"
              f" {info['thread_depth']} levels deep), {info['likes']} likes,"
              f" {info['boosts']} boosts, {info['notifications']} notifications for alice;"
              f" {info['indexable']} accounts opted into search; posts with each searched word: {info['word_posts']}")
        pages = [page for page in extra_pages(info["focus"], info["fifth_oldest"])
                 if not args.only or any(word in page[0] for word in args.only)]
        if not args.no_counts:
            counts = asyncio.run(count_queries(copy, pages))
            results["queries"] = counts
            print("queries per page (SQL statements / aiosqlite round trips, one request after a warm-up):")
            for label, c in counts.items():
                print(f"   {label:38s} {c['statements']:4d} statements  {c['round_trips']:4d} round trips"
                      f"  (status {c['status']})")
        server = Server(directory=copy, port=meta["port"])
        print(f"load average before the pages: {load_average()}")
        server.start()
        try:
            time.sleep(0.5)
            times = time_pages(server.port, pages, args.requests, server.pid)
        finally:
            server.stop()
        print_times(times)
        results.update(times)
        if args.media:
            header("the same pages with a picture on every card (issue 14)")
            t = time.perf_counter()
            added = add_pictures(copy / "fedserver.sqlite3", meta["port"])
            print(f"added in {time.perf_counter() - t:.1f}s: {added['local']} local pictures (with thumbnails),"
                  f" {added['cached']} remote pictures in the media cache (state cached)")
            print(f"load average before the pages: {load_average()}")
            server.start()
            try:
                time.sleep(0.5)
                shown = pictures_shown(server.port, pages)
                with_media = time_pages(server.port, pages, args.requests, server.pid)
            finally:
                server.stop()
            print_times(with_media, shown)
            results["with_media"] = {label: {**r, "cards": shown.get(label, (None, None))[0],
                                             "pictures": shown.get(label, (None, None))[1]}
                                     for label, r in with_media.items()}
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    return results


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", type=Path, required=True, help="a directory made by bench.seed")
    p.add_argument("--requests", type=int, default=300, help="sequential requests per endpoint")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--with-index", metavar="SQL", help="CREATE INDEX to try: created before measuring, dropped after")
    p.add_argument("--sql-only", action="store_true", help="only the timeline SQL, no HTTP pages")
    p.add_argument("--no-extras", action="store_true",
                   help="skip the pages that need mentions, tags, threads and notifications (copy of the database)")
    p.add_argument("--media", action="store_true",
                   help="then add a picture to every card shown (local uploads and cached remote ones) and time"
                        " the same pages again (issue 14)")
    p.add_argument("--only", action="append", metavar="WORD",
                   help="only the pages of the copy whose label has WORD (repeatable), e.g. --only search")
    p.add_argument("--no-counts", action="store_true", help="skip counting queries per page on the copy")
    p.add_argument("--extras-only", action="store_true",
                   help="skip the timeline SQL and the pages on the seed itself; only the copy's pages")
    args = p.parse_args()
    meta = json.loads((args.dir / "seed.json").read_text())
    header(f"pages on {meta['posts']} posts ({args.dir})")
    print(machine())
    server = Server(directory=args.dir, port=meta["port"])
    db = server.database
    index_name = None
    if args.with_index:
        index_name = args.with_index.split("INDEX", 1)[1].split()[0]
        t = time.perf_counter()
        with sqlite3.connect(db) as c:
            c.execute(args.with_index)
            c.execute("ANALYZE")
        print(f"created candidate index {index_name} in {time.perf_counter() - t:.1f}s: {args.with_index}")
    try:
        return measure(args, meta, server, db)
    finally:
        if index_name:
            with sqlite3.connect(db) as c:
                c.execute(f"DROP INDEX IF EXISTS {index_name}")
                c.execute("ANALYZE")
            print(f"dropped {index_name}")


def measure(args: argparse.Namespace, meta: dict, server: Server, db: Path) -> int:
    print(f"load average at the start: {load_average()}")
    if args.extras_only:
        results = {"posts": meta["posts"], "extras": measure_extras(args, meta)}
        print("JSON " + json.dumps(results, default=str))
        return 0
    conn = sqlite3.connect(db)
    locals_ = conn.execute("SELECT a.id, a.username, (SELECT count(*) FROM posts p WHERE p.actor_id = a.id)"
                           " FROM actors a JOIN local_accounts l ON l.actor_id = a.id WHERE l.is_instance_actor = 0"
                           " ORDER BY a.id").fetchall()
    alice_id = locals_[0][0]
    ids = [r[0] for r in conn.execute("SELECT id FROM posts WHERE actor_id = ? ORDER BY id", (alice_id,))]
    lo, hi = conn.execute("SELECT min(id), max(id) FROM posts").fetchone()
    follow_counts = [r[0] for r in conn.execute(
        "SELECT count(*) FROM follows f JOIN local_accounts l ON l.actor_id = f.follower_id GROUP BY f.follower_id")]
    conn.close()
    print(f"local accounts {len(locals_)}, alice has {locals_[0][2]} posts, {locals_[1][1]} has {locals_[1][2]};"
          f" locals follow {min(follow_counts)}-{max(follow_counts)} accounts")
    results: dict = {"posts": meta["posts"]}

    header("home timeline SQL (aiosqlite, read connection)")
    viewers = [r[0] for r in locals_]
    newest = hi + 1
    deep = [lo + (hi - lo) * k // 10 for k in range(1, 10)]
    print("same rows from both forms:", same_results(db, viewers, newest))
    captured = fedserver_home_sql(alice_id, newest)
    if captured is not None:
        sql, params = captured
        print("-- fedserver's home timeline (store.timelines.home_entries): EXPLAIN QUERY PLAN")
        for line in plan(db, sql, params):  # type: ignore[arg-type]
            print(f"     {line}")
        first = asyncio.run(fedserver_home_latency(db, viewers, [newest], 200))
        paged = asyncio.run(fedserver_home_latency(db, viewers, deep, 200))
        results["timeline_fedserver_home_entries"] = {"first": first, "deep": paged}
        print(f"   first page: p50 {first['p50']:.2f} ms  p99 {first['p99']:.2f} ms  (max {first['max']:.1f})")
        print(f"   older pages (max_id across the year): p50 {paged['p50']:.2f} ms  p99 {paged['p99']:.2f} ms")
        print("   same entries as the earlier home_entries query (every viewer, first and older pages):",
              asyncio.run(home_entries_same_as_before(db, viewers, [newest, *deep])))
        first = asyncio.run(before_latency(db, viewers, [newest], 200))
        paged = asyncio.run(before_latency(db, viewers, deep, 200))
        results["timeline_home_entries_before"] = {"first": first, "deep": paged}
        print(f"-- the earlier home_entries query, same data and indexes: first page p50 {first['p50']:.2f} ms"
              f"  p99 {first['p99']:.2f} ms; older pages p50 {paged['p50']:.2f} ms  p99 {paged['p99']:.2f} ms")
    for name, sql in QUERIES.items():
        print(f"-- {name}: EXPLAIN QUERY PLAN")
        for line in plan(db, sql, {"me": alice_id, "max_id": newest}):
            print(f"     {line}")
        first = asyncio.run(timeline_latency(db, sql, viewers, [newest], 200))
        paged = asyncio.run(timeline_latency(db, sql, viewers, deep, 200))
        results[f"timeline_{name}"] = {"first": first, "deep": paged}
        print(f"   first page: p50 {first['p50']:.2f} ms  p99 {first['p99']:.2f} ms  (max {first['max']:.1f}),"
              f" {first['rows']:.0f} rows")
        print(f"   older pages (max_id across the year): p50 {paged['p50']:.2f} ms  p99 {paged['p99']:.2f} ms")

    if args.sql_only:
        print("JSON " + json.dumps(results, default=str))
        return 0
    header("HTTP pages (fedserver serve)")
    server.start()
    try:
        time.sleep(0.5)
        rss0 = rss_mib(server.pid)[0]
        as2 = "application/activity+json"
        mid = ids[len(ids) // 2] if ids else newest
        endpoints = [
            ("profile /@alice", "/@alice", "text/html"),
            (f"profile /@{locals_[1][1]}", f"/@{locals_[1][1]}", "text/html"),
            ("outbox first page", "/users/alice/outbox?page=true", as2),
            ("outbox page from the middle", f"/users/alice/outbox?page=true&max_id={mid}", as2),
            ("outbox collection (count)", "/users/alice/outbox", as2),
        ]
        for label, path, accept in endpoints:
            r = http_latency(server.port, path, accept, args.requests)
            results[label] = r
            other = f" other statuses {r['other']}" if r["other"] else ""
            print(f"{label:32s} p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms  ({r['ok']}/{r['n']} 200{other})")
        for label, path, accept in endpoints[:1] + endpoints[2:3]:
            req = raw_get(path, f"127.0.0.1:{server.port}", accept)
            r = load_in_subprocess(server.port, [req], connections=args.connections, duration=args.duration, cycle=True)
            s = r.summary(200)
            results[f"{label} concurrent"] = s
            print(f"{label} with {args.connections} connections: {s['rate']:.0f} req/s, p50 {s['p50']:.1f} ms,"
                  f" p99 {s['p99']:.1f} ms")
        print(f"server RSS at start {rss0:.1f} MiB, after {rss_mib(server.pid)[0]:.1f} MiB")
    finally:
        server.stop()
    if not args.no_extras:
        results["extras"] = measure_extras(args, meta)
    print("JSON " + json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
