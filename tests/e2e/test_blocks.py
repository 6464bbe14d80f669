"""Blocking an account on another server, between two real fedserver instances: follows either way
end on both servers, the blocked account's posts, boosts and notifications stop reaching the
blocker, it cannot follow again, and unblocking lifts the block on both sides."""
from __future__ import annotations

import html

from fedserver.services import accounts, follows, interactions, posting
from fedserver.services.posting import Draft
from tests.conftest import Instance, wait_until
from tests.web.browser import person


async def test_blocking_a_remote_account_ends_follows_hides_it_and_unblocking_lifts_it(instances):
    a, b = await instances("a"), await instances("b")
    alice = await person(a, "alice")
    await accounts.create_account(b.ctx, "bob")
    await accounts.create_account(b.ctx, "carol")
    alice_uri, bob_uri = a.actor_uri("alice"), b.actor_uri("bob")
    try:
        await follows.follow(a.ctx, "alice", b.handle("bob"))
        await follows.follow(a.ctx, "alice", b.handle("carol"))
        await follows.follow(b.ctx, "bob", a.handle("alice"))
        for follower, followee in ((alice_uri, bob_uri), (bob_uri, alice_uri)):
            await wait_until(lambda: _accepted(a, follower, followee), what="follows accepted")
        before = await posting.create_post(b.ctx, "bob", Draft(text="Before the block"))
        await posting.create_post(b.ctx, "bob", Draft(text=f"Hey {a.handle('alice')}"))
        await wait_until(lambda: a.count("SELECT count(*) FROM notifications WHERE kind = 'mention'"),
                         what="bob's mention at a")
        assert "Before the block" in (await alice.get("/home")).text

        bob_id = (await a.query("SELECT id FROM actors WHERE uri = ?", (bob_uri,)))[0][0]
        profile = f"/remote/{bob_id}"
        # The Block button leads to a confirmation page; its button blocks.
        blocked = await alice.submit(f"/block?actor_id={bob_id}&back={profile}", "/block",
                                     {"actor_id": str(bob_id), "back": profile, "confirm": "yes"})
        assert f"You blocked {b.handle('bob')}." in html.unescape(blocked.text)
        assert "You blocked this account" in blocked.text and ">Unblock</button>" in blocked.text

        # Both servers: no follow either way; b recorded alice's Block.
        assert await a.follow_state(alice_uri, bob_uri) is None and await a.follow_state(bob_uri, alice_uri) is None
        await wait_until(lambda: b.count("SELECT count(*) FROM blocks"), what="the Block at b")
        await wait_until(lambda: _no_follows(b, alice_uri, bob_uri), what="follows ended at b")

        # Nothing of bob reaches alice: his posts, a boost of his post by carol, his mentions.
        await interactions.boost(b.ctx, "carol", before.uri)
        await posting.create_post(b.ctx, "carol", Draft(text="Carol still posts"))
        await wait_until(lambda: a.count("SELECT count(*) FROM posts p JOIN actors x ON x.id = p.actor_id"
                                         " WHERE x.username = 'carol'"), what="carol's post at a")
        await wait_until(lambda: a.count("SELECT count(*) FROM announces"), what="carol's boost at a")
        home = await alice.get("/home")
        assert "Carol still posts" in home.text and "Before the block" not in home.text
        mention = await posting.create_post(b.ctx, "bob", Draft(text=f"Again {a.handle('alice')}"))
        await wait_until(lambda: a.count("SELECT count(*) FROM posts WHERE uri = ?", (mention.uri,)),
                         what="bob's new post at a")
        assert await a.count("SELECT count(*) FROM notifications") == 0  # earlier ones went with the block
        assert "Again" not in (await alice.get("/notifications")).text

        # bob cannot follow alice again: a rejects, b drops the request.
        await follows.follow(b.ctx, "bob", a.handle("alice"))
        await wait_until(lambda: _no_follows(b, bob_uri, alice_uri), what="bob's follow rejected")
        assert await a.follow_state(bob_uri, alice_uri) is None

        unblocked = await alice.submit(profile, "/block", {"actor_id": str(bob_id), "action": "unblock",
                                                            "back": profile})
        assert f"You unblocked {b.handle('bob')}." in html.unescape(unblocked.text)
        await wait_until(lambda: _no_blocks(b), what="the Undo(Block) at b")
        assert "Before the block" in (await alice.get(profile)).text
    finally:
        await alice.close()


async def _accepted(instance: Instance, follower: str, followee: str) -> bool:
    return await instance.follow_state(follower, followee) == "accepted"


async def _no_follows(instance: Instance, one: str, other: str) -> bool:
    return await instance.follow_state(one, other) is None and await instance.follow_state(other, one) is None


async def _no_blocks(instance: Instance) -> bool:
    return await instance.count("SELECT count(*) FROM blocks") == 0


async def test_muting_hides_an_account_without_ending_follows_or_telling_it(instances):
    a, b = await instances("a"), await instances("b")
    alice = await person(a, "alice")
    await accounts.create_account(b.ctx, "bob")
    alice_uri, bob_uri = a.actor_uri("alice"), b.actor_uri("bob")
    try:
        await follows.follow(a.ctx, "alice", b.handle("bob"))
        await follows.follow(b.ctx, "bob", a.handle("alice"))
        for follower, followee in ((alice_uri, bob_uri), (bob_uri, alice_uri)):
            await wait_until(lambda: _accepted(a, follower, followee), what="follows accepted")
        first = await posting.create_post(b.ctx, "bob", Draft(text="Loud opinions"))
        await wait_until(lambda: a.count("SELECT count(*) FROM posts WHERE uri = ?", (first.uri,)), what="bob's post")
        assert "Loud opinions" in (await alice.get("/home")).text
        deliveries_before = await a.count("SELECT count(*) FROM deliveries")

        bob_id = (await a.query("SELECT id FROM actors WHERE uri = ?", (bob_uri,)))[0][0]
        profile = f"/remote/{bob_id}"
        muted = await alice.submit(profile, "/mute", {"actor_id": str(bob_id), "back": profile})
        assert f"You muted {b.handle('bob')}" in html.unescape(muted.text) and ">Unmute</button>" in muted.text
        assert "Loud opinions" not in (await alice.get("/home")).text
        mention = await posting.create_post(b.ctx, "bob", Draft(text=f"Hey {a.handle('alice')}, louder"))
        await wait_until(lambda: a.count("SELECT count(*) FROM posts WHERE uri = ?", (mention.uri,)),
                         what="bob's mention at a")
        assert await a.count("SELECT count(*) FROM notifications WHERE kind = 'mention'") == 0
        # Follows stay, and bob's server was told nothing.
        assert await a.follow_state(alice_uri, bob_uri) == "accepted"
        assert await a.follow_state(bob_uri, alice_uri) == "accepted"
        assert await a.count("SELECT count(*) FROM deliveries") == deliveries_before

        await alice.submit(profile, "/mute", {"actor_id": str(bob_id), "action": "unmute", "back": profile})
        assert "Loud opinions" in (await alice.get("/home")).text
    finally:
        await alice.close()
