"""Moving an account from one fedserver to another, both real instances on loopback, the way a
Mastodon user moves: the new account lists the old one as an alias, the old one moves, and every
follower, on either server, follows the new account."""
from __future__ import annotations

import html

import aiohttp

from fedserver.services import accounts, follows
from tests.conftest import wait_until
from tests.web.browser import person


async def test_an_account_moves_to_another_server_and_its_followers_follow_it_there(instances):
    a, b = await instances("a"), await instances("b")
    alice, alice2 = await person(a, "alice"), await person(b, "alice2")
    await accounts.create_account(a.ctx, "carol")  # follows alice on the same server
    await accounts.create_account(b.ctx, "bob")  # follows alice from the new server
    old, new = a.actor_uri("alice"), b.actor_uri("alice2")
    try:
        await follows.follow(a.ctx, "carol", a.handle("alice"))
        await follows.follow(b.ctx, "bob", a.handle("alice"))
        await wait_until(lambda: _state_is(b, b.actor_uri("bob"), old, "accepted"), what="bob follows alice")

        # Moving before the new account lists the old one is refused, with what to do.
        refused = await alice.submit("/settings/moving", "/settings/move", {"handle": b.handle("alice2")})
        assert refused.status == 400
        assert f"does not list this account as its alias yet: add {a.handle('alice')} there first" in \
            html.unescape(refused.text)

        listed = await alice2.submit("/settings/moving", "/settings/aliases", {"handle": a.handle("alice")})
        assert "Listed. That account may now move here." in listed.text and old in listed.text
        moved = await alice.submit("/settings/moving", "/settings/move", {"handle": b.handle("alice2")})
        assert "Your account has moved." in moved.text and "This account has moved to" in moved.text

        # The old actor document says where it went; the new one lists the old.
        async with alice.http.get(old, headers={"Accept": "application/activity+json"}) as resp:
            assert (await resp.json(content_type=None))["movedTo"] == new
        async with alice.http.get(new, headers={"Accept": "application/activity+json"}) as resp:
            assert (await resp.json(content_type=None))["alsoKnownAs"] == [old]

        # Followers on both servers now follow alice2 (bob and alice2 share b: accepted at once there).
        await wait_until(lambda: _state_is(b, b.actor_uri("bob"), new, "accepted"), what="bob follows alice2")
        assert await b.follow_state(b.actor_uri("bob"), old) is None
        await wait_until(lambda: _state_is(a, a.actor_uri("carol"), new, "accepted"), what="carol follows alice2")
        assert await a.follow_state(a.actor_uri("carol"), old) is None
        profile = await alice.get("/@alice")
        assert "This account has moved to" in profile.text and f"@alice2@{b.domain}" in profile.text
        again = await alice.post("/settings/move", {"csrf_token": moved.csrf, "handle": b.handle("alice2")})
        assert "this account has already moved" in again.text
    finally:
        await alice.close()
        await alice2.close()


async def _state_is(instance, follower: str, followee: str, state: str) -> bool:
    return await instance.follow_state(follower, followee) == state


async def test_the_accounts_one_follows_travel_as_mastodons_csv_file(instances):
    a, b = await instances("a"), await instances("b")
    alice, alice2 = await person(a, "alice"), await person(b, "alice2")
    await accounts.create_account(a.ctx, "dave")
    await accounts.create_account(b.ctx, "bob")
    try:
        await follows.follow(a.ctx, "alice", b.handle("bob"))
        await follows.follow(a.ctx, "alice", a.handle("dave"))
        await wait_until(lambda: _state_is(a, a.actor_uri("alice"), b.actor_uri("bob"), "accepted"), what="follow")
        async with alice.http.get(a.base + "/settings/moving/following.csv") as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
            exported = await resp.text()
        lines = exported.splitlines()
        assert lines[0] == "Account address,Show boosts,Notify on new posts,Languages"
        assert sorted(lines[1:]) == sorted([f"bob@{b.domain},true,false,", f"dave@{a.domain},true,false,"])

        page = await alice2.get("/settings/moving")
        form = aiohttp.FormData()
        form.add_field("csrf_token", page.csrf)
        form.add_field("file", (exported + f"nobody@{b.domain},true,false,\n").encode(), filename="following.csv",
                       content_type="text/csv")
        async with alice2.http.post(b.base + "/settings/moving/following", data=form) as resp:
            answer = html.unescape(await resp.text())
        assert f"You follow or asked to follow 2 accounts from the file. Not found: nobody@{b.domain}." in answer
        assert await b.follow_state(b.actor_uri("alice2"), b.actor_uri("bob")) == "accepted"
        await wait_until(lambda: _state_is(b, b.actor_uri("alice2"), a.actor_uri("dave"), "accepted"),
                         what="alice2 follows dave on a")
    finally:
        await alice.close()
        await alice2.close()
