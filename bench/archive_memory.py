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

from tests.e2e.archive_support import rss_kib, seed_posts  # noqa: E402
from tests.e2e.processes import ServerProcess  # noqa: E402

PASSWORD = "correct horse battery"


def measure(posts: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        server = ServerProcess(Path(folder) / "a")
        server.init()
        secret = server.directory / "password"
        secret.write_text(PASSWORD)
        server.run("user", "create", "alice", "--password-file", str(secret), check=True)
        seed_posts(server, "alice", posts)
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
