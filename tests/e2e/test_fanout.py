"""A post to many followers: every inbox gets it exactly once, signed by its author, whether the
signatures were made on the event loop or in the signing process (and when that process dies), a
host held back by failures holds back every delivery to it, and a server killed after a receiver
took an activity but before recording it sends it again rather than losing it."""
from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections import Counter

from fedserver.activitypub.httpsig import (body_digest_header, extract_signature, prepare_signed_request,
                                           sign_message, sign_request)
from fedserver.activitypub.keys import load_private_key, public_pem_from_private
from fedserver.app import DELIVERY_WORKER_KEY
from fedserver.federation.delivery_signing import DeliverySigner, OutgoingActivity
from fedserver.federation.signing_process import SigningProcess, SigningUnavailable
from fedserver.services import accounts
from fedserver.store import actors as actor_store
from fedserver.store.deliveries import ClaimedDelivery
from tests.conftest import Instance, use_key_pool, wait_until
from tests.e2e.processes import await_for
from tests.e2e.test_delivery_retries import Receiver, add_remote_follower, publish, receivers  # noqa: F401
from tests.e2e.test_durability import LEASE_SECONDS, InboxWire, digests, follow_established

FOLLOWERS_PER_RECEIVER = 16


async def fan_out_sender(instances, receivers, monkeypatch) -> tuple[Instance, list[Receiver]]:
    """alice with 48 followers, 16 on each of three receivers, each with a personal inbox. Each
    host takes 16 deliveries at once, so a claim is large enough for the signing process."""
    use_key_pool(monkeypatch)
    a = await instances("a", delivery_per_host_concurrency=FOLLOWERS_PER_RECEIVER)
    await accounts.create_account(a.ctx, "alice")
    started = [await receivers(then=202) for _ in range(3)]
    for r, receiver in enumerate(started):
        for i in range(FOLLOWERS_PER_RECEIVER):
            await add_remote_follower(a, "alice", receiver, f"f{r}x{i}")
    return a, started


async def delivered_everywhere(a: Instance, activity_uri: str) -> bool:
    rows = await a.query("SELECT d.state FROM deliveries d JOIN outbound_activities o ON o.id = d.activity_id"
                         " WHERE o.uri = ?", (activity_uri,))
    return len(rows) == 3 * FOLLOWERS_PER_RECEIVER and all(state == "delivered" for (state,) in rows)


async def assert_each_inbox_got_it_once_signed_by_alice(a: Instance, started: list[Receiver], body: str) -> None:
    alice = await actor_store.get_local_actor(a.ctx.db.reader, "alice")
    assert alice is not None and alice.public_key_pem
    for receiver in started:
        got = [r for r in receiver.received if r.body == body.encode()]
        assert Counter(r.raw_path for r in got) == {
            f"/users/f{started.index(receiver)}x{i}/inbox": 1 for i in range(FOLLOWERS_PER_RECEIVER)}
        for request in got:
            pending = extract_signature("POST", request.raw_path, request.headers, request.body, scheme="http")
            assert pending.key_id == alice.key_id
            pending.verify(alice.public_key_pem)  # raises SignatureError when it does not verify


async def test_a_fan_out_reaches_every_inbox_once_signed_by_its_author(instances, receivers, monkeypatch):
    a, started = await fan_out_sender(instances, receivers, monkeypatch)
    worker = a.app[DELIVERY_WORKER_KEY]

    # The first large claim is signed on the event loop while the signing process starts.
    first_uri, first_body = await publish(a, "hello, all of you")
    await wait_until(lambda: delivered_everywhere(a, first_uri), what="first post delivered everywhere")
    await wait_until(lambda: _true(worker.signer.process.ready), what="signing process ready")

    second_uri, second_body = await publish(a, "and once more, signed next door")
    await wait_until(lambda: delivered_everywhere(a, second_uri), what="second post delivered everywhere")

    await assert_each_inbox_got_it_once_signed_by_alice(a, started, first_body)
    await assert_each_inbox_got_it_once_signed_by_alice(a, started, second_body)


async def test_deliveries_go_out_signed_when_the_signing_process_dies(instances, receivers, monkeypatch):
    a, started = await fan_out_sender(instances, receivers, monkeypatch)
    worker = a.app[DELIVERY_WORKER_KEY]
    warm_uri, _ = await publish(a, "warming up")
    await wait_until(lambda: delivered_everywhere(a, warm_uri), what="first post delivered everywhere")
    await wait_until(lambda: _true(worker.signer.process.ready), what="signing process ready")

    os.kill(worker.signer.process.pid, signal.SIGKILL)
    activity_uri, body = await publish(a, "signed by whoever is still alive")
    await wait_until(lambda: delivered_everywhere(a, activity_uri), what="post delivered everywhere")
    await assert_each_inbox_got_it_once_signed_by_alice(a, started, body)


async def test_signatures_from_the_signing_process_equal_those_made_here(monkeypatch):
    use_key_pool(monkeypatch)
    pem = accounts.generate_rsa_private_key_pem()
    key = load_private_key(pem)
    unsigned = [prepare_signed_request("POST", f"https://example.org/users/u{i}/inbox", body=b'{"id":"x"}',
                                       key_id="https://here.example/users/alice#main-key", key=key, now=1.8e9)
                for i in range(20)]
    process = SigningProcess()
    try:
        signatures = await process.sign(pem, [u.message for u in unsigned])
    finally:
        await process.close()
    # RSASSA-PKCS1-v1_5 is deterministic: the same message and key give the same bytes anywhere.
    assert signatures == [sign_message(key, u.message) for u in unsigned]
    assert unsigned[3].with_signature(signatures[3]) == sign_request(
        "POST", "https://example.org/users/u3/inbox", body=b'{"id":"x"}',
        key_id="https://here.example/users/alice#main-key", private_key_pem=pem, now=1.8e9)


