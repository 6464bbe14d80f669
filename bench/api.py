"""The Mastodon client API on a seeded database (issue 13): the home timeline through the API and
status creation through the API against the web form, on a real `fedserver serve`.

    python -m bench.seed --posts 1000000 --dir /tmp/fedserver-seed-1m   # once (~2-3 min)
    python -m bench.api --dir /tmp/fedserver-seed-1m [--media]

It works on a copy of the seeded database (in a temporary directory, removed afterwards; the seed
stays as the other benchmarks expect it), enriched as `bench.pages` enriches its copy (boosts,
mentions, a list, a followed hashtag, a warning filter, a web session for alice; `--media`: a
picture on every card). An OAuth app and a bearer token for alice (scopes read write follow) are
made through fedserver's own OAuth service and store, as /oauth/token would make them.

1. Home timeline: `GET /api/v1/timelines/home?limit=40` with the token, first page and an older
   page (the first page's Link `next`), `--requests` each on one keep-alive connection (p50/p99),
   beside the web page `/home` (20 cards, alice's session) and the ceiling, a bare aiohttp GET
   (`bench/bare_server.py`), in `--rounds` interleaved rounds; then requests/s of the API page and of
   the bare GET with `--connections` connections for `--duration` seconds, and their ratio.
2. Status create: `POST /api/v1/statuses` (JSON, the token) against the web compose form
   (`POST /posts`, alice's session and CSRF token, answered 303), both as alice, `--creates` posts
   each over `--create-connections` connections, in `--rounds` interleaved rounds with the bare
   endpoint's POST of the same JSON body (read, parse, 202) as the ceiling: posts/s, p50/p99, the
   API's rate over the web form's and each over the bare endpoint's. Posts are public, each with its
   own text; alice has followers on other (unreachable) servers, so each post also queues its
   deliveries, as it would for a person.

Targets (../shared/perf-targets.md): API home p50 < 15 ms, p99 < 60 ms on 1M posts.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (Server, cpu_seconds, header, load_in_subprocess, machine, median, pct, raw_get, raw_post,
                          rss_mib)
from bench.pages import SESSION_TOKEN, add_pictures, enrich, load_average
from bench.procs import bare_server

CSRF = "bench-csrf"  # the web session bench.pages.enrich makes for alice carries this CSRF token


async def make_token(config: Path, username: str) -> str:
    """An app registered through fedserver's OAuth service and a token for `username`, stored
    hashed by the OAuth store as the authorization_code grant stores it."""
    from fedserver.app import close_context, open_context
    from fedserver.config import load_settings
    from fedserver.services import oauth
    from fedserver.store import actors as actor_store
    from fedserver.store import oauth as oauth_store

    ctx = await open_context(load_settings(config))
    try:
        registered = await oauth.register_app(ctx, name="bench", redirect_uris=[oauth.OOB_URI],
                                              scopes="read write follow", website=None)
        actor = await actor_store.get_local_actor(ctx.db.reader, username)
        assert actor is not None
        token = f"bench-token-{username}-{time.time_ns()}"
        async with ctx.db.transaction() as tx:
            await oauth_store.insert_token(tx, token_hash=oauth.secret_hash(token), app_id=registered.app.id,
                                           actor_id=actor.id, scopes="read write follow", code_hash=None,
                                           now=ctx.clock.now_iso())
    finally:
        await close_context(ctx)
    return token


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as resp:
        return resp.status, dict(resp.headers), resp.read()


def next_path(link: str) -> str | None:
    """The path and query of the Link header's rel="next"."""
    for part in link.split(","):
        if 'rel="next"' in part:
            url = part.split(";")[0].strip().strip("<>")
            split = urllib.parse.urlsplit(url)
            return f"{split.path}?{split.query}"
    return None


def timed(port: int, requests: list[bytes], status: int, connections: int = 1, pid: int | None = None) -> dict:
    """p50/p99 and rate; with the serving process's pid, its CPU time per request (all threads)."""
    cpu0 = cpu_seconds(pid) if pid else 0.0
    r = load_in_subprocess(port, requests, connections=connections, duration=120)
    return {"p50": pct(r.latencies_ms, 50), "p99": pct(r.latencies_ms, 99), "ok": r.ok(status), "n": r.sent,
            "rate": r.ok(status) / r.elapsed if r.elapsed else 0.0,
            "other": {k: v for k, v in r.statuses.items() if k != status},
            "cpu_ms": (cpu_seconds(pid) - cpu0) * 1000 / max(1, r.sent) if pid else None}


