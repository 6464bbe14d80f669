"""Issue 15's scale test, with real processes: instance a runs as docs/scaling.md tells an operator to
run two web machines and workers: two `fedserver serve --no-workers` on two ports behind a loopback
load balancer (tests/e2e/balancer.py, whose port a's domain names) and two `fedserver worker`
processes, all on one PostgreSQL database. It federates with a second instance b (in-process, its
own database) and with a hand-built remote that really signs (tests/e2e/fake_remote.py): every flow
of the two-instance tests, a worker SIGKILLed mid-fan-out while b answers slowly, and two inbox
workers keeping each signer's Create, Update, Delete in order.

PostgreSQL only: several processes on several (here: simulated) machines share one database, which
is what PostgreSQL is for; on SQLite the one-machine split is covered by test_workers.py."""
from __future__ import annotations

import asyncio
import html
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from fedserver.services import accounts, follows, interactions, posting
from fedserver.services.posting import Draft
from tests import engines
from tests.conftest import bound_socket, free_port, wait_until
from tests.e2e.balancer import Balancer
from tests.e2e.fake_remote import FakeRemote
from tests.e2e.processes import ProcessGroup, ServerProcess, WorkerProcess, await_for
from tests.e2e.test_durability import InboxWire
from tests.e2e.test_shared_state import api_token
from tests.e2e.test_workers import (assert_each_applied_in_order, kill_one_worker_mid_fan_out_and_check_each_create_arrives_once,
                                   send_create_update_delete_from_each)

# Runs in the `--engine postgresql` pass (every instance on PostgreSQL), like every postgresql_only test.
pytestmark = engines.postgresql_only

# Short leases, so that a killed worker's work is taken over within seconds.
LEASE_SECONDS = 3.0
POSTS = 6
AS2 = "application/activity+json"


@dataclass
class ScaledInstance:
    """Instance a: `server` holds the config (CLI commands and direct reads of the shared database
    go through it; its domain names the balancer's port), `web` the two HTTP-only processes, each
    started from its own copy of the config as on a machine of its own."""
    server: ServerProcess
    balancer: Balancer
    web: list[ServerProcess] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.server.base

    def handle(self, username: str) -> str:
        return self.server.handle(username)

    def actor_uri(self, username: str) -> str:
        return self.server.actor_uri(username)

    def value(self, sql: str, params: tuple = ()) -> Any:
        return self.server.value(sql, params)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.server.query(sql, params)

    def assert_both_web_processes_served(self, method: str | None, kind: str) -> None:
        """Each web process served some of these requests (2xx or 3xx; the balancer spread them)."""
        answered = {web.port: self.balancer.answered_by(web.port, method, kind) for web in self.web}
        assert all(answered.values()), (method, kind, answered, dict(self.balancer.served))


@pytest.fixture
async def scaled(fedserver_processes: ProcessGroup, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[ScaledInstance]]]:
    """Factory: `await scaled(worker_args=(...), **config)` is instance a, serving behind the
    balancer with two workers running."""
    balancers: list[Balancer] = []

    async def start(*, worker_args: tuple[str, ...] = ("--queues", "inbox,delivery,media,push,corpus,polls,prune"),
                    **config: Any) -> ScaledInstance:
        balancer = await Balancer.start(bound_socket())
        balancers.append(balancer)
        # a's domain names the balancer's port: ids and links lead to it, as to the proxy on 443.
        server = ServerProcess(tmp_path / "a", port=balancer.port)
        fedserver_processes.servers.append(server)
        await asyncio.to_thread(server.init, worker_lease_seconds=LEASE_SECONDS, trusted_proxies=["127.0.0.1"],
                                media_dir=str(tmp_path / "a" / "media"), **config)
        instance = ScaledInstance(server=server, balancer=balancer)
        for machine in ("web-1", "web-2"):
            # Every machine has the same fedserver.toml (docs/scaling.md); the media directory is
            # the shared mount.
            web = ServerProcess(tmp_path / machine, port=free_port())
            web.directory.mkdir(parents=True)
            shutil.copy(server.config, web.config)
            fedserver_processes.servers.append(web)
            instance.web.append(web)
            balancer.upstreams.append(web.port)
        workers = [WorkerProcess(server, *worker_args) for _ in range(2)]
        # Started side by side: each process takes seconds to import on a busy machine.
        await asyncio.gather(*(web.astart("--no-workers", "--port", str(web.port)) for web in instance.web),
                             *(worker.astart() for worker in workers))
        instance.workers = workers
        return instance

    try:
        yield start
    finally:
        for balancer in balancers:
            await balancer.stop()


