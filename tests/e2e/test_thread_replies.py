"""A thread page reads its replies in one query (a large thread: one level of the tree per query)
and decides who may see what for all of them at once: each viewer must still get exactly the posts
they may see, in reading order (each reply followed by its own replies), with the ancestors above."""
from __future__ import annotations

import asyncio

import pytest

from fedserver.services import accounts, follows, posting, timelines
from fedserver.services.posting import Draft
from fedserver.store import actors as actor_store

pytestmark = pytest.mark.usefixtures("fast_accounts")


@pytest.fixture(params=["read at once", "read by level"])
def thread_reading(request, monkeypatch) -> None:
    """Both ways a thread's replies are read: the whole tree in one query, and level by level (what
    a thread larger than THREAD_READ_AT_ONCE gets)."""
    if request.param == "read by level":
        monkeypatch.setattr(timelines, "THREAD_READ_AT_ONCE", 0)


async def _post(ctx, username: str, text: str, *, reply_to=None, visibility: str = "public"):
    # Ids are time-ordered to the millisecond: a pause keeps them in writing order.
    await asyncio.sleep(0.002)
    return await posting.create_post(ctx, username, Draft(text=text, visibility=visibility,
                                                          reply_to=reply_to.uri if reply_to else None))


async def _texts(ctx, post, username: str | None) -> tuple[list[str], list[str]]:
    viewer = await actor_store.get_local_actor(ctx.db.reader, username) if username else None
    thread = await timelines.thread(ctx, post, viewer)
    assert thread.focus.post.id == post.id
    return ([card.post.content_text for card in thread.ancestors],
            [card.post.content_text for card in thread.descendants])


async def test_each_viewer_sees_the_replies_they_may_see_in_reading_order(instances, thread_reading):
    a = await instances("a")
    for name in ("alice", "bob", "carol", "dan"):
        await accounts.create_account(a.ctx, name)
    await follows.follow(a.ctx, "dan", a.handle("alice"))
    # A reply mentions the author it answers, so bob is mentioned in p2, carol in the focus, and so on.
    p1 = await _post(a.ctx, "bob", "p1")
    p2 = await _post(a.ctx, "carol", "p2", reply_to=p1, visibility="followers")
    focus = await _post(a.ctx, "alice", "focus", reply_to=p2)
    r1 = await _post(a.ctx, "bob", "r1", reply_to=focus)
    r1a = await _post(a.ctx, "alice", "r1a", reply_to=r1, visibility="followers")
    await _post(a.ctx, "carol", "r1a1", reply_to=r1a)
    await _post(a.ctx, "carol", "r1b @dan", reply_to=r1, visibility="direct")
    r2 = await _post(a.ctx, "dan", "r2", reply_to=focus)
    r2a = await _post(a.ctx, "dan", "r2a", reply_to=r2)
    await _post(a.ctx, "bob", "r2a1", reply_to=r2a)
    await posting.delete_post(a.ctx, "dan", r2a.uri)  # its reply is no longer reachable from here
    await _post(a.ctx, "alice", "r3", reply_to=focus, visibility="unlisted")

    expected = {
        None: (["p1"], ["r1", "r1a1", "r2", "r3"]),
        "alice": (["p1"], ["r1", "r1a", "r1a1", "r2", "r3"]),
        "bob": (["p1", "p2"], ["r1", "r1a", "r1a1", "r1b @dan", "r2", "r3"]),
        "carol": (["p1", "p2"], ["r1", "r1a1", "r1b @dan", "r2", "r3"]),
        "dan": (["p1"], ["r1", "r1a", "r1a1", "r1b @dan", "r2", "r3"]),
    }
    for viewer, (ancestors, descendants) in expected.items():
        assert await _texts(a.ctx, focus, viewer) == (ancestors, descendants), viewer
    # From the middle of the thread: the chain above, and the subtree below only.
    assert await _texts(a.ctx, r1a, "bob") == (["p1", "p2", "focus", "r1"], ["r1a1"])


async def test_a_large_thread_shows_the_first_replies_in_reading_order_up_to_the_limit(instances, monkeypatch,
                                                                                      thread_reading):
    monkeypatch.setattr(timelines, "MAX_DESCENDANTS", 12)
    a = await instances("a")
    for name in ("alice", "bob"):
        await accounts.create_account(a.ctx, name)
    focus = await _post(a.ctx, "alice", "focus")
    first = await _post(a.ctx, "bob", "a", reply_to=focus)
    for i in range(14):  # more replies to one post than the limit
        await _post(a.ctx, "bob", f"b{i}", reply_to=focus)
    chain = first
    for i in range(8):
        chain = await _post(a.ctx, "alice", f"a{i}", reply_to=chain)
    # Reading order: a, its chain a0..a7, then b0, b1, ...: the limit of 12 cuts after b2.
    assert await _texts(a.ctx, focus, None) == ([], ["a", *[f"a{i}" for i in range(8)], "b0", "b1", "b2"])
    assert await _texts(a.ctx, first, None) == (["focus"], [f"a{i}" for i in range(8)])


async def test_replies_that_loop_back_are_shown_once_and_the_page_ends(instances, thread_reading):
    # A peer can claim that its post answers a reply to it; the loop must not run away.
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    focus = await _post(a.ctx, "alice", "focus")
    reply = await _post(a.ctx, "alice", "reply", reply_to=focus)
    async with a.ctx.db.transaction() as tx:
        await tx.execute("UPDATE posts SET in_reply_to_uri = ? WHERE id = ?", (reply.uri, focus.id))
    focus = await timelines.post_by_id(a.ctx, focus.id)
    ancestors, descendants = await _texts(a.ctx, focus, None)
    assert descendants == ["reply"] and ancestors[-1] == "reply"
