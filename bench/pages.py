"""Page latency on a seeded database (see bench/seed.py): the profile page `/@user`, the outbox page
`/users/NAME/outbox?page=true` (first page and deep pages), served by a real `fedserver serve`, and
the home-timeline SQL query the web timeline will need, run the way the server runs queries
(aiosqlite, read connection, WAL) with its EXPLAIN QUERY PLAN.

    python -m bench.seed --posts 1000000 --dir /tmp/fedserver-seed-1m   # once (~2-3 min)
    python -m bench.pages --dir /tmp/fedserver-seed-1m

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

from bench.common import Server, header, load_in_subprocess, machine, pct, raw_get, rss_mib

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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", type=Path, required=True, help="a directory made by bench.seed")
    p.add_argument("--requests", type=int, default=300, help="sequential requests per endpoint")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--with-index", metavar="SQL", help="CREATE INDEX to try: created before measuring, dropped after")
    p.add_argument("--sql-only", action="store_true", help="only the timeline SQL, no HTTP pages")
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
    print("JSON " + json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
