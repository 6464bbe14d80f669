"""First contact: activities from actors the server has never seen. Their keys are fetched (one fetch
per actor, even when its first activities arrive together), the actors are stored, and every
activity is accepted only once its actor is stored. A real fedserver on a loopback port, a
hand-built remote that really signs (tests/e2e/fake_remote.py)."""
from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator

import pytest
import pytest_asyncio

from fedserver.services import accounts
from tests.conftest import Instance, bound_socket, loopback_settings, wait_until
from tests.e2e.fake_remote import FakeRemote

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory) -> AsyncIterator[Instance]:
    sock = bound_socket()
    settings = loopback_settings(tmp_path_factory.mktemp("first-contact"), sock.getsockname()[1])
    instance = await Instance(settings=settings, sock=sock).start()
    await accounts.create_account(instance.ctx, "alice")
    yield instance
    await instance.stop()
    instance.sock.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def remote() -> AsyncIterator[FakeRemote]:
    remote = await FakeRemote.start()
    yield remote
    await remote.stop()


async def post_stored(server: Instance, uri: str) -> bool:
    return await server.count("SELECT count(*) FROM posts WHERE uri = ?", (uri,)) == 1


async def test_many_new_actors_at_once_are_each_fetched_once_stored_and_accepted(server, remote):
    names = [f"newcomer{i}" for i in range(24)]
    for name in names:
        remote.add_actor(name)
    activities = {name: remote.create_note(name, f"hello from {name}", mention=server.actor_uri("alice"))
                  for name in names}
    results = await asyncio.gather(*(remote.post(f"{server.base}/inbox", activities[name], as_user=name)
                                     for name in names))
    assert [status for status, _ in results] == [202] * len(names), results
    for name in names:
        assert remote.fetch_count(name) == 1
        rows = await server.query("SELECT key_id, public_key_pem, fetched_at FROM actors WHERE uri = ?",
                                  (remote.actor_uri(name),))
        assert len(rows) == 1
        key_id, pem, fetched_at = rows[0]
        assert key_id == remote.key_id(name)
        assert pem == remote.actor_document(name)["publicKey"]["publicKeyPem"]
        assert fetched_at is not None
    for name in names:
        uri = activities[name]["object"]["id"]
        await wait_until(lambda: post_stored(server, uri), what=f"{name}'s post stored")


async def test_a_new_actors_first_activities_arriving_together_fetch_its_key_once(server, remote):
    remote.add_actor("chatty")
    activities = [remote.create_note("chatty", f"first words {i}", mention=server.actor_uri("alice"))
                  for i in range(10)]
    results = await asyncio.gather(*(remote.post(f"{server.base}/inbox", a, as_user="chatty") for a in activities))
    assert [status for status, _ in results] == [202] * 10, results
    assert remote.fetch_count("chatty") == 1
    assert await server.count("SELECT count(*) FROM actors WHERE uri = ?", (remote.actor_uri("chatty"),)) == 1
    for activity in activities:
        uri = activity["object"]["id"]
        await wait_until(lambda: post_stored(server, uri), what="every post stored")


async def test_first_contacts_with_a_forged_signature_are_refused_while_others_are_accepted(server, remote):
    # The forger signs as "victim" with its own key: the fetched document (batched with the honest
    # first contacts) publishes the victim's key, so that request is refused and nothing is stored.
    remote.add_actor("victim")
    remote.add_actor("forger")
    honest = [f"honest{i}" for i in range(6)]
    for name in honest:
        remote.add_actor(name)
    forged = remote.create_note("victim", "not really me", mention=server.actor_uri("alice"))
    requests = [remote.post(f"{server.base}/inbox", forged, as_user="victim", key_of="forger")]
    requests += [remote.post(f"{server.base}/inbox", remote.create_note(name, "hi", mention=server.actor_uri("alice")),
                             as_user=name) for name in honest]
    results = await asyncio.gather(*requests)
    assert results[0][0] == 401, results[0]
    assert [status for status, _ in results[1:]] == [202] * len(honest)
    assert await server.count("SELECT count(*) FROM inbox_items WHERE activity_uri = ?", (forged["id"],)) == 0


async def test_an_edit_that_overtakes_its_post_is_applied_once_the_post_arrives(server, remote):
    remote.add_actor("hasty")
    inbox = f"{server.base}/inbox"
    note = remote.note("hasty", "first draft", mention=server.actor_uri("alice"))
    edited = {**note, "content": "<p>second draft</p>",
              "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))}
    update = remote.activity("hasty", "Update", edited)
    assert (await remote.post(inbox, update, as_user="hasty"))[0] == 202

    async def update_waits() -> bool:
        return bool(await server.count("SELECT count(*) FROM inbox_items WHERE activity_uri = ? AND state = 'pending'"
                                       " AND attempts >= 1", (update["id"],)))

    await wait_until(update_waits, what="the Update set aside for a retry")
    assert (await remote.post(inbox, remote.activity("hasty", "Create", note), as_user="hasty"))[0] == 202

    async def edited_text() -> bool:
        rows = await server.query("SELECT content_text FROM posts WHERE uri = ?", (note["id"],))
        return bool(rows) and rows[0][0] == "second draft"

    await wait_until(edited_text, what="the edit applied to the post that arrived after it")


async def test_an_edit_of_an_old_post_that_never_arrived_is_dropped(server, remote):
    remote.add_actor("late")
    note = remote.note("late", "from last year")
    note["published"] = "2025-01-01T00:00:00Z"
    update = remote.activity("late", "Update", note)
    assert (await remote.post(f"{server.base}/inbox", update, as_user="late"))[0] == 202

    async def done() -> bool:
        return bool(await server.count("SELECT count(*) FROM inbox_items WHERE activity_uri = ? AND state = 'done'",
                                       (update["id"],)))

    await wait_until(done, what="the Update processed")
    assert await server.count("SELECT count(*) FROM posts WHERE uri = ?", (note["id"],)) == 0
