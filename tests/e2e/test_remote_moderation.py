"""An admin suspends or silences a single account on another server (`fedserver account ...`, and
the admin page). Suspended: everything of it leaves every view here (home, threads, hashtag pages,
its post and profile pages, search), what it sends is refused, and follows both ways end, its server
being told. Silenced: out of the public timelines, still shown to the people here who follow it.
Real `fedserver serve`, a FakeRemote that signs what it sends and records what it receives."""
from __future__ import annotations

from typing import Any

from fedserver.services import accounts
from tests.e2e.fake_remote import FakeRemote
from tests.e2e.processes import ServerProcess, await_for
from tests.e2e.serve_support import delivered, post_id_of, serve_with_people, signed_in
from tests.web.browser import person


def tagged_note(remote: FakeRemote, name: str, text: str, tag: str, **extra: Any) -> dict[str, Any]:
    note = remote.note(name, f"{text} #{tag}")
    note["tag"] = [{"type": "Hashtag", "name": f"#{tag}", "href": f"{remote.base}/tags/{tag}"}]
    return {**note, **extra}


async def follow_accepted(server: ServerProcess, remote: FakeRemote, local: str, name: str) -> None:
    """`local` follows the remote account, which accepts."""
    await server.arun("follow", local, f"@{name}@{remote.domain}", check=True)
    follow = await await_for(lambda: next((r.activity for r in remote.received if r.activity
                                           and r.activity.get("type") == "Follow"
                                           and r.activity.get("object") == remote.actor_uri(name)
                                           and r.activity.get("actor") == server.actor_uri(local)), None),
                             what=f"{local}'s Follow at the remote")
    await delivered(server, remote, remote.activity(name, "Accept", follow), as_user=name)
    assert follow_state(server, server.actor_uri(local), remote.actor_uri(name)) == "accepted"


def follow_state(server: ServerProcess, follower: str, followee: str) -> str | None:
    return server.value("SELECT f.state FROM follows f JOIN actors a ON a.id = f.follower_id"
                        " JOIN actors b ON b.id = f.followee_id WHERE a.uri = ? AND b.uri = ?", (follower, followee))


def received(remote: FakeRemote, kind: str, inner: str) -> bool:
    return any(r.activity and r.activity.get("type") == kind and isinstance(r.activity.get("object"), dict)
               and r.activity["object"].get("type") == inner for r in remote.received)


async def test_suspending_a_remote_account_removes_it_from_every_view_and_ends_follows(fedserver_processes, tmp_path):
    server = await serve_with_people(fedserver_processes, tmp_path, "alice")
    remote = await FakeRemote.start("eve")
    alice = await signed_in(server, "alice")
    try:
        await follow_accepted(server, remote, "alice", "eve")
        eve_follow = remote.activity("eve", "Follow", server.actor_uri("alice"))
        await delivered(server, remote, eve_follow, as_user="eve")
        assert follow_state(server, remote.actor_uri("eve"), server.actor_uri("alice")) == "accepted"
        root_uri = (await server.arun("post", "alice", "Tell me about cats", check=True)).stdout.strip()
        root_page = root_uri.replace("/users/alice/statuses/", "/@alice/")
        post = remote.activity("eve", "Create", tagged_note(remote, "eve", "Eve posts about", "cats"))
        reply = remote.activity("eve", "Create", remote.note("eve", "Eve replies in the thread")
                                | {"inReplyTo": root_uri})
        for activity in (post, reply):
            await delivered(server, remote, activity, as_user="eve")
        eve_post = post_id_of(server, post["object"]["id"])
        eve_id = server.value("SELECT id FROM actors WHERE uri = ?", (remote.actor_uri("eve"),))
        assert "Eve posts about" in (await alice.get("/home")).text
        assert "Eve posts about" in (await alice.get("/tags/cats")).text
        assert "Eve replies in the thread" in (await alice.get(root_page)).text

        result = await server.arun("account", "suspend", f"@eve@{remote.domain}", check=True)
        assert result.stdout.strip() == f"suspended @eve@{remote.domain}"
        assert f"@eve@{remote.domain}\t{remote.actor_uri('eve')}\tsuspended" in \
            (await server.arun("account", "list", check=True)).stdout

        for path in ("/home", "/tags/cats", root_page):
            page = await alice.get(path)
            assert page.status == 200 and "Eve" not in page.text, path
        assert "Eve replies" not in (await alice.get(root_page.replace(server.base, ""))).text
        assert (await alice.get(f"/posts/{eve_post}")).status == 404
        assert (await alice.get(f"/remote/{eve_id}")).status == 404
        assert (await alice.get(f"/search?q=@eve@{remote.domain}")).status == 404
        # Follows both ways ended, and eve's server was told: Undo of alice's Follow, Reject of eve's.
        assert follow_state(server, server.actor_uri("alice"), remote.actor_uri("eve")) is None
        assert follow_state(server, remote.actor_uri("eve"), server.actor_uri("alice")) is None
        await await_for(lambda: received(remote, "Undo", "Follow") and received(remote, "Reject", "Follow"),
                        what="the Undo and the Reject at eve's server")
        # What eve sends now is refused, and nothing of it is stored.
        status, body = await remote.post(f"{server.base}/inbox", remote.create_note(
            "eve", "Eve after suspension", mention=server.actor_uri("alice")), as_user="eve")
        assert status == 403 and "suspended" in body["error"]
        status, _ = await remote.post(f"{server.base}/inbox", remote.activity(
            "eve", "Follow", server.actor_uri("alice")), as_user="eve")
        assert status == 403
        assert follow_state(server, remote.actor_uri("eve"), server.actor_uri("alice")) is None
        assert (await server.arun("follow", "alice", f"@eve@{remote.domain}")).returncode == 1

        await server.arun("account", "unsuspend", f"@eve@{remote.domain}", check=True)
        assert "Eve posts about" in (await alice.get("/tags/cats")).text
        assert "Eve replies in the thread" in (await alice.get(root_page)).text
    finally:
        await alice.close()
        await remote.stop()


