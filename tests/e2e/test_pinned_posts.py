"""Pinned posts between two real `fedserver serve` processes: a person pins up to five of their
public or unlisted posts, they come first on the profile and make up the actor's featured
collection, and the other instance shows them on the remote profile after reading that
collection. A hostile remote's featured collection cannot slip in forged or foreign posts."""
from __future__ import annotations

import html
from typing import Any

import aiohttp

from tests.e2e.fake_remote import AS2, FakeRemote
from tests.e2e.processes import ProcessGroup, ServerProcess, await_for
from tests.e2e.serve_support import delivered, signed_in
from tests.web.browser import PASSWORD, Browser


class FeaturingRemote(FakeRemote):
    """A FakeRemote whose actors advertise a featured collection (served with remote.serve)."""

    def actor_document(self, name: str) -> dict[str, Any]:
        return {**super().actor_document(name), "featured": f"{self.actor_uri(name)}/collections/featured"}


async def _serving(processes: ProcessGroup, tmp_path, name: str, *people: str) -> ServerProcess:
    server = processes(name)
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD, encoding="utf-8")
    for person in people:
        await server.arun("user", "create", person, "--password-file", str(secret), check=True)
    await server.astart()
    return server


async def _post(server: ServerProcess, user: str, text: str, visibility: str = "public") -> tuple[int, str]:
    uri = (await server.arun("post", user, text, "--visibility", visibility, check=True)).stdout.strip()
    return server.value("SELECT id FROM posts WHERE uri = ?", (uri,)), uri


async def _remote_profile(browser: Browser, handle: str) -> str:
    """Open an account of another server as a person here would: search, then its profile."""
    found = await browser.get(f"/search?q={handle}")
    assert found.status == 200, found.text[:500]
    return next(link for link in found.links() if link.startswith("/remote/"))


async def test_pinned_posts_come_first_and_are_read_by_the_other_instance_from_the_featured_collection(
        fedserver_processes, tmp_path):
    a = await _serving(fedserver_processes, tmp_path, "a", "alice")
    b = await _serving(fedserver_processes, tmp_path, "b", "bob")
    alice, bob, http = await signed_in(a, "alice"), await signed_in(b, "bob"), aiohttp.ClientSession()
    try:
        first, first_uri = await _post(a, "alice", "First pinned post")
        second, second_uri = await _post(a, "alice", "Second pinned post", "unlisted")
        secret, _ = await _post(a, "alice", "For followers only", "followers")
        await _post(a, "alice", "Not pinned at all")
        profile = await alice.get("/@alice")
        assert f'action="/posts/{first}/pin"' in profile.text
        assert f'action="/posts/{secret}/pin"' not in profile.text  # no button for a followers-only post
        for post_id in (first, second):
            pinned = await alice.submit("/@alice", f"/posts/{post_id}/pin", {"back": "/@alice"})
            assert pinned.url.endswith("/@alice") and "Pinned: it comes first" in html.unescape(pinned.text)
        refused = await alice.submit("/@alice", f"/posts/{secret}/pin", {"back": "/@alice"})
        assert "only public and unlisted posts can be pinned" in html.unescape(refused.text)

        # First on the profile, newest pin first, for anyone; the posts list follows.
        page = (await Browser(a.base).get("/@alice")).text
        pinned_part, posts_part = page.split('id="posts-heading"', 1)
        assert "Pinned posts" in pinned_part and "Not pinned at all" not in pinned_part
        assert pinned_part.index("Second pinned post") < pinned_part.index("First pinned post")
        assert "Not pinned at all" in posts_part

        # The featured collection: an OrderedCollection of the Notes, as Mastodon serves it.
        async with http.get(a.actor_uri("alice"), headers={"Accept": AS2}) as resp:
            featured_url = (await resp.json(content_type=None))["featured"]
        async with http.get(featured_url, headers={"Accept": AS2}) as resp:
            assert resp.status == 200 and resp.content_type == AS2
            featured = await resp.json(content_type=None)
        assert featured["type"] == "OrderedCollection" and featured["id"] == featured_url
        assert featured["totalItems"] == 2
        assert [item["id"] for item in featured["orderedItems"]] == [second_uri, first_uri]
        assert all(item["type"] == "Note" for item in featured["orderedItems"])

        # The other instance reads it when bob opens alice's profile there (in the background).
        remote_path = await _remote_profile(bob, a.handle("alice"))

        async def shown() -> bool:
            text = (await bob.get(remote_path)).text
            return "Pinned posts" in text and "Second pinned post" in text.split('id="posts-heading"')[0]
        await await_for(shown, timeout=20, what="alice's pinned posts on b")
        assert b.value("SELECT count(*) FROM pinned_posts") == 2

        # At most five pins; unpinning takes one out of the collection.
        extra = [(await _post(a, "alice", f"Extra {n}"))[0] for n in range(4)]
        for post_id in extra[:3]:
            await alice.submit("/@alice", f"/posts/{post_id}/pin", {"back": "/@alice"})
        sixth = await alice.submit("/@alice", f"/posts/{extra[3]}/pin", {"back": "/@alice"})
        assert "at most 5" in html.unescape(sixth.text)
        await alice.submit("/@alice", f"/posts/{first}/unpin", {"back": "/@alice"})
        async with http.get(featured_url, headers={"Accept": AS2}) as resp:
            ids = [item["id"] for item in (await resp.json(content_type=None))["orderedItems"]]
        assert first_uri not in ids and len(ids) == 4
    finally:
        await alice.close()
        await bob.close()
        await http.close()


