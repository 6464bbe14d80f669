"""Background work apart from HTTP: `fedserver serve --no-workers` answers requests and queues work,
and `fedserver worker` processes (two here, on the same SQLite file) do it, sharing leased queues.
Federation with a second instance (in-process) and with a hand-built remote that really signs
(tests/e2e/fake_remote.py); workers are SIGKILLed mid-fan-out, receivers are slow."""
from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import aiohttp

from fedserver.services import accounts, follows, posting
from fedserver.services.posting import Draft
from tests.conftest import wait_until
from tests.e2e.fake_remote import FakeRemote
from tests.e2e.processes import ServerProcess, WorkerProcess, await_for
from tests.e2e.test_durability import InboxWire, deliveries, digests, follow_established
from tests.e2e.test_shared_state import api_token
from tests.e2e.web_client import Visitor

# Short leases, so that a killed worker's work is taken over within seconds.
LEASE_SECONDS = 3.0
POSTS = 6


async def split_instance(fedserver_processes, name: str = "a", *, workers: int = 2, worker_args: tuple[str, ...] = (),
                         **settings) -> tuple[ServerProcess, list[WorkerProcess]]:
    """An instance served by `serve --no-workers`, with `workers` worker processes beside it."""
    server = fedserver_processes(name, worker_lease_seconds=LEASE_SECONDS, **settings)
    await server.astart("--no-workers")
    started = [await WorkerProcess(server, *worker_args).astart() for _ in range(workers)]
    return server, started


async def post_many(a: ServerProcess, text: str, count: int = POSTS) -> list[str]:
    """alice posts `count` times through the CLI, one after another; returns the Create ids."""
    return [(await a.arun("post", "alice", f"{text} #{i}", check=True)).stdout.strip() + "/activity"
            for i in range(count)]


async def test_a_web_process_and_two_workers_federate_with_a_second_instance(instances, fedserver_processes):
    b = await instances("b")
    a, _ = await split_instance(fedserver_processes)

    # bob@b follows alice@a: the web process stores the Follow, a worker applies it and another
    # (or the same) sends the Accept.
    await follow_established(a, b)

    # alice's post reaches b.
    await a.arun("post", "alice", "hello from the worker processes", check=True)

    async def b_has_it() -> bool:
        return await b.count("SELECT count(*) FROM posts WHERE content_html LIKE '%hello from the worker processes%'") == 1
    await wait_until(b_has_it, what="alice's post delivered to b")

    # alice follows bob back; bob's post arrives at a and shows on bob's profile there.
    await a.arun("follow", "alice", b.handle("bob"), check=True)
    await wait_until(lambda: b.follow_state(a.actor_uri("alice"), b.actor_uri("bob")), what="alice's follow at b")
    await await_for(lambda: a.value("SELECT state FROM follows f JOIN actors x ON x.id = f.followee_id"
                                    " WHERE x.uri = ?", (b.actor_uri("bob"),)) == "accepted",
                    what="b's Accept applied at a")
    await posting.create_post(b.ctx, "bob", Draft(text="Greetings from b to the web process"))
    await await_for(lambda: a.value("SELECT count(*) FROM posts WHERE content_html LIKE '%Greetings from b%'") == 1,
                    what="bob's Create applied at a")
    bob_here = a.value("SELECT id FROM actors WHERE uri = ?", (b.actor_uri("bob"),))
    password = (await a.arun("user", "reset-password", "alice", check=True)).stdout.strip().rsplit(" ", 1)[-1]
    async with Visitor(a.base) as alice:
        assert (await alice.sign_in("alice", password)).status == 303
        page = await alice.get(f"/remote/{bob_here}")
        assert page.status == 200
        assert "Greetings from b to the web process" in page.text


async def test_a_worker_killed_mid_fan_out_loses_nothing_and_each_delivery_arrives_once_as_the_receiver_sees_it(
        instances, fedserver_processes):
    wire = InboxWire()
    b = await instances("b", middlewares=[wire.middleware])
    a, (first, second) = await split_instance(fedserver_processes, delivery_timeout_seconds=5.0,
                                              worker_args=("--queues", "inbox,delivery"))
    await follow_established(a, b)

    # Both workers stopped while alice posts: the queue then holds the whole fan-out.
    second.terminate()
    first.terminate()
    activities = await post_many(a, "killed mid fan-out")
    await kill_one_worker_mid_fan_out_and_check_each_create_arrives_once(a, b, wire, first, second, activities)


