"""The inbox worker applies the Creates of a claimed batch together (one write transaction): what a
batch holds must come out as if each activity had been applied alone, in arrival order per actor.
A real fedserver receives real signed HTTP from a hand-built remote; its inbox worker does not run
by itself, so everything posted lands in one claimed batch, applied with run_once."""
from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

import pytest
from aiohttp import web

from fedserver.app import build_app
from fedserver.federation.processing import InboxWorker
from fedserver.services import accounts, follows, posting
from fedserver.services.posting import Draft
from tests.conftest import Instance, bound_socket, loopback_settings, wait_until
from tests.e2e.fake_remote import FakeRemote


class HeldInstance(Instance):
    """An instance without background workers: the inbox stores what arrives and nothing applies
    it until the test calls apply_inbox."""

    async def start(self) -> "HeldInstance":
        self.app = build_app(self.settings, run_workers=False)
        self.runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()
        return self

    async def apply_inbox(self) -> int:
        """Apply everything stored so far as one claimed batch; how many items it held."""
        return await InboxWorker(self.ctx).run_once()


@pytest.fixture
async def server(tmp_path) -> AsyncIterator[HeldInstance]:
    sock = bound_socket()
    instance = HeldInstance(settings=loopback_settings(tmp_path, sock.getsockname()[1]), sock=sock)
    await instance.start()
    await accounts.create_account(instance.ctx, "alice")
    yield instance
    await instance.stop()
    instance.sock.close()


@pytest.fixture
async def remote() -> AsyncIterator[FakeRemote]:
    remote = await FakeRemote.start("eve", "mallory", "trent")
    yield remote
    await remote.stop()


async def deliver(server: HeldInstance, remote: FakeRemote, *activities: dict[str, Any]) -> None:
    for activity in activities:
        status, body = await remote.post(f"{server.base}/inbox", activity, as_user=activity["actor"].rsplit("/", 1)[1])
        assert status == 202, body


async def item_states(server: HeldInstance) -> dict[str, str]:
    return dict(await server.query("SELECT activity_uri, state FROM inbox_items"))


async def post_of(server: HeldInstance, uri: str) -> tuple | None:
    rows = await server.query("SELECT id, content_text, deleted_at FROM posts WHERE uri = ?", (uri,))
    return rows[0] if rows else None


async def notifications_of(server: HeldInstance, username: str) -> list[tuple[str, str | None]]:
    return await server.query(
        "SELECT n.kind, p.uri FROM notifications n JOIN actors a ON a.id = n.recipient_id"
        " LEFT JOIN posts p ON p.id = n.post_id WHERE a.username = ? AND a.is_local = 1 ORDER BY n.id", (username,))