async def test_a_remote_featured_collection_cannot_slip_in_forged_or_foreign_posts(fedserver_processes, tmp_path):
    a = await _serving(fedserver_processes, tmp_path, "a", "alice")
    remote = await FeaturingRemote.start("mallory", "eve")
    alice = await signed_in(a, "alice")
    try:
        real = remote.note("mallory", "What mallory really wrote")
        remote.serve(real)
        eves = remote.note("eve", "A post by eve, not mallory")
        remote.serve(eves)
        local_id, local_uri = await _post(a, "alice", "Alice's own post")
        featured = {"id": f"{remote.actor_uri('mallory')}/collections/featured", "type": "OrderedCollection",
                    "totalItems": 4,
                    "orderedItems": [{**real, "content": "<p>Forged text</p>"},  # refetched by its id
                                     eves,  # someone else's post
                                     local_uri,  # a post of another server
                                     {"id": f"{remote.base}/missing", "type": "Note"}]}
        remote.serve(featured)
        path = await _remote_profile(alice, f"@mallory@{remote.domain}")

        async def shown() -> bool:
            return "What mallory really wrote" in (await alice.get(path)).text
        await await_for(shown, timeout=20, what="mallory's pinned post")
        page = (await alice.get(path)).text
        pinned_part = page.split('id="posts-heading"')[0]
        assert "Forged text" not in page
        assert "A post by eve" not in pinned_part and "Alice&#39;s own post" not in pinned_part
        assert a.value("SELECT count(*) FROM pinned_posts") == 1
        assert a.value("SELECT count(*) FROM pinned_posts WHERE post_id = ?", (local_id,)) == 0
    finally:
        await alice.close()
        await remote.stop()


async def test_pinning_and_unpinning_reach_the_followers_server_as_add_and_remove(fedserver_processes, tmp_path):
    a = await _serving(fedserver_processes, tmp_path, "a", "alice")
    b = await _serving(fedserver_processes, tmp_path, "b", "bob")
    alice = await signed_in(a, "alice")
    try:
        await b.arun("follow", "bob", a.handle("alice"), check=True)
        await await_for(lambda: a.value("SELECT count(*) FROM follows WHERE state = 'accepted'") == 1
                        and b.value("SELECT count(*) FROM follows WHERE state = 'accepted'") == 1,
                        what="bob follows alice")
        post_id, uri = await _post(a, "alice", "Pinned while bob follows")
        await await_for(lambda: b.value("SELECT count(*) FROM posts WHERE uri = ?", (uri,)) == 1,
                        what="the post at b")
        await alice.submit("/@alice", f"/posts/{post_id}/pin", {"back": "/@alice"})
        pinned_at_b = ("SELECT count(*) FROM pinned_posts n JOIN posts p ON p.id = n.post_id WHERE p.uri = ?", (uri,))
        # Nobody at b opened alice's profile: the Add alone brought the pin.
        await await_for(lambda: b.value(*pinned_at_b) == 1, what="the Add at b")
        await alice.submit("/@alice", f"/posts/{post_id}/unpin", {"back": "/@alice"})
        await await_for(lambda: b.value(*pinned_at_b) == 0, what="the Remove at b")
    finally:
        await alice.close()


async def test_an_add_about_another_collection_or_another_authors_post_pins_nothing(fedserver_processes, tmp_path):
    a = await _serving(fedserver_processes, tmp_path, "a", "alice")
    remote = await FeaturingRemote.start("mallory", "eve")
    try:
        await a.arun("follow", "alice", f"@mallory@{remote.domain}", check=True)
        follow_uri = a.value("SELECT uri FROM follows")
        accept = remote.activity("mallory", "Accept", {"id": follow_uri, "type": "Follow",
                                                       "actor": a.actor_uri("alice"),
                                                       "object": remote.actor_uri("mallory")})
        await delivered(a, remote, accept, as_user="mallory")
        own, eves = remote.note("mallory", "Mallory's own post"), remote.note("eve", "Eve's post")
        remote.serve(own)
        remote.serve(eves)
        featured = f"{remote.actor_uri('mallory')}/collections/featured"
        for activity in (remote.activity("mallory", "Add", eves["id"], target=featured),  # eve's post
                         remote.activity("mallory", "Add", own["id"],  # eve's collection
                                         target=f"{remote.actor_uri('eve')}/collections/featured")):
            await delivered(a, remote, activity, as_user="mallory")
        assert a.value("SELECT count(*) FROM pinned_posts") == 0
        await delivered(a, remote, remote.activity("mallory", "Add", own["id"], target=featured), as_user="mallory")
        assert a.value("SELECT count(*) FROM pinned_posts") == 1
    finally:
        await remote.stop()