async def kill_one_worker_mid_fan_out_and_check_each_create_arrives_once(
        a: ServerProcess, b: Any, wire: InboxWire, first: WorkerProcess, second: WorkerProcess,
        activities: list[str]) -> None:
    """With both of a's workers stopped and `activities` queued for b: b answers slowly, the first
    worker is SIGKILLed while Creates are on their way, the second delivers the rest; b (which, like
    Mastodon, dedupes by activity id) takes each Create in once, and on the wire only what the killed
    worker had in flight went out twice."""
    by_activity = digests(a, activities)
    wire.answer_delay = 1.5  # b takes each activity at once, but answers slowly
    await first.astart()

    def in_flight() -> list[str]:
        return [uri for uri in activities if wire.started[by_activity[uri]]]
    await await_for(lambda: in_flight(), what="Creates on their way to b")
    first.kill()
    assert any(state == "pending" for _, state, _, _ in deliveries(a, activities))

    # Requests the worker wrote just before it died may still sit in b's socket: count what was in
    # flight only once b has read and answered every request it will ever see from that worker.
    await await_for(lambda: sum(wire.started.values()) == len(wire.answered), what="b took every open request")
    interrupted = in_flight()
    await second.astart()
    await await_for(lambda: all(row[1] == "delivered" for row in deliveries(a, activities)), timeout=30,
                    what="the other worker delivered the rest")

    marks = ", ".join("?" for _ in activities)
    assert await b.count(f"SELECT count(*) FROM inbox_items WHERE activity_uri IN ({marks})",
                         tuple(activities)) == len(activities)
    for activity in activities:
        assert await b.count("SELECT count(*) FROM posts WHERE uri = ?", (activity.removesuffix("/activity"),)) == 1
    # On the wire: what the killed worker had in flight went out again (it never learnt the answer),
    # everything else exactly once.
    assert {uri: wire.started[by_activity[uri]] for uri in activities} == {
        uri: 2 if uri in interrupted else 1 for uri in activities}


async def test_deliveries_slower_than_the_lease_are_sent_once_by_two_workers(instances, fedserver_processes):
    wire = InboxWire()
    b = await instances("b", middlewares=[wire.middleware])
    # b answers after twice the lease: without renewed leases the other worker would take each
    # delivery over while it is still in flight, and send it again.
    a, workers = await split_instance(fedserver_processes, delivery_timeout_seconds=15.0, fetch_timeout_seconds=15.0,
                                      worker_args=("--queues", "inbox,delivery"))
    await follow_established(a, b)
    wire.answer_delay = 2 * LEASE_SECONDS
    activities = await post_many(a, "slow but once")
    by_activity = digests(a, activities)

    await await_for(lambda: all(row[1] == "delivered" for row in deliveries(a, activities)), timeout=60,
                    what="every delivery delivered")
    assert {uri: wire.started[by_activity[uri]] for uri in activities} == {uri: 1 for uri in activities}
    assert all(worker.running for worker in workers)


async def send_create_update_delete_from_each(a: Any, remote: FakeRemote, signers: tuple[str, ...],
                                             ) -> tuple[dict[str, bool], dict[str, list[str]]]:
    """Each signer introduces itself (a stores the actor, so that what follows needs no fetch), then
    all signers at once send Create, Update (and for every other note Delete) of six notes each, back
    to back; returns once a has applied everything: {note id: deleted}, {signer: its note ids in the
    order sent}. `a` is a server (or set of processes) with base, actor_uri, value and query."""
    alice = a.actor_uri("alice")
    inbox = f"{a.base}/inbox"
    for name in signers:
        first = remote.create_note(name, f"{name} says hello", mention=alice)
        assert (await remote.post(inbox, first, as_user=name))[0] == 202
    await await_for(lambda: a.value("SELECT count(*) FROM inbox_items WHERE state = 'done'") == len(signers),
                    what="the introductions applied")

    notes: dict[str, bool] = {}  # note id -> deleted
    by_author: dict[str, list[str]] = defaultdict(list)  # signer -> its note ids, in the order sent

    async def stream(name: str) -> list[str]:
        sent = []
        for n in range(6):
            create = remote.create_note(name, f"{name} note {n} v1", mention=alice)
            note = dict(create["object"])
            update = remote.activity(name, "Update", {**note, "content": note["content"].replace("v1", "v2"),
                                                      "updated": "2099-01-01T00:00:00Z"})
            delete = remote.activity(name, "Delete", note["id"])
            notes[note["id"]] = bool(n % 2)
            by_author[name].append(note["id"])
            for activity in ((create, update, delete) if n % 2 else (create, update)):
                assert (await remote.post(inbox, activity, as_user=name))[0] == 202
                sent.append(activity["id"])
        return sent
    sent = await asyncio.gather(*(stream(name) for name in signers))
    total = sum(len(ids) for ids in sent) + len(signers)
    await await_for(lambda: a.value("SELECT count(*) FROM inbox_items WHERE state <> 'pending'") == total,
                    timeout=30, what="every activity applied")
    return notes, by_author