def wire_time(offset: float = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


async def test_creates_from_several_actors_in_one_batch_are_stored_with_mentions_tags_and_notifications(
        server, remote):
    alice = server.actor_uri("alice")
    own = await posting.create_post(server.ctx, "alice", Draft(text="what do you think?"))
    mention = remote.create_note("eve", "hello alice #Batch", mention=alice)
    mention["object"]["tag"].append({"type": "Hashtag", "name": "#Batch"})
    reply = remote.create_note("mallory", "a reply to alice")
    reply["object"]["inReplyTo"] = own.uri
    # Tagged but not addressed: Mastodon's silent mention, stored without a notification.
    silent = remote.create_note("trent", "psst", mention=alice)
    silent["object"]["cc"].remove(alice)
    silent["cc"] = silent["object"]["cc"]
    await deliver(server, remote, mention, reply, silent)

    assert await server.apply_inbox() == 3

    assert set((await item_states(server)).values()) == {"done"}
    for activity in (mention, reply, silent):
        assert await post_of(server, activity["object"]["id"]) is not None, activity["id"]
    assert await notifications_of(server, "alice") == [("mention", mention["object"]["id"]),
                                                       ("reply", reply["object"]["id"])]
    assert await server.query("SELECT t.tag FROM post_tags t JOIN posts p ON p.id = t.post_id WHERE p.uri = ?",
                              (mention["object"]["id"],)) == [("batch",)]
    mentioned = ("SELECT a.uri FROM post_mentions m JOIN posts p ON p.id = m.post_id"
                 " JOIN actors a ON a.id = m.actor_id WHERE p.uri = ?")
    assert await server.query(mentioned, (mention["object"]["id"],)) == [(alice,)]
    assert await server.query(mentioned, (silent["object"]["id"],)) == [(alice,)]


async def test_a_create_that_fails_in_a_batch_fails_alone_and_the_others_are_stored(server, remote):
    alice = server.actor_uri("alice")
    good = [remote.create_note(name, f"fine {name}", mention=alice) for name in ("eve", "mallory")]
    bad = remote.create_note("trent", "this one breaks", mention=alice)
    # A real storage failure for one post only: the database itself refuses the row.
    async with server.ctx.db.transaction() as tx:
        if server.ctx.db.engine == "postgresql":
            await tx.execute("CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS"
                             " $$ BEGIN RAISE EXCEPTION 'refused by the test'; END; $$")
            await tx.execute(f"CREATE TRIGGER refuse_one BEFORE INSERT ON posts FOR EACH ROW"
                             f" WHEN (NEW.uri = '{bad['object']['id']}') EXECUTE FUNCTION refuse_one()")
        else:
            await tx.execute(f"CREATE TRIGGER refuse_one BEFORE INSERT ON posts WHEN NEW.uri = '{bad['object']['id']}'"
                             " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    await deliver(server, remote, good[0], bad, good[1])

    assert await server.apply_inbox() == 3

    states = await item_states(server)
    assert states == {good[0]["id"]: "done", bad["id"]: "failed", good[1]["id"]: "done"}
    error = await server.query("SELECT last_error FROM inbox_items WHERE activity_uri = ?", (bad["id"],))
    assert "refused by the test" in error[0][0]
    assert await post_of(server, bad["object"]["id"]) is None
    for activity in good:
        assert await post_of(server, activity["object"]["id"]) is not None
    assert [kind for kind, _ in await notifications_of(server, "alice")] == ["mention", "mention"]


async def test_the_same_post_created_twice_in_one_batch_is_stored_once_and_notified_once(server, remote):
    first = remote.create_note("eve", "only once", mention=server.actor_uri("alice"))
    again = remote.activity("eve", "Create", first["object"])  # a new activity id, the same post
    await deliver(server, remote, first, again)

    assert await server.apply_inbox() == 2

    assert set((await item_states(server)).values()) == {"done"}
    assert await server.count("SELECT count(*) FROM posts WHERE uri = ?", (first["object"]["id"],)) == 1
    assert await notifications_of(server, "alice") == [("mention", first["object"]["id"])]


async def test_an_update_after_a_create_by_the_same_actor_in_one_batch_edits_the_new_post(server, remote):
    alice = server.actor_uri("alice")
    create = remote.create_note("eve", "first draft", mention=alice)
    edited = {**create["object"], "content": "<p>second draft</p>", "updated": wire_time(+1)}
    update = remote.activity("eve", "Update", edited)
    later = remote.create_note("eve", "after the edit", mention=alice)
    await deliver(server, remote, create, update, later)

    assert await server.apply_inbox() == 3

    assert set((await item_states(server)).values()) == {"done"}
    _, text, _ = await post_of(server, create["object"]["id"])
    assert text == "second draft"
    revisions = await server.query("SELECT r.content_html FROM post_revisions r JOIN posts p ON p.id = r.post_id"
                                   " WHERE p.uri = ?", (create["object"]["id"],))
    assert len(revisions) == 1 and "first draft" in revisions[0][0]
    assert await post_of(server, later["object"]["id"]) is not None


async def test_a_create_replayed_after_its_delete_in_one_batch_does_not_bring_the_post_back(server, remote):
    create = remote.create_note("eve", "soon gone", mention=server.actor_uri("alice"))
    delete = remote.activity("eve", "Delete", {"id": create["object"]["id"], "type": "Tombstone"})
    replay = remote.activity("eve", "Create", create["object"])
    await deliver(server, remote, create, delete, replay)

    assert await server.apply_inbox() == 3

    assert set((await item_states(server)).values()) == {"done"}
    _, text, deleted_at = await post_of(server, create["object"]["id"])
    assert deleted_at is not None and text == ""


async def test_creates_are_stored_only_when_someone_here_follows_or_is_addressed(server, remote):
    # alice follows eve; eve's Accept arrives in the same batch, before eve's unaddressed post.
    follow = await follows.follow(server.ctx, "alice", f"@eve@{remote.domain}")
    accept = remote.activity("eve", "Accept", follow.uri)
    followed = remote.create_note("eve", "for my followers")
    stranger = remote.create_note("mallory", "nobody there follows me")
    await deliver(server, remote, accept, followed, stranger)

    assert await server.apply_inbox() == 3

    assert set((await item_states(server)).values()) == {"done"}
    assert await server.query("SELECT state FROM follows") == [("accepted",)]
    assert await post_of(server, followed["object"]["id"]) is not None
    assert await post_of(server, stranger["object"]["id"]) is None


async def test_a_create_arriving_after_its_delete_in_one_batch_is_not_stored(server, remote):
    note = remote.note("eve", "deleted before it arrived", mention=server.actor_uri("alice"))
    delete = remote.activity("eve", "Delete", {"id": note["id"], "type": "Tombstone"})
    create = remote.activity("eve", "Create", note)
    await deliver(server, remote, delete, create)

    assert await server.apply_inbox() == 2

    assert set((await item_states(server)).values()) == {"done"}
    assert await post_of(server, note["id"]) is None
    assert await notifications_of(server, "alice") == []


class SendersNeverStop:
    """Inbound pressure that never lets up: every time the worker looks, more inbox requests have
    arrived than its give-way threshold."""

    def __init__(self) -> None:
        self._received = 0

    @property
    def received(self) -> int:
        self._received += 1_000
        return self._received


async def test_worker_gives_way_to_a_burst_for_a_bounded_time_and_still_applies(server, remote):
    # Acknowledge first, but never starve: a sustained burst only delays applying what was stored.
    activity = remote.create_note("eve", "stored during a burst", mention=server.actor_uri("alice"))
    await deliver(server, remote, activity)

    async def saturate_the_loop() -> None:
        # A loop busy ~95% of the time, as under a burst: it computes for 20 ms, then idles 1 ms
        # (in which the database threads get their turn, as they do between requests).
        while True:
            until = time.perf_counter() + 0.02
            while time.perf_counter() < until:
                pass
            await asyncio.sleep(0.001)

    busy = asyncio.create_task(saturate_the_loop())
    worker = asyncio.create_task(InboxWorker(server.ctx, SendersNeverStop()).run())
    try:
        row = await wait_until(lambda: post_of(server, activity["object"]["id"]), what="post applied during a burst")
    finally:
        for task in (worker, busy):
            task.cancel()
        await asyncio.gather(worker, busy, return_exceptions=True)
    assert row[1].endswith("stored during a burst")
    assert (await item_states(server))[activity["id"]] == "done"
