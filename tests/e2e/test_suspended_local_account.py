"""A local account suspended by an admin (`fedserver user suspend`) disappears with all its posts:
from its AS2 outbox and activity documents, its profile and post pages, the local and hashtag timelines, the home timelines
of the people who follow it, other people's threads and their notifications. Lifting the suspension
brings them back. Real `fedserver serve`, read over HTTP as peers and people would."""
from __future__ import annotations

import aiohttp

from tests.e2e.fake_remote import AS2
from tests.e2e.serve_support import serve_with_people, signed_in


async def _as2(http: aiohttp.ClientSession, url: str) -> tuple[int, dict | None]:
    async with http.get(url, headers={"Accept": AS2}) as resp:
        return resp.status, (await resp.json(content_type=None)) if resp.status == 200 else None


async def test_a_suspended_local_accounts_posts_leave_the_outbox_and_every_page(fedserver_processes, tmp_path):
    server = await serve_with_people(fedserver_processes, tmp_path, "alice", "bob", "carol")
    bob, carol = await signed_in(server, "bob"), await signed_in(server, "carol")
    http = aiohttp.ClientSession()
    try:
        await server.arun("follow", "bob", server.handle("alice"), check=True)
        root = (await server.arun("post", "bob", "Bob asks a question", check=True)).stdout.strip()
        root_page = root.replace("/users/bob/statuses/", "/@bob/")
        own = (await server.arun("post", "alice", f"Alice shouts #news at @carol@{server.domain}",
                                 check=True)).stdout.strip()
        await server.arun("post", "alice", "Alice answers bob", "--reply-to", root, check=True)
        await server.arun("boost", "alice", root, check=True)
        boost = server.value("SELECT uri FROM outbound_activities WHERE activity_type = 'Announce'")
        assert (await _as2(http, boost))[0] == 200
        outbox = f"{server.base}/users/alice/outbox"
        status, first_page = await _as2(http, f"{outbox}?page=true")
        assert status == 200 and len(first_page["orderedItems"]) == 2
        assert "Alice shouts" in (await bob.get("/home")).text
        assert "Alice answers bob" in (await bob.get(root_page)).text
        assert "Alice shouts" in (await carol.get("/notifications")).text

        await server.arun("user", "suspend", "alice", check=True)

        status, collection = await _as2(http, outbox)
        assert status == 200 and collection["totalItems"] == 0
        status, first_page = await _as2(http, f"{outbox}?page=true")
        assert status == 200 and first_page["orderedItems"] == []
        assert (await _as2(http, own))[0] == 404
        assert (await _as2(http, boost))[0] == 404
        async with http.get(own.replace("/users/alice/statuses/", "/@alice/")) as resp:
            assert resp.status == 404
        async with http.get(f"{server.base}/@alice") as resp:
            assert resp.status == 404
        for browser, path in ((bob, "/home"), (bob, root_page), (bob, "/local"), (bob, "/tags/news"),
                              (carol, "/notifications")):
            page = await browser.get(path)
            assert page.status == 200 and "Alice" not in page.text, path
        assert "Bob asks a question" in (await bob.get(root_page)).text

        await server.arun("user", "unsuspend", "alice", check=True)
        assert "Alice answers bob" in (await bob.get(root_page)).text
        status, first_page = await _as2(http, f"{outbox}?page=true")
        assert len(first_page["orderedItems"]) == 2
    finally:
        await http.close()
        await bob.close()
        await carol.close()
