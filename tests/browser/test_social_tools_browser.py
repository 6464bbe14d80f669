"""Keyword filters and lists in a real Chromium against a real `fedserver serve`: what a person
sees after making a filter or a list through the pages."""
from __future__ import annotations

import re
import secrets

from playwright.sync_api import Page, expect

from tests.browser.test_browser_flows import new_person
from tests.e2e.processes import ServerProcess


def local_account_with_posts(server: ServerProcess, follower: str, *texts: str) -> str:
    """A new local account that `follower` follows, having written `texts`."""
    name = "a" + secrets.token_hex(4)
    server.run("user", "create", name, check=True)
    server.run("follow", follower, server.handle(name), check=True)
    for text in texts:
        server.run("post", name, text, check=True)
    return name


def test_a_filter_hides_a_post_and_a_warning_folds_one(page: Page, servers):
    here, _ = servers
    username = new_person(page, here)
    local_account_with_posts(here, username, "Durian season is here", "Spoilers about the finale",
                             "A perfectly ordinary post")
    page.goto(f"{here.base}/home")
    expect(page.get_by_text("Durian season is here")).to_be_visible()

    page.goto(f"{here.base}/filters/new")
    page.get_by_role("textbox", name=re.compile(r"^Title")).fill("Fruit")
    page.get_by_label("Keyword 1", exact=True).fill("durian")
    page.get_by_label("Hide the post completely").check()
    page.get_by_role("button", name="Save filter").click()
    expect(page).to_have_url(re.compile(r"/filters$"))

    page.goto(f"{here.base}/filters/new")
    page.get_by_role("textbox", name=re.compile(r"^Title")).fill("Finale")
    page.get_by_label("Keyword 1", exact=True).fill("spoilers")
    page.get_by_role("button", name="Save filter").click()  # "warn" is the default action

    page.goto(f"{here.base}/home")
    expect(page.get_by_text("A perfectly ordinary post")).to_be_visible()
    expect(page.get_by_text("Durian season is here")).to_have_count(0)
    # The warned post is folded behind its filter's title until opened (no JavaScript needed).
    folded = page.get_by_text("Spoilers about the finale")
    expect(page.get_by_text("Filtered: Finale")).to_be_visible()
    expect(folded).to_be_hidden()
    page.get_by_text("Filtered: Finale").click()
    expect(folded).to_be_visible()


def test_a_list_timeline_shows_only_its_accounts(page: Page, servers):
    here, _ = servers
    username = new_person(page, here)
    member = local_account_with_posts(here, username, "Posted by the list member")
    local_account_with_posts(here, username, "Posted by someone off the list")

    page.goto(f"{here.base}/lists")
    page.get_by_role("textbox", name=re.compile(r"^Title")).fill("Neighbours")
    page.get_by_role("button", name="Create list").click()
    expect(page).to_have_url(re.compile(r"/lists/\d+/edit$"))
    page.get_by_label("Add an account you follow").select_option(label=f"{member} ({here.handle(member)})")
    page.get_by_role("button", name="Add to list").click()
    expect(page.get_by_role("region", name="Accounts on this list").get_by_role("link", name=member)).to_be_visible()

    page.get_by_role("link", name="Open the list").click()
    expect(page.get_by_role("heading", name="Neighbours")).to_be_visible()
    expect(page.get_by_text("Posted by the list member")).to_be_visible()
    expect(page.get_by_text("Posted by someone off the list")).to_have_count(0)
    # Home still shows both.
    page.goto(f"{here.base}/home")
    expect(page.get_by_text("Posted by the list member")).to_be_visible()
    expect(page.get_by_text("Posted by someone off the list")).to_be_visible()
