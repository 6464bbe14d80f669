"""Remote pictures and avatars seen in Chromium: shown inline from the reader's own server (the
media cache), described, sized, and without a single request of the page going to the server the
picture came from."""
from __future__ import annotations

import io
import re
import secrets

from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_browser_flows import follow_and_wait, sign_in, sign_up
from tests.e2e.processes import wait_for


def png(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def test_a_remote_picture_avatar_and_header_show_from_the_readers_own_server(page: Page, browser: Browser, two_servers):
    a, b = two_servers
    author = "a" + secrets.token_hex(3)
    # On a: the author sets an avatar and posts a described picture.
    a_page = browser.new_page()
    try:
        sign_up(a_page, a, author)
        a_page.goto(f"{a.base}/settings/profile")
        a_page.get_by_label("New picture").set_input_files(
            files=[{"name": "me.png", "mimeType": "image/png", "buffer": png((120, 120), (200, 40, 90))}])
        a_page.get_by_role("button", name="Upload picture").click()
        expect(a_page.get_by_text("Your picture was updated.")).to_be_visible()
        a_page.get_by_label("New header picture").set_input_files(
            files=[{"name": "header.png", "mimeType": "image/png", "buffer": png((1500, 500), (20, 60, 120))}])
        a_page.get_by_role("button", name="Upload header picture").click()
        expect(a_page.get_by_text("Your header picture was updated.")).to_be_visible()
    finally:
        a_page.close()

    # On b: the reader follows the author.
    reader = "b" + secrets.token_hex(3)
    sign_up(page, b, reader)
    follow_and_wait(page, b, a, author)

    a_page = browser.new_page()
    try:
        sign_in(a_page, a, author)
        a_page.goto(f"{a.base}/home")
        a_page.get_by_label("Your post").fill("A sunset over the bay")
        a_page.get_by_text("Add pictures").click()
        a_page.get_by_label("Picture 1", exact=True).set_input_files(
            files=[{"name": "sunset.png", "mimeType": "image/png", "buffer": png((800, 600), (250, 120, 30))}])
        a_page.get_by_label("Description of picture 1").fill("An orange sky above dark water")
        a_page.get_by_role("button", name="Post", exact=True).click()
        expect(a_page.get_by_text("Your post is published.")).to_be_visible()
    finally:
        a_page.close()

    # The post arrives at b, and b's media cache fetches its picture and the author's avatar.
    wait_for(lambda: b.value("SELECT count(*) FROM remote_media WHERE purpose = 'attachment' AND state = 'cached'")
             == 1, what="b to cache the picture", timeout=30)

    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{b.base}/home")
    picture = page.get_by_role("img", name="An orange sky above dark water")
    expect(picture).to_be_visible()
    expect(picture).to_have_attribute("width", "400")
    expect(picture).to_have_attribute("height", "300")
    avatar = page.locator("article.post img.avatar").first
    expect(avatar).to_be_visible()
    page.wait_for_load_state("load")
    images = page.evaluate("Array.from(document.images, i => ({src: i.src, alt: i.alt, w: i.naturalWidth}))")
    shown = [image for image in images if image["alt"] == "An orange sky above dark water"]
    assert shown and shown[0]["src"].startswith(f"{b.base}/media/") and shown[0]["w"] == 400
    avatars = [image for image in images if image["alt"] == "" and "/media/" in image["src"]]
    assert avatars and all(image["src"].startswith(b.base) and image["w"] > 0 for image in avatars)
    assert requests and not [url for url in requests if not url.startswith(b.base)], requests

    # The author's profile on b: the header picture (federated as `image`) and avatar, from b too.
    profile = page.locator("article.post a.author").first.get_attribute("href")
    page.goto(f"{b.base}{profile}")
    header = page.locator("img.profile-header")
    expect(header).to_be_visible()
    page.wait_for_load_state("load")
    assert page.evaluate("document.querySelector('img.profile-header').naturalWidth") == 1500
    assert page.evaluate("document.querySelector('img.avatar').naturalWidth") > 0
    assert header.get_attribute("src").startswith("/media/remote/")
    assert not [url for url in requests if not url.startswith(b.base)], requests
    page.goto(f"{b.base}/home")

    # The original is one click away, still on b.
    page.get_by_role("link", name="An orange sky above dark water").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(b.base)}/media/cache/[0-9a-f]{{64}}\.png$"))
    assert not [url for url in requests if not url.startswith(b.base)], requests
