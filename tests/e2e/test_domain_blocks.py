"""An admin's domain block holds, seen from the blocked host's inbox: a real `fedserver serve`
process and hand-built remotes (real aiohttp servers that sign what they send). Ids with user
info (http://x@blocked.example/...) are refused, a block covers every subdomain, and blocking a
domain ends follows both ways, cancels what was queued for it and delivers nothing there after."""
from __future__ import annotations

import asyncio
import html
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from yarl import URL

from fedserver.activitypub.httpsig import sign_request
from fedserver.activitypub.keys import public_pem_from_private
from fedserver.federation import blocked_hosts
from fedserver.services import accounts, posting, remote_actors, status
from fedserver.services.posting import Draft
from fedserver.store import actors as actor_store
from fedserver.store import deliveries as delivery_store
from fedserver.store import follows as follow_store
from fedserver.store import hosts as host_store
from tests.conftest import wait_until
from tests.e2e.fake_remote import AS2, AS_CONTEXT, FakeRemote, _pooled_key
from tests.e2e.processes import ProcessGroup, ServerProcess, await_for
from tests.web.browser import person


@dataclass
class SwitchableRemote(FakeRemote):
    """A remote whose inboxes answer 503 while `down` (a server behind its proxy, restarting)."""
    down: bool = False

    async def _inbox(self, request: web.Request) -> web.Response:
        if self.down:
            await request.read()
            return web.json_response({"error": "down for maintenance"}, status=503)
        return await super()._inbox(request)


def arrived(remote: FakeRemote, activity_type: str) -> list[dict[str, Any]]:
    """The activities of this type that reached the remote's inboxes, signed and verified."""
    return [r.activity for r in remote.received
            if r.verified and r.activity is not None and r.activity.get("type") == activity_type]


def texts_arrived(remote: FakeRemote) -> list[str]:
    return [create["object"].get("content", "") for create in arrived(remote, "Create")
            if isinstance(create.get("object"), dict)]


async def serving_alice(fedserver_processes: ProcessGroup, *blocks: str) -> ServerProcess:
    server = fedserver_processes("a")
    await server.arun("user", "create", "alice", check=True)
    for domain in blocks:
        await server.arun("domain-block", "add", domain, check=True)
    return await server.astart()


async def remote_follows_alice(server: ServerProcess, remote: FakeRemote, name: str) -> None:
    follow = remote.activity(name, "Follow", server.actor_uri("alice"))
    status, body = await remote.post(f"{server.base}/users/alice/inbox", follow, as_user=name)
    assert status == 202, body
    await await_for(lambda: any(a["object"].get("id") == follow["id"] for a in arrived(remote, "Accept")),
                    what=f"the Accept of {name}'s Follow")


async def alice_follows_remote(server: ServerProcess, remote: FakeRemote, name: str) -> None:
    await server.arun("follow", "alice", f"@{name}@{remote.domain}", check=True)
    follow = await await_for(lambda: next(iter(arrived(remote, "Follow")), None), what="alice's Follow")
    accept = remote.activity(name, "Accept", follow)
    status, body = await remote.post(f"{server.base}/users/alice/inbox", accept, as_user=name)
    assert status == 202, body
    await await_for(lambda: follow_state(server, server.actor_uri("alice"), remote.actor_uri(name)) == "accepted",
                    what="alice's follow accepted")


def follow_state(server: ServerProcess, follower: str, followee: str) -> str | None:
    return server.value("SELECT f.state FROM follows f JOIN actors a ON a.id = f.follower_id"
                        " JOIN actors b ON b.id = f.followee_id WHERE a.uri = ? AND b.uri = ?", (follower, followee))


def follows_with(server: ServerProcess, actor_uri: str) -> int:
    return server.value("SELECT count(*) FROM follows f JOIN actors x ON x.id IN (f.follower_id, f.followee_id)"
                        " WHERE x.uri = ?", (actor_uri,))


def pending_deliveries_to(server: ServerProcess, remote: FakeRemote) -> int:
    return server.value("SELECT count(*) FROM deliveries WHERE state = 'pending' AND inbox_url LIKE ?",
                        (remote.base + "/%",))


