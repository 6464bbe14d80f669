"""A video posted on one server, watched on another in Chromium: played with the browser's own
controls from the reader's server (its media cache), with a poster from there too, and no request of
the page going to the server the video came from. A sensitive video (and audio) waits behind a click,
showing only its blurred preview frame, with and without JavaScript."""
from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_browser_flows import fake_remote_in_thread, follow_and_wait, new_person, sign_in, sign_up
from tests.e2e.processes import wait_for
from tests.e2e.test_video_audio import VideoRemote, audio, video

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg (.ci/run installs it)")


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
    follow_and_wait(page, b, a, author)

    a_page = browser.new_page()
    try:
        sign_in(a_page, a, author)
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


@pytest.mark.parametrize("javascript", [True, False], ids=["with-javascript", "without-javascript"])
def test_a_sensitive_video_shows_only_a_blurred_frame_until_clicked(page: Page, browser: Browser, servers,
                                                                     tmp_path: Path, javascript: bool):
    here, _ = servers
    if not javascript:
        page = browser.new_context(java_script_enabled=False).new_page()
    username = new_person(page, here)
    with fake_remote_in_thread("mallory", kind=VideoRemote) as (remote, run):
        remote.hits = []
        remote.files = {"clip.mp4": (video(tmp_path), "video/mp4"), "song.mp3": (audio(tmp_path), "audio/mpeg")}
        note = remote.note("mallory", "Not for everyone", mention=here.actor_uri(username))
        note["sensitive"] = True
        note["attachment"] = [
            {"type": "Document", "mediaType": "video/mp4", "url": f"{remote.base}/media/clip.mp4",
             "name": "Colour bars", "width": 160, "height": 120},
            {"type": "Document", "mediaType": "audio/mpeg", "url": f"{remote.base}/media/song.mp3", "name": "A tone"}]
        status, _ = run(remote.post(f"{here.base}/inbox", remote.activity("mallory", "Create", note),
                                    as_user="mallory"))
        assert status == 202
        wait_for(lambda: here.value("SELECT count(*) FROM remote_media WHERE url LIKE ? AND state = 'cached'",
                                    (f"{remote.base}/media/%",)) == 2, what="the video and audio cached", timeout=60)
    post_id, author_id = here.query("SELECT id, actor_id FROM posts WHERE uri = ?", (note["id"],))[0]

    # The thread, and the author's profile (a card among cards).
    for path in (f"/posts/{post_id}", f"/remote/{author_id}"):
        page.goto(here.base + path)
        card = page.locator(f"#post-{post_id}")
        player, sound = card.locator("video"), card.locator("audio")
        blurred = card.locator("details.sensitive summary img.blur")
        expect(card.get_by_text("Not for everyone")).to_be_visible()
        # Before the click: no player, no controls, no poster; only the preview frame's blurhash,
        # from this server, in the video's own shape.
        expect(player).to_be_hidden()
        expect(sound).to_be_hidden()
        expect(blurred).to_have_count(1)
        expect(blurred).to_be_visible()
        assert re.fullmatch(r"/media/cache/[0-9a-f]{64}\.png", blurred.get_attribute("src") or "")
        assert (blurred.get_attribute("width"), blurred.get_attribute("height")) == ("160", "120")
        assert blurred.evaluate("img => img.complete && img.naturalWidth > 0"), "the blurred frame did not load"
        card.get_by_text("Sensitive media").click()
        expect(player).to_be_visible()
        expect(sound).to_be_visible()
        expect(blurred).to_be_hidden()
        assert player.evaluate("v => v.controls") and sound.evaluate("a => a.controls")
        expect(player).to_have_attribute("src", re.compile(r"^/media/cache/[0-9a-f]{64}\.mp4$"))
    if not javascript:
        page.context.close()
