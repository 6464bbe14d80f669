"""Issue 16's everyday pages in Chromium without JavaScript (they must work as plain forms and
links): bookmark and pin from a post, the federated timeline with a remote server's post,
followers/following lists from the profile, and a block undone from the blocked list."""
from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_browser_flows import PASSWORD, write_post
from tests.e2e.processes import wait_for


@pytest.fixture
def page_without_js(browser: Browser):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def _sign_up(page: Page, base: str) -> str:
    username = "s" + secrets.token_hex(4)
    page.goto(f"{base}/auth/sign_up")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=False).first.fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/home$"))
    return username


def test_bookmarks_pins_lists_and_the_federated_timeline_work_without_javascript(page_without_js: Page, servers):
    page = page_without_js
    here, there = servers
    remote_user = "r" + secrets.token_hex(3)
    there.run("user", "create", remote_user, check=True)
    username = _sign_up(page, here.base)

    write_post(page, "Keep this one for later")
    write_post(page, "The post I pin")
    keep = page.locator("article.post", has_text="Keep this one for later")
    keep.get_by_role("button", name="Bookmark").click()
    expect(page.locator("article.post", has_text="Keep this one for later")
           .get_by_role("button", name="Bookmarked")).to_be_visible()
    page.get_by_role("link", name="Bookmarks").click()
    expect(page.get_by_role("heading", name="Bookmarks")).to_be_visible()
    expect(page.get_by_text("Keep this one for later")).to_be_visible()
    expect(page.get_by_text("The post I pin")).to_have_count(0)

    page.goto(f"{here.base}/@{username}")
    page.locator("article.post", has_text="The post I pin").get_by_role("button", name="Pin to profile").click()
    pinned = page.locator("section", has=page.get_by_role("heading", name="Pinned posts"))
    expect(pinned.get_by_text("The post I pin")).to_be_visible()
    expect(pinned.locator("article.post p.pinned")).to_contain_text("Pinned")

    # Follow the remote person; their public post shows on the federated timeline.
    page.goto(f"{here.base}/search")
    page.get_by_label("Search for people, posts or #hashtags").fill(there.handle(remote_user))
    page.get_by_role("button", name="Find").click()
    page.get_by_role("button", name="Follow", exact=True).click()
    wait_for(lambda: here.value(
        "SELECT f.state FROM follows f JOIN actors a ON a.id = f.followee_id WHERE a.uri = ?",
        (there.actor_uri(remote_user),)) == "accepted", what="the remote server to accept the follow")
    post_url = there.run("post", remote_user, "Hello from the other server", check=True).stdout.strip()
    wait_for(lambda: here.value("SELECT count(*) FROM posts WHERE uri = ?", (post_url,)) == 1,
             what="the remote post to arrive")
    page.get_by_role("link", name="Federated").click()
    expect(page.get_by_role("heading", name="Federated timeline")).to_be_visible()
    expect(page.get_by_text("Hello from the other server")).to_be_visible()
    expect(page.get_by_text("The post I pin")).to_have_count(0)  # our own server's posts are on Local

    # Whom I follow, from the profile's count.
    page.goto(f"{here.base}/@{username}")
    page.get_by_role("link", name="1 following").click()
    expect(page).to_have_url(re.compile(rf"/@{username}/following$"))
    expect(page.get_by_text(f"@{remote_user}@{there.domain}")).to_be_visible()

    # Block them from their profile, then undo it from the blocked list in settings.
    page.get_by_role("link", name=re.compile(remote_user, re.I)).first.click()
    page.get_by_role("button", name="Block", exact=True).click()
    page.get_by_role("button", name=re.compile(r"^Block @")).click()
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Blocked accounts").click()
    expect(page.get_by_text(f"@{remote_user}@{there.domain}")).to_be_visible()
    page.get_by_role("button", name=f"Unblock @{remote_user}@{there.domain}").click()
    expect(page.get_by_text("You have not blocked anyone")).to_be_visible()
