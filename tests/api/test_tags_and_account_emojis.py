"""A hashtag's Tag entity counts its last seven days of use (Tag.history: posts and accounts per
day), and a remote account's custom emoji (in its name and bio) reach apps as Account.emojis,
shown from this server's media cache. A real `fedserver serve` and a hostile remote that signs its
requests (tests/e2e/fake_remote.py), read over plain HTTP as an app reads them."""
from __future__ import annotations

import time
from typing import Any

import aiohttp

from tests.api.entities import assert_entity
from tests.e2e.processes import await_for, fedserver_processes  # noqa: F401 (a fixture, used by name)
from tests.e2e.test_media_cache import remote, serving  # noqa: F401 (remote: a fixture)

DAY = 86400


def _tagged(origin, server, text: str, tag: str, *, days_ago: int = 0, public: bool = True) -> dict[str, Any]:
    note = origin.note("mallory", f"{text} #{tag}", mention=server.actor_uri("alice"), public=public)
    note["tag"].append({"type": "Hashtag", "name": f"#{tag}", "href": f"{origin.base}/tags/{tag}"})
    note["published"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - days_ago * DAY))
    return note


async def test_a_tag_counts_its_last_seven_days_of_posts_and_accounts(fedserver_processes, remote):  # noqa: F811
    server = await serving(fedserver_processes)
    for note in (_tagged(remote, server, "first", "Tea"), _tagged(remote, server, "again", "tea"),
                 _tagged(remote, server, "two days ago", "tea", days_ago=2),
                 _tagged(remote, server, "long ago", "tea", days_ago=30),
                 # Only posts anyone may see are counted.
                 _tagged(remote, server, "secret", "tea", public=False)):
        status, body = await remote.post(f"{server.base}/inbox", remote.activity("mallory", "Create", note),
                                         as_user="mallory")
        assert status == 202, body
    server.run("post", "alice", "green #tea", check=True)
    await await_for(lambda: server.value("SELECT count(*) FROM post_tags WHERE tag = 'tea'") == 6,
                    timeout=20, what="the tagged posts stored")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.base}/api/v1/tags/Tea") as response:
            assert response.status == 200
            tag = await response.json()
        async with http.get(f"{server.base}/api/v1/tags/nothing_here") as response:
            empty = await response.json()
    assert_entity("Tag", tag)
    for day in tag["history"]:
        assert_entity("TagHistory", day)
    today = int(time.time() // DAY) * DAY
    assert [int(day["day"]) for day in tag["history"]] == [today - i * DAY for i in range(7)]
    counts = [(day["uses"], day["accounts"]) for day in tag["history"]]
    assert counts == [("3", "2"), ("0", "0"), ("1", "1"), ("0", "0"), ("0", "0"), ("0", "0"), ("0", "0")]
    assert tag["name"] == "tea" and "following" not in tag
    assert [day["uses"] for day in empty["history"]] == ["0"] * 7


async def test_a_remote_accounts_custom_emoji_come_from_this_server(fedserver_processes, remote):  # noqa: F811
    server = await serving(fedserver_processes)
    document = remote.actor_document

    def with_emoji(name: str) -> dict[str, Any]:
        doc = document(name)
        doc["name"] = ":blobcat: Mallory"
        doc["summary"] = "<p>hello :wave:</p>"
        icon = {"type": "Image", "mediaType": "image/png", "url": f"{remote.base}/media/good.png"}
        doc["tag"] = [{"type": "Emoji", "name": f":{code}:", "icon": icon} for code in ("blobcat", "wave", "unused")]
        return doc
    remote.actor_document = with_emoji
    note = remote.note("mallory", "hi", mention=server.actor_uri("alice"))
    status, body = await remote.post(f"{server.base}/inbox", remote.activity("mallory", "Create", note),
                                     as_user="mallory")
    assert status == 202, body
    post_id = await await_for(lambda: server.value("SELECT id FROM posts WHERE uri = ?", (note["id"],)),
                              timeout=20, what="the post stored")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.base}/api/v1/statuses/{post_id}") as response:
            assert response.status == 200
            account = (await response.json())["account"]
        assert_entity("Account", account)
        assert [e["shortcode"] for e in account["emojis"]] == ["blobcat", "wave"]
        for emoji in account["emojis"]:
            assert_entity("CustomEmoji", emoji)
            assert emoji["url"].startswith(server.base + "/media/") and emoji["static_url"] == emoji["url"]
        async with http.get(f"{server.base}/api/v1/accounts/{account['id']}") as response:
            assert [e["shortcode"] for e in (await response.json())["emojis"]] == ["blobcat", "wave"]
        hits = len(remote.media_hits)
        async with http.get(account["emojis"][0]["url"]) as picture:
            assert picture.status == 200 and picture.headers["Content-Type"].startswith("image/")
        # The app's load reached the other server at most once, by this server's cache, never
        # with the app's own address.
        assert len(remote.media_hits) <= hits + 1
