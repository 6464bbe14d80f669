"""A person's first day, as they see it in Chromium at 1280 px and at 390 px: a first run that opens,
the side column and the phone layout, likes and follows that keep the page where it was (with and
without JavaScript), times and replies in words, "N new posts", one styled 404 and a favicon.

Screenshots of the main pages go to $FEDSERVER_SCREENSHOTS when it is set (to look at the design)."""
from __future__ import annotations

import os
import re
import secrets
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_browser_flows import PASSWORD, new_person
from tests.e2e.processes import ServerProcess, wait_for

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def shot(page: Page, name: str) -> None:
    folder = os.environ.get("FEDSERVER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


@pytest.fixture(scope="module")
def writer(servers) -> str:
    """Someone on the same server with a dozen posts (one a reply to another), to follow."""
    here, _ = servers
    name = "w" + secrets.token_hex(3)
    here.run("user", "create", name, check=True)
    first = here.run("post", name, "The first post of the day, about bread", check=True).stdout.strip()
    for number in range(2, 12):
        here.run("post", name, f"Post number {number}: a line about the weather and the river", check=True)
    here.run("post", name, "Agreed with myself about bread", "--reply-to", first, check=True)
    return name


def follow_from_search(page: Page, server: ServerProcess, name: str) -> None:
    page.goto(f"{server.base}/search")
    page.get_by_label("Search for people, posts or #hashtags").fill(f"@{name}")
    page.get_by_role("button", name="Find").click()
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Follow", exact=True).click()
    expect(page.get_by_role("button", name="Unfollow")).to_be_visible()
    assert page.evaluate("window.notReloaded === true"), "following reloaded the page"


def like_button(page: Page, post_id: int):
    return page.locator(f"#post-{post_id} .actions button.like")


def lowest_post_id(server: ServerProcess, name: str) -> int:
    return server.value("SELECT min(p.id) FROM posts p JOIN actors a ON a.id = p.actor_id WHERE a.username = ?"
                        " AND a.is_local = 1 AND p.in_reply_to_uri IS NULL", (name,))


def test_a_first_day_on_a_desktop(browser: Browser, servers, writer):
    here, _ = servers
    page = browser.new_page(viewport=DESKTOP, timezone_id="Asia/Tokyo")
    try:
        new_person(page, here)
        # An empty home says what to do.
        expect(page.get_by_text("No posts yet: follow someone from Search.")).to_be_visible()
        shot(page, "desktop-home-empty")
        # The side column: navigation, one item a line, and compose, beside the timeline.
        nav, compose, main = page.locator("header.site nav"), page.locator("form.compose"), page.locator("main")
        expect(compose).to_be_visible()
        assert compose.bounding_box()["x"] + compose.bounding_box()["width"] <= main.bounding_box()["x"]
        assert nav.bounding_box()["x"] + nav.bounding_box()["width"] <= main.bounding_box()["x"]
        heights = {round(link.bounding_box()["height"]) for link in nav.locator("a").all()}
        assert max(heights) < 48, heights  # no label wraps onto a second line

        follow_from_search(page, here, writer)
        page.get_by_role("link", name="Home", exact=True).click()
        expect(page.get_by_text("Post number 11")).to_be_visible()
        # Times in words, the exact time in a tooltip; replies say whom they answer.
        first_time = page.locator("article.post time").first
        expect(first_time).to_have_text(re.compile(r"^(now|\d+ min)$"))
        # The tooltip is redrawn in the viewer's zone (Tokyo here; the server writes UTC).
        expect(first_time).to_have_attribute("title", re.compile(r"\d{4}"))
        expect(first_time).not_to_have_attribute("title", re.compile("UTC"))
        expect(page.get_by_role("link", name=f"In reply to @{writer}@{here.domain}")).to_be_visible()
        shot(page, "desktop-home")

        # Like a post far down: no reload, the page stays where it was, the button says so.
        post_id = lowest_post_id(here, writer)
        like_button(page, post_id).scroll_into_view_if_needed()
        page.mouse.wheel(0, 120)
        page.wait_for_timeout(200)
        before = page.evaluate("window.scrollY")
        assert before > 300
        page.evaluate("window.notReloaded = true")
        like_button(page, post_id).click()
        expect(like_button(page, post_id)).to_have_text(re.compile("Liked"))
        expect(like_button(page, post_id)).to_have_attribute("aria-pressed", "true")
        assert page.evaluate("window.notReloaded === true") and page.evaluate("window.scrollY") == before
        wait_for(lambda: here.value("SELECT count(*) FROM likes WHERE post_id = ?", (post_id,)) == 1,
                 what="the like to be stored")
        boost = page.locator(f"#post-{post_id} .actions button.boost")
        boost.click()
        expect(boost).to_have_text(re.compile("Unboost"))
        assert page.evaluate("window.scrollY") == before

        # New posts are announced quietly, not pushed into the page.
        page.evaluate("window.scrollTo(0, 0)")
        here.run("post", writer, "Something new just now", check=True)
        page.evaluate("window.dispatchEvent(new Event('focus'))")
        notice = page.get_by_role("link", name="1 new post")
        expect(notice).to_be_visible()
        expect(page.get_by_text("Something new just now")).to_have_count(0)
        notice.click()
        expect(page.get_by_text("Something new just now")).to_be_visible()
    finally:
        page.close()


def test_a_first_day_on_a_phone(browser: Browser, servers, writer):
    here, _ = servers
    page = browser.new_page(viewport=PHONE)
    try:
        new_person(page, here)
        follow_from_search(page, here, writer)
        page.goto(f"{here.base}/home")
        # A compact navigation: one row; compose waits behind a button; the first post is on screen.
        nav = page.locator("header.site nav")
        assert nav.bounding_box()["height"] < 60
        expect(page.locator("form.compose")).to_be_hidden()
        first = page.locator("article.post").first
        box = first.bounding_box()
        assert box["y"] + min(box["height"], 120) <= PHONE["height"], box
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shot(page, "phone-home")
        page.get_by_role("link", name="New post").click()
        page.get_by_label("Your post").fill("Written on a phone")
        page.get_by_role("button", name="Post", exact=True).click()
        expect(page).to_have_url(re.compile(r"/home$"))
        expect(page.get_by_text("Written on a phone")).to_be_visible()
        for path in ("/local", "/search", "/notifications", "/settings/profile"):
            page.goto(f"{here.base}{path}")
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
    finally:
        page.close()


def test_the_admin_page_fits_a_phone(browser: Browser, servers):
    here, _ = servers
    name = "a" + secrets.token_hex(3)
    password = here.directory / f"{name}.password"
    password.write_text(PASSWORD, encoding="utf-8")
    here.run("user", "create", name, "--admin", "--password-file", str(password), check=True)
    # Every table of the page with rows in it: accounts with their buttons, a long domain block, invites.
    for other in ("longer_name_of_someone", "another_person_here"):
        here.run("user", "create", other + secrets.token_hex(2), check=True)
    here.run("domain-block", "add", f"spam-{secrets.token_hex(3)}.a-rather-long-domain-name.example",
             "--reason", "Sends a great deal of unwanted advertising to everyone here", check=True)
    here.run("invite", "create", check=True)
    page = browser.new_page(viewport=PHONE)
    try:
        page.goto(f"{here.base}/auth/sign_in")
        page.get_by_label("Username").fill(name)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"{here.base}/admin")
        expect(page.locator("main h1")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # The account actions are reachable without scrolling sideways, inside the table or out.
        for button in page.locator("#accounts button").all():
            box = button.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        shot(page, "phone-admin")
        page.locator("#accounts").scroll_into_view_if_needed()
        shot(page, "phone-admin-accounts")
    finally:
        page.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_without_javascript_a_like_lands_back_on_the_post(browser: Browser, servers, writer, viewport):
    here, _ = servers
    context = browser.new_context(viewport=viewport, java_script_enabled=False)
    page = context.new_page()
    try:
        new_person(page, here)
        page.goto(f"{here.base}/search?q=@{writer}")
        page.get_by_role("button", name="Follow", exact=True).click()
        page.goto(f"{here.base}/home")
        post_id = lowest_post_id(here, writer)
        like_button(page, post_id).scroll_into_view_if_needed()
        like_button(page, post_id).click()
        expect(page).to_have_url(re.compile(rf"/home#post-{post_id}$"))
        expect(like_button(page, post_id)).to_have_text(re.compile("Liked"))
        # The page opened at the post, not at the top.
        assert page.evaluate("window.scrollY") > 300
        expect(like_button(page, post_id)).to_be_in_viewport()
    finally:
        context.close()


def test_every_missing_page_gets_the_same_styled_404_and_there_is_a_favicon(page: Page, servers):
    here, _ = servers
    for path in ("/static/nonexistent", "/@nobody-here", "/no/such/page", "/posts/999999999"):
        response = page.goto(f"{here.base}{path}")
        assert response is not None and response.status == 404, path
        expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        # Styled: the stylesheet applied (the page background is not the browser's white).
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") != "rgba(0, 0, 0, 0)"
    shot(page, "desktop-404")
    with urllib.request.urlopen(f"{here.base}/favicon.ico", timeout=10) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "image/x-icon"
        assert response.read(4) == b"\x00\x00\x01\x00"  # an ICO file


def test_serve_on_a_fresh_config_prints_an_http_url_that_opens_in_the_browser(page: Page, tmp_path: Path):
    server = ServerProcess(tmp_path / "fresh")
    try:
        server.start("--port", str(server.port))
        urls = re.findall(r"\b[a-z]+://\S+", server.stdout())
        assert urls == [f"http://localhost:{server.port}/"], server.stdout()
        response = page.goto(urls[0])
        assert response is not None and response.status == 200
        expect(page.get_by_role("heading", level=1)).to_have_text("fedserver")
        shot(page, "desktop-landing")
    finally:
        server.terminate()