async def test_blocking_a_domain_ends_follows_both_ways_cancels_queued_deliveries_and_delivers_nothing_there(
        fedserver_processes):
    server = await serving_alice(fedserver_processes)
    blocked = await SwitchableRemote.start("eve")
    other = await FakeRemote.start("olga")
    try:
        await remote_follows_alice(server, blocked, "eve")
        await remote_follows_alice(server, other, "olga")
        await alice_follows_remote(server, blocked, "eve")
        await server.arun("post", "alice", "Before the block", "--visibility", "followers", check=True)
        await await_for(lambda: any("Before the block" in t for t in texts_arrived(blocked)),
                        what="the followers-only post at eve's server before the block")

        # eve's server is down when alice posts: the delivery waits for a retry.
        blocked.down = True
        await server.arun("post", "alice", "While it was down", "--visibility", "followers", check=True)
        await await_for(lambda: server.value("SELECT count(*) FROM deliveries WHERE inbox_url LIKE ? AND"
                                             " state = 'pending' AND attempts > 0", (blocked.base + "/%",)),
                        what="a delivery to eve's server waiting for a retry")

        added = await server.arun("domain-block", "add", blocked.domain, "--reason", "abuse")
        assert added.returncode == 0, added.stderr
        # Both ways, at once (one transaction with the block).
        assert follows_with(server, blocked.actor_uri("eve")) == 0
        assert follow_state(server, server.actor_uri("alice"), blocked.actor_uri("eve")) is None
        assert pending_deliveries_to(server, blocked) == 0
        assert follows_with(server, other.actor_uri("olga")) == 1
        assert added.stdout == (f"blocked {blocked.domain} and its subdomains: 2 follows ended,"
                                " 1 pending deliveries cancelled\n")

        blocked.down = False
        await server.arun("post", "alice", "Followers only, after the block", "--visibility", "followers", check=True)
        await server.arun("post", "alice", "Public, after the block", check=True)
        await await_for(lambda: sum("after the block" in t for t in texts_arrived(other)) == 2,
                        what="both posts at the unblocked follower's server")
        await asyncio.sleep(1.5)  # retries of the cancelled delivery would have run by now (scale 0.01)
        assert pending_deliveries_to(server, blocked) == 0
        assert [t for t in texts_arrived(blocked) if "Before the block" not in t] == []
        assert arrived(blocked, "Create") and len(arrived(blocked, "Create")) == 1
    finally:
        await blocked.stop()
        await other.stop()


def signed_headers(url: str, body: bytes, *, key_id: str, private_key_pem: str) -> dict[str, str]:
    return sign_request("POST", url, body=body, key_id=key_id, private_key_pem=private_key_pem, content_type=AS2)


async def test_follow_from_an_actor_id_with_user_info_is_refused_and_nothing_is_accepted(fedserver_processes):
    blocked = await FakeRemote.start("eve")
    try:
        server = await serving_alice(fedserver_processes, blocked.domain)
        # The attacker publishes an actor whose id carries user info: a reader that takes
        # "x@127.0.0.1:port" for the host sees no block, while the fetcher connects to the blocked host.
        actor_uri = f"http://x@{blocked.domain}/people/eve"
        pem = blocked.actors["eve"].private_key_pem
        blocked.documents["/people/eve"] = {
            "@context": [AS_CONTEXT, "https://w3id.org/security/v1"], "id": actor_uri, "type": "Person",
            "preferredUsername": "eve", "inbox": blocked.inbox_url("eve"),
            "endpoints": {"sharedInbox": f"{blocked.base}/inbox"},
            "publicKey": {"id": f"{actor_uri}#main-key", "owner": actor_uri, "publicKeyPem": public_pem_from_private(pem)},
        }
        follow = {"@context": AS_CONTEXT, "id": f"{actor_uri}/follows/1", "type": "Follow", "actor": actor_uri,
                  "object": server.actor_uri("alice")}
        inbox = f"{server.base}/users/alice/inbox"
        body = json.dumps(follow).encode()
        assert blocked.http is not None
        async with blocked.http.post(URL(inbox, encoded=True), data=body, headers=signed_headers(
                inbox, body, key_id=f"{actor_uri}#main-key", private_key_pem=pem)) as resp:
            status, answer = resp.status, await resp.json(content_type=None)
        assert status == 401, answer
        assert "user info" in answer["error"]
        assert "/people/eve" not in blocked.fetches  # refused before any key fetch
        # Nothing was accepted: no follow, no such actor, nothing queued or delivered to the blocked host.
        assert server.value("SELECT count(*) FROM follows") == 0
        assert server.value("SELECT count(*) FROM actors WHERE uri LIKE '%@%'") == 0
        assert server.value("SELECT count(*) FROM inbox_items") == 0
        await asyncio.sleep(1.0)
        assert blocked.received == []
        assert server.value("SELECT count(*) FROM deliveries") == 0
    finally:
        await blocked.stop()