def line(label: str, r: dict, *, rate: bool = False) -> str:
    other = f" other statuses {r['other']}" if r["other"] else ""
    per_second = f"  {r['rate']:7.0f}/s" if rate else ""
    cpu = f"  CPU {r['cpu_ms']:5.2f} ms/request" if r.get("cpu_ms") is not None else ""
    return (f"   {label:34s} p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms{per_second}{cpu}"
            f"  ({r['ok']}/{r['n']}{other})")


def home_timeline(args: argparse.Namespace, port: int, bare: int, token: str, pid_of: dict[int, int]) -> dict:
    host = f"127.0.0.1:{port}"
    bearer = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    status, headers, body = get(port, "/api/v1/timelines/home?limit=40", bearer)
    statuses = json.loads(body)
    older = next_path(headers.get("Link", ""))
    # A boost carries its post's media in `reblog` (Mastodon's shape), not at the top.
    with_media = sum(1 for s in statuses if (s.get("reblog") or s).get("media_attachments"))
    boosts = sum(1 for s in statuses if s.get("reblog"))
    print(f"first page: {status}, {len(statuses)} statuses ({boosts} boosts; {with_media} with media), next: {older}")
    assert status == 200 and statuses and older, "the API home timeline answered no page to time"

    def api_get(path: str) -> bytes:
        return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n"
                f"Authorization: Bearer {token}\r\n\r\n").encode("latin-1")

    pages = {
        "bare aiohttp GET (ceiling)": (bare, raw_get("/", f"127.0.0.1:{bare}")),
        "web /home (20 cards)": (port, (f"GET /home HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\n"
                                        f"Cookie: fs_session={SESSION_TOKEN}\r\n\r\n").encode("latin-1")),
        "API home, limit=40": (port, api_get("/api/v1/timelines/home?limit=40")),
        "API home, older page (max_id)": (port, api_get(older)),
    }
    rounds: dict[str, list[dict]] = {label: [] for label in pages}
    for k in range(args.rounds):
        print(f"round {k + 1} (load average {load_average()}):")
        for label, (target, request) in pages.items():
            r = timed(target, [request] * args.requests, 200, pid=pid_of.get(target))
            rounds[label].append(r)
            print(line(label, r))
    summary = {label: {"p50": median([r["p50"] for r in rs]), "p99": median([r["p99"] for r in rs])}
               for label, rs in rounds.items()}
    api = summary["API home, limit=40"]
    print(f"medians of {args.rounds} rounds: API home p50 {api['p50']:.2f} ms, p99 {api['p99']:.2f} ms"
          f" (target p50 < 15, p99 < 60); older page p50 {summary['API home, older page (max_id)']['p50']:.2f},"
          f" p99 {summary['API home, older page (max_id)']['p99']:.2f}; web /home p50"
          f" {summary['web /home (20 cards)']['p50']:.2f}; bare GET p50 {summary['bare aiohttp GET (ceiling)']['p50']:.2f}")
    concurrent = {}
    for label, target, request in (("bare aiohttp GET (ceiling)", bare, pages["bare aiohttp GET (ceiling)"][1]),
                                   ("API home, limit=40", port, pages["API home, limit=40"][1])):
        r = load_in_subprocess(target, [request], connections=args.connections, duration=args.duration, cycle=True)
        concurrent[label] = r.summary(200)
        print(f"   {label} with {args.connections} connections: {concurrent[label]['rate']:.0f} req/s,"
              f" p50 {concurrent[label]['p50']:.1f} ms, p99 {concurrent[label]['p99']:.1f} ms")
    ratio = concurrent["API home, limit=40"]["rate"] / max(1e-9, concurrent["bare aiohttp GET (ceiling)"]["rate"])
    print(f"   API home req/s over the bare GET's: {ratio:.3f}")
    return {"rounds": rounds, "median": summary, "concurrent": concurrent, "ratio_to_bare": ratio}


