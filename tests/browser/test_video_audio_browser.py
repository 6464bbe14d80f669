"""A video posted on one server, watched on another in Chromium: played with the browser's own
controls from the reader's server (its media cache), with a poster from there too, and no request of
the page going to the server the video came from."""
from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_browser_flows import PASSWORD, sign_up
from tests.e2e.processes import ProcessGroup, ServerProcess, set_config_keys, wait_for

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg (.ci/run installs it)")


@pytest.fixture
def two_servers(tmp_path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    group = ProcessGroup(tmp_path)
    a, b = group("a"), group("b")
    for server in (a, b):
        set_config_keys(server.config, registrations="open", sign_ups_per_address_per_hour=1000)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        group.close()


def test_video_from_another_server_plays_from_the_readers_own_server(page: Page, browser: Browser, two_servers,
                                                                     tmp_path: Path):
    a, b = two_servers
    clip = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=1:size=320x240:rate=10",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-metadata", "title=Secret", str(clip)],
                   check=True, timeout=60)
    author = "a" + secrets.token_hex(3)
    a_page = browser.new_page()
    try:
        sign_up(a_page, a, author)
    finally:
        a_page.close()

    reader = "b" + secrets.token_hex(3)
    sign_up(page, b, reader)
    page.goto(f"{b.base}/search")
    page.get_by_label("Search for people, posts or #hashtags").fill(a.handle(author))
    page.get_by_role("button", name="Find").click()
    page.get_by_role("button", name="Follow", exact=True).click()
    wait_for(lambda: b.value("SELECT f.state FROM follows f JOIN actors x ON x.id = f.followee_id WHERE x.uri = ?",
                             (a.actor_uri(author),)) == "accepted", what="a to accept the follow")

    a_page = browser.new_page()
    try:
        a_page.goto(f"{a.base}/auth/sign_in")
        a_page.get_by_label("Username").fill(author)
        a_page.get_by_label("Password").fill(PASSWORD)
        a_page.get_by_role("button", name="Sign in").click()
        a_page.goto(f"{a.base}/home")
        a_page.get_by_label("Your post").fill("Test pattern")
        a_page.get_by_text("Add a video or audio file").click()
        a_page.get_by_label("Video or audio file", exact=True).set_input_files(str(clip))
        a_page.get_by_label("Description of the video or audio").fill("Colour bars for a second")
        a_page.get_by_role("button", name="Post", exact=True).click()
        expect(a_page.get_by_text("Your post is published.")).to_be_visible()
        # On a itself: played with the browser's controls, from a.
        a_page.goto(f"{a.base}/@{author}")
        assert a_page.evaluate("document.querySelector('video').src").startswith(f"{a.base}/media/")
    finally:
        a_page.close()

    wait_for(lambda: b.value("SELECT count(*) FROM remote_media WHERE purpose = 'video' AND state = 'cached'") == 1,
             what="b to cache the video", timeout=60)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{b.base}/home")
    player = page.locator("video")
    expect(player).to_be_visible()
    expect(player).to_have_attribute("aria-label", "Colour bars for a second")
    page.wait_for_load_state("load")
    shown = page.evaluate("(() => { const v = document.querySelector('video');"
                          " return {src: v.src, poster: v.poster, controls: v.controls, preload: v.preload}; })()")
    assert shown["src"].startswith(f"{b.base}/media/cache/") and shown["src"].endswith(".mp4")
    assert shown["poster"].startswith(f"{b.base}/media/cache/") and shown["controls"] and shown["preload"] == "metadata"
    # The browser loads the poster (and, where it can play H.264, the video's first bytes) from b.
    wait_for(lambda: any(url == shown["poster"] for url in requests), what="the poster loaded")
    assert requests and not [url for url in requests if not url.startswith(b.base)], requests
