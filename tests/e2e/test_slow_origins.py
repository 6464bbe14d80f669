"""A slow or dead origin cannot hold up the inbox (issue 12, item 2): activities that must fetch
something from a server that never answers are applied beside the others, not in front of them, and
a fetch that failed is not repeated at once for every activity that refers to it. The real
`fedserver serve` with a short fetch timeout; a hostile remote (a real aiohttp server that signs)
whose object or key URLs hang or fail, and a well-behaved remote that signs."""
from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

import pytest
from aiohttp import web

from tests.e2e.fake_remote import FakeRemote
from tests.e2e.processes import ServerProcess, await_for

FETCH_TIMEOUT = 1.5
HOSTILE_CREATES = 14


class HostileRemote(FakeRemote):
    """A FakeRemote whose GETs of chosen paths never answer (`hang`) or answer 503 (`fail`), until
    `serve` publishes a document there; `slow` paths answer after that many seconds."""
    hang: set[str]
    fail: set[str]
    slow: dict[str, float]

    async def _document(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(self.slow.get(request.path, 0))
        if request.path in self.hang:
            self.fetches.append(request.path)
            await asyncio.Event().wait()  # until the server shuts down
        if request.path in self.fail:
            self.fetches.append(request.path)
            return web.json_response({"error": "overloaded"}, status=503)
        return await super()._document(request)

    async def _actor_document(self, request: web.Request) -> web.StreamResponse:
        return await self._document(request) if request.path in self.hang else await super()._actor_document(request)

    def serve(self, doc: dict[str, Any]) -> None:
        super().serve(doc)
        self.hang.discard(doc["id"].removeprefix(self.base))
        self.fail.discard(doc["id"].removeprefix(self.base))


async def start_hostile(*names: str) -> HostileRemote:
    remote = await HostileRemote.start(*names)
    remote.hang, remote.fail, remote.slow = set(), set(), {}
    return remote


@pytest.fixture
async def hostile() -> AsyncIterator[HostileRemote]:
    remote = await start_hostile("mallory")
    yield remote
    await remote.stop()


@pytest.fixture
async def good() -> AsyncIterator[FakeRemote]:
    remote = await FakeRemote.start("bob")
    yield remote
    await remote.stop()


async def serving(fedserver_processes, **federation: Any) -> ServerProcess:
    server = fedserver_processes("a", fetch_timeout_seconds=FETCH_TIMEOUT, **federation)
    server.run("user", "create", "alice", check=True)
    await server.astart()
    return server


def mentions_of_alice(server: ServerProcess, post_uri: str) -> int:
    return server.value(
        "SELECT count(*) FROM notifications n JOIN posts p ON p.id = n.post_id JOIN actors a ON a.id = n.recipient_id"
        " WHERE a.username = 'alice' AND a.is_local = 1 AND n.kind = 'mention' AND p.uri = ?", (post_uri,)) or 0


def attempts_of(server: ServerProcess, activity_id: str) -> int:
    return server.value("SELECT attempts FROM inbox_items WHERE activity_uri = ?", (activity_id,)) or 0


async def test_creates_whose_objects_hang_do_not_delay_an_unrelated_post(fedserver_processes, hostile, good):
    server = await serving(fedserver_processes)
    inbox = f"{server.base}/inbox"
    hanging = [f"/hang/{n}" for n in range(HOSTILE_CREATES)]
    hostile.hang.update(hanging)
    creates = [hostile.activity("mallory", "Create", hostile.base + path) for path in hanging]
    # The first one keeps the worker waiting while the others arrive, so that they are taken up
    # together; then bob's post arrives while the worker waits on them.
    assert (await hostile.post(inbox, creates[0], as_user="mallory"))[0] == 202
    await await_for(lambda: hanging[0] in hostile.fetches, what="the first hanging fetch")
    for create in creates[1:]:
        status, body = await hostile.post(inbox, create, as_user="mallory")
        assert status == 202, body
    await await_for(lambda: any(path in hostile.fetches for path in hanging[1:]), timeout=10,
                    what="the worker waiting on the other hanging fetches")

    post = good.create_note("bob", "hello alice, unrelated", mention=server.actor_uri("alice"))
    status, body = await good.post(inbox, post, as_user="bob")
    assert status == 202, body
    sent = time.monotonic()
    await await_for(lambda: mentions_of_alice(server, post["object"]["id"]), timeout=40, interval=0.05,
                    what="alice notified of bob's post")
    waited = time.monotonic() - sent
    # Before: the post waited behind every hanging fetch of the batch (14 x the fetch timeout).
    assert waited < 3.0, f"bob's post took {waited:.1f} s to arrive behind a hanging origin"

    # The hanging origin is paused after a few timeouts: its other Creates are put off, not fetched
    # one timeout each, and they stay queued (retried later) rather than failed.
    def hung() -> int:
        return sum(hostile.fetches.count(path) for path in hanging)

    await await_for(lambda: hung() >= 3, timeout=10, what="three fetches from the hanging origin")
    await asyncio.sleep(2 * FETCH_TIMEOUT)
    assert hung() == 3, f"{hung()} fetches from the hanging origin"
    states = {server.value("SELECT state FROM inbox_items WHERE activity_uri = ?", (c["id"],)) for c in creates}
    assert states == {"pending"}


async def test_an_object_whose_fetch_failed_is_not_fetched_again_at_once_but_is_after_a_while(
        fedserver_processes, hostile):
    server = await serving(fedserver_processes, fetch_failure_cache_seconds=2.0, delivery_retry_scale=0.005)
    inbox = f"{server.base}/inbox"
    note = hostile.note("mallory", "worth the wait", mention=server.actor_uri("alice"))
    path = note["id"].removeprefix(hostile.base)
    hostile.fail.add(path)
    first = hostile.activity("mallory", "Create", note["id"])
    assert (await hostile.post(inbox, first, as_user="mallory"))[0] == 202
    await await_for(lambda: attempts_of(server, first["id"]) >= 1, what="the first fetch failing")
    # Another activity refers to the same object, and the first one is retried meanwhile.
    second = hostile.activity("mallory", "Create", note["id"])
    assert (await hostile.post(inbox, second, as_user="mallory"))[0] == 202
    await await_for(lambda: attempts_of(server, second["id"]) >= 1 and attempts_of(server, first["id"]) >= 2,
                    what="the second activity and a retry of the first tried")
    assert hostile.fetches.count(path) == 1

    # Once the remembered failure expires, a retry fetches the object again and it is stored.
    hostile.serve(note)
    await await_for(lambda: mentions_of_alice(server, note["id"]), timeout=20,
                    what="the post stored once its origin answers")
    assert hostile.fetches.count(path) >= 2  # each waiting Create fetches it once more


async def test_a_key_whose_fetch_failed_is_not_fetched_again_for_every_request(fedserver_processes, hostile):
    server = await serving(fedserver_processes, fetch_failure_cache_seconds=3.0)
    inbox = f"{server.base}/inbox"
    hostile.add_actor("ghost")
    hostile.hang.add("/users/ghost")
    statuses, took = [], []
    for n in range(4):
        started = time.monotonic()
        status, _ = await hostile.post(inbox, hostile.create_note("ghost", f"boo {n}"), as_user="ghost")
        statuses.append(status)
        took.append(time.monotonic() - started)
    assert statuses == [401] * 4
    assert hostile.fetch_count("ghost") == 1
    # Only the first request waited for the key; the others were answered from the remembered failure.
    assert max(took[1:]) < FETCH_TIMEOUT / 2, took

    # After the remembered failure expires, a request with the key (now served) is accepted.
    hostile.hang.discard("/users/ghost")
    await asyncio.sleep(3.2)
    status, body = await hostile.post(inbox, hostile.create_note("ghost", "boo again"), as_user="ghost")
    assert status == 202, body
    assert hostile.fetch_count("ghost") == 2


async def test_a_signers_later_activity_waits_for_its_earlier_one_that_fetches(fedserver_processes, hostile):
    server = await serving(fedserver_processes)
    inbox = f"{server.base}/inbox"
    note = hostile.note("mallory", "posted, then deleted", mention=server.actor_uri("alice"))
    hostile.serve(note)
    path = note["id"].removeprefix(hostile.base)
    hostile.slow[path] = 1.0
    create = hostile.activity("mallory", "Create", note["id"])
    assert (await hostile.post(inbox, create, as_user="mallory"))[0] == 202
    await await_for(lambda: path in hostile.fetches, what="the object being fetched")
    # The Delete needs no fetch, but it comes after the Create: it must not overtake it (then the
    # Create, arriving after its Delete, would not be stored at all).
    delete = hostile.activity("mallory", "Delete", {"id": note["id"], "type": "Tombstone"})
    assert (await hostile.post(inbox, delete, as_user="mallory"))[0] == 202
    await await_for(lambda: server.value("SELECT count(*) FROM inbox_items WHERE state = 'done'"
                                         " AND activity_uri IN (?, ?)", (create["id"], delete["id"])) == 2,
                    what="both applied")
    deleted_at = server.query("SELECT deleted_at FROM posts WHERE uri = ?", (note["id"],))
    assert len(deleted_at) == 1 and deleted_at[0][0] is not None, deleted_at