async def test_objects_with_user_info_or_on_a_blocked_domain_are_never_fetched(fedserver_processes):
    blocked = await FakeRemote.start("eve")
    try:
        server = await serving_alice(fedserver_processes, blocked.domain)
        note = blocked.note("eve", "fetch me")
        blocked.serve(note)
        path = URL(note["id"]).path
        for target, reason in ((note["id"], "is blocked"), (note["id"].replace("http://", "http://x@", 1), "user info")):
            liked = await server.arun("like", "alice", target)
            assert path not in blocked.fetches, target
            assert liked.returncode == 1 and reason in liked.stderr, liked.stderr
        # The same object, unblocked, is fetched (the refusal above is the block's doing).
        server.run("domain-block", "remove", blocked.domain, check=True)
        await server.arun("like", "alice", note["id"], check=True)
        assert path in blocked.fetches
    finally:
        await blocked.stop()


async def test_a_block_covers_every_subdomain_of_the_blocked_domain(fedserver_processes):
    remote = await FakeRemote.start("eve")
    try:
        server = await serving_alice(fedserver_processes, "Blocked.Test.")
        inbox = f"{server.base}/users/alice/inbox"
        pem = remote.actors["eve"].private_key_pem

        async def follow_from(host: str) -> tuple[int, dict]:
            # Names under .test never resolve: a refusal before any fetch is the block's doing.
            actor_uri = f"http://{host}:{URL(remote.base).port}/users/eve"
            follow = {"@context": AS_CONTEXT, "id": f"{actor_uri}/follows/1", "type": "Follow",
                      "actor": actor_uri, "object": server.actor_uri("alice")}
            body = json.dumps(follow).encode()
            assert remote.http is not None
            async with remote.http.post(URL(inbox, encoded=True), data=body, headers=signed_headers(
                    inbox, body, key_id=f"{actor_uri}#main-key", private_key_pem=pem)) as resp:
                return resp.status, await resp.json(content_type=None)

        for host in ("blocked.test", "sub.blocked.test", "a.b.BLOCKED.test", "xn--bcher-kva.blocked.test",
                     "sub.blocked.test."):
            status, answer = await follow_from(host)
            assert status == 403, (host, answer)
            assert "is blocked" in answer["error"], (host, answer)
        # Not covered: a look-alike that merely ends the same way, and a parent of the blocked domain.
        for host in ("notblocked.test", "blocked.test.example", "test"):
            status, answer = await follow_from(host)
            assert status == 401 and "cannot get key" in answer["error"], (host, answer)
        assert server.value("SELECT count(*) FROM follows") == 0
        assert server.value("SELECT count(*) FROM inbox_items") == 0
    finally:
        await remote.stop()


def test_domain_block_add_refuses_what_is_not_a_domain(fedserver_processes):
    server = fedserver_processes("a")
    for text, reason in (("https://example.com/", "is a URL, not a domain"),
                         ("example.com/users/spam", "is a URL, not a domain"),
                         ("exa mple.com", "spaces"),
                         ("x@example.com", "user info"),
                         ("example..com", "empty label"),
                         ("", "give a domain")):
        result = server.run("domain-block", "add", text)
        assert result.returncode == 1, (text, result.stdout)
        assert reason in result.stderr, (text, result.stderr)
    assert server.run("domain-block", "list", check=True).stdout == ""
    added = server.run("domain-block", "add", "Bücher.Example.", check=True)
    assert added.stdout.startswith("blocked xn--bcher-kva.example and its subdomains")
    assert server.run("domain-block", "list", check=True).stdout == "xn--bcher-kva.example\t\n"
    assert server.run("domain-block", "remove", "bücher.example", check=True).stdout == \
        "unblocked xn--bcher-kva.example\n"
    missing = server.run("domain-block", "remove", "example.com")
    assert missing.returncode == 1 and "example.com is not blocked" in missing.stderr


