"""Account migration (ActivityPub Move, as Mastodon sends it): when an account local people follow
moves to a new account that lists the old one in alsoKnownAs, they follow the new one instead;
anything that does not prove the move changes nothing. A real fedserver on a loopback port, a
hand-built remote that really signs and verifies (tests/e2e/fake_remote.py)."""
from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from fedserver.services import accounts, follows
from tests.conftest import Instance, wait_until
from tests.e2e.fake_remote import FakeRemote
from tests.web.browser import person


@pytest.fixture
async def remote() -> AsyncIterator[FakeRemote]:
    remote = await FakeRemote.start("old", "new", "thief")
    yield remote
    await remote.stop()


def serve_documents(remote: FakeRemote, extra: dict[str, dict[str, Any]]) -> None:
    """Make the remote's actor documents carry extra properties (alsoKnownAs, movedTo)."""
    plain = remote.actor_document
    remote.actor_document = lambda name: {**plain(name), **extra.get(name, {})}  # type: ignore[method-assign]


async def follow_accepted(a: Instance, remote: FakeRemote, local: str, name: str) -> None:
    await follows.follow(a.ctx, local, f"@{name}@{remote.domain}")
    sent = await wait_until(lambda: _received(remote, "Follow", actor=a.actor_uri(local), obj=remote.actor_uri(name)),
                            what=f"{local}'s Follow at the remote")
    status, _ = await remote.post(f"{a.base}/inbox", remote.activity(name, "Accept", sent), as_user=name)
    assert status == 202
    await wait_until(lambda: _is_accepted(a, local, remote.actor_uri(name)), what="the follow accepted")


async def _received(remote: FakeRemote, kind: str, *, actor: str, obj: Any) -> dict | None:
    for item in remote.received:
        activity = item.activity or {}
        if item.verified and activity.get("type") == kind and activity.get("actor") == actor \
                and activity.get("object") == obj:
            return activity
    return None


async def _follow_state(a: Instance, local: str, uri: str) -> str | None:
    rows = await a.query("SELECT f.state FROM follows f JOIN actors l ON l.id = f.follower_id"
                         " JOIN actors t ON t.id = f.followee_id WHERE l.username = ? AND l.is_local = 1"
                         " AND t.uri = ?", (local, uri))
    return rows[0][0] if rows else None


async def _is_accepted(a: Instance, local: str, uri: str) -> bool:
    return await _follow_state(a, local, uri) == "accepted"


def move(remote: FakeRemote, name: str, target: str, **overrides: Any) -> dict[str, Any]:
    activity = remote.activity(name, "Move", remote.actor_uri(name), target=target,
                               to=[f"{remote.actor_uri(name)}/followers"])
    activity.update(overrides)
    return activity


async def test_local_followers_of_a_moved_account_follow_the_new_one(instances, remote):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    await accounts.create_account(a.ctx, "carol")
    old, new = remote.actor_uri("old"), remote.actor_uri("new")
    serve_documents(remote, {"new": {"alsoKnownAs": [old]}, "old": {"movedTo": new}})
    await follow_accepted(a, remote, "alice", "old")
    await follow_accepted(a, remote, "carol", "old")

    status, _ = await remote.post(f"{a.base}/inbox", move(remote, "old", new), as_user="old")
    assert status == 202
    for local in ("alice", "carol"):
        # A Follow to the new account, an Undo of the old follow to the old one, both signed by us.
        await wait_until(lambda: _received(remote, "Follow", actor=a.actor_uri(local), obj=new),
                         what=f"{local}'s Follow of the new account")
        undo = await wait_until(lambda: _undo_of_follow(remote, a.actor_uri(local), old),
                                what=f"{local}'s Undo of the old follow")
        assert undo["object"]["type"] == "Follow"
        assert await _follow_state(a, local, new) == "pending"
        assert await _follow_state(a, local, old) is None
    [(moved_to, moved_at)] = await a.query("SELECT moved_to_uri, moved_at FROM actors WHERE uri = ?", (old,))
    assert moved_to == new and moved_at

    # The new account accepts: alice follows it as she followed the old one.
    sent = await _received(remote, "Follow", actor=a.actor_uri("alice"), obj=new)
    await remote.post(f"{a.base}/inbox", remote.activity("new", "Accept", sent), as_user="new")
    await wait_until(lambda: _is_accepted(a, "alice", new), what="the new follow accepted")

    # The old profile says where the account went.
    alice = await person(a, "dave")
    try:
        old_id = (await a.query("SELECT id FROM actors WHERE uri = ?", (old,)))[0][0]
        page = await alice.get(f"/remote/{old_id}")
        assert "This account has moved to" in page.text and f"@new@{remote.domain}" in page.text
    finally:
        await alice.close()


async def _undo_of_follow(remote: FakeRemote, actor: str, followee: str) -> dict | None:
    for item in remote.received:
        activity = item.activity or {}
        inner = activity.get("object")
        if item.verified and activity.get("type") == "Undo" and activity.get("actor") == actor \
                and isinstance(inner, dict) and inner.get("object") == followee:
            return activity
    return None


@pytest.mark.parametrize("case", ["the target does not list the old account", "moving someone else",
                                  "a second move within 7 days"])
async def test_a_move_that_is_not_proven_changes_nothing(instances, remote, case):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    old, new, thief = remote.actor_uri("old"), remote.actor_uri("new"), remote.actor_uri("thief")
    # new lists old; thief lists nobody, except when it tries to take old's followers by itself.
    serve_documents(remote, {"new": {"alsoKnownAs": [old]},
                             "thief": {"alsoKnownAs": [old]} if case == "moving someone else" else {}})
    await follow_accepted(a, remote, "alice", "old")
    if case == "the target does not list the old account":
        activity, signer = move(remote, "old", thief), "old"
    elif case == "moving someone else":
        # The thief, signing as itself, says the old account moved to the thief's.
        activity, signer = move(remote, "thief", thief, object=old), "thief"
    else:
        async with a.ctx.db.transaction() as tx:
            await tx.execute("UPDATE actors SET moved_at = ? WHERE uri = ?", (a.ctx.clock.now_iso(), old))
        activity, signer = move(remote, "old", new), "old"

    status, _ = await remote.post(f"{a.base}/inbox", activity, as_user=signer)
    assert status == 202
    await wait_until(lambda: a.count("SELECT count(*) FROM inbox_items WHERE activity_uri = ? AND state = 'done'",
                                     (activity["id"],)), what="the Move processed")
    assert await _follow_state(a, "alice", old) == "accepted"
    assert await _follow_state(a, "alice", new) is None and await _follow_state(a, "alice", thief) is None
    sent_after_follow = [item.activity for item in remote.received
                         if (item.activity or {}).get("type") in ("Undo", "Follow")
                         and (item.activity or {}).get("object") != old]
    assert sent_after_follow == []
