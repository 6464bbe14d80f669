"""A sending server killed (SIGKILL) while deliveries are pending loses none of them: after a restart
every activity reaches the receiver, and the receiver, which dedupes by activity id, takes each in
exactly once. The sender is the real `fedserver serve` process; the receiver an in-process instance
whose inbox can be made slow or switched off."""
from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fedserver.activitypub.httpsig import body_digest_header
from fedserver.services import accounts, follows
from tests.conftest import Instance, wait_until
from tests.e2e.processes import ServerProcess, await_for

POSTS = 5
# The slow receiver's answer delay, and the sender's delivery timeout comfortably above it. The
# sender's lease on claimed work ([server] worker_lease_seconds, renewed while held) is how long a
# killed server's claimed rows wait before the restarted server may send them again: shortened here
# from its 30 s default (and the tests' 10 s) so that the test waits less, still well above the
# delivery timeout.
SLOW_INBOX_SECONDS = 0.5
DELIVERY_TIMEOUT_SECONDS = 1.5
# Renewed every 2 s; a row in flight goes out twice only if the sender stalls for over 4 s.
LEASE_SECONDS = 6.0
# delivery_per_host_concurrency's default: deliveries a worker has in flight to one host at once.
PER_HOST = 4


@dataclass
class InboxWire:
    """What arrives at the receiver's inboxes, per body Digest: POSTs started and the receiver's
    verdicts. With `answer_delay` the inbox takes the activity at once but holds its answer back (a
    slow peer): a sender dying meanwhile never learns the activity was taken."""
    answer_delay: float = 0.0
    started: Counter = field(default_factory=Counter)
    answered: list[tuple[str | None, int]] = field(default_factory=list)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method != "POST" or not request.path.endswith("/inbox"):
            return await handler(request)
        digest = request.headers.get("Digest")
        self.started[digest] += 1
        response = await handler(request)
        self.answered.append((digest, response.status))
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        return response

    def accepted(self, digest: str) -> int:
        return sum(1 for d, status in self.answered if d == digest and 200 <= status < 300)


async def follow_established(a: ServerProcess, b: Instance) -> None:
    """bob@b follows alice@a (a subprocess) and the Accept has come back."""
    await a.arun("user", "create", "alice", check=True)
    await accounts.create_account(b.ctx, "bob")
    await follows.follow(b.ctx, "bob", a.handle("alice"))

    async def accepted() -> bool:
        rows = await b.query("SELECT state FROM follows")
        return rows == [("accepted",)]
    await wait_until(accepted, what="bob's follow accepted")


async def post_many(a: ServerProcess, text: str) -> list[str]:
    """alice posts POSTS times through concurrent CLI processes; returns the Create activity ids."""
    results = await asyncio.gather(*(a.arun("post", "alice", f"{text} #{i}", check=True) for i in range(POSTS)))
    return [result.stdout.strip() + "/activity" for result in results]


def deliveries(a: ServerProcess, activities: list[str]) -> list[tuple[str, str, int, str | None]]:
    marks = ", ".join("?" for _ in activities)
    return a.query(f"SELECT o.uri, d.state, d.attempts, d.last_error FROM deliveries d JOIN outbound_activities o"
                   f" ON o.id = d.activity_id WHERE o.uri IN ({marks}) ORDER BY d.id", tuple(activities))


def digests(a: ServerProcess, activities: list[str]) -> dict[str, str]:
    return {uri: body_digest_header(a.value("SELECT body FROM outbound_activities WHERE uri = ?", (uri,)).encode())
            for uri in activities}


