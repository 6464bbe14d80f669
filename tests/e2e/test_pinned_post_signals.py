"""A profile page's training signal covers its pinned posts too: a pinned post the author kept out
of the corpus is on the page, so the page must not say yes, even when that post is too old to be
on the first page of the list below."""
from __future__ import annotations

from fedserver.services import accounts, pins, posting, timelines
from fedserver.services.posting import Draft
from tests.e2e.test_consent_signals import assert_says_no, assert_says_yes, consent_to_training, fetch


async def test_a_pinned_post_kept_out_of_the_corpus_makes_the_profile_say_no(instances):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    await consent_to_training(a, "alice")
    old = await posting.create_post(a.ctx, "alice", Draft(text="An old post kept out of training"))
    await posting.set_post_excluded(a.ctx, "alice", old.uri, True)
    for n in range(timelines.PAGE_SIZE):
        await posting.create_post(a.ctx, "alice", Draft(text=f"Newer post {n}"))
    _, headers, html = await fetch(f"{a.base}/@alice")
    assert "An old post kept out of training" not in html  # on a later page
    assert_says_yes(a, headers, html)

    await pins.pin(a.ctx, "alice", old)
    _, headers, html = await fetch(f"{a.base}/@alice")
    assert "An old post kept out of training" in html
    assert_says_no(a, headers, html)
