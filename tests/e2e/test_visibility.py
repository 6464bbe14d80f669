"""Who receives and who may fetch a post of each visibility, across three real servers on loopback:
alice@a posts, bob@b follows her, carol@c does not (federation.md §4.2, §3.4)."""
from __future__ import annotations

import json

import aiohttp
import pytest

from fedserver.services import accounts, follows, posting
from fedserver.services.posting import Draft
from tests.conftest import wait_until
from tests.e2e.test_documents import AS2, PUBLIC, account_key, signed_get

pytestmark = pytest.mark.usefixtures("fast_accounts")


async def _stored(instance, uri: str) -> tuple | None:
    rows = await instance.query("SELECT visibility, content_text FROM posts WHERE uri = ?", (uri,))
    return rows[0] if rows else None


async def _deliveries(instance, activity_uri: str) -> list[tuple[str, str]]:
    """(inbox, state) of every delivery the instance queued for the activity."""
    return await instance.query(
        "SELECT d.inbox_url, d.state FROM deliveries d JOIN outbound_activities o ON o.id = d.activity_id"
        " WHERE o.uri = ? ORDER BY d.inbox_url", (activity_uri,))


async def _all_delivered(instance, activity_uri: str) -> bool:
    rows = await _deliveries(instance, activity_uri)
    return bool(rows) and all(state == "delivered" for _, state in rows)


async def _received(instance, activity_uri: str) -> int:
    return await instance.count("SELECT count(*) FROM inbox_items WHERE activity_uri = ?", (activity_uri,))


@pytest.fixture
async def servers(instances):
    """a, b, c with alice@a, bob@b following alice (accepted on both sides), carol@c following nobody."""
    a, b, c = await instances("a"), await instances("b"), await instances("c")
    await accounts.create_account(a.ctx, "alice")
    await accounts.create_account(b.ctx, "bob")
    await accounts.create_account(c.ctx, "carol")
    await follows.follow(b.ctx, "bob", a.handle("alice"))
    for instance in (a, b):
        await wait_until(lambda: _is_accepted(instance, b.actor_uri("bob"), a.actor_uri("alice")),
                         what=f"bob's follow accepted at {instance.domain}")
    return a, b, c


async def _is_accepted(instance, follower_uri: str, followee_uri: str) -> bool:
    return await instance.follow_state(follower_uri, followee_uri) == "accepted"


async def test_followers_only_post_reaches_followers_server_and_no_one_else(servers):
    a, b, c = servers
    post = await posting.create_post(a.ctx, "alice", Draft(text="for my followers", visibility="followers"))
    activity = f"{post.uri}/activity"

    await wait_until(lambda: _all_delivered(a, activity), what="deliveries finished")
    inboxes = [inbox for inbox, _ in await _deliveries(a, activity)]
    assert inboxes == [f"{b.base}/inbox"]  # bob's shared inbox, nothing towards c
    stored = await wait_until(lambda: _stored(b, post.uri), what="post stored at b")
    assert stored == ("followers", "for my followers")
    assert await _stored(c, post.uri) is None
    assert await _received(c, activity) == 0

    carol, bob = await account_key(c, "carol"), await account_key(b, "bob")
    async with aiohttp.ClientSession() as http:
        for url in (post.uri, activity):
            async with await signed_get(http, url, carol) as resp:
                assert resp.status == 404, f"carol read {url}"
            async with http.get(url, headers={"Accept": AS2}) as resp:
                assert resp.status == 404, f"anonymous read {url}"
            async with await signed_get(http, url, bob) as resp:
                assert resp.status == 200, f"bob could not read {url}"
                doc = await resp.json(content_type=None)
            assert doc["to"] == [a.actor_uri("alice") + "/followers"] and doc["cc"] == []


async def test_direct_post_reaches_only_the_mentioned_account(servers):
    a, b, c = servers
    carol_uri = c.actor_uri("carol")
    post = await posting.create_post(a.ctx, "alice", Draft(text=f"@carol@{c.domain} just between us",
                                                           visibility="direct"))
    activity = f"{post.uri}/activity"

    await wait_until(lambda: _all_delivered(a, activity), what="deliveries finished")
    assert [inbox for inbox, _ in await _deliveries(a, activity)] == [f"{carol_uri}/inbox"]
    stored = await wait_until(lambda: _stored(c, post.uri), what="post stored at c")
    assert stored[0] == "direct" and "just between us" in stored[1]
    assert await c.count("SELECT count(*) FROM notifications WHERE kind = 'mention'") == 1
    assert await _stored(b, post.uri) is None
    assert await _received(b, activity) == 0

    # What was sent (a keeps the signed body it delivered) names carol and no one else.
    [(body,)] = await a.query("SELECT body FROM outbound_activities WHERE uri = ?", (activity,))
    sent = json.loads(body)
    assert (sent["to"], sent.get("cc", [])) == ([carol_uri], [])
    assert (sent["object"]["to"], sent["object"].get("cc", [])) == ([carol_uri], [])

    carol, bob = await account_key(c, "carol"), await account_key(b, "bob")
    async with aiohttp.ClientSession() as http:
        for url in (post.uri, activity):
            async with await signed_get(http, url, bob) as resp:
                assert resp.status == 404, f"bob read {url}"
            async with http.get(url, headers={"Accept": AS2}) as resp:
                assert resp.status == 404, f"anonymous read {url}"
            async with await signed_get(http, url, carol) as resp:
                assert resp.status == 200, f"carol could not read {url}"
                doc = await resp.json(content_type=None)
            assert (doc["to"], doc["cc"]) == ([carol_uri], [])


@pytest.mark.parametrize("visibility", ["public", "unlisted"])
async def test_public_and_unlisted_posts_reach_followers_and_anyone_may_fetch_them(servers, visibility):
    a, b, c = servers
    post = await posting.create_post(a.ctx, "alice", Draft(text=f"a {visibility} post", visibility=visibility))
    activity = f"{post.uri}/activity"

    stored = await wait_until(lambda: _stored(b, post.uri), what="post stored at b")
    assert stored == (visibility, f"a {visibility} post")
    await wait_until(lambda: _all_delivered(a, activity), what="deliveries finished")
    assert [inbox for inbox, _ in await _deliveries(a, activity)] == [f"{b.base}/inbox"]
    assert await _stored(c, post.uri) is None  # nobody at c follows alice
    async with aiohttp.ClientSession() as http:
        async with http.get(post.uri, headers={"Accept": AS2}) as resp:
            assert resp.status == 200
            doc = await resp.json(content_type=None)
    assert PUBLIC in doc["to" if visibility == "public" else "cc"]
