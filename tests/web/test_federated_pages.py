"""The pages with other servers on the other side: following someone found by @user@host search,
their posts on the home timeline, a remote reply in the notifications, and remote HTML that tries
to run script on our pages."""
from __future__ import annotations

import hashlib
import re
import time
from html.parser import HTMLParser
from typing import AsyncIterator

import pytest

from fedserver.services import accounts, posting
from fedserver.services.posting import Draft
from tests.conftest import wait_until
from tests.e2e.fake_remote import FakeRemote
from tests.web.browser import Browser, person



class ActiveHtmlFinder(HTMLParser):
    """Parses a page as a browser would and lists what could run: script, embedding elements,
    event-handler attributes and javascript: addresses (escaped text is, rightly, just text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # Our own deferred script file (static/app.js, from this site's /static/) is the one script a page has.
        own_script = tag == "script" and attrs == [("src", "/static/app.js"), ("defer", None)]
        if tag in ("script", "iframe", "object", "embed", "svg", "math", "style") and not own_script:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=>")
            if name in ("href", "src", "action", "formaction") and value and "javascript:" in value.lower():
                self.found.append(f"<{tag} {name}={value}>")


def active_html(page: str) -> list[str]:
    finder = ActiveHtmlFinder()
    finder.feed(page)
    finder.close()
    return finder.found


async def test_following_someone_found_by_search_brings_their_posts_home(instances):
    a, b = await instances("a"), await instances("b")
    alice = await person(a, "alice")
    await accounts.create_account(b.ctx, "bob", display_name="Bob on B")
    try:
        found = await alice.get(f"/search?q={b.handle('bob')}")
        assert found.status == 200 and "Bob on B" in found.text and ">Follow</button>" in found.text
        actor_id = re.search(r'name="actor_id" value="(\d+)"', found.text).group(1)
        await alice.submit(f"/search?q={b.handle('bob')}", "/follow", {"actor_id": actor_id, "back": "/search"})
        await wait_until(lambda: _accepted(a, a.actor_uri("alice"), b.actor_uri("bob")), what="follow accepted")
        assert "Unfollow" in (await alice.get(f"/remote/{actor_id}")).text

        post = await posting.create_post(b.ctx, "bob", Draft(text="News from server B", visibility="followers"))
        await wait_until(lambda: a.count("SELECT count(*) FROM posts WHERE uri = ?", (post.uri,)),
                         what="bob's post delivered to a")
        home = await alice.get("/home")
        assert "News from server B" in home.text and f'href="/remote/{actor_id}"' in home.text
        # Its page, by our id, with a reply form; and bob's profile as seen from here.
        local_id = (await a.query("SELECT id FROM posts WHERE uri = ?", (post.uri,)))[0][0]
        assert f'href="/posts/{local_id}"' in home.text
        thread = await alice.get(f"/posts/{local_id}")
        assert thread.status == 200 and "News from server B" in thread.text and f"{b.handle('bob')} " in thread.text
        profile = await alice.get(f"/@bob@{b.domain}")
        assert profile.url.endswith(f"/remote/{actor_id}") and "News from server B" in profile.text
        # Not for the open web: a followers-only post does not exist for visitors; remote profiles
        # send them to sign in.
        anon = Browser(a.base)
        assert (await anon.get(f"/posts/{local_id}", follow=False)).status == 404
        assert (await anon.get(f"/remote/{actor_id}", follow=False)).status == 303
        await anon.close()
    finally:
        await alice.close()


async def _accepted(instance, follower_uri: str, followee_uri: str) -> bool:
    return await instance.follow_state(follower_uri, followee_uri) == "accepted"


async def test_search_errors_are_shown_plainly(instances):
    a = await instances("a")
    b = await instances("b")
    alice = await person(a, "alice")
    try:
        unknown = await alice.get(f"/search?q=@nobody@{b.domain}")
        assert unknown.status == 404 and f"{b.domain} has no account named nobody." in unknown.text
        unreachable = await alice.get("/search?q=@someone@127.0.0.1:9")
        assert unreachable.status == 404 and "We could not reach 127.0.0.1:9" in unreachable.text
        # No exception text: aiohttp's "Cannot connect to host 127.0.0.1:9 ssl:default [...]" means nothing to people.
        assert "Cannot connect" not in unreachable.text and "ssl:" not in unreachable.text
        nonsense = await alice.get("/search?q=@@@")
        assert nonsense.status == 400 and "Type an address like" in nonsense.text
        for page in (unknown, unreachable, nonsense):
            assert 'role="alert"' in page.text
    finally:
        await alice.close()


async def test_a_remote_reply_to_my_post_shows_in_notifications(instances):
    a, b = await instances("a"), await instances("b")
    alice = await person(a, "alice")
    await accounts.create_account(b.ctx, "bob")
    try:
        await alice.submit("/home", "/posts", {"text": "Anyone out there?", "visibility": "public", "back": "/home"})
        [(mine_uri, mine_id)] = await a.query("SELECT uri, id FROM posts")
        reply = await posting.create_post(b.ctx, "bob", Draft(text="Yes, over here on B", reply_to=mine_uri))
        await wait_until(lambda: a.count("SELECT count(*) FROM notifications WHERE kind = 'reply'"),
                         what="reply notification at a")
        notes = await alice.get("/notifications")
        assert "replied to you" in notes.text and "Yes, over here on B" in notes.text
        assert (await a.query("SELECT in_reply_to_uri FROM posts WHERE uri = ?", (reply.uri,)))[0][0] == mine_uri
        thread = await Browser(a.base).get(f"/@alice/{mine_id}")
        assert "Yes, over here on B" in thread.text
    finally:
        await alice.close()


@pytest.fixture
async def remote() -> AsyncIterator[FakeRemote]:
    remote = await FakeRemote.start("eve")
    yield remote
    await remote.stop()


async def test_remote_html_never_reaches_a_page_unescaped(instances, remote):
    a = await instances("a")
    alice = await person(a, "alice")
    # Eve's server is hostile: script in her name, bio, avatar address, post and content warning.
    document = remote.actor_document

    def hostile_document(name: str) -> dict:
        doc = document(name)
        doc["name"] = '<script>alert("name")</script><img src=x onerror=alert(1)>Eve'
        doc["summary"] = '<p onclick="alert(2)">bio<script>alert(3)</script><a href="javascript:alert(4)">x</a></p>'
        doc["icon"] = {"type": "Image", "url": "javascript:alert(5)"}
        doc["url"] = "javascript:alert(6)"
        return doc

    remote.actor_document = hostile_document
    try:
        found = await alice.get(f"/search?q=@eve@{remote.domain}")
        assert found.status == 200
        actor_id = re.search(r'name="actor_id" value="(\d+)"', found.text).group(1)
        await alice.submit("/search", "/follow", {"actor_id": actor_id, "back": "/search"})
        follow = await wait_until(lambda: _received_follow(remote), what="Follow at eve's server")
        status, _ = await remote.post(f"{a.base}/inbox", remote.activity("eve", "Accept", follow), as_user="eve")
        assert status in (200, 202)
        await wait_until(lambda: _accepted(a, a.actor_uri("alice"), remote.actor_uri("eve")), what="accepted")

        note = remote.note("eve", "hello", mention=a.actor_uri("alice"))
        note["content"] = ('<p onmouseover="alert(7)">Hello <script>alert(8)</script><b onclick=alert(9)>friend</b>'
                           '<img src=x onerror=alert(10)> #hostile</p>')
        note["summary"] = '<script>alert(11)</script>careful <i onclick="x">now</i>'
        note["tag"].append({"type": "Hashtag", "name": "#hostile", "href": f"{remote.base}/tags/hostile"})
        status, _ = await remote.post(f"{a.base}/inbox", remote.activity("eve", "Create", note), as_user="eve")
        assert status in (200, 202)
        await wait_until(lambda: a.count("SELECT count(*) FROM posts WHERE uri = ?", (note["id"],)),
                         what="eve's post stored")
        post_id = (await a.query("SELECT id FROM posts WHERE uri = ?", (note["id"],)))[0][0]
        await posting.create_post(a.ctx, "alice", Draft(text="@eve@" + remote.domain + " hi", reply_to=note["id"]))

        pages = ["/home", "/notifications", f"/posts/{post_id}", f"/remote/{actor_id}", "/tags/hostile",
                 f"/search?q=@eve@{remote.domain}", "/local", "/@alice"]
        for path in pages:
            page = await alice.get(path)
            assert page.status == 200, path
            assert active_html(page.text) == [], path
        home = await alice.get("/home")
        assert "Hello" in home.text and "friend" in home.text and "careful" in home.text
        assert "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;" in home.text  # her name, shown as text
    finally:
        await alice.close()


async def _received_follow(remote: FakeRemote) -> dict | None:
    for item in remote.received:
        if item.activity and item.activity.get("type") == "Follow":
            return item.activity
    return None


async def test_boost_button_is_not_offered_for_private_posts(instances):
    a = await instances("a")
    alice = await person(a, "alice")
    try:
        await alice.submit("/home", "/posts", {"text": "for followers", "visibility": "followers", "back": "/home"})
        [(post_id,)] = await a.query("SELECT id FROM posts")
        home = await alice.get("/home")
        assert f"/posts/{post_id}/like" in home.text and f"/posts/{post_id}/boost" not in home.text
        refused = await alice.submit("/home", f"/posts/{post_id}/boost", {"back": "/home"})
        assert "only public and unlisted posts can be boosted" in refused.text
        assert await a.count("SELECT count(*) FROM announces") == 0
    finally:
        await alice.close()



async def test_media_on_a_remote_post_is_listed_with_its_description_and_follows_edits_and_deletes(
        instances, remote):
    a = await instances("a")
    alice = await person(a, "alice")
    media = "https://media.eve.example"
    note = remote.note("eve", "look at this", mention=a.actor_uri("alice"))
    note["attachment"] = [
        # Mastodon's shape.
        {"type": "Document", "mediaType": "image/png", "url": f"{media}/cat.png",
         "name": "A cat <b>asleep</b> on a keyboard", "blurhash": "LEHV6nWB2yk8", "width": 640, "height": 480},
        # Misskey/Pleroma shapes: a list of Links, no description.
        {"type": "Video", "url": [{"type": "Link", "href": f"{media}/clip.mp4", "mediaType": "video/mp4"}]},
        # Never a link: another scheme, and something that is not media at all.
        {"type": "Document", "mediaType": "image/png", "url": "javascript:alert(1)", "name": "trap"},
        {"type": "PropertyValue", "name": "Website", "value": "https://eve.example"},
    ]
    try:
        status, _ = await remote.post(f"{a.base}/inbox", remote.activity("eve", "Create", note), as_user="eve")
        assert status == 202
        await wait_until(lambda: a.count("SELECT count(*) FROM posts WHERE uri = ?", (note["id"],)),
                         what="eve's post stored")
        post_id = (await a.query("SELECT id FROM posts WHERE uri = ?", (note["id"],)))[0][0]

        for path in (f"/posts/{post_id}", "/notifications"):
            page = await alice.get(path)
            assert page.status == 200 and active_html(page.text) == [], path
            links = re.findall(r'<a href="([^"]*)" rel="noopener noreferrer nofollow ugc">(\w+)</a>', page.text)
            assert links == [(f"{media}/clip.mp4", "Video")], path
            # The picture is shown from this server's media cache, never loaded from its origin.
            key = hashlib.sha256(f"{media}/cat.png".encode()).hexdigest()
            assert (f'<img src="/media/remote/{key}?size=small" alt="A cat &lt;b&gt;asleep&lt;/b&gt; on a keyboard"'
                    ' width="400" height="300"') in page.text  # the description, as text
            assert "(no description)" in page.text and "on media.eve.example" in page.text
            assert "trap" not in page.text and 'src="http' not in page.text

        # An edit replaces the media: one removed, the other described anew.
        note["attachment"] = [{"type": "Document", "mediaType": "video/mp4", "url": f"{media}/clip.mp4",
                               "name": "Now with a description"}]
        note["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
        status, _ = await remote.post(f"{a.base}/inbox", remote.activity("eve", "Update", note), as_user="eve")
        assert status == 202
        await wait_until(lambda: a.count("SELECT count(*) FROM post_attachments WHERE post_id = ? AND description"
                                         " = 'Now with a description'", (post_id,)), what="the edit applied")
        page = await alice.get(f"/posts/{post_id}")
        assert "cat.png" not in page.text and "Now with a description" in page.text

        # Deleted, the post takes its media with it.
        status, _ = await remote.post(f"{a.base}/inbox", remote.activity(
            "eve", "Delete", {"id": note["id"], "type": "Tombstone"}), as_user="eve")
        assert status == 202
        await wait_until(lambda: a.count("SELECT count(*) FROM posts WHERE id = ? AND deleted_at IS NOT NULL",
                                         (post_id,)), what="the delete applied")
        assert await a.count("SELECT count(*) FROM post_attachments") == 0
    finally:
        await alice.close()


def poll_results(page) -> list[tuple[str, str]]:
    return re.findall(r'<span class="choice">([^<]*)</span> <span class="muted">([^<]*)</span>', page.text)


async def test_voting_in_a_remote_poll_sends_the_choice_and_counts_follow_the_authors_updates(instances, remote):
    a = await instances("a")
    alice = await person(a, "alice")
    bob = await person(a, "bob")
    question = remote.note("eve", "Tea or coffee?", mention=a.actor_uri("alice"))
    question.update(type="Question", endTime="2099-12-01T10:00:00Z", votersCount=4, oneOf=[
        {"type": "Note", "name": "Tea <b>obviously</b>", "replies": {"type": "Collection", "totalItems": 3}},
        {"type": "Note", "name": "Coffee", "replies": {"type": "Collection", "totalItems": 1}}])
    try:
        status, _ = await remote.post(f"{a.base}/inbox", remote.activity("eve", "Create", question), as_user="eve")
        assert status == 202
        await wait_until(lambda: a.count("SELECT count(*) FROM posts WHERE uri = ?", (question["id"],)),
                         what="eve's poll stored")
        post_id = (await a.query("SELECT id FROM posts WHERE uri = ?", (question["id"],)))[0][0]
        path = f"/posts/{post_id}"
        page = await alice.get(path)
        assert active_html(page.text) == []
        assert re.findall(r'type="radio" name="choice" value="(\d)"> ([^<]*)</label>', page.text) == [
            ("0", "Tea &lt;b&gt;obviously&lt;/b&gt;"), ("1", "Coffee")]
        assert "4 people voted" in page.text and "ends 2099-12-01 10:00 UTC" in page.text

        voted = await alice.submit(path, f"{path}/vote", {"choice": "1", "back": path})
        assert "Your vote was sent." in voted.text
        assert poll_results(voted) == [("Tea &lt;b&gt;obviously&lt;/b&gt;", "60% (3 votes)"), ("Coffee", "40% (2 votes)")]
        assert "5 people voted" in voted.text and "your vote" in voted.text.split("Coffee", 1)[1][:120]
        vote = await wait_until(lambda: _vote_received(remote), what="the vote at eve's server")
        assert vote["actor"] == a.actor_uri("alice") and vote["to"] == [remote.actor_uri("eve")]
        assert {k: vote["object"][k] for k in ("type", "name", "inReplyTo", "attributedTo", "to")} == {
            "type": "Note", "name": "Coffee", "inReplyTo": question["id"], "attributedTo": a.actor_uri("alice"),
            "to": [remote.actor_uri("eve")]}
        again = await alice.post(f"{path}/vote", {"csrf_token": voted.csrf, "choice": "0", "back": path})
        assert "you have already voted in this poll" in again.text
        assert await a.count("SELECT count(*) FROM poll_votes") == 1

        # The poll closes with eve's server's counts: an Update that is not an edit.
        question["oneOf"][1]["replies"]["totalItems"] = 5
        question.update(votersCount=8, closed="2026-12-01T10:00:00Z")
        status, _ = await remote.post(f"{a.base}/inbox", remote.activity("eve", "Update", question), as_user="eve")
        assert status == 202
        await wait_until(lambda: a.count("SELECT count(*) FROM polls WHERE post_id = ? AND closed_at IS NOT NULL",
                                         (post_id,)), what="the poll's update applied")
        page = await bob.get(path)  # bob never voted: a closed poll shows results, no form
        assert [share for _, share in poll_results(page)] == ["38% (3 votes)", "62% (5 votes)"]
        assert 'name="choice"' not in page.text
        assert "8 people voted" in page.text and "closed 2026-12-01 10:00 UTC" in page.text
        late = await bob.post(f"{path}/vote", {"csrf_token": page.csrf, "choice": "0", "back": path})
        assert "this poll has ended" in late.text
    finally:
        await alice.close()
        await bob.close()


async def _vote_received(remote: FakeRemote) -> dict | None:
    for item in remote.received:
        activity = item.activity or {}
        if item.verified and activity.get("type") == "Create" and (activity.get("object") or {}).get("name"):
            return activity
    return None