async def test_a_batch_the_signing_process_refuses_is_signed_here(monkeypatch):
    use_key_pool(monkeypatch)
    pem = accounts.generate_rsa_private_key_pem()

    class Refusing:
        ready = True

        async def sign(self, private_key_pem: str, messages: list[bytes]) -> list[bytes]:
            raise SigningUnavailable("signing process ended")

    signer = DeliverySigner()
    signer.process = Refusing()  # type: ignore[assignment]
    activity = OutgoingActivity("https://here.example/a/1", b'{"id":"x"}', body_digest_header(b'{"id":"x"}'),
                                "https://here.example/users/alice#main-key", pem)
    jobs = [(ClaimedDelivery(i, 1, f"https://example.org/users/u{i}/inbox", "example.org", 0), activity)
            for i in range(40)]
    signed = [job async for chunk in signer.sign(jobs) for job in chunk]

    assert [job.delivery.id for job in signed] == list(range(40))
    public_pem = public_pem_from_private(pem)
    for job in signed:
        extract_signature("POST", f"/users/u{job.delivery.id}/inbox", job.headers, activity.body).verify(public_pem)


async def test_a_held_host_gets_no_request_for_any_delivery_until_its_hold_ends(instances, receivers):
    receiver = await receivers(then=500)
    a = await instances("a", host_failure_days=1)
    await accounts.create_account(a.ctx, "alice")
    for name in ("rita", "rosa", "ruth"):
        await add_remote_follower(a, "alice", receiver, name)

    # The first failures (one distinct day is enough here) mark the host unavailable.
    await publish(a, "anyone home?")
    await wait_until(lambda: a.count("SELECT count(*) FROM hosts WHERE host = ? AND unavailable_until IS NOT NULL",
                                     (receiver.domain,)), what="host marked unavailable")
    held_until = (await a.query("SELECT unavailable_until FROM hosts WHERE host = ?", (receiver.domain,)))[0][0]
    requests_before = len(receiver.received)

    second_uri, second_body = await publish(a, "held back, all three")

    async def all_held() -> bool:
        rows = await a.query(
            "SELECT d.attempts, d.next_attempt_at, d.last_error FROM deliveries d JOIN outbound_activities o"
            " ON o.id = d.activity_id WHERE o.uri = ?", (second_uri,))
        return len(rows) == 3 and all(row == (0, held_until, "host marked unavailable") for row in rows)
    await wait_until(all_held, what="every delivery of the second post held")
    # The first post's retries wait for the hold too, instead of knocking again.
    assert await a.count("SELECT count(*) FROM deliveries WHERE state = 'pending' AND next_attempt_at < ?",
                         (held_until,)) == 0
    assert receiver.count(second_body) == 0
    assert len(receiver.received) == requests_before


async def test_a_sender_killed_after_the_receiver_took_an_activity_but_before_recording_it_sends_it_again(
        instances, fedserver_processes):
    wire = InboxWire()
    b = await instances("b", middlewares=[wire.middleware])
    # The restarted sender waits out the killed one's lease on the row: 6 s rather than the tests' 10 s
    # (renewed every 2 s; only a sender stalled for over 4 s would lose it while sending).
    a = await fedserver_processes("a", delivery_timeout_seconds=1.5, worker_lease_seconds=LEASE_SECONDS).astart()
    await follow_established(a, b)
    wire.answer_delay = 0.5

    activity = (await a.arun("post", "alice", "did you get this?", check=True)).stdout.strip() + "/activity"
    digest = digests(a, [activity])[activity]
    await await_for(lambda: wire.started[digest] == 1, what="the Create on its way to b")
    # The claim is committed (the POST is out). Hold the database's write lock from here, so the
    # sender cannot record the outcome after b answers; then kill it.
    # (PostgreSQL: a table lock that lets reads through but no row of deliveries be changed.)
    if a.database_url is not None:
        import psycopg

        lock = psycopg.connect(a.database_url)
        lock.execute("LOCK TABLE deliveries IN EXCLUSIVE MODE")
    else:
        lock = sqlite3.connect(a.database, timeout=10, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
    try:
        await await_for(lambda: wire.accepted(digest) == 1, what="b took the Create")
        await asyncio.sleep(wire.answer_delay + 0.5)  # b's answer reaches the sender, which cannot write it
        a.kill()
    finally:
        lock.rollback()
        lock.close()
    [(state, attempts, locked_until)] = a.query(
        "SELECT d.state, d.attempts, d.locked_until FROM deliveries d JOIN outbound_activities o"
        " ON o.id = d.activity_id WHERE o.uri = ?", (activity,))
    assert (state, attempts) == ("pending", 0) and locked_until is not None

    wire.answer_delay = 0
    await a.astart()
    await await_for(lambda: a.value("SELECT d.state FROM deliveries d JOIN outbound_activities o"
                                    " ON o.id = d.activity_id WHERE o.uri = ?", (activity,)) == "delivered",
                    timeout=LEASE_SECONDS + 20, what="delivered after the lease ran out")
    assert wire.accepted(digest) == 2  # at least once: sent again...
    await wait_until(lambda: b.count("SELECT count(*) FROM inbox_items WHERE activity_uri = ? AND state = 'done'",
                                     (activity,)), what="b processed the Create")
    assert await b.count("SELECT count(*) FROM inbox_items WHERE activity_uri = ?", (activity,)) == 1
    assert await b.count("SELECT count(*) FROM posts WHERE uri = ?", (activity.removesuffix("/activity"),)) == 1


async def _true(value: bool) -> bool:
    return value
