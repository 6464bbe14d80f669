"""Issue 16's everyday lists against real `fedserver serve` processes over HTTP: followers and
following on profiles (and the choice to hide them, in the pages and the AS2 collections), the
blocked and muted lists with Unblock/Unmute, bookmarks, and the federated timeline with a hostile
FakeRemote's posts (silenced accounts, blocked domains and the viewer's mutes left out)."""
from __future__ import annotations

import html
import re

import aiohttp

from tests.e2e.fake_remote import AS2, FakeRemote
from tests.e2e.processes import await_for
from tests.e2e.serve_support import delivered, serve_with_people, signed_in
from tests.web.browser import Browser


def _text(page) -> str:
    return html.unescape(page.text)


def _post_id(server, text: str) -> int:
    return server.value("SELECT id FROM posts WHERE content_text LIKE ?", (f"%{text}%",))


async def _as2(http: aiohttp.ClientSession, url: str) -> tuple[int, dict | None]:
    async with http.get(url, headers={"Accept": AS2}) as resp:
        return resp.status, (await resp.json(content_type=None) if resp.status == 200 else None)


async def test_followers_and_following_are_listed_and_hidden_from_others_when_the_owner_chooses(
        fedserver_processes, tmp_path):
    server = await serve_with_people(fedserver_processes, tmp_path, "alice", "bob", "carol")
    for follower in ("bob", "carol"):
        await server.arun("follow", follower, server.handle("alice"), check=True)
    alice, visitor, http = await signed_in(server, "alice"), Browser(server.base), aiohttp.ClientSession()
    try:
        followers = await visitor.get("/@alice/followers")
        assert followers.status == 200
        assert "@bob@" in followers.text and "@carol@" in followers.text
        # The newest follow first.
        assert followers.text.index("@carol@") < followers.text.index("@bob@")
        following = await visitor.get("/@bob/following")
        assert following.status == 200 and "@alice@" in following.text and "@carol@" not in following.text
        profile = await visitor.get("/@alice")
        assert "/@alice/followers" in profile.links() and "/@alice/following" in profile.links()
        assert (await visitor.get("/@nobody/followers")).status == 404
        status, doc = await _as2(http, f"{server.actor_uri('alice')}/followers")
        assert status == 200 and doc["totalItems"] == 2 and "first" in doc

        saved = await alice.submit("/settings/profile", "/settings/collections", {"hide_collections": "on"})
        assert saved.status == 200 and "Only you see" in _text(saved)
        assert 'name="hide_collections" checked' in saved.text
        for path in ("/@alice/followers", "/@alice/following"):
            hidden = await visitor.get(path)
            assert hidden.status == 200 and "chose not to show" in hidden.text and "@bob@" not in hidden.text
        # Another signed-in person is no wiser; alice herself still sees her list.
        bob = await signed_in(server, "bob")
        assert "@carol@" not in (await bob.get("/@alice/followers")).text
        await bob.close()
        own = await alice.get("/@alice/followers")
        assert "@bob@" in own.text and "Only you see this list" in own.text
        # The profile still shows the counts.
        assert "<strong>2</strong> followers" in (await visitor.get("/@alice")).text
        # Other servers see totalItems only, as from Mastodon; a page is refused.
        for name in ("followers", "following"):
            status, doc = await _as2(http, f"{server.actor_uri('alice')}/{name}")
            assert status == 200 and "first" not in doc and "orderedItems" not in doc
            async with http.get(f"{server.actor_uri('alice')}/{name}?page=1", headers={"Accept": AS2}) as resp:
                assert resp.status == 403
        status, doc = await _as2(http, f"{server.actor_uri('alice')}/followers")
        assert doc["totalItems"] == 2

        await alice.submit("/settings/profile", "/settings/collections", {})
        assert "@bob@" in (await visitor.get("/@alice/followers")).text
    finally:
        await alice.close()
        await visitor.close()
        await http.close()


