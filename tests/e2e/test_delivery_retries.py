"""How the delivery worker treats what receivers answer: retried, failed for good, held per host,
collapsed to shared inboxes, and signed. Receivers are small real aiohttp servers on loopback that
answer a scripted status; the sender is a real fedserver instance."""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from fedserver.activitypub.httpsig import body_digest_header, extract_signature
from fedserver.clock import Clock
from fedserver.services import accounts, follows, posting
from fedserver.services.posting import Draft
from fedserver.store import actors as actor_store
from fedserver.store import follows as follow_store
from tests.conftest import Instance, bound_socket, wait_until

DAY = 86_400.0
# Upper bound of the first retry delay at delivery_retry_scale 0.01 ((15 + 10) * 0.01 s), with room.
LONGER_THAN_FIRST_RETRY = 0.5


@dataclass
class Received:
    raw_path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """A remote inbox that answers POSTs with the next scripted reply (then `then` forever).
    A reply is a status code, or ("sleep", seconds, status) to answer late."""
    sock: Any
    script: list[Any] = field(default_factory=list)
    then: Any = 202
    received: list[Received] = field(default_factory=list)
    runner: web.AppRunner | None = None

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    @property
    def base(self) -> str:
        return f"http://{self.domain}"

    def count(self, body: str) -> int:
        """How many POSTs carried exactly this activity body."""
        digest = body_digest_header(body.encode("utf-8"))
        return sum(1 for r in self.received if r.headers.get("Digest") == digest)

    async def _inbox(self, request: web.Request) -> web.Response:
        reply = self.script.pop(0) if self.script else self.then
        body = await request.read()
        if isinstance(reply, tuple):
            _, seconds, reply = reply
            await asyncio.sleep(seconds)
        self.received.append(Received(request.raw_path, dict(request.headers), body, reply))
        return web.Response(status=reply)

    async def start(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._inbox)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()
        return self


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    started: list[Receiver] = []

    async def start(*script: Any, then: Any = 202) -> Receiver:
        receiver = await Receiver(sock=bound_socket(), script=list(script), then=then).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        if receiver.runner is not None:
            await receiver.runner.cleanup()
        receiver.sock.close()


class ShiftedClock(Clock):
    """Real time plus an offset the test moves forward (days pass in a moment)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


async def add_remote_follower(instance: Instance, followee: str, receiver: Receiver, username: str,
                              *, shared_inbox: bool = False) -> None:
    """Record an accepted follower whose inbox is on the receiver (as if its Follow had arrived)."""
    actor_uri = f"{receiver.base}/users/{username}"
    now = instance.ctx.clock.now_iso()
    async with instance.ctx.db.transaction() as tx:
        follower_id = await actor_store.upsert_remote_actor(
            tx, uri=actor_uri, now=now, username=username, domain=receiver.domain,
            inbox_url=f"{actor_uri}/inbox", shared_inbox_url=f"{receiver.base}/inbox" if shared_inbox else None,
            key_id=f"{actor_uri}#main-key")
        followee_actor = await actor_store.get_local_actor(tx, followee)
        assert followee_actor is not None
        await follow_store.upsert_follow(tx, uri=f"{receiver.base}/follows/{username}", follower_id=follower_id,
                                         followee_id=followee_actor.id, state="accepted", now=now)


async def sender_with_follower(instances, receiver: Receiver, **federation: Any) -> Instance:
    a = await instances("a", **federation)
    await accounts.create_account(a.ctx, "alice")
    await add_remote_follower(a, "alice", receiver, "rita")
    return a


async def publish(a: Instance, text: str) -> tuple[str, str]:
    """alice posts; returns the Create activity's id and its exact body as queued."""
    post = await posting.create_post(a.ctx, "alice", Draft(text=text))
    activity_uri = f"{post.uri}/activity"
    rows = await a.query("SELECT body FROM outbound_activities WHERE uri = ?", (activity_uri,))
    return activity_uri, rows[0][0]


