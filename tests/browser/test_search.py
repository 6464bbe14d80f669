"""Search in a real browser: a post's address on another server opens the post here; words find
the posts of people who let theirs be found, and one's own followers-only posts only for oneself;
query syntax typed into the box gives an ordinary page."""
from __future__ import annotations

import re
import secrets

from playwright.sync_api import Page, expect

from tests.browser.test_browser_flows import new_person, write_post

SEARCH_BOX = "Search for people, posts or #hashtags"


def search_for(page: Page, base: str, text: str) -> None:
    page.goto(f"{base}/search")
    page.get_by_label(SEARCH_BOX).fill(text)
    page.get_by_role("button", name="Find").click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()


def test_searching_a_post_address_from_another_server_opens_the_post_here(page: Page, servers):
    here, there = servers
    remote_user = "r" + secrets.token_hex(3)
    there.run("user", "create", remote_user, check=True)
    post_uri = there.run("post", remote_user, "Seen from afar: a heron at dawn", check=True).stdout.strip()
    new_person(page, here)
    # The address a person copies from the other server's page, not the id.
    search_for(page, here.base, f"{there.base}/@{remote_user}/{post_uri.rsplit('/', 1)[1]}")
    expect(page).to_have_url(re.compile(rf"^{re.escape(here.base)}/posts/\d+$"))
    expect(page.get_by_text("Seen from afar: a heron at dawn")).to_be_visible()
    # It is ours to act on now: the page offers a reply form.
    expect(page.get_by_label("Your reply")).to_be_visible()


def test_words_find_posts_of_people_who_opted_in_and_ones_own_followers_only_posts(page: Page, servers):
    here, _ = servers
    word = "kestrel" + secrets.token_hex(3)
    # One person lets their public posts be found, another does not (the default).
    new_person(page, here)
    page.goto(f"{here.base}/settings/profile")
    expect(page.get_by_label("Let my public posts be found in search")).not_to_be_checked()
    page.get_by_label("Let my public posts be found in search").check()
    page.get_by_role("button", name="Save search setting").click()
    expect(page.get_by_text("Your public posts can now be found in search.")).to_be_visible()
    expect(page.get_by_label("Let my public posts be found in search")).to_be_checked()
    page.goto(f"{here.base}/home")
    write_post(page, f"Findable {word} over the field")
    sign_out(page)
    new_person(page, here)
    write_post(page, f"Unfindable {word} in the hedge")
    page.get_by_label("Your post").fill(f"Quiet {word} for my followers")
    page.get_by_label("Who can see it").select_option("followers")
    page.get_by_role("button", name="Post", exact=True).click()
    # The author finds their own posts, the followers-only one included.
    search_for(page, here.base, word)
    expect(page.get_by_text(f"Quiet {word} for my followers")).to_be_visible()
    expect(page.get_by_text(f"Unfindable {word} in the hedge")).to_be_visible()
    expect(page.get_by_text(f"Findable {word} over the field")).to_be_visible()
    sign_out(page)
    # Someone else finds only the post of the person who opted in.
    new_person(page, here)
    search_for(page, here.base, word)
    expect(page.get_by_text(f"Findable {word} over the field")).to_be_visible()
    expect(page.get_by_text(f"Unfindable {word} in the hedge")).to_have_count(0)
    expect(page.get_by_text(f"Quiet {word} for my followers")).to_have_count(0)


def test_query_syntax_in_the_search_box_gives_an_ordinary_result_page(page: Page, servers):
    here, _ = servers
    new_person(page, here)
    write_post(page, "The otter swam NEAR the weir")
    for text in ['"', "NEAR(", 'otter"', "NEAR(otter weir)", "otter AND OR"]:
        search_for(page, here.base, text)
        expect(page.get_by_role("heading", name="Search", exact=True)).to_be_visible()
        expect(page.get_by_label(SEARCH_BOX)).to_have_value(text)
    search_for(page, here.base, 'otter" NEAR(')
    expect(page.get_by_text("The otter swam NEAR the weir")).to_be_visible()