def status_create(args: argparse.Namespace, port: int, bare: int, token: str, pid_of: dict[int, int]) -> dict:
    host = f"127.0.0.1:{port}"
    serial = [0]

    def text() -> str:
        serial[0] += 1
        return f"Benchmark post {serial[0]}: coffee morning in the garden, reading about federation."

    def api_post() -> bytes:
        body = json.dumps({"status": text(), "visibility": "public"}).encode()
        return raw_post("/api/v1/statuses", {"Host": host, "Authorization": f"Bearer {token}",
                                             "Content-Type": "application/json", "Accept": "application/json"}, body)

    def web_post() -> bytes:
        body = urllib.parse.urlencode({"csrf_token": CSRF, "text": text(), "visibility": "public",
                                       "back": "/home"}).encode()
        return raw_post("/posts", {"Host": host, "Cookie": f"fs_session={SESSION_TOKEN}",
                                   "Content-Type": "application/x-www-form-urlencoded"}, body)

    def bare_post() -> bytes:
        body = json.dumps({"status": text(), "visibility": "public"}).encode()
        return raw_post("/inbox", {"Host": f"127.0.0.1:{bare}", "Content-Type": "application/json"}, body)

    kinds = {"bare aiohttp POST (ceiling)": (bare, bare_post, 202),
             "API POST /api/v1/statuses": (port, api_post, 200),
             "web form POST /posts": (port, web_post, 303)}
    rounds: dict[str, list[dict]] = {label: [] for label in kinds}
    for k in range(args.rounds):
        print(f"round {k + 1} (load average {load_average()}):")
        for label, (target, build, status) in kinds.items():
            r = timed(target, [build() for _ in range(args.creates)], status, args.create_connections,
                      pid=pid_of.get(target))
            rounds[label].append(r)
            print(line(label, r, rate=True))
    rate = {label: median([r["rate"] for r in rs]) for label, rs in rounds.items()}
    api, web, bare_rate = (rate["API POST /api/v1/statuses"], rate["web form POST /posts"],
                           rate["bare aiohttp POST (ceiling)"])
    print(f"medians of {args.rounds} rounds: API {api:.0f} posts/s, web form {web:.0f} posts/s, bare {bare_rate:.0f}/s;"
          f" API / web form {api / max(1e-9, web):.2f}; API / bare {api / max(1e-9, bare_rate):.3f},"
          f" web form / bare {web / max(1e-9, bare_rate):.3f}")
    return {"rounds": rounds, "median_rate": rate, "api_over_web": api / max(1e-9, web)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", type=Path, required=True, help="a directory made by bench.seed")
    p.add_argument("--requests", type=int, default=300, help="sequential requests per timeline page and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections", type=int, default=16, help="connections of the timeline throughput run")
    p.add_argument("--duration", type=float, default=4.0, help="seconds of the timeline throughput run")
    p.add_argument("--creates", type=int, default=200, help="posts per kind and round (bounded: each is stored)")
    p.add_argument("--create-connections", type=int, default=4)
    p.add_argument("--media", action="store_true", help="a picture on every card (bench.pages.add_pictures)")
    p.add_argument("--no-create", action="store_true", help="only the home timeline")
    args = p.parse_args()
    meta = json.loads((args.dir / "seed.json").read_text())
    header(f"Mastodon client API on {meta['posts']} posts ({args.dir})")
    print(machine())
    print(f"load average at the start: {load_average()}")
    copy = Path(tempfile.mkdtemp(prefix="fedserver-bench-api-"))
    results: dict = {"posts": meta["posts"]}
    try:
        t = time.perf_counter()
        for name in ("fedserver.toml", "fedserver.sqlite3", "fedserver.sqlite3-wal"):
            if (args.dir / name).exists():
                shutil.copy2(args.dir / name, copy / name)
        info = enrich(copy / "fedserver.sqlite3", meta["port"])
        media = add_pictures(copy / "fedserver.sqlite3", meta["port"]) if args.media else None
        token = asyncio.run(make_token(copy / "fedserver.toml", "alice"))
        print(f"copied and enriched in {time.perf_counter() - t:.1f}s ({info['boosts']} boosts,"
              f" {info['mentions']} mentions{f', pictures {media}' if media else ''}); token for alice made")
        server = Server(directory=copy, port=meta["port"])
        with bare_server() as (bare_port, bare_pid):
            server.start()
            try:
                time.sleep(0.5)
                rss0 = rss_mib(server.pid)[0]
                pid_of = {server.port: server.pid, bare_port: bare_pid}
                header("home timeline through the API")
                results["home"] = home_timeline(args, server.port, bare_port, token, pid_of)
                if not args.no_create:
                    header("status create: API vs web form")
                    results["create"] = status_create(args, server.port, bare_port, token, pid_of)
                print(f"server RSS at start {rss0:.1f} MiB, after {rss_mib(server.pid)[0]:.1f} MiB;"
                      f" load average at the end {load_average()}")
            finally:
                server.stop()
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    print("JSON " + json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
