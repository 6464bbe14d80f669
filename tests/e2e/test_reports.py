"""Reports from other servers (ActivityPub Flag, as Mastodon sends them from its instance actor)
reach the admin page when they are about accounts here, once per Flag, and leave it when the admin
marks them handled. A real fedserver, a hand-built remote that really signs (fake_remote.py)."""
from __future__ import annotations

import html
import re
from typing import Any, AsyncIterator

import pytest

from fedserver.services import accounts, follows, posting
from fedserver.services.posting import Draft
from tests.conftest import Instance, wait_until
from tests.e2e.fake_remote import FakeRemote
from tests.web.browser import person


@pytest.fixture
async def remote() -> AsyncIterator[FakeRemote]:
    remote = await FakeRemote.start("mod")
    yield remote
    await remote.stop()


def flag(remote: FakeRemote, objects: list[str], comment: str) -> dict[str, Any]:
    return remote.activity("mod", "Flag", objects, content=comment)


async def processed(a: Instance, activity: dict[str, Any]) -> bool:
    return bool(await a.count("SELECT count(*) FROM inbox_items WHERE activity_uri = ? AND state = 'done'",
                              (activity["id"],)))


async def test_a_report_about_a_local_post_reaches_the_admin_until_handled(instances, remote):
    a = await instances("a")
    boss = await person(a, "boss", admin=True)
    alice = await person(a, "alice")
    try:
        post = await posting.create_post(a.ctx, "alice", Draft(text="something contested"))
        report = flag(remote, [a.actor_uri("alice"), post.uri, f"{remote.base}/users/someone-else"],
                      "Spam <script>alert(1)</script> and more")
        for _ in range(2):  # delivered twice: still one report
            status, _ = await remote.post(f"{a.base}/inbox", report, as_user="mod")
            assert status == 202
        await wait_until(lambda: processed(a, report), what="the Flag processed")

        page = await boss.get("/admin")
        assert "Reports (1)" in page.text
        section = page.text.split('id="reports"', 1)[1].split("</section>", 1)[0]
        assert 'href="/@alice"' in section and f"@mod@{remote.domain}" in section
        assert "Spam &lt;script&gt;alert(1)&lt;/script&gt; and more" in section
        assert re.search(rf'href="/posts/{post.id}"', section)
        assert await a.count("SELECT count(*) FROM reports") == 1
        assert (await alice.get("/admin")).status == 403  # only admins see reports

        report_id = re.search(r'name="report_id" value="(\d+)"', section).group(1)
        done = await boss.submit("/admin", "/admin/reports/resolve", {"report_id": report_id})
        assert "Report marked as handled." in done.text and "No open reports." in done.text
        [(resolved_by,)] = await a.query("SELECT a.username FROM reports r JOIN actors a ON a.id = r.resolved_by")
        assert resolved_by == "boss"
    finally:
        await boss.close()
        await alice.close()


async def test_a_report_about_nobody_here_makes_no_report(instances, remote):
    a = await instances("a")
    report = flag(remote, [f"{remote.base}/users/someone", f"{remote.base}/statuses/1", a.actor_uri("nobody")],
                  "not about you")
    status, _ = await remote.post(f"{a.base}/inbox", report, as_user="mod")
    assert status == 202
    await wait_until(lambda: processed(a, report), what="the Flag processed")
    assert await a.count("SELECT count(*) FROM reports") == 0


async def test_a_report_made_here_reaches_our_admins_and_forwarded_the_other_servers_without_our_name(instances):
    a, b = await instances("a"), await instances("b")
    alice, admin_a = await person(a, "alice"), await person(a, "boss", admin=True)
    admin_b = await person(b, "rootie", admin=True)
    await accounts.create_account(b.ctx, "bob")
    try:
        await follows.follow(a.ctx, "alice", b.handle("bob"))
        await wait_until(lambda: a.count("SELECT count(*) FROM follows WHERE state = 'accepted'"), what="follow")
        post = await posting.create_post(b.ctx, "bob", Draft(text="Cheap watches, click here"))
        await wait_until(lambda: a.count("SELECT count(*) FROM posts WHERE uri = ?", (post.uri,)), what="post at a")
        post_id = (await a.query("SELECT id FROM posts WHERE uri = ?", (post.uri,)))[0][0]
        assert f'href="/posts/{post_id}/report?back=' in (await alice.get("/home")).text

        form_path = f"/posts/{post_id}/report?back=/home"
        sent = await alice.submit(form_path, f"/posts/{post_id}/report",
                                  {"comment": "spam, again", "forward": "1", "back": "/home"})
        assert (f"Thank you. Your report went to this server's admins and, without your name, to {b.domain}."
                in html.unescape(sent.text))

        ours = (await admin_a.get("/admin")).text.split('id="reports"', 1)[1].split("</section>", 1)[0]
        assert f"@bob@{b.domain}" in ours and f"@alice@{a.domain}" in ours and "(also sent to their server)" in ours

        await wait_until(lambda: b.count("SELECT count(*) FROM reports"), what="the report at b")
        theirs = (await admin_b.get("/admin")).text.split('id="reports"', 1)[1].split("</section>", 1)[0]
        assert 'href="/@bob"' in theirs and "spam, again" in theirs
        assert "alice" not in theirs  # sent by a's instance actor: the reporter stays unnamed there
        [(reporter,)] = await b.query("SELECT a.uri FROM reports r JOIN actors a ON a.id = r.reporter_id")
        assert reporter == f"{a.base}/actor"

        # Without forwarding, nothing goes to b; one's own posts cannot be reported.
        await alice.submit(form_path, f"/posts/{post_id}/report", {"comment": "still spam", "back": "/home"})
        assert await a.count("SELECT count(*) FROM reports") == 2
        own = await posting.create_post(a.ctx, "alice", Draft(text="mine"))
        own_id = (await a.query("SELECT id FROM posts WHERE uri = ?", (own.uri,)))[0][0]
        assert (await alice.get(f"/posts/{own_id}/report")).status == 404
        await wait_until(lambda: a.count("SELECT count(*) FROM deliveries WHERE state = 'delivered'"),
                         what="deliveries settled")
        assert await b.count("SELECT count(*) FROM reports") == 1
    finally:
        for browser in (alice, admin_a, admin_b):
            await browser.close()
