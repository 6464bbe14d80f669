"""A deleted post that was not public answers 404 to those who could not see it, so that a
stranger cannot learn that a followers-only or direct post ever existed; whoever could see it (a
follower, signing its GET) gets the 410 Tombstone, as everyone does for a deleted public post
(Mastodon's behaviour). Real `fedserver serve`, a FakeRemote whose actors sign their GETs."""
from __future__ import annotations

import aiohttp

from tests.e2e.fake_remote import AS2, FakeRemote
from tests.e2e.serve_support import delivered, serve_with_people


async def _get(http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> int:
    async with http.get(url, headers=headers or {}, allow_redirects=False) as resp:
        return resp.status


async def test_a_deleted_followers_only_post_answers_404_to_strangers_and_410_to_followers(
        fedserver_processes, tmp_path):
    server = await serve_with_people(fedserver_processes, tmp_path, "alice")
    remote = await FakeRemote.start("eve", "mallory")
    http = aiohttp.ClientSession()
    try:
        follow = remote.activity("eve", "Follow", server.actor_uri("alice"))
        await delivered(server, remote, follow, as_user="eve")
        assert server.value("SELECT state FROM follows WHERE uri = ?", (follow["id"],)) == "accepted"
        uris = {}
        for visibility in ("public", "followers", "direct"):
            result = await server.arun("post", "alice", f"a {visibility} post", "--visibility", visibility, check=True)
            uris[visibility] = result.stdout.strip()
        for uri in uris.values():
            await server.arun("delete", "alice", uri, check=True)

        for visibility, expected in (("public", 410), ("followers", 404), ("direct", 404)):
            uri = uris[visibility]
            page = uri.replace("/users/alice/statuses/", "/@alice/")
            assert await _get(http, uri, {"Accept": AS2}) == expected, visibility
            assert await _get(http, f"{uri}/activity", {"Accept": AS2}) == expected, visibility
            assert await _get(http, page) == expected, visibility
            # A stranger signing its GET is no wiser than an anonymous one.
            signed = remote.sign("GET", uri, None, as_user="mallory")
            assert await _get(http, uri, {**signed, "Accept": AS2}) == expected, visibility
        # eve followed alice and saw the followers-only post: she is told it is gone.
        signed = remote.sign("GET", uris["followers"], None, as_user="eve")
        assert await _get(http, uris["followers"], {**signed, "Accept": AS2}) == 410
    finally:
        await http.close()
        await remote.stop()
