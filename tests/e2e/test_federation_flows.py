"""Two (or three) real fedserver instances on loopback federating over real, signed HTTP."""
from __future__ import annotations

import aiohttp

from fedserver.services import accounts, follows, interactions, posting
from fedserver.services.posting import Draft
from tests.conftest import wait_until

AS2 = "application/activity+json"


async def _post_at(instance, uri: str):
    rows = await instance.query("SELECT visibility, content_text, deleted_at, edited_at FROM posts WHERE uri = ?", (uri,))
    return rows[0] if rows else None


async def test_follow_post_reply_like_edit_delete_unfollow_between_two_servers(instances):
    a = await instances("a")
    b = await instances("b")
    await accounts.create_account(a.ctx, "alice")
    await accounts.create_account(b.ctx, "bob")

    # bob@b follows alice@a: the Follow is delivered, auto-accepted, and the Accept comes back.
    await follows.follow(b.ctx, "bob", a.handle("alice"))
    await wait_until(lambda: b.follow_state(b.actor_uri("bob"), a.actor_uri("alice")),
                     what="follow recorded at b")
    assert await wait_until(
        lambda: _eq(b.follow_state(b.actor_uri("bob"), a.actor_uri("alice")), "accepted"), what="Accept at b")
    assert await a.follow_state(b.actor_uri("bob"), a.actor_uri("alice")) == "accepted"
    notifications = await a.query("SELECT kind FROM notifications")
    assert ("follow",) in notifications

    # alice posts publicly: it arrives at b because bob follows her.
    post = await posting.create_post(a.ctx, "alice", Draft(text="Hello #fediverse, first post"))
    arrived = await wait_until(lambda: _post_at(b, post.uri), what="post delivered to b")
    assert arrived[0] == "public" and "Hello #fediverse" in arrived[1]
    assert await b.query("SELECT tag FROM post_tags") == [("fediverse",)]

    # bob replies and likes: both arrive at a, with notifications for alice.
    reply = await posting.create_post(b.ctx, "bob", Draft(text="Welcome!", reply_to=post.uri))
    await wait_until(lambda: _post_at(a, reply.uri), what="reply delivered to a")
    assert (await a.query("SELECT in_reply_to_uri FROM posts WHERE uri = ?", (reply.uri,)))[0][0] == post.uri
    await interactions.like(b.ctx, "bob", post.uri)
    await wait_until(lambda: a.count("SELECT count(*) FROM likes"), what="like delivered to a")
    kinds = {row[0] for row in await a.query("SELECT kind FROM notifications")}
    assert {"follow", "reply", "like"} <= kinds

    # bob boosts alice's post: a records the Announce.
    await interactions.boost(b.ctx, "bob", post.uri)
    await wait_until(lambda: a.count("SELECT count(*) FROM announces"), what="boost delivered to a")

    # alice edits: the new text replaces the old one at b.
    await posting.edit_post(a.ctx, "alice", post.uri, Draft(text="Hello #fediverse, edited"))
    edited = await wait_until(lambda: _text_contains(b, post.uri, "edited"), what="edit propagated")
    assert edited

    # alice deletes: b marks it deleted and the id answers 410 Gone with a Tombstone.
    await posting.delete_post(a.ctx, "alice", post.uri)
    await wait_until(lambda: _deleted(b, post.uri), what="delete propagated")
    async with aiohttp.ClientSession() as http:
        async with http.get(post.uri, headers={"Accept": AS2}) as resp:
            assert resp.status == 410
            assert (await resp.json(content_type=None))["type"] == "Tombstone"

    # bob unfollows: a no longer lists him as a follower, and a new post is not delivered to b.
    await follows.unfollow(b.ctx, "bob", a.handle("alice"))
    await wait_until(lambda: _eq(a.follow_state(b.actor_uri("bob"), a.actor_uri("alice")), None, negate=False),
                     what="Undo(Follow) processed at a")
    later = await posting.create_post(a.ctx, "alice", Draft(text="Only for people who still follow"))
    assert await a.count("SELECT count(*) FROM deliveries d JOIN outbound_activities o ON o.id = d.activity_id"
                         " WHERE o.uri = ?", (later.uri + "/activity",)) == 0


async def _eq(awaitable, expected, negate: bool = False):
    value = await awaitable
    return value == expected if not negate else value != expected


async def _text_contains(instance, uri: str, needle: str) -> bool:
    row = await _post_at(instance, uri)
    return bool(row and needle in row[1])


async def _deleted(instance, uri: str) -> bool:
    row = await _post_at(instance, uri)
    return bool(row and row[2])


async def test_locked_account_approves_one_request_and_rejects_another(instances):
    a = await instances("a")
    b = await instances("b")
    await accounts.create_account(a.ctx, "alice", locked=True)
    await accounts.create_account(b.ctx, "bob")
    await accounts.create_account(b.ctx, "mallory")

    await follows.follow(b.ctx, "bob", a.handle("alice"))
    await follows.follow(b.ctx, "mallory", a.handle("alice"))
    await wait_until(lambda: _has_len(_pending_handles(a), 2), what="both follow requests at a")
    assert await a.count("SELECT count(*) FROM notifications WHERE kind = 'follow_request'") == 2

    # Nothing is delivered to pending followers.
    secret = await posting.create_post(a.ctx, "alice", Draft(text="before approval", visibility="followers"))
    assert await a.count("SELECT count(*) FROM deliveries d JOIN outbound_activities o ON o.id = d.activity_id"
                         " WHERE o.object_uri = ?", (secret.uri,)) == 0

    await follows.answer_follow_request(a.ctx, "alice", b.handle("bob"), accept=True)
    await follows.answer_follow_request(a.ctx, "alice", b.handle("mallory"), accept=False)
    await wait_until(lambda: _eq(b.follow_state(b.actor_uri("bob"), a.actor_uri("alice")), "accepted"),
                     what="Accept reaches b")
    await wait_until(lambda: _eq(b.follow_state(b.actor_uri("mallory"), a.actor_uri("alice")), None),
                     what="Reject reaches b")
    assert await a.follow_state(b.actor_uri("mallory"), a.actor_uri("alice")) is None

    # Now a followers-only post reaches b (bob follows); mallory's rejection removed her follow.
    post = await posting.create_post(a.ctx, "alice", Draft(text="for approved followers", visibility="followers"))
    row = await wait_until(lambda: _post_at(b, post.uri), what="followers-only post at b")
    assert row[0] == "followers"
    assert await _post_at(b, secret.uri) is None


async def _pending_handles(instance):
    rows = await instance.query("SELECT a.uri FROM follows f JOIN actors a ON a.id = f.follower_id"
                                " WHERE f.state = 'pending'")
    return [r[0] for r in rows]


async def _has_len(awaitable, n: int) -> bool:
    return len(await awaitable) == n
