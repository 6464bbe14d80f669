"""Video and audio through the client API, as apps upload them: POST /api/v2/media answers 202 with
`url: null` while ffprobe/ffmpeg check and clean the file (as Mastodon does), GET /api/v1/media/:id
answers 200 once it is ready, a `thumbnail` picture becomes the preview, and the file goes on a post
that reaches a follower on another fedserver. Real `fedserver serve` processes, Mastodon.py, tokens
from the real authorization page, every entity checked strictly."""
from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Iterator

import pytest
import requests
from mastodon import Mastodon
from PIL import Image
from playwright.sync_api import Page

from tests.api.conftest import PASSWORD
from tests.api.entities import assert_entity
from tests.api.oauth_flow import OOB, SCOPES, api, approve, new_app
from tests.e2e.processes import ProcessGroup, ServerProcess, wait_for
from tests.e2e.test_video_audio import SECRETS, audio, make_media, probe, video

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg (.ci/run installs it)")


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """`here` (alice) and `there` (carol, who follows alice)."""
    group = ProcessGroup(tmp_path_factory.mktemp("api-av"))
    here, there = group("here"), group("there")
    for server, name in ((here, "alice"), (there, "carol")):
        secret = server.directory / "password.txt"
        secret.write_text(PASSWORD, encoding="utf-8")
        server.run("user", "create", name, "--password-file", str(secret), check=True)
    try:
        here.start()
        there.start()
        yield here, there
    finally:
        group.close()


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 300), (200, 40, 90)).save(out, format="JPEG")
    return out.getvalue()


def _app_for(page: Page, server: ServerProcess, username: str) -> tuple[Mastodon, str]:
    client_id, client_secret = new_app(server)
    app = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=server.base)
    code = approve(page, app.auth_request_url(redirect_uris=OOB, scopes=SCOPES, allow_http=True), username=username)
    return app, app.log_in(code=code, redirect_uri=OOB, scopes=SCOPES, allow_http=True)


def _ready(server: ServerProcess, token: str, media_id: str) -> dict:
    def done():
        response = api(server, token, "GET", f"/api/v1/media/{media_id}")
        assert response.status_code in (200, 206), response.text
        return response.json() if response.status_code == 200 else None
    return wait_for(done, timeout=60, what="the upload processed")


