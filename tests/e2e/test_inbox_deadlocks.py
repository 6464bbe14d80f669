"""Two inbox workers on one PostgreSQL database applying batches whose transactions lock the same
rows in opposite order: two remote servers' people reply to, like and boost the same two posts of
alice, their replies tagged #alpha and #beta in opposite orders, so that one worker's batch counts
#alpha then #beta (tag_post_counts rows) while the other's counts #beta then #alpha. PostgreSQL
aborts one of two such transactions with a deadlock; every activity must still be applied exactly
once, and none be left pending or marked failed.

The activities arrive over real HTTP, signed, at `fedserver serve --no-workers`; the two workers are
two InboxWorkers in this test, each on a database handle of its own (its own write lock and
connections, as two `fedserver worker` processes have), so that each claims whole blocks of one
side's activities and both apply them at the same time, block after block.

PostgreSQL only: on SQLite every write transaction excludes all others (BEGIN IMMEDIATE)."""
from __future__ import annotations

import asyncio

from fedserver.config import load_settings
from fedserver.context import close_context, open_context
from fedserver.federation import processing
from tests import engines
from tests.e2e.fake_remote import AS_PUBLIC, FakeRemote

pytestmark = engines.postgresql_only

# One side's block of activities is exactly what a worker claims at once (processing.BATCH, set to
# this below: the production 128 would need 256 requests per block pair; the locking is the same).
BLOCK = 12
ROUNDS = 8
LEFT, RIGHT = ("eve", "mallory"), ("trent", "peggy")


def _reply(remote: FakeRemote, name: str, parent: str, tags: tuple[str, ...], text: str) -> dict:
    note = remote.note(name, text)
    note["inReplyTo"] = parent
    note["tag"] = [{"type": "Hashtag", "name": f"#{tag}", "href": f"{remote.base}/tags/{tag}"} for tag in tags]
    note["content"] = "<p>" + text + " " + " ".join(f"#{tag}" for tag in tags) + "</p>"
    return remote.activity(name, "Create", note)


def _block(remote: FakeRemote, name: str, posts: tuple[str, str], tag_order: tuple[str, str], round_: int,
           per_signer: int) -> list[dict]:
    """One signer's share of a block: replies to both posts, alternating, tagged with one tag, then
    the other (in this side's order), then both; in the first round also a Like and an Announce of
    each post."""
    first, second = tag_order
    shapes = [(posts[0], (first,)), (posts[1], (second,)), (posts[0], (first, second)), (posts[1], (first, second))]
    activities = []
    interactions = []
    if round_ == 0:
        interactions = [remote.activity(name, kind, post) for post in posts for kind in ("Like", "Announce")]
    for n in range(per_signer - len(interactions)):
        parent, tags = shapes[n % len(shapes)]
        activities.append(_reply(remote, name, parent, tags, f"{name} round {round_} reply {n}"))
    return activities + interactions


