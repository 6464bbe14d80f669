"""Pictures through the client API: an app uploads with Mastodon.py's media_post, describes the
upload, posts a status carrying it; the picture is served from this server, reaches a follower on
another fedserver, and the rules (owner, once, at most four, the upload bounds) hold."""
from __future__ import annotations

import io
import time
from typing import Iterator

import pytest
import requests
from mastodon import Mastodon
from PIL import Image
from playwright.sync_api import Page

from tests.api.conftest import PASSWORD
from tests.api.entities import assert_entity
from tests.api.oauth_flow import OOB, SCOPES, api, approve, new_app, user_token
from tests.e2e.processes import ProcessGroup, ServerProcess, serving_with_users, wait_for
from tests.e2e.test_upload_bounds import hostile_gif


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """`here` (alice, bob) and `there` (carol, who follows alice)."""
    group = ProcessGroup(tmp_path_factory.mktemp("api-media"))
    here, there = group("here"), group("there")
    with serving_with_users(group, PASSWORD, [(here, ("alice", "bob")), (there, ("carol",))]):
        yield here, there


def _photo(colour: tuple[int, int, int] = (20, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 200), colour).save(out, format="JPEG")
    return out.getvalue()


def _app_for(page: Page, server: ServerProcess, username: str) -> tuple[Mastodon, str]:
    client_id, client_secret = new_app(server)
    app = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=server.base)
    code = approve(page, app.auth_request_url(redirect_uris=OOB, scopes=SCOPES, allow_http=True), username=username)
    return app, app.log_in(code=code, redirect_uri=OOB, scopes=SCOPES, allow_http=True)


def _upload(server: ServerProcess, token: str, data: bytes, **fields: str) -> requests.Response:
    return api(server, token, "POST", "/api/v2/media", files={"file": ("p.jpg", data, "image/jpeg")}, data=fields)


def test_an_app_posts_a_described_picture_that_is_served_here_and_reaches_a_follower(page: Page, pair):
    here, there = pair
    there.run("follow", "carol", here.handle("alice"), check=True)
    wait_for(lambda: there.value("SELECT state FROM follows f JOIN actors a ON a.id = f.followee_id"
                                 " WHERE a.username = 'alice'") == "accepted", what="alice's server to accept",
             timeout=30)
    app, token = _app_for(page, here, "alice")
    media = app.media_post(_photo(), mime_type="image/jpeg", description="a blue square", focus=(0.5, -0.25))
    assert media.url and media.description == "a blue square" and media.type == "image"
    described = app.media_update(media.id, description="a blue rectangle")
    assert described.description == "a blue rectangle"
    raw_media = api(here, token, "GET", f"/api/v1/media/{media.id}").json()
    assert_entity("MediaAttachment", raw_media)
    assert raw_media["meta"]["focus"] == {"x": 0.5, "y": -0.25}
    assert raw_media["meta"]["original"]["width"] == 320 and raw_media["blurhash"]

    status = app.status_post("look at this", media_ids=[media.id])
    raw = api(here, token, "GET", f"/api/v1/statuses/{status.id}").json()
    assert_entity("Status", raw)
    [attachment] = raw["media_attachments"]
    assert_entity("MediaAttachment", attachment)
    assert attachment["type"] == "image" and attachment["description"] == "a blue rectangle"
    assert attachment["meta"]["original"] == {"width": 320, "height": 200, "size": "320x200", "aspect": 1.6}
    assert attachment["meta"]["small"]["width"] and attachment["blurhash"] and attachment["remote_url"] is None
    for address in (attachment["url"], attachment["preview_url"]):
        assert address.startswith(here.base + "/media/")
        served = requests.get(address, timeout=10)
        assert served.status_code == 200 and served.headers["Content-Type"].startswith("image/")
    # Attached once: the same upload cannot go on a second post.
    again = api(here, token, "POST", "/api/v1/statuses", data={"status": "again", "media_ids[]": media.id})
    assert again.status_code == 422 and "already attached" in again.json()["error"]

    # Carol's server receives the post with the picture, and serves it from its media cache.
    wait_for(lambda: there.value("SELECT count(*) FROM post_attachments a JOIN posts p ON p.id = a.post_id"
                                 " WHERE p.content_text LIKE '%look at this%'") == 1,
             what="alice's picture post on carol's server", timeout=30)
    assert there.value("SELECT a.description FROM post_attachments a JOIN posts p ON p.id = a.post_id"
                       " WHERE p.content_text LIKE '%look at this%'") == "a blue rectangle"
    page.context.clear_cookies()
    carol_token = user_token(there, page, username="carol")
    home = api(there, carol_token, "GET", "/api/v1/timelines/home").json()
    remote = next(s for s in home if "look at this" in s["content"])
    [copy] = remote["media_attachments"]
    assert copy["remote_url"] == attachment["url"] and copy["url"].startswith(there.base + "/media/")
    served = requests.get(copy["url"], timeout=10)
    assert served.status_code == 200 and served.headers["Content-Type"].startswith("image/")
    # Once in the cache, the entity names the cached files and their own thumbnail and blurhash.
    [cached] = api(there, carol_token, "GET", f"/api/v1/statuses/{remote['id']}").json()["media_attachments"]
    assert_entity("MediaAttachment", cached)
    assert cached["url"].startswith(there.base + "/media/cache/") and cached["preview_url"] != cached["url"]
    for address in (cached["url"], cached["preview_url"]):
        served = requests.get(address, timeout=10)
        assert served.status_code == 200 and served.headers["Content-Type"].startswith("image/")