# --- in-process: the rules at the service and worker level, with a real database and real HTTP ---

def remote_actor_document(uri: str) -> dict[str, Any]:
    host = URL(uri).origin()
    return {"@context": [AS_CONTEXT, "https://w3id.org/security/v1"], "id": uri, "type": "Person",
            "preferredUsername": uri.rsplit("/", 1)[-1], "inbox": f"{uri}/inbox",
            "endpoints": {"sharedInbox": f"{host}/inbox"},
            "publicKey": {"id": f"{uri}#main-key", "owner": uri, "publicKeyPem": public_pem_from_private(_pooled_key(0))}}


async def test_blocking_a_domain_ends_follows_and_deliveries_of_every_subdomain_and_no_look_alike(instances):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    alice = a.actor_uri("alice")
    accounts_there = {uri: await remote_actors.store_document(a.ctx, remote_actor_document(uri)) for uri in (
        "https://social.blocked.example/users/sub", "https://a.b.blocked.example:8443/users/deep",
        "https://blocked.example/users/apex", "https://notblocked.example/users/lookalike")}
    local = await actor_store.get_local_actor(a.ctx.db.reader, "alice")
    assert local is not None
    async with a.ctx.db.transaction() as tx:
        for n, actor in enumerate(accounts_there.values()):
            for follower, followee in ((actor.id, local.id), (local.id, actor.id)):
                await follow_store.upsert_follow(tx, uri=f"https://x.example/follows/{n}/{follower}", follower_id=follower,
                                                 followee_id=followee, state="accepted", now=a.ctx.clock.now_iso())
    await posting.create_post(a.ctx, "alice", Draft(text="queued", visibility="followers"))

    block = await status.block_domain(a.ctx, "BLOCKED.example.", "spam")
    remaining = await a.query("SELECT x.uri FROM follows f JOIN actors x ON x.id IN (f.follower_id, f.followee_id)"
                              " WHERE x.uri != ? ORDER BY x.uri", (alice,))
    assert remaining == [("https://notblocked.example/users/lookalike",)] * 2
    assert (block.domain, block.follows_ended) == ("blocked.example", 6)
    assert block.deliveries_cancelled >= 1  # whatever of the three shared inboxes was not yet tried

    await posting.create_post(a.ctx, "alice", Draft(text="after the block", visibility="followers"))
    queued = await a.query("SELECT d.inbox_url, d.state FROM deliveries d JOIN outbound_activities o"
                           " ON o.id = d.activity_id WHERE o.body LIKE '%after the block%'")
    assert [inbox for inbox, _ in queued] == ["https://notblocked.example/inbox"]
    assert await a.count("SELECT count(*) FROM deliveries WHERE state = 'pending' AND host LIKE '%blocked.example%'"
                         " AND host NOT LIKE '%notblocked%'") == 0


