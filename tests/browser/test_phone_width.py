"""Pages fit a phone's screen (390 px) also when there is something to announce: the unread badge
in the sideways-scrolling navigation must not widen the page (found in the failure screenshots)."""
from __future__ import annotations

import secrets

from playwright.sync_api import Browser, expect

from tests.browser.test_browser_flows import new_person

PHONE = {"width": 390, "height": 844}


def test_unread_notifications_do_not_make_a_phone_page_scroll_sideways(browser: Browser, servers):
    here, _ = servers
    page = browser.new_page(viewport=PHONE)
    try:
        username = new_person(page, here)
        follower = "f" + secrets.token_hex(3)
        here.run("user", "create", follower, check=True)
        here.run("follow", follower, here.handle(username), check=True)
        for path in ("/home", "/settings/data", "/settings/consent", f"/@{username}"):
            page.goto(f"{here.base}{path}")
            expect(page.locator("header.site nav .badge")).to_have_text("1 new")
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
    finally:
        page.close()