def test_media_ids_must_be_ones_own_unattached_and_at_most_four(page: Page, pair):
    here, _ = pair
    alice_token = user_token(here, page, username="alice")
    page.context.clear_cookies()
    bob_token = user_token(here, page, username="bob")
    alices = _upload(here, alice_token, _photo()).json()
    refused = api(here, bob_token, "POST", "/api/v1/statuses", data={"status": "mine?", "media_ids[]": alices["id"]})
    assert refused.status_code == 422 and "not yours" in refused.json()["error"]
    assert api(here, bob_token, "GET", f"/api/v1/media/{alices['id']}").status_code == 404
    assert api(here, bob_token, "PUT", f"/api/v1/media/{alices['id']}", data={"description": "x"}).status_code == 404
    five = [_upload(here, alice_token, _photo((n * 40, 0, 0))).json()["id"] for n in range(5)]
    too_many = api(here, alice_token, "POST", "/api/v1/statuses",
                   data=[("status", "five"), *(("media_ids[]", i) for i in five)])
    assert too_many.status_code == 422 and "at most 4" in too_many.json()["error"]
    # Nothing was attached by the refusals: the four may go on a post, with no text at all.
    four = api(here, alice_token, "POST", "/api/v1/statuses", data=[("media_ids[]", i) for i in five[:4]])
    assert four.status_code == 200 and len(four.json()["media_attachments"]) == 4
    assert api(here, alice_token, "POST", "/api/v1/statuses",
               data={"status": "x", "media_ids[]": alices["id"]}).status_code == 200


def test_a_hostile_upload_is_refused_quickly_with_a_clear_422(page: Page, pair):
    here, _ = pair
    token = user_token(here, page, username="bob")
    # What apps shrink pictures to before uploading is the bound uploads are held to ([uploads]).
    limits = api(here, None, "GET", "/api/v2/instance").json()["configuration"]["media_attachments"]
    assert limits["image_matrix_limit"] == 32_000_000 and limits["image_size_limit"] == 8 * 1024 * 1024
    started = time.monotonic()
    response = api(here, token, "POST", "/api/v2/media", files={"file": ("bomb.gif", hostile_gif(), "image/gif")})
    elapsed = time.monotonic() - started
    assert response.status_code == 422 and "too large" in response.json()["error"], response.text
    assert elapsed < 5, elapsed  # refused from the header, not after decoding 540 million pixels
    not_a_picture = api(here, token, "POST", "/api/v1/media", files={"file": ("x.png", b"hello", "image/png")})
    assert not_a_picture.status_code == 422 and "PNG, JPEG, GIF or WebP" in not_a_picture.json()["error"]
    long = _upload(here, token, _photo(), description="x" * 1501)
    assert long.status_code == 422 and "at most 1500 characters" in long.json()["error"]
    missing = api(here, token, "POST", "/api/v2/media", data={"description": "no file"})
    assert missing.status_code == 422
    assert here.value("SELECT count(*) FROM media_uploads u JOIN actors a ON a.id = u.actor_id"
                      " WHERE a.username = 'bob'") == 0


def test_an_edit_keeps_reorders_adds_and_removes_pictures(page: Page, pair):
    here, _ = pair
    app, token = _app_for(page, here, "alice")
    first, second = (app.media_post(_photo(c), mime_type="image/jpeg", description=d)
                     for c, d in (((250, 0, 0), "red"), ((0, 250, 0), "green")))
    status = app.status_post("two pictures", media_ids=[first.id, second.id])
    before = [a.id for a in status.media_attachments]
    removed_url = status.media_attachments[0].url
    third = app.media_post(_photo((0, 0, 250)), mime_type="image/jpeg", description="blue")
    edited = app.status_update(status.id, "two pictures, changed", media_ids=[before[1], third.id])
    assert [a.description for a in edited.media_attachments] == ["green", "blue"]
    raw = api(here, token, "GET", f"/api/v1/statuses/{status.id}").json()
    for attachment in raw["media_attachments"]:
        assert_entity("MediaAttachment", attachment)
        assert requests.get(attachment["url"], timeout=10).status_code == 200
    assert requests.get(removed_url, timeout=10).status_code == 404
    # An upload already on a post cannot be added to another by an edit either.
    other = app.status_post("another")
    refused = api(here, token, "PUT", f"/api/v1/statuses/{other.id}",
                  data={"status": "another", "media_ids[]": third.id})
    assert refused.status_code == 422 and "already attached" in refused.json()["error"]
    # Without media_ids the pictures stay as they are.
    assert len(app.status_update(status.id, "only the text").media_attachments) == 2


def test_uploads_left_unattached_for_a_day_are_removed(page: Page, pair):
    here, _ = pair
    token = user_token(here, page, username="bob")
    old, fresh, used = (_upload(here, token, _photo((n * 80, 80, 80))).json() for n in range(3))
    assert api(here, token, "POST", "/api/v1/statuses", data={"status": "x", "media_ids[]": used["id"]}).ok
    # A day and a minute ago, as if the app never posted it (test arrangement: the clock is real).
    here.write("UPDATE media_uploads SET created_at = '2020-01-01T00:00:00.000000Z' WHERE id IN (?, ?)",
               (int(old["id"]), int(used["id"])))
    here.terminate()
    here.start()  # the pruner's first round runs at start
    wait_for(lambda: api(here, token, "GET", f"/api/v1/media/{old['id']}").status_code == 404,
             what="the stale upload to be pruned", timeout=20)
    assert requests.get(old["url"], timeout=10).status_code == 404
    for kept in (fresh, used):
        assert api(here, token, "GET", f"/api/v1/media/{kept['id']}").status_code == 200
        assert requests.get(kept["url"], timeout=10).status_code == 200