def test_an_app_uploads_video_and_audio_that_are_processed_then_posted_and_reach_a_follower(
        page: Page, pair, tmp_path: Path):
    here, there = pair
    there.run("follow", "carol", here.handle("alice"), check=True)
    wait_for(lambda: there.value("SELECT state FROM follows f JOIN actors a ON a.id = f.followee_id"
                                 " WHERE a.username = 'alice'") == "accepted", what="alice's server to accept",
             timeout=30)
    app, token = _app_for(page, here, "alice")
    limits = api(here, None, "GET", "/api/v2/instance").json()["configuration"]["media_attachments"]
    assert "video/mp4" in limits["supported_mime_types"] and "audio/mpeg" in limits["supported_mime_types"]
    assert limits["video_size_limit"] == 40 * 1024 * 1024

    clip = video(tmp_path, seconds=2)
    accepted = api(here, token, "POST", "/api/v2/media", files={"file": ("clip.mp4", clip, "video/mp4")},
                   data={"description": "a test card"})
    assert accepted.status_code == 202, accepted.text
    pending = accepted.json()
    assert pending["url"] is None and pending["type"] == "video" and pending["description"] == "a test card"
    ready = _ready(here, token, pending["id"])
    assert_entity("MediaAttachment", ready)
    original = ready["meta"]["original"]
    assert (original["width"], original["height"], original["frame_rate"]) == (160, 120, "10/1")
    assert 1.9 < original["duration"] < 2.2 and ready["blurhash"] and ready["meta"]["small"]["width"]
    served = requests.get(ready["url"], timeout=10)
    assert served.status_code == 200 and served.headers["Content-Type"] == "video/mp4"
    # Cleaned as the web form's uploads are: the phone's metadata is gone.
    assert not any(secret.encode() in served.content for secret in SECRETS)
    assert probe(served.content, tmp_path)["format"].get("tags", {}).get("title") is None

    # Audio with a picture as its preview (Mastodon's `thumbnail`), through Mastodon.py.
    sound = app.media_post(audio(tmp_path), mime_type="audio/mpeg", thumbnail=_photo(),
                           thumbnail_mime_type="image/jpeg", synchronous=True)
    raw_sound = api(here, token, "GET", f"/api/v1/media/{sound.id}").json()
    assert_entity("MediaAttachment", raw_sound)
    assert raw_sound["type"] == "audio" and 0.9 < raw_sound["meta"]["original"]["duration"] < 1.2
    assert raw_sound["preview_url"].startswith(here.base + "/media/") and raw_sound["blurhash"]
    assert requests.get(raw_sound["preview_url"], timeout=10).headers["Content-Type"].startswith("image/")

    # A video or audio file is a post's one attachment (as in the web form and Mastodon).
    picture = app.media_post(_photo(), mime_type="image/jpeg")
    mixed = api(here, token, "POST", "/api/v1/statuses",
                data={"status": "both", "media_ids[]": [pending["id"], picture.id]})
    assert mixed.status_code == 422 and "one video or audio file" in mixed.json()["error"]

    status = app.status_post("watch this", media_ids=[pending["id"]])
    raw = api(here, token, "GET", f"/api/v1/statuses/{status.id}").json()
    assert_entity("Status", raw)
    [attachment] = raw["media_attachments"]
    assert_entity("MediaAttachment", attachment)
    assert attachment["type"] == "video" and attachment["url"] == ready["url"]
    assert attachment["description"] == "a test card" and 1.9 < attachment["meta"]["original"]["duration"] < 2.2
    listened = app.status_post("listen", media_ids=[sound.id])
    [played] = api(here, token, "GET", f"/api/v1/statuses/{listened.id}").json()["media_attachments"]
    assert_entity("MediaAttachment", played)
    assert played["type"] == "audio" and played["preview_url"] == raw_sound["preview_url"]

    # A video without sound is Mastodon's gifv (a looping animation), on the upload and the post;
    # v1 answers once it is processed.
    silent = make_media(tmp_path, "silent.mp4", "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=10",
                        "-c:v", "libx264", "-pix_fmt", "yuv420p")
    looped = api(here, token, "POST", "/api/v1/media", files={"file": ("silent.mp4", silent, "video/mp4")})
    assert looped.status_code == 200, looped.text
    assert_entity("MediaAttachment", looped.json())
    assert looped.json()["type"] == "gifv" and looped.json()["url"]
    animated = app.status_post("loop", media_ids=[looped.json()["id"]])
    [shown] = api(here, token, "GET", f"/api/v1/statuses/{animated.id}").json()["media_attachments"]
    assert_entity("MediaAttachment", shown)
    assert shown["type"] == "gifv"

    # Carol's server receives the post with the video, as from the web form.
    wait_for(lambda: there.value("SELECT a.media_type FROM post_attachments a JOIN posts p ON p.id = a.post_id"
                                 " WHERE p.content_text LIKE '%watch this%'") == "video/mp4",
             what="alice's video post on carol's server", timeout=30)
    assert there.value("SELECT a.description FROM post_attachments a JOIN posts p ON p.id = a.post_id"
                       " WHERE p.content_text LIKE '%watch this%'") == "a test card"


def test_a_file_that_is_not_video_or_audio_is_refused_with_the_reason(page: Page, pair):
    here, _ = pair
    page.context.clear_cookies()
    _, token = _app_for(page, here, "alice")
    accepted = api(here, token, "POST", "/api/v2/media",
                   files={"file": ("clip.mp4", b"<!DOCTYPE html><script>alert(1)</script>", "video/mp4")})
    assert accepted.status_code == 202, accepted.text

    def judged():
        response = api(here, token, "GET", f"/api/v1/media/{accepted.json()['id']}")
        return (response.status_code, response.json()) if response.status_code != 206 else None
    status, body = wait_for(judged, timeout=30, what="the upload judged")
    assert status == 422 and "not a video" in body["error"]
    posted = api(here, token, "POST", "/api/v1/statuses",
                 data={"status": "x", "media_ids[]": accepted.json()["id"]})
    assert posted.status_code == 422 and "could not be processed" in posted.json()["error"]
    # v1 waits for the judgement and answers it.
    waited = api(here, token, "POST", "/api/v1/media", files={"file": ("a.mp3", b"\x00" * 2000, "audio/mpeg")})
    assert waited.status_code == 422 and "not a video" in waited.json()["error"]