async def delivery(a: Instance, activity_uri: str) -> dict[str, Any]:
    rows = await a.query(
        "SELECT d.state, d.attempts, d.last_status, d.last_error, d.inbox_url, d.next_attempt_at FROM deliveries d"
        " JOIN outbound_activities o ON o.id = d.activity_id WHERE o.uri = ?", (activity_uri,))
    assert len(rows) == 1, rows
    return dict(zip(("state", "attempts", "last_status", "last_error", "inbox_url", "next_attempt_at"), rows[0]))


async def finished(a: Instance, activity_uri: str) -> dict[str, Any] | None:
    row = await delivery(a, activity_uri)
    return row if row["state"] != "pending" else None


async def test_receiver_answering_500_is_retried_until_it_succeeds(instances, receivers):
    receiver = await receivers(500, 500, then=202)
    a = await sender_with_follower(instances, receiver)
    activity_uri, body = await publish(a, "third time lucky")

    row = await wait_until(lambda: finished(a, activity_uri), what="delivery finished")
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 3, 202)
    assert [r.status for r in receiver.received] == [500, 500, 202]
    assert receiver.count(body) == 3


@pytest.mark.parametrize("status", [400, 404, 410])
async def test_permanent_client_error_fails_at_once_and_is_not_retried(instances, receivers, status):
    receiver = await receivers(then=status)
    a = await sender_with_follower(instances, receiver)
    activity_uri, body = await publish(a, f"answered {status}")

    row = await wait_until(lambda: finished(a, activity_uri), what="delivery finished")
    assert (row["state"], row["attempts"], row["last_status"]) == ("failed", 1, status)
    await asyncio.sleep(LONGER_THAN_FIRST_RETRY)
    assert receiver.count(body) == 1
    assert (await delivery(a, activity_uri))["attempts"] == 1


async def test_rate_limited_429_is_retried(instances, receivers):
    receiver = await receivers(429, then=202)
    a = await sender_with_follower(instances, receiver)
    activity_uri, body = await publish(a, "slow down")

    row = await wait_until(lambda: finished(a, activity_uri), what="delivery finished")
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 2, 202)
    assert receiver.count(body) == 2


async def test_receiver_slower_than_delivery_timeout_is_retried(instances, receivers):
    # fetch_timeout stays at 5 s: the POST must give up after delivery_timeout_seconds.
    receiver = await receivers(("sleep", 1.2, 202), then=202)
    a = await sender_with_follower(instances, receiver, delivery_timeout_seconds=0.5)
    activity_uri, body = await publish(a, "are you there?")

    row = await wait_until(lambda: finished(a, activity_uri), what="delivery finished")
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 2, 202)
    # The first POST did reach the receiver (it answered after the sender gave up): at least once.
    await wait_until(lambda: _true(receiver.count(body) == 2), what="late answer recorded")


async def test_delivery_is_failed_when_max_attempts_are_used_up(instances, receivers):
    receiver = await receivers(then=503)
    a = await sender_with_follower(instances, receiver, delivery_max_attempts=3)
    activity_uri, body = await publish(a, "nobody home")

    row = await wait_until(lambda: finished(a, activity_uri), what="delivery finished")
    assert (row["state"], row["attempts"], row["last_status"]) == ("failed", 3, 503)
    assert row["last_error"].startswith("gave up")
    await asyncio.sleep(LONGER_THAN_FIRST_RETRY)
    assert receiver.count(body) == 3