@dataclass
class ClientApi:
    """A person's Mastodon client app, talking to an instance through its public address."""
    base: str
    token: str

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with aiohttp.ClientSession() as http:
            async with http.request(method, self.base + path, headers={"Authorization": f"Bearer {self.token}"},
                                    **kwargs) as resp:
                text = await resp.text()
                assert resp.status == 200, (method, path, resp.status, text[:500])
                return json.loads(text)

    async def post(self, text: str, **fields: str) -> dict[str, Any]:
        return await self.call("POST", "/api/v1/statuses", data={"status": text, **fields})

    async def notifications(self) -> list[tuple[str, str, str]]:
        """(type, who, status text) of each notification."""
        return [(n["type"], n["account"]["acct"], (n.get("status") or {}).get("content", ""))
                for n in await self.call("GET", "/api/v1/notifications")]

    async def home_status(self, needle: str) -> dict[str, Any] | None:
        for status in await self.call("GET", "/api/v1/timelines/home"):
            if needle in status["content"]:
                return status
        return None


async def _post_at(instance, uri: str) -> tuple | None:
    rows = await instance.query("SELECT visibility, content_text, deleted_at, edited_at, in_reply_to_uri"
                                " FROM posts WHERE uri = ?", (uri,))
    return rows[0] if rows else None