def assert_each_applied_in_order(a: Any, notes: dict[str, bool]) -> None:
    """What a's inbox made of those streams: every item applied on its first attempt, every note
    stored, edited notes at v2, deleted notes deleted."""
    rows = a.query("SELECT id, signer_uri, activity_type, activity_uri, attempts, last_error, state"
                   " FROM inbox_items ORDER BY id")
    by_signer: dict[str, list[tuple]] = defaultdict(list)
    for row in rows:
        by_signer[row[1]].append(row)
    for signer, items in by_signer.items():
        # Each applied on its first attempt: no Update came before its Create (it would have
        # been put back for a retry, "has not arrived yet").
        assert {(item[4], item[5], item[6]) for item in items} == {(1, None, "done")}, (signer, items)
    # The effects: every note was stored (no Delete came before its Create: the tombstone would
    # have refused it), edited notes kept v2, deleted notes are deleted (none resurrected).
    for note_id, deleted in notes.items():
        rows = a.query("SELECT content_html, deleted_at FROM posts WHERE uri = ?", (note_id,))
        assert len(rows) == 1, (note_id, rows)
        if deleted:
            assert rows[0][1], (note_id, rows)
        else:
            assert "v2" in rows[0][0] and not rows[0][1], (note_id, rows)


async def test_two_inbox_workers_keep_each_signers_create_update_delete_in_order(fedserver_processes):
    signers = ("eve", "mallory", "trent", "peggy")
    remote = await FakeRemote.start(*signers)
    try:
        a, _ = await split_instance(fedserver_processes, worker_args=("--queues", "inbox", "--concurrency", "2"))
        await a.arun("user", "create", "alice", check=True)
        notes, _ = await send_create_update_delete_from_each(a, remote, signers)
        assert_each_applied_in_order(a, notes)
    finally:
        await remote.stop()


async def test_serve_without_workers_queues_work_that_a_later_worker_finishes(instances, fedserver_processes):
    b = await instances("b")
    remote = await FakeRemote.start("eve")
    try:
        a = fedserver_processes("a", worker_lease_seconds=LEASE_SECONDS)
        await a.astart("--no-workers")
        await a.arun("user", "create", "alice", check=True)
        # Inbound: eve's post is accepted and stored, not applied.
        create = remote.create_note("eve", "queued until a worker comes", mention=a.actor_uri("alice"))
        assert (await remote.post(f"{a.base}/inbox", create, as_user="eve"))[0] == 202
        # Outbound: bob@b's follow is stored, the Accept waits.
        await accounts.create_account(b.ctx, "bob")
        await follows.follow(b.ctx, "bob", a.handle("alice"))
        await await_for(lambda: a.value("SELECT count(*) FROM inbox_items WHERE activity_type = 'Follow'") == 1,
                        what="b's Follow stored at a")
        await asyncio.sleep(2)
        assert a.value("SELECT count(*) FROM inbox_items WHERE state = 'pending'") == 2
        assert a.value("SELECT count(*) FROM posts WHERE content_html LIKE '%queued until a worker comes%'") == 0
        assert await b.follow_state(b.actor_uri("bob"), a.actor_uri("alice")) == "pending"

        worker = await WorkerProcess(a).astart()
        await await_for(lambda: a.value("SELECT count(*) FROM posts WHERE content_html LIKE '%queued until a worker comes%'")
                        == 1, what="eve's post applied by the worker")
        await wait_until(lambda: b.follow_state(b.actor_uri("bob"), a.actor_uri("alice")), what="follow state at b")

        async def accepted() -> bool:
            return await b.follow_state(b.actor_uri("bob"), a.actor_uri("alice")) == "accepted"
        await wait_until(accepted, what="the Accept delivered by the worker")
        assert worker.terminate() == 0
    finally:
        await remote.stop()


async def test_a_periodic_job_whose_worker_is_killed_is_taken_over_by_another(fedserver_processes):
    a, workers = await split_instance(fedserver_processes, poll_min_expiry_seconds=1,
                                      worker_args=("--queues", "polls,delivery"))
    await a.arun("user", "create", "alice", check=True)
    token = await api_token(a, "alice")

    # One worker holds the poll closer's lease; the other waits for it.
    holder = await await_for(lambda: a.value("SELECT owner FROM worker_leases WHERE name = 'poll-closer'"),
                             what="the poll closer's lease taken")
    [running] = [worker for worker in workers if f":{worker.pid}:" in holder]
    running.kill()

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{a.base}/api/v1/statuses", headers={"Authorization": f"Bearer {token}"}, data=[
                ("status", "Which one?"), ("poll[options][]", "this"), ("poll[options][]", "that"),
                ("poll[expires_in]", "1")]) as resp:
            assert resp.status == 200, await resp.text()
    await await_for(lambda: a.value("SELECT p.closed_at FROM polls p JOIN posts s ON s.id = p.post_id"
                                    " WHERE s.content_html LIKE '%Which one?%'"),
                    timeout=3 * LEASE_SECONDS + 10, what="the poll closed by the other worker")
    assert a.value("SELECT owner FROM worker_leases WHERE name = 'poll-closer'") != holder


def test_worker_refuses_an_unknown_queue_or_concurrency_with_a_clear_message(fedserver_processes):
    a = fedserver_processes("a")
    result = a.run("worker", "--queues", "inbox,outbox")
    assert result.returncode == 1
    assert "unknown queue outbox: choose from inbox, delivery, media, push, corpus, polls, prune" in result.stderr
    result = a.run("worker", "--concurrency", "0")
    assert result.returncode == 1 and "--concurrency must be 1-64" in result.stderr