async def test_a_silenced_remote_account_leaves_public_timelines_but_its_followers_still_see_it(
        fedserver_processes, tmp_path):
    server = await serve_with_people(fedserver_processes, tmp_path, "alice", "bob")
    remote = await FakeRemote.start("frank")
    alice, bob = await signed_in(server, "alice"), await signed_in(server, "bob")
    try:
        await follow_accepted(server, remote, "alice", "frank")
        root_uri = (await server.arun("post", "bob", "Dogs, anyone?", check=True)).stdout.strip()
        root_page = root_uri.replace("/users/bob/statuses/", "/@bob/")
        post = remote.activity("frank", "Create", tagged_note(remote, "frank", "Frank loves", "dogs"))
        answer = remote.note("frank", "Frank answers bob", mention=server.actor_uri("bob")) | {"inReplyTo": root_uri}
        reply = remote.activity("frank", "Create", answer)
        for activity in (post, reply):
            await delivered(server, remote, activity, as_user="frank")
        for browser in (alice, bob):
            assert "Frank loves" in (await browser.get("/tags/dogs")).text
        assert "Frank answers bob" in (await bob.get(root_page)).text

        result = await server.arun("account", "silence", f"@frank@{remote.domain}", check=True)
        assert result.stdout.strip() == f"silenced @frank@{remote.domain}"

        # The public (hashtag) timeline shows frank to nobody; alice follows him and still has him at home.
        for browser in (alice, bob):
            assert "Frank loves" not in (await browser.get("/tags/dogs")).text
        assert "Frank loves" in (await alice.get("/home")).text
        # In a thread, only his followers see his replies.
        assert "Frank answers bob" not in (await bob.get(root_page)).text
        assert "Frank answers bob" in (await alice.get(root_page)).text
        assert follow_state(server, server.actor_uri("alice"), remote.actor_uri("frank")) == "accepted"

        await server.arun("account", "unsilence", f"@frank@{remote.domain}", check=True)
        assert "Frank loves" in (await bob.get("/tags/dogs")).text
        # Bad input gets a clear error and changes nothing.
        for handle, message in (("frank", "is not an account address"),
                                (server.handle("alice"), "is an account of this server")):
            result = await server.arun("account", "suspend", handle)
            assert result.returncode == 1 and message in result.stderr, result.stderr
        assert server.value("SELECT count(*) FROM actors WHERE suspended_at IS NOT NULL") == 0
    finally:
        await alice.close()
        await bob.close()
        await remote.stop()


async def test_admin_page_suspends_and_silences_a_remote_account(instances):
    a = await instances("a")
    remote = await FakeRemote.start("eve")
    boss = await person(a, "boss", admin=True)
    await accounts.create_account(a.ctx, "ann")
    try:
        page = await boss.submit("/admin", "/admin/remote_accounts",
                                 {"handle": f"@eve@{remote.domain}", "action": "silence"})
        assert f"@eve@{remote.domain} is silenced." in page.text
        page = await boss.submit("/admin", "/admin/remote_accounts",
                                 {"handle": f"@eve@{remote.domain}", "action": "suspend"})
        assert f"@eve@{remote.domain} is suspended." in page.text
        assert await a.query("SELECT suspended_at IS NOT NULL, silenced_at IS NOT NULL FROM actors WHERE uri = ?",
                             (remote.actor_uri("eve"),)) == [(1, 1)]
        assert "Lift suspension" in page.text and "Lift silence" in page.text
        refused = await boss.submit("/admin", "/admin/remote_accounts",
                                    {"handle": f"@ann@{a.domain}", "action": "suspend"})
        assert "is an account of this server" in refused.text
        lifted = await boss.submit("/admin", "/admin/remote_accounts",
                                   {"handle": remote.actor_uri("eve"), "action": "unsuspend"})
        assert f"@eve@{remote.domain} is no longer suspended." in lifted.text
    finally:
        await boss.close()
        await remote.stop()