async def test_the_delivery_worker_sends_nothing_to_a_blocked_domain_whatever_was_queued(instances):
    # A row the worker finds queued for a domain blocked since (blocking cancels them, but the
    # worker may hold rows claimed before, or a row may be queued by other means) is dropped.
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    blocked, other = await FakeRemote.start("eve"), await FakeRemote.start("olga")
    try:
        post = await posting.create_post(a.ctx, "alice", Draft(text="queued before the block"))
        activity_id = (await a.query("SELECT id FROM outbound_activities WHERE object_uri = ?", (post.uri,)))[0][0]
        async with a.ctx.db.transaction() as tx:
            await host_store.add_domain_block(tx, blocked.domain, "", a.ctx.clock.now_iso())
        # The worker re-reads the blocks at least this often (what it already holds is checked against them).
        await asyncio.sleep(blocked_hosts.REFRESH_SECONDS + 0.5)
        async with a.ctx.db.transaction() as tx:
            await delivery_store.enqueue_deliveries(
                tx, activity_id, [(blocked.inbox_url("eve"), blocked.domain), (other.inbox_url("olga"), other.domain)],
                due_ms=a.ctx.clock.now_ms(), now=a.ctx.clock.now_iso())
        a.ctx.delivery_wakeup.set()

        async def at_other() -> list[dict[str, Any]]:
            return arrived(other, "Create")

        async def blocked_row_settled() -> list[tuple] | None:
            rows = await a.query("SELECT state, last_error FROM deliveries WHERE inbox_url = ?",
                                 (blocked.inbox_url("eve"),))
            return rows if rows[0][0] != "pending" else None

        await wait_until(at_other, what="the post at the unblocked server")
        states = await wait_until(blocked_row_settled, what="the delivery to the blocked domain settled")
        assert states == [("failed", f"refused: domain {blocked.domain} is blocked")]
        assert blocked.received == []
    finally:
        await blocked.stop()
        await other.stop()


def test_blocks_stored_before_domains_were_canonical_are_made_to_cover_their_hosts(fedserver_processes):
    server = fedserver_processes("a")
    server.run("migrate", check=True)
    # As the CLI used to store them: lower-cased, otherwise as typed.
    server.write_many("INSERT INTO domain_blocks (domain, reason, created_at) VALUES (?, '', '2026-01-01')",
                      [("spam.example.",), ("https://junk.example/path",), ("bücher.example",), ("not a domain",)])
    listed = server.run("domain-block", "list", check=True)
    assert sorted(listed.stdout.splitlines()) == ["junk.example\t", "not a domain\t", "spam.example\t",
                                                  "xn--bcher-kva.example\t"]
    assert "blocks nothing" in listed.stderr
    assert server.run("domain-block", "remove", "not a domain", check=True).stdout == "unblocked not a domain\n"


async def test_admin_page_refuses_what_is_not_a_domain_and_blocking_there_ends_follows(instances):
    a = await instances("a")
    boss = await person(a, "boss", admin=True)
    try:
        eve = await remote_actors.store_document(a.ctx, remote_actor_document("https://spam.example/users/eve"))
        local = await actor_store.get_local_actor(a.ctx.db.reader, "boss")
        assert local is not None
        async with a.ctx.db.transaction() as tx:
            await follow_store.upsert_follow(tx, uri="https://spam.example/follows/1", follower_id=eve.id,
                                             followee_id=local.id, state="accepted", now=a.ctx.clock.now_iso())
        for text, reason in (("https://spam.example/", "is a URL, not a domain"), ("spam .example", "spaces")):
            page = await boss.submit("/admin", "/admin/domain_blocks", {"domain": text, "reason": "spam"})
            assert reason in html.unescape(page.text), page.text
        assert await a.count("SELECT count(*) FROM domain_blocks") == 0
        page = await boss.submit("/admin", "/admin/domain_blocks", {"domain": "Spam.Example.", "reason": "spam"})
        assert "spam.example is blocked (and its subdomains): 1 follows ended" in html.unescape(page.text)
        assert await a.query("SELECT domain FROM domain_blocks") == [("spam.example",)]
        assert await a.count("SELECT count(*) FROM follows") == 0
    finally:
        await boss.close()


async def test_an_activity_whose_actor_id_has_user_info_is_refused_with_400(instances):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    remote = await FakeRemote.start("eve")
    try:
        # Signed by eve's real key, but naming as its actor an id that a naive reader would take
        # for another host ("x@127.0.0.1:port").
        follow = remote.activity("eve", "Follow", a.actor_uri("alice"))
        follow["actor"] = remote.actor_uri("eve").replace("http://", "http://x@", 1)
        status_code, body = await remote.post(f"{a.base}/users/alice/inbox", follow, as_user="eve")
        assert status_code == 400, body
        assert "user info" in body["error"]
        assert await a.count("SELECT count(*) FROM inbox_items") == 0
        assert await a.count("SELECT count(*) FROM follows") == 0
    finally:
        await remote.stop()