async def test_host_failing_on_enough_distinct_days_is_held_until_a_success_clears_it(instances, receivers):
    receiver = await receivers(then=500)
    a = await sender_with_follower(instances, receiver, host_failure_days=2)
    clock = a.ctx.clock = ShiftedClock()
    host = receiver.domain

    first_uri, first_body = await publish(a, "day one")
    await wait_until(lambda: a.count("SELECT count(*) FROM host_failure_days WHERE host = ?", (host,)),
                     what="first failure day recorded")
    assert await a.query("SELECT unavailable_since FROM hosts WHERE host = ?", (host,)) == [(None,)]

    # A day later it still fails: two distinct days, so the host is marked unavailable.
    clock.offset += DAY
    a.ctx.delivery_wakeup.set()
    await wait_until(lambda: a.count("SELECT count(*) FROM hosts WHERE host = ? AND unavailable_since IS NOT NULL",
                                     (host,)), what="host marked unavailable")
    held_until = (await a.query("SELECT unavailable_until FROM hosts WHERE host = ?", (host,)))[0][0]
    assert held_until >= clock.now_ms() + DAY * 1000 - 60_000

    # While unavailable, a new post's delivery is held back without any request to the host.
    second_uri, second_body = await publish(a, "held back")
    await wait_until(lambda: _is_held(a, second_uri, held_until), what="second delivery held")
    await asyncio.sleep(LONGER_THAN_FIRST_RETRY)
    assert receiver.count(second_body) == 0
    held = await delivery(a, second_uri)
    assert (held["state"], held["attempts"]) == ("pending", 0)  # no request made, no attempt used up

    # The host recovers; once the hold has passed, deliveries go out and the success clears it.
    receiver.then = 202
    clock.offset += DAY + 3600
    a.ctx.delivery_wakeup.set()
    for uri in (first_uri, second_uri):
        row = await wait_until(lambda: finished(a, uri), what=f"delivery of {uri}")
        assert row["state"] == "delivered"
    assert receiver.count(second_body) == 1
    assert await a.query("SELECT unavailable_since, unavailable_until FROM hosts WHERE host = ?",
                         (host,)) == [(None, None)]
    assert await a.count("SELECT count(*) FROM host_failure_days WHERE host = ?", (host,)) == 0


async def _is_held(a: Instance, activity_uri: str, held_until: int) -> bool:
    row = await delivery(a, activity_uri)
    return row["next_attempt_at"] >= held_until and row["last_error"] == "host marked unavailable"


async def test_two_followers_on_one_server_get_one_delivery_to_its_shared_inbox(instances):
    a = await instances("a")
    b = await instances("b")
    await accounts.create_account(a.ctx, "alice")
    for name in ("bob", "carol"):
        await accounts.create_account(b.ctx, name)
        await follows.follow(b.ctx, name, a.handle("alice"))
    await wait_until(lambda: _equals(a.count("SELECT count(*) FROM follows WHERE state = 'accepted'"), 2),
                     what="both follows accepted at a")

    post = await posting.create_post(a.ctx, "alice", Draft(text="one request for both of you"))
    rows = await a.query("SELECT d.inbox_url FROM deliveries d JOIN outbound_activities o ON o.id = d.activity_id"
                         " WHERE o.uri = ?", (f"{post.uri}/activity",))
    assert rows == [(f"{b.base}/inbox",)]
    await wait_until(lambda: b.count("SELECT count(*) FROM posts WHERE uri = ?", (post.uri,)), what="post at b")


async def test_deliveries_are_signed_by_their_author(instances, receivers):
    receiver = await receivers(then=202)
    a = await sender_with_follower(instances, receiver)
    activity_uri, body = await publish(a, "signed, sealed, delivered")
    await wait_until(lambda: finished(a, activity_uri), what="delivery finished")

    [request] = receiver.received
    assert json.loads(request.body)["id"] == activity_uri
    alice = await actor_store.get_local_actor(a.ctx.db.reader, "alice")
    assert alice is not None and alice.public_key_pem
    pending = extract_signature("POST", request.raw_path, request.headers, request.body, scheme="http")
    assert pending.key_id == alice.key_id
    assert {"(request-target)", "host", "date", "digest"} <= set(pending.covered)
    pending.verify(alice.public_key_pem)  # raises SignatureError when it does not verify


async def _true(value: bool) -> bool:
    return value


async def _equals(awaitable: Awaitable[Any], expected: Any) -> bool:
    return await awaitable == expected
