"""Seed a fedserver database with many posts, fast: a real migrated database with real local
accounts (created by fedserver's own service), then remote actors, follows, posts and (for consenting
authors) materialised corpus records written with sqlite3 executemany in large transactions.

    python -m bench.seed --posts 1000000 --dir /tmp/fedserver-seed-1m          # pages mix (~2-3 min)
    python -m bench.seed --posts 100000 --corpus --dir /tmp/fedserver-corpus-100k  # export data

Pages mix (default): 20 local accounts (alice, bob, ... all allowing training for public posts except
every fourth), 5,000 remote actors on 200 domains, every local account following 50-400 remote
actors and a few local ones; posts spread over the last year with a skewed author distribution
(a few very active accounts), 75% public, 12% unlisted, 10% followers-only, 3% direct; alice has
a large share so her profile and outbox pages read a long history.

--corpus: every post is public and by a consenting local account (so N posts = N corpus records).

Corpus records are written as the server's periodic reconciliation would have left them (same
record ids, content hashes and change feed), and the reconciliation watermark is set, so an export
only has to reconcile what changed since (nothing).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sqlite3
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Server, header

WORDS = ("the quick brown fox federation timeline consent corpus server mastodon pleroma misskey hello"
         " world coffee morning train bicycle garden rain sunny weekend music reading writing code python"
         " sqlite benchmark latency throughput signature inbox outbox follower boost like reply thread").split()
LOCAL_NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
               "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "zoe"]
YEAR = 365 * 24 * 3600


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def create_locals(server: Server, names: list[str], consenting: list[str]) -> None:
    """Accounts through fedserver's own service (real keys); consent through the consent service."""
    from fedserver.app import close_context, open_context
    from fedserver.config import load_settings
    from fedserver.services import accounts, consent

    accounts.hash_password = lambda password: "not-hashed-in-benchmarks"  # argon2 is not what we measure
    ctx = await open_context(load_settings(server.config))
    try:
        for name in names:
            await accounts.create_account(ctx, name, password="bench-password-123")
        for name in consenting:
            await consent.set_training_consent(ctx, name, "allow", license="CC-BY-4.0", scope="all",
                                               include_unlisted=False, source="admin", note="benchmark seed")
    finally:
        await close_context(ctx)


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def seed(directory: Path, posts: int, port: int, corpus: bool, locals_: int, remotes: int, seed_value: int) -> dict:
    rng = random.Random(seed_value)
    names = LOCAL_NAMES[:locals_]
    consenting = names if corpus else [n for i, n in enumerate(names) if i % 4 != 3]
    server = Server.create(directory, port=port, users=())
    t = time.perf_counter()
    asyncio.run(create_locals(server, names, consenting))
    print(f"{len(names)} local accounts ({len(consenting)} consenting) in {time.perf_counter() - t:.1f}s", flush=True)

    conn = sqlite3.connect(server.database, timeout=60)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    now = time.time()
    now_iso = iso(now)
    old_iso = iso(now - YEAR - 86400)
    local_rows = conn.execute("SELECT a.id, a.username, a.uri FROM actors a JOIN local_accounts l ON l.actor_id = a.id"
                              " WHERE l.is_instance_actor = 0 ORDER BY a.id").fetchall()
    local_ids = [r[0] for r in local_rows]
    # Remote actors on 200 domains.
    t = time.perf_counter()
    remote_count = 0 if corpus else remotes
    rows = []
    for i in range(remote_count):
        domain = f"remote{i % 200}.example"
        uri = f"https://{domain}/users/r{i}"
        rows.append((uri, f"r{i}", domain, f"Remote {i}", f"{uri}/inbox", f"https://{domain}/inbox",
                     f"{uri}/followers", f"{uri}#main-key", "unused", old_iso, old_iso, old_iso))
    with conn:
        conn.executemany("INSERT INTO actors (uri, username, domain, display_name, inbox_url, shared_inbox_url,"
                         " followers_url, key_id, public_key_pem, created_at, updated_at, fetched_at)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    remote_ids = [r[0] for r in conn.execute("SELECT id FROM actors WHERE is_local = 0 ORDER BY id")]
    # Follows: each local follows 50-400 remote actors and 3 locals; remote actors follow locals.
    follows = []
    for lid in local_ids:
        for rid in rng.sample(remote_ids, min(len(remote_ids), rng.randint(50, 400))):
            follows.append((f"urn:bench:follow:{lid}:{rid}", lid, rid))
            if rng.random() < 0.5:
                follows.append((f"urn:bench:follow:{rid}:{lid}", rid, lid))
        for other in rng.sample([x for x in local_ids if x != lid], min(3, len(local_ids) - 1)):
            follows.append((f"urn:bench:follow:{lid}:{other}", lid, other))
    with conn:
        conn.executemany("INSERT OR IGNORE INTO follows (uri, follower_id, followee_id, state, created_at, updated_at)"
                         " VALUES (?, ?, ?, 'accepted', ?, ?)", [(*f, old_iso, old_iso) for f in follows])
    print(f"{len(remote_ids)} remote actors, {len(follows)} follows in {time.perf_counter() - t:.1f}s", flush=True)

    # Authors: skewed; locals get 10% of posts (alice a third of those) unless --corpus.
    authors = local_ids + remote_ids
    weights = ([0.1 / len(local_ids)] * len(local_ids) if not corpus else [1.0] * len(local_ids))
    if not corpus:
        weights[0] = 0.033
        skew = [1 / (k + 1) ** 0.8 for k in range(len(remote_ids))]
        weights += [0.9 * w / sum(skew) for w in skew]
    uri_of = {r[0]: r[2] for r in local_rows}
    user_of = {r[0]: r[1] for r in local_rows}
    secret_hex = conn.execute("SELECT value FROM instance_state WHERE key = 'corpus_hmac_key'").fetchone()
    if secret_hex is None:
        secret_hex = (secrets.token_hex(32),)
        with conn:
            conn.execute("INSERT INTO instance_state (key, value) VALUES ('corpus_hmac_key', ?)", secret_hex)
    secret = bytes.fromhex(secret_hex[0])
    consent_event = dict(conn.execute("SELECT actor_id, event_id FROM consent_choices WHERE purpose = 'train-ai'"
                                      " AND choice = 'allow'").fetchall())
    from fedserver.corpus.sync import _content_hash, pseudonym

    base = f"http://127.0.0.1:{port}"
    start_time = now - YEAR
    step = YEAR / max(1, posts)
    t = time.perf_counter()
    batch = 100_000
    corpus_count = 0
    seq = int(conn.execute("SELECT COALESCE(max(seq), 0) FROM corpus_changes").fetchone()[0])
    visibilities = ("public",) * 75 + ("unlisted",) * 12 + ("followers",) * 10 + ("direct",) * 3
    for offset in range(0, posts, batch):
        n = min(batch, posts - offset)
        chosen = rng.choices(authors, weights=weights, k=n)
        post_rows, record_rows, change_rows = [], [], []
        for j in range(n):
            seconds = start_time + (offset + j) * step
            pid = (int(seconds * 1000) << 16) | rng.getrandbits(16)
            author = chosen[j]
            local = author in uri_of
            visibility = "public" if corpus else rng.choice(visibilities)
            if local:
                uri = f"{uri_of[author]}/statuses/{pid}"
                url = f"{base}/@{user_of[author]}/{pid}"
            else:
                uri = f"https://remote{author % 200}.example/users/r{author}/statuses/{pid}"
                url = uri
            body = text(rng, rng.randint(12, 60))
            html = f"<p>{body}</p>"
            published = iso(seconds)
            audience = json.dumps({"to": ["https://www.w3.org/ns/activitystreams#Public"]
                                   if visibility == "public" else [], "cc": []})
            post_rows.append((pid, uri, url, author, int(local), visibility, html, body, body if local else None,
                              "en", audience, published, published, published))
            if local and visibility == "public" and author in consent_event:
                seq += 1
                record_id = pseudonym(secret, "record", uri)
                facts = {"content_html": html, "summary": None, "edited_at": None, "language": "en",
                         "license": "CC-BY-4.0", "event_id": consent_event[author], "visibility": visibility}
                record_rows.append((pid, record_id, consent_event[author], _content_hash(facts), seq))
                change_rows.append((seq, record_id, pid, now_iso))
        with conn:
            conn.executemany("INSERT INTO posts (id, uri, url, actor_id, is_local, visibility, content_html,"
                             " content_text, source_text, language, audience_json, published_at, created_at,"
                             " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", post_rows)
            conn.executemany("INSERT INTO corpus_changes (seq, record_id, post_id, action, created_at)"
                             " VALUES (?, ?, ?, 'added', ?)", change_rows)
            conn.executemany("INSERT INTO corpus_records (post_id, record_id, state, consent_event_id, content_hash,"
                             " changed_seq) VALUES (?, ?, 'present', ?, ?, ?)", record_rows)
        corpus_count += len(record_rows)
        print(f"  {offset + n} posts ({corpus_count} corpus records), {time.perf_counter() - t:.0f}s", flush=True)
    # As the periodic reconciliation would leave it: consent and accounts older than the watermark.
    with conn:
        conn.execute("UPDATE consent_choices SET updated_at = ?", (old_iso,))
        conn.execute("UPDATE actors SET updated_at = ?", (old_iso,))
        conn.execute("INSERT INTO instance_state (key, value) VALUES ('corpus_watermark', ?)"
                     " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (now_iso,))
    t = time.perf_counter()
    recount_posts(conn)
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(f"ANALYZE + checkpoint {time.perf_counter() - t:.1f}s", flush=True)
    meta = {"posts": posts, "corpus_records": corpus_count, "locals": names, "remote_actors": len(remote_ids),
            "follows": len(follows), "port": port, "corpus": corpus, "seeded_at": now_iso}
    (directory / "seed.json").write_text(json.dumps(meta, indent=1))
    return meta


def recount_posts(conn: sqlite3.Connection) -> None:
    """Posts written here with plain SQL bypass the store, which keeps account_post_counts
    (migration 0160) and tag_post_counts (0180): count them as the migrations do for what is
    already stored."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'account_post_counts'").fetchone() is None:
        return  # a fedserver from before migration 0160
    with conn:
        conn.execute("DELETE FROM account_post_counts")
        conn.execute("INSERT INTO account_post_counts (actor_id, visibility, posts) SELECT actor_id, visibility,"
                     " count(*) FROM posts WHERE deleted_at IS NULL GROUP BY actor_id, visibility")
    # The same for tag_post_counts (migration 0180): the bench's copy adds hashtags with plain SQL.
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'tag_post_counts'").fetchone() is not None:
        with conn:
            conn.execute("DELETE FROM tag_post_counts")
            conn.execute("INSERT INTO tag_post_counts (tag, posts) SELECT t.tag, count(*) FROM post_tags t"
                         " JOIN posts p ON p.id = t.post_id WHERE p.visibility = 'public' AND p.deleted_at IS NULL"
                         " GROUP BY t.tag")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--posts", type=int, default=1_000_000)
    p.add_argument("--dir", type=Path, required=True, help="new directory for config and database")
    p.add_argument("--port", type=int, default=18080, help="port baked into local ids (pages.py serves there)")
    p.add_argument("--corpus", action="store_true", help="every post public and by a consenting local account")
    p.add_argument("--locals", type=int, default=20)
    p.add_argument("--remotes", type=int, default=5000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if args.dir.exists() and any(args.dir.iterdir()):
        print(f"{args.dir} is not empty", file=sys.stderr)
        return 2
    args.dir.mkdir(parents=True, exist_ok=True)
    header(f"seeding {args.posts} posts into {args.dir}")
    t = time.perf_counter()
    meta = seed(args.dir, args.posts, args.port, args.corpus, args.locals, args.remotes, args.seed)
    size = sum(f.stat().st_size for f in args.dir.glob("fedserver.sqlite3*"))
    print(f"done in {time.perf_counter() - t:.0f}s: {meta['posts']} posts, {meta['corpus_records']} corpus records,"
          f" database {size / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