async def _as2(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Accept": AS2}) as resp:
            return resp.status, await resp.json(content_type=None)


async def test_two_web_processes_behind_a_balancer_and_two_workers_carry_every_flow_with_a_second_instance(
        instances, scaled):
    b = await instances("b")
    a = await scaled()
    await a.server.arun("user", "create", "alice", check=True)
    await accounts.create_account(b.ctx, "bob")
    # alice signs in and authorizes her app through the balancer: the form and its answer, the
    # session and the OAuth code are served by both web processes in turn.
    alice = ClientApi(a.base, await api_token(a.server, "alice"))
    alice_at_b, bob_uri = a.actor_uri("alice"), b.actor_uri("bob")

    # bob@b follows alice@a (the Follow reaches a through the balancer, a worker accepts it).
    await follows.follow(b.ctx, "bob", a.handle("alice"))
    await wait_until(lambda: _equals(b.follow_state(bob_uri, alice_at_b), "accepted"), what="a's Accept at b")
    assert ("follow", b.handle("bob").lstrip("@"), "") in await alice.notifications()
    assert await _as2_total(f"{a.base}/users/alice/followers") == 1

    # alice follows bob back from her app.
    found = await alice.call("GET", "/api/v2/search", params={"q": b.handle("bob"), "resolve": "true",
                                                               "type": "accounts"})
    bob_id = found["accounts"][0]["id"]
    await alice.call("POST", f"/api/v1/accounts/{bob_id}/follow")
    await wait_until(lambda: _equals(b.follow_state(alice_at_b, bob_uri), "accepted"), what="alice's follow at b")

    async def following_bob() -> bool:
        [relation] = await alice.call("GET", "/api/v1/accounts/relationships", params={"id[]": bob_id})
        return relation["following"]
    await wait_until(following_bob, what="b's Accept applied at a")

    # Posts both ways.
    hello = await alice.post("Hello #fediverse from behind the balancer")
    hello_uri = hello["uri"]
    assert (await wait_until(lambda: _post_at(b, hello_uri), what="alice's post at b"))[0] == "public"
    bobs = await posting.create_post(b.ctx, "bob", Draft(text="Greetings from b to two web processes"))
    bobs_here = await wait_until(lambda: alice.home_status("Greetings from b"), what="bob's post in alice's home")

    # Replies both ways.
    reply = await posting.create_post(b.ctx, "bob", Draft(text="Welcome, alice!", reply_to=hello_uri))
    await await_for(lambda: a.value("SELECT in_reply_to_uri FROM posts WHERE uri = ?", (reply.uri,)) == hello_uri,
                    what="bob's reply at a")
    answer = await alice.post("Thanks, bob", in_reply_to_id=bobs_here["id"])
    assert (await wait_until(lambda: _post_at(b, answer["uri"]), what="alice's reply at b"))[4] == bobs.uri

    # Likes and boosts both ways.
    await interactions.like(b.ctx, "bob", hello_uri)
    await interactions.boost(b.ctx, "bob", hello_uri)

    async def liked_and_boosted() -> bool:
        status = await alice.call("GET", f"/api/v1/statuses/{hello['id']}")
        return status["favourites_count"] == 1 and status["reblogs_count"] == 1
    await wait_until(liked_and_boosted, what="bob's like and boost counted at a")
    kinds = {kind for kind, who, _ in await alice.notifications() if who == b.handle("bob").lstrip("@")}
    assert {"follow", "mention", "favourite", "reblog"} <= kinds, kinds
    await alice.call("POST", f"/api/v1/statuses/{bobs_here['id']}/favourite")
    await alice.call("POST", f"/api/v1/statuses/{bobs_here['id']}/reblog")
    bobs_counted = ("SELECT (SELECT count(*) FROM likes l JOIN posts p ON p.id = l.post_id WHERE p.uri = ?),"
                    " (SELECT count(*) FROM announces n JOIN posts p ON p.id = n.post_id WHERE p.uri = ?)")

    async def counted_at_b() -> bool:
        return (await b.query(bobs_counted, (bobs.uri, bobs.uri)))[0] == (1, 1)
    await wait_until(counted_at_b, what="alice's like and boost at b")

    # alice edits her post: b shows the new text (an Update).
    await alice.call("PUT", f"/api/v1/statuses/{hello['id']}", data={"status": "Hello #fediverse, edited"})

    async def edited_at_b() -> bool:
        row = await _post_at(b, hello_uri)
        return bool(row and "edited" in row[1] and row[3])
    await wait_until(edited_at_b, what="the edit at b")
    async with aiohttp.ClientSession() as http:  # and a visitor of alice's profile page sees it too
        async with http.get(f"{a.base}/@alice") as resp:
            assert resp.status == 200 and "Hello #fediverse, edited" in _text(await resp.text())

    # bob edits his post and deletes his reply: alice's app shows the new text, and a marks the reply deleted.
    await posting.edit_post(b.ctx, "bob", bobs.uri, Draft(text="Greetings from b, edited"))
    await posting.delete_post(b.ctx, "bob", reply.uri)

    async def bobs_edit_shown() -> bool:
        status = await alice.call("GET", f"/api/v1/statuses/{bobs_here['id']}")
        return "Greetings from b, edited" in status["content"] and status["edited_at"] is not None
    await wait_until(bobs_edit_shown, what="bob's edit in alice's app")
    await await_for(lambda: a.value("SELECT deleted_at FROM posts WHERE uri = ?", (reply.uri,)),
                    what="bob's Delete at a")

    # Direct messages both ways.
    secret = await alice.post(f"{b.handle('bob')} a secret for you", visibility="direct")
    assert (await wait_until(lambda: _post_at(b, secret["uri"]), what="alice's DM at b"))[0] == "direct"
    assert await b.count("SELECT count(*) FROM notifications n JOIN posts p ON p.id = n.post_id"
                         " WHERE p.uri = ? AND n.kind = 'mention'", (secret["uri"],)) == 1
    await posting.create_post(b.ctx, "bob", Draft(text=f"{a.handle('alice')} a secret back", visibility="direct"))

    async def dm_notified() -> bool:
        return any(kind == "mention" and "a secret back" in text for kind, _, text in await alice.notifications())
    await wait_until(dm_notified, what="bob's DM in alice's notifications")
    assert a.value("SELECT visibility FROM posts WHERE content_html LIKE '%a secret back%'") == "direct"

    # alice deletes her post: b marks it deleted, and its id answers 410 Gone through the balancer.
    await alice.call("DELETE", f"/api/v1/statuses/{hello['id']}")
    await wait_until(lambda: _deleted(b, hello_uri), what="the Delete at b")
    status, tombstone = await _as2(hello_uri)
    assert status == 410 and tombstone["type"] == "Tombstone"

    # Unfollows both ways.
    await follows.unfollow(b.ctx, "bob", a.handle("alice"))
    await wait_until(lambda: _equals(_as2_total(f"{a.base}/users/alice/followers"), 0), what="bob's Undo(Follow) at a")
    later = await alice.post("Only for people who still follow")
    assert a.value("SELECT count(*) FROM deliveries d JOIN outbound_activities o ON o.id = d.activity_id"
                   " WHERE o.uri = ?", (later["uri"] + "/activity",)) == 0
    await alice.call("POST", f"/api/v1/accounts/{bob_id}/unfollow")
    await wait_until(lambda: _equals(b.follow_state(alice_at_b, bob_uri), None), what="alice's Undo(Follow) at b")

    # Both web processes took part: each accepted some of b's signed deliveries (signatures over
    # Host verified behind the balancer) and answered some of alice's app.
    a.assert_both_web_processes_served("POST", "inbox")
    a.assert_both_web_processes_served(None, "api")
    a.assert_both_web_processes_served(None, "page")


def _text(page: str) -> str:
    """What a reader sees of an HTML page: its text, without tags (a hashtag is a link)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


async def _as2_total(url: str) -> int | None:
    return (await _as2(url))[1]["totalItems"]


async def _equals(awaitable: Awaitable[Any], expected: Any) -> bool:
    return await awaitable == expected


async def _deleted(instance, uri: str) -> bool:
    row = await _post_at(instance, uri)
    return bool(row and row[2])


async def test_a_worker_killed_mid_fan_out_behind_the_balancer_and_each_delivery_arrives_once_as_the_receiver_sees_it(
        instances, scaled):
    wire = InboxWire()
    b = await instances("b", middlewares=[wire.middleware])
    a = await scaled(delivery_timeout_seconds=5.0, worker_args=("--queues", "inbox,delivery"))
    first, second = a.workers
    await a.server.arun("user", "create", "alice", check=True)
    alice = ClientApi(a.base, await api_token(a.server, "alice"))
    await accounts.create_account(b.ctx, "bob")
    await follows.follow(b.ctx, "bob", a.handle("alice"))
    await wait_until(lambda: _equals(b.follow_state(b.actor_uri("bob"), a.actor_uri("alice")), "accepted"),
                     what="bob's follow accepted")

    # Both workers stopped while alice posts from her app (through both web processes): the queue
    # then holds the whole fan-out.
    second.terminate()
    first.terminate()
    activities = [(await alice.post(f"killed mid fan-out #{i}"))["uri"] + "/activity" for i in range(POSTS)]
    a.assert_both_web_processes_served("POST", "api")
    await kill_one_worker_mid_fan_out_and_check_each_create_arrives_once(a.server, b, wire, first, second,
                                                                        activities)


async def test_two_inbox_workers_behind_the_balancer_apply_each_signers_create_update_delete_in_order(scaled):
    signers = ("eve", "mallory", "trent", "peggy", "victor", "walter")
    remote = await FakeRemote.start(*signers)
    try:
        a = await scaled(worker_args=("--queues", "inbox", "--concurrency", "2"))
        await a.server.arun("user", "create", "alice", check=True)
        # Each signer's requests alternate between the web processes, and four claiming loops in two
        # worker processes apply them.
        notes, by_author = await send_create_update_delete_from_each(a, remote, signers)
        a.assert_both_web_processes_served("POST", "inbox")
        assert_each_applied_in_order(a, notes)
        # And in the order each signer sent them, as alice sees it: her mention notifications (ids
        # taken as each Create is applied) list each signer's notes in the order it sent them.
        seen = a.query("SELECT x.uri, p.uri FROM notifications n JOIN actors x ON x.id = n.from_actor_id"
                       " JOIN posts p ON p.id = n.post_id WHERE n.kind = 'mention' ORDER BY n.id")
        for name, note_ids in by_author.items():
            assert [post for who, post in seen if post in note_ids] == note_ids, (name, seen)
    finally:
        await remote.stop()
