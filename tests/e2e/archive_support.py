"""Large accounts for the archive's tests and bench/archive_memory.py: posts written straight into a
stopped instance's database (the web form would take minutes for thousands), and a process's memory."""
from __future__ import annotations

import json
import os
import secrets
import sqlite3
from pathlib import Path

from tests.e2e.processes import ServerProcess

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def seed_posts(server: ServerProcess, username: str, posts: int, *, picture_every: int = 10,
               picture_bytes: int = 40_000) -> None:
    """Write posts by a local account straight into a (stopped) instance's database, every
    picture_every-th with a picture file of its own (random bytes: they do not compress)."""
    conn = sqlite3.connect(server.database)
    actor_id, uri = conn.execute("SELECT id, uri FROM actors WHERE username = ? AND is_local = 1",
                                 (username,)).fetchone()
    media_dir = server.directory / "media"
    media_dir.mkdir(exist_ok=True)
    now = "2026-12-01T00:00:00.000000Z"
    base_id = 110_000_000_000_000_000
    rows, attachments = [], []
    for n in range(posts):
        post_id = base_id + n
        text = f"Post number {n}: " + " ".join(secrets.token_hex(4) for _ in range(40))
        rows.append((post_id, f"{uri}/statuses/{post_id}", f"{server.base}/@{username}/{post_id}", actor_id, 1, "Note",
                     "public", f"<p>{text}</p>", text, text, None, 0, "en", None,
                     json.dumps({"to": [PUBLIC], "cc": [f"{uri}/followers"]}), now, now, now))
        if n % picture_every == 0:
            name = f"{secrets.token_hex(16)}.png"
            (media_dir / name).write_bytes(os.urandom(picture_bytes))
            attachments.append((post_id, 0, "image/png", f"{server.base}/media/{name}", "noise", 100, 100))
    with conn:
        conn.executemany("INSERT INTO posts (id, uri, url, actor_id, is_local, object_type, visibility, content_html,"
                         " content_text, source_text, summary, sensitive, language, in_reply_to_uri, audience_json,"
                         " published_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                         " ?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO post_attachments (post_id, position, media_type, url, description, width,"
                         " height) VALUES (?, ?, ?, ?, ?, ?, ?)", attachments)
    conn.close()