async def assert_received_exactly_once(b: Instance, activities: list[str]) -> None:
    marks = ", ".join("?" for _ in activities)

    async def processed() -> bool:
        return await b.count(f"SELECT count(*) FROM inbox_items WHERE state = 'done' AND activity_uri IN ({marks})",
                             tuple(activities)) == len(activities)
    await wait_until(processed, what="b's inbox worker processed every Create")
    for activity in activities:
        post_uri = activity.removesuffix("/activity")
        assert await b.query("SELECT state FROM inbox_items WHERE activity_uri = ?", (activity,)) == [("done",)]
        assert await b.count("SELECT count(*) FROM posts WHERE uri = ?", (post_uri,)) == 1
    assert await b.count("SELECT count(*) FROM inbox_items WHERE activity_type = 'Create'") == POSTS


async def test_posts_made_while_the_receiver_is_down_arrive_exactly_once_after_the_sender_is_killed(
        instances, fedserver_processes):
    wire = InboxWire()
    b = await instances("b", middlewares=[wire.middleware])
    # A retry claimed just before the kill waits out the dead server's lease: kept short (see above).
    a = await fedserver_processes("a", worker_lease_seconds=LEASE_SECONDS).astart()
    await follow_established(a, b)

    await b.stop()
    # Posted while a is down too, so that every delivery starts failing at once when it is back:
    # posted while a serves, the first posts' deliveries kept failing while the CLI processes
    # made the others (seconds on a loaded machine), and backed off to retries 5-15 s away,
    # which the restarted server then waited for.
    await asyncio.to_thread(a.terminate)
    activities = await post_many(a, "while you were out")
    await a.astart()

    def all_retrying() -> bool:
        rows = deliveries(a, activities)
        return len(rows) == POSTS and all(state == "pending" and attempts >= 1 and (error or "").startswith("connection failed")
                                          for _, state, attempts, error in rows)
    await await_for(all_retrying, what="every delivery failed once and waits for a retry")
    a.kill()
    assert [row[1] for row in deliveries(a, activities)] == ["pending"] * POSTS

    await b.start()
    await a.astart()
    await await_for(lambda: all(row[1] == "delivered" for row in deliveries(a, activities)), timeout=30,
                    what="all deliveries delivered after the restart")

    await assert_received_exactly_once(b, activities)
    for activity, digest in digests(a, activities).items():
        assert wire.accepted(digest) >= 1, activity  # more than once only if a POST timed out: b dedupes


async def test_deliveries_in_flight_when_the_sender_is_killed_arrive_exactly_once_as_the_receiver_sees_it(
        instances, fedserver_processes):
    wire = InboxWire()
    b = await instances("b", middlewares=[wire.middleware])
    a = await fedserver_processes("a", delivery_timeout_seconds=DELIVERY_TIMEOUT_SECONDS,
                                worker_lease_seconds=LEASE_SECONDS).astart()
    await follow_established(a, b)

    # Queue the posts while a is down, so that its worker starts with a full per-host batch.
    await asyncio.to_thread(a.terminate)
    activities = await post_many(a, "slowly does it")
    by_activity = digests(a, activities)
    wire.answer_delay = SLOW_INBOX_SECONDS
    await a.astart()

    def in_flight() -> list[str]:
        return [uri for uri in activities if wire.started[by_activity[uri]]]
    await await_for(lambda: len(in_flight()) == PER_HOST, what="a full batch of Creates on its way to b")
    a.kill()
    interrupted = in_flight()
    assert [state for _, state, _, _ in deliveries(a, activities)] == ["pending"] * POSTS

    # b took every request the dead sender left open; the sender never learnt that.
    await await_for(lambda: sum(wire.started.values()) == len(wire.answered), what="b took every request")
    await a.astart()
    await await_for(lambda: all(row[1] == "delivered" for row in deliveries(a, activities)),
                    timeout=LEASE_SECONDS + 20, what="all deliveries delivered after the restart")

    await assert_received_exactly_once(b, activities)
    # At least once on the wire: what was interrupted went out again, the rest once.
    assert {uri: wire.started[by_activity[uri]] for uri in activities} == {
        uri: 2 if uri in interrupted else 1 for uri in activities}