async def test_two_inbox_workers_applying_opposite_order_batches_apply_every_activity_once(fedserver_processes,
                                                                                          monkeypatch):
    remote = await FakeRemote.start(*LEFT, *RIGHT)
    workers = []
    try:
        a = fedserver_processes("a", worker_lease_seconds=60)
        await a.astart("--no-workers")
        await a.arun("user", "create", "alice", check=True)
        posts = tuple([(await a.arun("post", "alice", f"post {n}", check=True)).stdout.strip() for n in (1, 2)])
        inbox = f"{a.base}/inbox"

        # Every block stored before the workers start, in order: left side's block, right side's
        # block, left, right... A worker's claim takes the oldest BLOCK due items of signers no
        # other worker holds: one side's block; the other worker then takes the other side's.
        sent: list[dict] = []
        for round_ in range(ROUNDS):
            for side, order, parents in ((LEFT, ("alpha", "beta"), posts), (RIGHT, ("beta", "alpha"), posts[::-1])):
                for name in side:
                    for activity in _block(remote, name, parents, order, round_, BLOCK // len(side)):
                        status, _ = await remote.post(inbox, activity, as_user=name)
                        assert status == 202, (status, activity["id"])
                        sent.append(activity)
        total = len(sent)
        assert a.value("SELECT count(*) FROM inbox_items WHERE state = 'pending'") == total

        monkeypatch.setattr(processing, "BATCH", BLOCK)
        settings = load_settings(a.config)
        contexts = [await open_context(settings), await open_context(settings)]
        workers = [processing.InboxWorker(ctx) for ctx in contexts]
        deadlocks_before = _deadlocks(a)

        async def work(worker: processing.InboxWorker) -> None:
            while a.value("SELECT count(*) FROM inbox_items WHERE state = 'pending'"):
                if not await worker.run_once():
                    await asyncio.sleep(0.02)
        await asyncio.wait_for(asyncio.gather(*(work(worker) for worker in workers)), timeout=120)

        # Every activity applied once: all done on their first claim, none failed or waiting.
        states = a.query("SELECT state, attempts, count(*) FROM inbox_items GROUP BY state, attempts")
        assert states == [("done", 1, total)], (states, a.query(
            "SELECT activity_uri, state, last_error FROM inbox_items WHERE state <> 'done' OR last_error IS NOT NULL"
            " LIMIT 5"))
        replies = [activity for activity in sent if activity["type"] == "Create"]
        for post in posts:
            expected = sum(1 for activity in replies if activity["object"]["inReplyTo"] == post)
            assert a.value("SELECT count(*) FROM posts WHERE in_reply_to_uri = ?", (post,)) == expected
            for kind, table in (("Like", "likes"), ("Announce", "announces")):
                assert a.value(f"SELECT count(*) FROM {table} t JOIN posts p ON p.id = t.post_id WHERE p.uri = ?",
                               (post,)) == len(LEFT) + len(RIGHT), (kind, post)
        assert a.value("SELECT count(*) FROM posts WHERE in_reply_to_uri IS NOT NULL") == len(replies)
        # The hashtags' post counts (what search shows) equal the tagged posts, each counted once.
        for tag in ("alpha", "beta"):
            tagged = sum(1 for activity in replies if any(t["name"] == f"#{tag}" for t in activity["object"]["tag"]))
            assert a.value("SELECT posts FROM tag_post_counts WHERE tag = ?", (tag,)) == tagged, tag
        # Notifications: one per reply (to alice's post), like and boost.
        assert a.value("SELECT count(*) FROM notifications") == len(replies) + 4 * (len(LEFT) + len(RIGHT))
        print(f"deadlocks detected meanwhile: {_deadlocks(a) - deadlocks_before}")
    finally:
        await _stop(workers, remote)


async def _stop(workers: list, remote: FakeRemote) -> None:
    for worker in workers:
        await worker.lanes.close()
        await close_context(worker.ctx)
    await remote.stop()


def _deadlocks(a) -> int:
    return int(a.value("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"))


PAIRS = (("amy", "ben"), ("cat", "dan"), ("fay", "gus"))
POSTS_EACH = 6


async def test_two_people_deleting_their_accounts_at_once_on_two_workers_are_both_deleted(fedserver_processes,
                                                                                          monkeypatch):
    """Two remote people whose posts are tagged #alpha, #beta... and #beta, #alpha... delete their
    accounts at the same moment; two workers apply the two Deletes at once, each uncounting its
    posts' hashtags post by post, in opposite orders. Both deletions must be carried out."""
    names = [name for pair in PAIRS for name in pair]
    remote = await FakeRemote.start(*names)
    workers = []
    try:
        a = fedserver_processes("a", worker_lease_seconds=60)
        await a.astart("--no-workers")
        await a.arun("user", "create", "alice", check=True)
        post = (await a.arun("post", "alice", "a post to reply to", check=True)).stdout.strip()
        inbox = f"{a.base}/inbox"
        monkeypatch.setattr(processing, "BATCH", 1)  # one claim, one Delete: each worker takes one
        settings = load_settings(a.config)
        contexts = [await open_context(settings), await open_context(settings)]
        workers = [processing.InboxWorker(ctx) for ctx in contexts]
        deadlocks_before = _deadlocks(a)

        async def drain() -> None:
            while await workers[0].run_once():
                pass

        # Each person's replies, published a second apart (their ids, and so the order a Delete
        # goes through them, follow that): one of each pair tags them #alpha, #beta, #alpha...,
        # the other #beta, #alpha, #beta...
        for first, second in PAIRS:
            for name, tags in ((first, ("alpha", "beta")), (second, ("beta", "alpha"))):
                for n in range(POSTS_EACH):
                    reply = _reply(remote, name, post, (tags[n % 2],), f"{name} reply {n}")
                    reply["object"]["published"] = f"2026-01-01T00:00:{n:02d}Z"
                    assert (await remote.post(inbox, reply, as_user=name))[0] == 202
        await drain()
        tagged = len(names) * POSTS_EACH // 2
        assert a.query("SELECT tag, posts FROM tag_post_counts ORDER BY tag") == [("alpha", tagged), ("beta", tagged)]

        for first, second in PAIRS:
            for name in (first, second):
                delete = remote.activity(name, "Delete", remote.actor_uri(name), to=[AS_PUBLIC])
                assert (await remote.post(inbox, delete, as_user=name))[0] == 202
            # Both workers at once: each claims one of the two Deletes and applies it.
            await asyncio.wait_for(asyncio.gather(*(worker.run_once() for worker in workers)), timeout=60)
            await drain()

        # Every person is deleted, with all their posts; the hashtags count no post any more.
        assert a.query("SELECT state, count(*) FROM inbox_items GROUP BY state") == [("done", len(names) * (POSTS_EACH + 1))], \
            a.query("SELECT activity_uri, state, last_error FROM inbox_items WHERE state <> 'done'")
        assert a.value("SELECT count(*) FROM actors WHERE uri LIKE ? AND deleted_at IS NULL", (f"{remote.base}/%",)) == 0
        assert a.value("SELECT count(*) FROM posts WHERE in_reply_to_uri = ? AND deleted_at IS NULL", (post,)) == 0
        assert a.query("SELECT tag, posts FROM tag_post_counts ORDER BY tag") == [("alpha", 0), ("beta", 0)]
        print(f"deadlocks detected meanwhile: {_deadlocks(a) - deadlocks_before}")
    finally:
        await _stop(workers, remote)
