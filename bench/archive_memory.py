"""Memory of the real `fedserver serve` while it streams a personal archive: alice's posts (a tenth
with a 40 KB picture) written straight into a fresh instance's database, then her archive downloaded
over HTTP by a slow-ish reader while the server's resident memory is sampled. Flat means the growth
does not follow the number of posts.

    python -m bench.archive_memory --posts 500 5000
"""
from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.processes import ServerProcess  # noqa: E402

PASSWORD = "correct horse battery"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def seed_posts(server: ServerProcess, posts: int) -> None:
    conn = sqlite3.connect(server.database)
    actor_id, uri = conn.execute("SELECT id, uri FROM actors WHERE username = 'alice' AND is_local = 1").fetchone()
    media_dir = server.directory / "media"
    media_dir.mkdir(exist_ok=True)
    now = "2026-12-01T00:00:00.000000Z"
    base_id = 110_000_000_000_000_000
    rows, attachments = [], []
    for n in range(posts):
        post_id = base_id + n
        text = f"Post number {n}: " + " ".join(secrets.token_hex(4) for _ in range(40))
        rows.append((post_id, f"{uri}/statuses/{post_id}", f"{server.base}/@alice/{post_id}", actor_id, 1, "Note",
                     "public", f"<p>{text}</p>", text, text, None, 0, "en", None,
                     json.dumps({"to": [PUBLIC], "cc": [f"{uri}/followers"]}), now, now, now))
        if n % 10 == 0:
            name = f"{secrets.token_hex(16)}.png"
            (media_dir / name).write_bytes(os.urandom(40_000))
            attachments.append((post_id, 0, "image/png", f"{server.base}/media/{name}", "noise", 100, 100))
    with conn:
        conn.executemany("INSERT INTO posts (id, uri, url, actor_id, is_local, object_type, visibility, content_html,"
                         " content_text, source_text, summary, sensitive, language, in_reply_to_uri, audience_json,"
                         " published_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                         " ?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO post_attachments (post_id, position, media_type, url, description, width,"
                         " height) VALUES (?, ?, ?, ?, ?, ?, ?)", attachments)
    conn.close()


def measure(posts: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        server = ServerProcess(Path(folder) / "a")
        server.init()
        secret = server.directory / "password"
        secret.write_text(PASSWORD)
        server.run("user", "create", "alice", "--password-file", str(secret), check=True)
        seed_posts(server, posts)
        server.start()
        try:
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
            page = opener.open(server.base + "/auth/sign_in").read().decode()
            csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            opener.open(server.base + "/auth/sign_in", urlencode(
                {"csrf_token": csrf, "username": "alice", "password": PASSWORD, "next": "/home"}).encode()).read()
            assert server.proc is not None
            pid = server.proc.pid
            before = rss_kib(pid)
            peak = [before]
            done = threading.Event()

            worst = [0.0]

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], rss_kib(pid))
                    time.sleep(0.01)

            def probe() -> None:
                # Another visitor meanwhile: how long the event loop keeps them waiting.
                while not done.is_set():
                    started = time.monotonic()
                    urllib.request.urlopen(server.base + "/.well-known/nodeinfo").read()
                    worst[0] = max(worst[0], time.monotonic() - started)
                    time.sleep(0.02)

            sampler, prober = threading.Thread(target=sample), threading.Thread(target=probe)
            sampler.start()
            prober.start()
            started = time.monotonic()
            body = io.BytesIO()
            with opener.open(server.base + "/settings/data/archive.zip") as resp:
                while chunk := resp.read(16 * 1024):
                    body.write(chunk)
                    time.sleep(0.0005)  # a reader slower than the loopback
            seconds = time.monotonic() - started
            done.set()
            sampler.join()
            prober.join()
            archive = zipfile.ZipFile(body)
            items = json.loads(archive.read("outbox.json"))["totalItems"]
            return {"posts": posts, "items": items, "zip_mib": round(len(body.getvalue()) / 2**20, 1),
                    "seconds": round(seconds, 2), "rss_before_mib": round(before / 1024, 1),
                    "rss_growth_mib": round((peak[0] - before) / 1024, 1),
                    "worst_other_request_ms": round(worst[0] * 1000, 1)}
        finally:
            server.terminate()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, nargs="+", default=[500, 5000])
    args = parser.parse_args()
    for posts in args.posts:
        print(json.dumps(measure(posts)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
