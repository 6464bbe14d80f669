"""Custom emoji of another server's post reach apps as Status.emojis, with pictures served by this
server's media cache (as the web pages show them), never by the sending server. A real
`fedserver serve` and a hostile remote that signs its requests (tests/e2e/fake_remote.py)."""
from __future__ import annotations

import aiohttp

from tests.api.entities import assert_entity
from tests.e2e.processes import await_for, fedserver_processes  # noqa: F401 (a fixture, used by name)
from tests.e2e.test_media_cache import remote, serving  # noqa: F401 (remote: a fixture)


async def test_a_remote_posts_custom_emoji_come_from_this_server(fedserver_processes, remote):  # noqa: F811
    server = await serving(fedserver_processes)
    note = remote.note("mallory", "hello :blobcat: and :unknown:", mention=server.actor_uri("alice"))
    note["tag"] += [{"type": "Emoji", "name": ":blobcat:", "icon": {"type": "Image", "mediaType": "image/png",
                                                                      "url": f"{remote.base}/media/good.png"}}]
    status, body = await remote.post(f"{server.base}/inbox", remote.activity("mallory", "Create", note),
                                     as_user="mallory")
    assert status == 202, body
    await await_for(lambda: server.value("SELECT state FROM remote_media WHERE purpose = 'emoji'") == "cached",
                    timeout=30, what="the emoji cached")
    post_id = server.value("SELECT id FROM posts WHERE uri = ?", (note["id"],))
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.base}/api/v1/statuses/{post_id}") as response:
            assert response.status == 200
            found = await response.json()
        assert_entity("Status", found)
        assert [e["shortcode"] for e in found["emojis"]] == ["blobcat"]
        emoji = found["emojis"][0]
        assert emoji["url"].startswith(server.base + "/media/") and emoji["static_url"] == emoji["url"]
        hits = len(remote.media_hits)
        async with http.get(emoji["url"]) as picture:
            assert picture.status == 200 and picture.headers["Content-Type"].startswith("image/")
        assert len(remote.media_hits) == hits  # the app's load never reached the other server
