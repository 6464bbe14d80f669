"""What a person does in a browser, end to end: a real server, a remote server, real Chromium."""
from __future__ import annotations

import asyncio
import io
import re
import secrets
import threading
from contextlib import contextmanager
from typing import Awaitable, Callable, Iterator, TypeVar

from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.e2e.fake_remote import FakeRemote
from tests.e2e.processes import ServerProcess, wait_for

T = TypeVar("T")

PASSWORD = "correct horse battery"


def sign_up(page: Page, server: ServerProcess, username: str) -> None:
    page.goto(f"{server.base}/auth/sign_up")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=False).first.fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/home$"))


def sign_in(page: Page, server: ServerProcess, username: str) -> None:
    page.goto(f"{server.base}/auth/sign_in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def follow_and_wait(page: Page, reader_server: ServerProcess, author_server: ServerProcess, author: str) -> None:
    """The signed-in reader finds the author from Search and follows; returns once the author's
    server accepted."""
    page.goto(f"{reader_server.base}/search")
    page.get_by_label("Search for people, posts or #hashtags").fill(author_server.handle(author))
    page.get_by_role("button", name="Find").click()
    page.get_by_role("button", name="Follow", exact=True).click()
    wait_for(lambda: reader_server.value(
        "SELECT f.state FROM follows f JOIN actors x ON x.id = f.followee_id WHERE x.uri = ?",
        (author_server.actor_uri(author),)) == "accepted", what="the author's server to accept the follow")


def new_person(page: Page, server: ServerProcess) -> str:
    """Sign up a fresh person in this page (the plugin's page, so failures keep a screenshot)."""
    username = "p" + secrets.token_hex(4)
    sign_up(page, server, username)
    return username


def write_post(page: Page, text: str) -> None:
    page.get_by_label("Your post").fill(text)
    page.get_by_role("button", name="Post", exact=True).click()


def test_chromium_is_the_expected_debian_major_version(browser: Browser):
    # Playwright 1.65 is built for Chromium 159 and drives Debian's 156; a big jump shows up here first.
    assert 150 <= int(browser.version.split(".")[0]) < 170, browser.version


def test_sign_up_post_and_see_the_post_on_the_profile(page: Page, servers):
    here, _ = servers
    username = new_person(page, here)
    write_post(page, "Hello from a real browser")
    expect(page.get_by_text("Hello from a real browser")).to_be_visible()
    page.goto(f"{here.base}/@{username}")
    expect(page.get_by_text("Hello from a real browser")).to_be_visible()
    # Signing out and in again works with the same password.
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{here.base}/auth/sign_in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/home$"))


def test_follow_a_remote_account_and_see_its_posts_and_replies(page: Page, servers):
    here, there = servers
    remote_user = "r" + secrets.token_hex(3)
    there.run("user", "create", remote_user, check=True)
    username = new_person(page, here)

    page.goto(f"{here.base}/search")
    page.get_by_label("Search for people, posts or #hashtags").fill(there.handle(remote_user))
    page.get_by_role("button", name="Find").click()
    page.get_by_role("button", name="Follow", exact=True).click()
    wait_for(lambda: here.value(
        "SELECT f.state FROM follows f JOIN actors a ON a.id = f.followee_id WHERE a.uri = ?",
        (there.actor_uri(remote_user),)) == "accepted", what="the remote server to accept the follow")

    post_url = there.run("post", remote_user, "News from the other server", check=True).stdout.strip()
    wait_for(lambda: here.value("SELECT count(*) FROM posts WHERE uri = ?", (post_url,)) == 1,
             what="the remote post to arrive")
    page.goto(f"{here.base}/home")
    expect(page.get_by_text("News from the other server")).to_be_visible()

    # A reply from the remote person to our post becomes a notification.
    write_post(page, "My own first post")
    mine = wait_for(lambda: here.value(
        "SELECT p.uri FROM posts p JOIN actors a ON a.id = p.actor_id WHERE a.username = ? ORDER BY p.id DESC",
        (username,)), what="our post to be stored")
    there.run("post", remote_user, "Nice first post!", "--reply-to", mine, check=True)
    wait_for(lambda: here.value("SELECT count(*) FROM notifications n JOIN actors a ON a.id = n.recipient_id"
                                " WHERE a.username = ? AND n.kind = 'reply'", (username,)) == 1,
             what="the reply notification")
    page.goto(f"{here.base}/notifications")
    expect(page.get_by_text("Nice first post!")).to_be_visible()


def test_turning_consent_on_and_off_changes_the_corpus_count(page: Page, servers):
    here, _ = servers
    new_person(page, here)
    write_post(page, "A public thought")
    write_post(page, "Another public thought")
    page.goto(f"{here.base}/settings/consent")
    expect(page.locator("#corpus-count")).to_have_text("0")

    page.get_by_label("Yes, my posts may be used to train AI models").check()
    page.get_by_label("CC-BY-4.0").check()
    page.get_by_label("Also my earlier public posts").check()
    page.get_by_role("button", name="Save my choice").click()
    expect(page.locator("#consent-status")).to_contain_text("Yes")
    expect(page.locator("#corpus-count")).to_have_text("2")
    expect(page.get_by_role("cell", name="allow")).to_be_visible()

    page.get_by_label("No", exact=True).check()
    page.get_by_role("button", name="Save my choice").click()
    expect(page.locator("#corpus-count")).to_have_text("0")
    expect(page.get_by_role("cell", name="deny")).to_be_visible()


def test_the_consent_receipt_downloads_and_verifies_with_the_instance_actor_key(page: Page, servers, tmp_path):
    here, _ = servers
    username = new_person(page, here)
    page.goto(f"{here.base}/settings/consent")
    page.get_by_label("Yes, my posts may be used to train AI models").check()
    page.get_by_role("button", name="Save my choice").click()
    expect(page.locator("#consent-status")).to_contain_text("Yes")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download your consent receipt").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name.startswith(f"consent-receipt-{username}-")
    actor = tmp_path / "actor.json"
    actor.write_text(page.request.get(f"{here.base}/actor", headers={"Accept": "application/activity+json"}).text(),
                     encoding="utf-8")
    result = here.run("consent", "verify-receipt", str(path), "--public-key", str(actor))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"/users/{username} train-ai=allow" in result.stdout


def test_a_form_without_its_csrf_token_is_rejected_and_changes_nothing(page: Page, servers):
    here, _ = servers
    new_person(page, here)
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    write_post(page, "This must not be stored")
    expect(page.get_by_text("did not come from this site")).to_be_visible()
    assert here.value("SELECT count(*) FROM posts WHERE content_text LIKE '%must not be stored%'") == 0


@contextmanager
def fake_remote_in_thread(*names: str, kind: type[FakeRemote] = FakeRemote,
                          ) -> Iterator[tuple[FakeRemote, Callable[[Awaitable[T]], T]]]:
    """A FakeRemote (a real server that signs; or a subclass of it) on its own event loop in a
    thread, for these synchronous tests; yields it and a function that runs one of its coroutines
    to completion."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coroutine: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)

    remote = run(kind.start(*names))
    try:
        yield remote, run
    finally:
        run(remote.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_media_on_a_remote_post_is_shown_from_here_and_sensitive_media_waits_for_a_click(page: Page, servers):
    here, _ = servers
    username = new_person(page, here)
    with fake_remote_in_thread("eve") as (remote, run):
        note = remote.note("eve", "Two pictures", mention=here.actor_uri(username))
        note["sensitive"] = True
        note["attachment"] = [{"type": "Document", "mediaType": "image/png", "url": "https://media.eve.example/1.png",
                               "name": "A heron standing in the reeds"}]
        status, _ = run(remote.post(f"{here.base}/inbox", remote.activity("eve", "Create", note), as_user="eve"))
        assert status == 202
        post_id = wait_for(lambda: here.value("SELECT id FROM posts WHERE uri = ?", (note["id"],)),
                           what="eve's post to be stored")

    page.goto(f"{here.base}/posts/{post_id}")
    expect(page.get_by_text("Two pictures")).to_be_visible()
    # Shown from this server's media cache (here the origin is unreachable: the description stays).
    media = page.get_by_role("img", name="A heron standing in the reeds")
    expect(media).to_be_hidden()  # marked sensitive: behind a click
    page.get_by_text("Sensitive media").click()
    expect(media).to_be_visible()
    expect(media).to_have_attribute("src", re.compile(r"^/media/remote/[0-9a-f]{64}\?size=small$"))


def test_vote_in_a_remote_poll(page: Page, servers):
    here, _ = servers
    username = new_person(page, here)
    with fake_remote_in_thread("eve") as (remote, run):
        question = remote.note("eve", "Which season?", mention=here.actor_uri(username))
        question.update(type="Question", endTime="2099-01-01T00:00:00Z", anyOf=[
            {"type": "Note", "name": name, "replies": {"type": "Collection", "totalItems": 0}}
            for name in ("Spring", "Autumn")])
        status, _ = run(remote.post(f"{here.base}/inbox", remote.activity("eve", "Create", question), as_user="eve"))
        assert status == 202
        post_id = wait_for(lambda: here.value("SELECT id FROM posts WHERE uri = ?", (question["id"],)),
                           what="eve's poll to be stored")
        page.goto(f"{here.base}/posts/{post_id}")
        page.get_by_label("Spring").check()
        page.get_by_label("Autumn").check()
        page.get_by_role("button", name="Vote").click()
        expect(page.get_by_text("Your vote was sent.")).to_be_visible()
        expect(page.locator("strong.my-vote")).to_have_count(2)
        wait_for(lambda: sum(1 for item in remote.received if item.verified and (item.activity or {})
                             .get("object", {}).get("inReplyTo") == question["id"]) == 2,
                 what="both choices at eve's server")


def test_post_a_picture_with_a_description(page: Page, servers):
    here, _ = servers
    new_person(page, here)
    picture = io.BytesIO()
    Image.new("RGB", (32, 32), (250, 200, 0)).save(picture, format="PNG")
    page.get_by_label("Your post").fill("A yellow square")
    page.get_by_text("Add pictures").click()
    page.get_by_label("Picture 1", exact=True).set_input_files(
        files=[{"name": "square.png", "mimeType": "image/png", "buffer": picture.getvalue()}])
    page.get_by_label("Description of picture 1").fill("A plain yellow square")
    page.get_by_role("button", name="Post", exact=True).click()
    expect(page.get_by_text("Your post is published.")).to_be_visible()
    picture = page.get_by_role("img", name="A plain yellow square").first
    expect(picture).to_be_visible()
    # The thumbnail in the card; the original (a PNG, as uploaded) one click away.
    expect(picture).to_have_attribute("src", re.compile(r"^/media/[0-9a-f]{32}\.webp$"))
    expect(page.get_by_role("link", name="A plain yellow square").first).to_have_attribute(
        "href", re.compile(r"^/media/[0-9a-f]{32}\.png$"))


def test_pages_work_under_the_content_security_policy_without_violations(page: Page, servers):
    here, _ = servers
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    username = new_person(page, here)
    write_post(page, "Posted under a strict policy")
    expect(page.get_by_text("Your post is published.")).to_be_visible()
    for path in ("/home", "/local", f"/@{username}", "/notifications", "/search", "/settings/profile",
                 "/settings/consent", "/settings/data", "/about/consent"):
        page.goto(f"{here.base}{path}")
        expect(page.locator("main")).to_be_visible()
    assert violations == []


def test_signing_in_from_a_link_with_a_hostile_next_stays_on_this_site(page: Page, servers):
    here, _ = servers
    username = new_person(page, here)
    page.get_by_role("button", name="Sign out").click()
    # A tab inside the path: Chromium drops it, so "/\t/evil.example" would mean //evil.example.
    page.goto(f"{here.base}/auth/sign_in?next=/%09/evil.example")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{here.base}/home")