async def test_blocked_and_muted_accounts_are_listed_in_settings_and_undone_from_there(fedserver_processes, tmp_path):
    server = await serve_with_people(fedserver_processes, tmp_path, "alice", "bob", "carol")
    alice = await signed_in(server, "alice")
    try:
        empty = await alice.get("/settings/blocks")
        assert empty.status == 200 and "You have not blocked anyone" in empty.text
        bob_id = server.value("SELECT id FROM actors WHERE username = 'bob'")
        carol_id = server.value("SELECT id FROM actors WHERE username = 'carol'")
        await alice.submit(f"/block?actor_id={bob_id}&back=/@bob", "/block",
                           {"actor_id": str(bob_id), "back": "/@bob", "confirm": "yes"})
        await alice.submit("/@carol", "/mute", {"actor_id": str(carol_id), "back": "/@carol", "action": "mute"})

        blocks = await alice.get("/settings/blocks")
        assert "@bob@" in blocks.text and "@carol@" not in blocks.text and "Unblock @bob@" in _text(blocks)
        mutes = await alice.get("/settings/mutes")
        assert "@carol@" in mutes.text and "@bob@" not in mutes.text and "Unmute @carol@" in _text(mutes)

        unblocked = await alice.submit("/settings/blocks", "/block",
                                       {"actor_id": str(bob_id), "action": "unblock", "back": "/settings/blocks"})
        assert unblocked.url.endswith("/settings/blocks") and "You unblocked" in _text(unblocked)
        assert "@bob@" not in re.sub(r"<nav.*?</nav>", "", unblocked.text, flags=re.S).split("<h1>", 1)[1]
        assert server.value("SELECT count(*) FROM blocks") == 0
        unmuted = await alice.submit("/settings/mutes", "/mute",
                                     {"actor_id": str(carol_id), "action": "unmute", "back": "/settings/mutes"})
        assert unmuted.url.endswith("/settings/mutes") and "You have not muted anyone" in unmuted.text
        assert server.value("SELECT count(*) FROM mutes") == 0
        # Only for the person signed in.
        visitor = Browser(server.base)
        assert (await visitor.get("/settings/blocks", follow=False)).status == 303
        await visitor.close()
    finally:
        await alice.close()


async def test_a_bookmarked_post_is_kept_on_the_bookmarks_page_until_unbookmarked(fedserver_processes, tmp_path):
    server = await serve_with_people(fedserver_processes, tmp_path, "alice", "bob")
    await server.arun("post", "bob", "Worth reading later", check=True)
    await server.arun("post", "bob", "A secret for followers", "--visibility", "followers", check=True)
    alice = await signed_in(server, "alice")
    try:
        assert "No bookmarks yet" in (await alice.get("/bookmarks")).text
        post_id = _post_id(server, "Worth reading later")
        local = await alice.get("/local")
        assert f'action="/posts/{post_id}/bookmark"' in local.text
        kept = await alice.submit("/local", f"/posts/{post_id}/bookmark", {"back": "/local"})
        assert kept.url.endswith("/local")
        assert f'action="/posts/{post_id}/unbookmark"' in kept.text and ">Bookmarked</button>" in kept.text
        page = await alice.get("/bookmarks")
        assert "Worth reading later" in page.text
        # Bookmarks are private: bob's own page does not show alice's.
        bob = await signed_in(server, "bob")
        assert "Worth reading later" not in (await bob.get("/bookmarks")).text
        await bob.close()
        # A post alice may not see cannot be bookmarked (it does not exist, for her).
        secret = _post_id(server, "A secret for followers")
        refused = await alice.submit("/local", f"/posts/{secret}/bookmark", {"back": "/local"})
        assert refused.status == 404
        assert server.value("SELECT count(*) FROM bookmarks WHERE post_id = ?", (secret,)) == 0

        await alice.submit("/bookmarks", f"/posts/{post_id}/unbookmark", {"back": "/bookmarks"})
        assert "Worth reading later" not in (await alice.get("/bookmarks")).text
    finally:
        await alice.close()


async def test_the_federated_timeline_shows_other_servers_public_posts_without_silenced_blocked_or_muted(
        fedserver_processes, tmp_path):
    server = await serve_with_people(fedserver_processes, tmp_path, "alice")
    one, two = await FakeRemote.start("eve", "frank", "hank"), await FakeRemote.start("gina")
    alice = await signed_in(server, "alice")
    try:
        alice_uri = server.actor_uri("alice")
        for remote, name in ((one, "eve"), (one, "frank"), (one, "hank"), (two, "gina")):
            # Mentioning alice: her server keeps the post although nobody here follows them.
            await delivered(server, remote, remote.create_note(name, f"Hello from {name}", mention=alice_uri),
                            as_user=name)
        await delivered(server, one, one.create_note("eve", "Eve only for followers", mention=alice_uri,
                                                     public=False), as_user="eve")
        await server.arun("post", "alice", "A local post", check=True)

        page = await alice.get("/federated")
        assert page.status == 200
        for name in ("eve", "frank", "hank", "gina"):
            assert f"Hello from {name}" in page.text
        assert "Eve only for followers" not in page.text and "A local post" not in page.text
        visitor = Browser(server.base)
        assert (await visitor.get("/federated", follow=False)).status == 303
        await visitor.close()

        await server.arun("account", "silence", f"@frank@{one.domain}", check=True)
        await server.arun("domain-block", "add", two.domain, check=True)
        hank_id = server.value("SELECT id FROM actors WHERE uri = ?", (one.actor_uri("hank"),))
        await alice.submit("/federated", "/mute", {"actor_id": str(hank_id), "back": "/federated", "action": "mute"})
        page = await alice.get("/federated")
        assert "Hello from eve" in page.text
        for name in ("frank", "gina", "hank"):
            assert f"Hello from {name}" not in page.text, name
    finally:
        await alice.close()
        await one.stop()
        await two.stop()
