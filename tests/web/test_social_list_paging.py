"""The everyday lists page through every account exactly once, newest first, however many there are
(a running instance over HTTP): followers and following (by follow id), blocked accounts (by block
id) and muted accounts (mutes have no id: keyset on (created_at, account id), ties included)."""
from __future__ import annotations

import re

from fedserver.services import accounts, follows, social_lists, timelines
from tests.web.browser import Browser, person

COUNT = social_lists.PAGE_SIZE + 5


def _handles(text: str) -> list[str]:
    return re.findall(r'<span class="handle">@(u\d+)@', text)


async def _walk(browser: Browser, path: str) -> list[str]:
    seen: list[str] = []
    pages = 0
    while path:
        page = await browser.get(path)
        assert page.status == 200, (path, page.status)
        seen.extend(_handles(page.text))
        pages += 1
        older = [link for link in page.links() if "max_id=" in link]
        path = older[0] if older else ""
        assert pages <= 5, "the pager does not end"
    return seen


async def test_followers_blocks_and_mutes_page_through_every_account_once(instances):
    a = await instances("a")
    alice = await person(a, "alice")
    names = [f"u{n:02d}" for n in range(COUNT)]
    for name in names:
        await accounts.create_account(a.ctx, name)
        await follows.follow(a.ctx, name, f"@alice@{a.ctx.urls.domain}")
        target = await timelines.local_actor(a.ctx, name)
        assert target is not None
        await follows.mute(a.ctx, "alice", target, muted=True)
    # Several mutes in the same instant: the keyset must still take each once.
    async with a.ctx.db.transaction() as tx:
        await tx.execute("UPDATE mutes SET created_at = '2026-01-01T00:00:00Z' WHERE target_id % 3 = 0")
    try:
        followers = await _walk(alice, "/@alice/followers")
        assert followers == list(reversed(names))  # newest follow first, each once
        for name in names[:COUNT // 2]:
            target = await timelines.local_actor(a.ctx, name)
            assert target is not None
            await follows.block(a.ctx, "alice", target)  # (ends their follows)
        mutes = await _walk(alice, "/settings/mutes")
        assert sorted(mutes) == names and len(mutes) == len(set(mutes))
        blocks = await _walk(alice, "/settings/blocks")
        assert blocks == list(reversed(names[:COUNT // 2]))
    finally:
        await alice.close()
