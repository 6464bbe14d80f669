"""What every answer of the client API has in common, checked across all of it rather than per
endpoint: CORS preflights on every path, dates with exactly three fractional digits and ids as
numeric strings in every entity and every nested one (polls, edits, markers, filters, groups...),
Link headers with `next` first, `{"error": ...}` bodies, and the lists an app reads about its own
account (blocks, mutes) and others' (follow lists the account hides)."""
from __future__ import annotations

import importlib
import io
import pkgutil
import re
import sqlite3
from typing import Any, Iterator

import pytest
import requests
from PIL import Image

import fedserver.api
from fedserver.api.routing import ApiRoutes
from tests.api.entities import DATETIME, NUMERIC_ID, assert_entity
from tests.api.oauth_flow import api, new_app, user_token
from tests.e2e.processes import ProcessGroup, ServerProcess, set_config_keys

ISO_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d")
# Paths outside the route tables that browser apps call too (OAuth, discovery, streaming).
OTHER_PATHS = ("/oauth/token", "/oauth/revoke", "/.well-known/oauth-authorization-server", "/.well-known/nodeinfo",
               "/nodeinfo/2.0", "/api/v1/streaming", "/api/v1/streaming/health", "/api/v1/streaming/user")


def _api_routes() -> list[tuple[str, str]]:
    """(method, path) of every route in the API's route tables, found by walking fedserver.api, so
    that an endpoint added later is checked without anyone listing it here."""
    found = []
    for module in pkgutil.iter_modules(fedserver.api.__path__):
        table = getattr(importlib.import_module(f"fedserver.api.{module.name}"), "routes", None)
        if isinstance(table, ApiRoutes):
            found += [(route.method, route.path) for route in table.routes]
    assert len(found) > 80, found
    return found


def _concrete(path: str, values: dict[str, str] | None = None) -> str:
    """The path with each {name:pattern} placeholder filled in (patterns may hold braces)."""
    out, i = [], 0
    while i < len(path):
        if path[i] != "{":
            out.append(path[i])
            i += 1
            continue
        depth, j = 0, i
        while True:
            depth += {"{": 1, "}": -1}.get(path[j], 0)
            if depth == 0:
                break
            j += 1
        name = path[i + 1:j].split(":", 1)[0]
        out.append((values or {}).get(name, {"group_key": "ungrouped-1", "hashtag": "x", "name": "x"}.get(name, "1")))
        i = j + 1
    return "".join(out)


def test_every_api_path_answers_a_cors_preflight_for_browser_apps(server: ServerProcess):
    paths = {_concrete(path) for _, path in _api_routes()} | set(OTHER_PATHS)
    for path in sorted(paths):
        for form in (path, path + "/") if path.startswith("/api/") else (path,):
            preflight = requests.options(f"{server.base}{form}", timeout=10, headers={
                "Origin": "https://elk.zone", "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,idempotency-key"})
            assert preflight.status_code in (200, 204), form
            assert preflight.headers["Access-Control-Allow-Origin"] == "*", form
            allowed = preflight.headers["Access-Control-Allow-Headers"]
            assert {"Authorization", "Content-Type", "Idempotency-Key"} <= {h.strip() for h in allowed.split(",")}, form
            assert "Link" in preflight.headers["Access-Control-Expose-Headers"], form


def _format_problems(value: Any, where: str) -> Iterator[str]:
    """Dates not in YYYY-MM-DDTHH:MM:SS.mmmZ and ids that are not numeric strings, at any depth."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _format_problems(item, f"{where}[{i}]")
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        here = f"{where}.{key}"
        if isinstance(item, str):
            if (ISO_LIKE.match(item) or (key.endswith("_at") and key != "last_status_at")) \
                    and not DATETIME.match(item):
                yield f"{here}: date {item!r}"
            if (key == "id" or key.endswith("_id")) and not NUMERIC_ID.match(item):
                yield f"{here}: id {item!r}"
        elif (key == "id" or key.endswith("_id")) and item is not None:
            yield f"{here}: id {item!r} is not a string"
        elif key.endswith("_ids") and isinstance(item, list):
            yield from (f"{here}: id {one!r}" for one in item if not (isinstance(one, str) and NUMERIC_ID.match(one)))
        else:
            yield from _format_problems(item, here)


def _png() -> bytes:
    picture = io.BytesIO()
    Image.new("RGB", (40, 30), (20, 120, 200)).save(picture, format="PNG")
    return picture.getvalue()


@pytest.fixture(scope="module")
def tokens(server: ServerProcess, browser) -> dict[str, str]:
    out = {}
    for name in ("alice", "bob"):
        context = browser.new_context()
        out[name] = user_token(server, context.new_page(), username=name)
        context.close()
    return out


def test_dates_and_ids_are_mastodon_shaped_in_every_entity_and_every_nested_one(server: ServerProcess, tokens):
    alice, bob = tokens["alice"], tokens["bob"]
    me = api(server, alice, "GET", "/api/v1/accounts/verify_credentials").json()
    bob_id = api(server, alice, "GET", "/api/v1/accounts/lookup", params={"acct": "bob"}).json()["id"]
    assert api(server, alice, "POST", f"/api/v1/accounts/{bob_id}/follow").json()["following"] is True
    media = api(server, alice, "POST", "/api/v2/media", files={"file": ("p.png", _png(), "image/png")},
                data={"description": "a blue square", "focus": "0.5,-0.5"}).json()
    polled = api(server, alice, "POST", "/api/v1/statuses", data={
        "status": "which #gardens?", "poll[options][]": ["roses", "ferns"], "poll[expires_in]": "3600"}).json()
    pictured = api(server, alice, "POST", "/api/v1/statuses",
                   data={"status": "look", "media_ids[]": media["id"]}).json()
    edited = api(server, alice, "PUT", f"/api/v1/statuses/{pictured['id']}", data={
        "status": "look again", "media_ids[]": pictured["media_attachments"][0]["id"]})  # as apps edit
    assert edited.status_code == 200, edited.text
    api(server, bob, "POST", f"/api/v1/statuses/{pictured['id']}/favourite")
    api(server, bob, "POST", f"/api/v1/statuses/{pictured['id']}/reblog")
    api(server, bob, "POST", f"/api/v1/polls/{polled['poll']['id']}/votes", data={"choices[]": "1"})
    api(server, bob, "POST", "/api/v1/statuses", data={"status": "@alice lovely", "in_reply_to_id": pictured["id"]})
    api(server, alice, "POST", f"/api/v1/statuses/{pictured['id']}/bookmark")
    api(server, alice, "POST", f"/api/v1/statuses/{polled['id']}/favourite")
    listed = api(server, alice, "POST", "/api/v1/lists", json={"title": "friends"}).json()
    api(server, alice, "POST", f"/api/v1/lists/{listed['id']}/accounts", data={"account_ids[]": bob_id})
    a_filter = api(server, alice, "POST", "/api/v2/filters", json={
        "title": "spoilers", "context": ["home"], "filter_action": "warn", "expires_in": 3600,
        "keywords_attributes": [{"keyword": "finale", "whole_word": True}]}).json()
    api(server, alice, "POST", f"/api/v2/filters/{a_filter['id']}/statuses", data={"status_id": polled["id"]})
    api(server, alice, "POST", "/api/v1/tags/gardens/follow")
    notifications = api(server, alice, "GET", "/api/v1/notifications").json()
    assert {n["type"] for n in notifications} >= {"favourite", "reblog", "mention"}
    api(server, alice, "POST", "/api/v1/markers", json={"home": {"last_read_id": pictured["id"]},
                                                        "notifications": {"last_read_id": notifications[0]["id"]}})
    group_key = api(server, alice, "GET", "/api/v2/notifications").json()["notification_groups"][0]["group_key"]

    values = {"id": pictured["id"], "hashtag": "gardens", "name": "gardens", "group_key": group_key}
    by_prefix = {"/api/v1/accounts/{": me["id"], "/api/v1/polls/": polled["poll"]["id"], "/api/v1/lists/": listed["id"],
                 "/api/v1/timelines/list/": listed["id"], "/api/v2/filters/{": a_filter["id"],
                 "/api/v1/media/": media["id"], "/api/v1/notifications/{": notifications[0]["id"]}
    checked = 0
    for method, path in _api_routes():
        if method != "GET" or "streaming" in path or path == "/api/v1/push/subscription":
            continue  # streaming is not JSON; a token without a push subscription gets 404, as on Mastodon
        wanted = dict(values)
        for prefix, value in by_prefix.items():
            if path.startswith(prefix):
                wanted["id"] = value
        url = _concrete(path, wanted)
        if "/keywords/" in path or "/statuses/{" in path and "filter" in path or "filter_statuses" in path:
            continue  # keyword and filter-status ids are read through their filter below
        response = api(server, alice, "GET", url, params={"q": "gardens", "acct": "bob", "id[]": bob_id,
                                                            "timeline[]": ["home", "notifications"]})
        assert response.status_code == 200, (url, response.status_code, response.text)
        body = response.json()
        problems = list(_format_problems(body, url))
        assert not problems, "\n".join(problems)
        link = response.headers.get("Link")
        if link:
            assert link.split(", ")[0].endswith('rel="next"'), (url, link)
        checked += 1
    assert checked > 50
    # The nested entities whose dates are easy to get wrong, present and in format.
    poll = api(server, alice, "GET", f"/api/v1/polls/{polled['poll']['id']}").json()
    assert_entity("Poll", poll)
    assert DATETIME.match(poll["expires_at"]) and poll["voters_count"] == 1
    history = api(server, alice, "GET", f"/api/v1/statuses/{pictured['id']}/history").json()
    assert len(history) == 2 and all(DATETIME.match(edit["created_at"]) for edit in history)
    markers = api(server, alice, "GET", "/api/v1/markers", params={"timeline[]": ["home", "notifications"]}).json()
    assert DATETIME.match(markers["notifications"]["updated_at"]) and markers["home"]["last_read_id"] == pictured["id"]
    stored_filter = api(server, alice, "GET", f"/api/v2/filters/{a_filter['id']}").json()
    assert DATETIME.match(stored_filter["expires_at"]) and NUMERIC_ID.match(stored_filter["keywords"][0]["id"])
    assert stored_filter["statuses"][0]["status_id"] == polled["id"]


def test_errors_have_mastodon_bodies_and_statuses(server: ServerProcess, tokens):
    alice = tokens["alice"]
    answers = {  # 403 (outside the token's scopes) and 429 are in test_oauth_rules.py
        401: api(server, None, "GET", "/api/v1/timelines/home"),
        404: api(server, alice, "GET", "/api/v1/statuses/12345678901234"),
        422: api(server, alice, "POST", "/api/v1/statuses", data={"status": ""}),
    }
    for status, response in answers.items():
        assert response.status_code == status
        assert response.headers["Content-Type"].startswith("application/json")
        assert isinstance(response.json()["error"], str) and response.json()["error"]
    assert 'Bearer' in answers[401].headers["WWW-Authenticate"]
    not_a_number = api(server, alice, "GET", "/api/v1/statuses/not-a-number")
    assert not_a_number.status_code == 404 and not_a_number.json() == {"error": "Record not found"}
    wrong_method = api(server, alice, "DELETE", "/api/v1/instance")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


def test_an_app_token_reads_public_things_but_acts_for_no_one(server: ServerProcess):
    client_id, client_secret = new_app(server)
    token = requests.post(f"{server.base}/oauth/token", timeout=10, data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret,
        "scope": "read write"}).json()["access_token"]
    for path in ("/api/v1/timelines/public", "/api/v1/accounts/lookup?acct=alice", "/api/v1/instance",
                 "/api/v1/apps/verify_credentials", "/api/v1/custom_emojis"):
        assert api(server, token, "GET", path).status_code == 200, path
    for method, path, data in (("GET", "/api/v1/timelines/home", None), ("GET", "/api/v1/notifications", None),
                               ("POST", "/api/v1/statuses", {"status": "from nobody"}),
                               ("POST", "/api/v2/media", None), ("GET", "/api/v1/bookmarks", None),
                               ("PATCH", "/api/v1/accounts/update_credentials", {"display_name": "x"}),
                               ("GET", "/api/v1/blocks", None), ("POST", "/api/v1/markers", None)):
        refused = api(server, token, method, path, data=data)
        assert refused.status_code == 422, (path, refused.text)
        assert refused.json() == {"error": "This method requires an authenticated user"}


def test_follow_lists_an_account_hides_stay_hidden_and_blocks_and_mutes_are_listed(server: ServerProcess, tokens):
    alice, bob = tokens["alice"], tokens["bob"]
    alice_id = api(server, alice, "GET", "/api/v1/accounts/verify_credentials").json()["id"]
    bob_id = api(server, alice, "GET", "/api/v1/accounts/lookup", params={"acct": "bob"}).json()["id"]
    api(server, bob, "POST", f"/api/v1/accounts/{alice_id}/follow")
    followers = f"/api/v1/accounts/{alice_id}/followers"
    assert [a["acct"] for a in api(server, None, "GET", followers).json()] == ["bob"]

    hidden = api(server, alice, "PATCH", "/api/v1/accounts/update_credentials", data={"hide_collections": "true"})
    assert hidden.json()["hide_collections"] is True and hidden.json()["source"]["hide_collections"] is True
    # As on the profile page and to other servers: the numbers only, the names to the account alone.
    for token in (None, bob):
        assert api(server, token, "GET", followers).json() == []
        assert api(server, token, "GET", f"/api/v1/accounts/{alice_id}/following").json() == []
    assert api(server, bob, "GET", f"/api/v1/accounts/{alice_id}").json()["followers_count"] >= 1
    assert [a["acct"] for a in api(server, alice, "GET", followers).json()] == ["bob"]
    api(server, alice, "PATCH", "/api/v1/accounts/update_credentials", data={"hide_collections": "false"})
    assert [a["acct"] for a in api(server, bob, "GET", followers).json()] == ["bob"]

    # Blocks and mutes, newest first, paged by Link headers.
    names = [f"user{n}" for n in range(3)]
    for name in names:
        server.run("user", "create", name, "--password-file", str(server.directory / "password.txt"), check=True)
    ids = [api(server, alice, "GET", "/api/v1/accounts/lookup", params={"acct": name}).json()["id"] for name in names]
    for account_id in ids:
        assert api(server, bob, "POST", f"/api/v1/accounts/{account_id}/block").json()["blocking"] is True
        assert api(server, bob, "POST", f"/api/v1/accounts/{account_id}/mute").json()["muting"] is True
    for path in ("/api/v1/blocks", "/api/v1/mutes"):
        first = api(server, bob, "GET", path, params={"limit": "2"})
        assert [a["acct"] for a in first.json()] == ["user2", "user1"], path
        for account in first.json():
            assert_entity("Account", account)
        next_url = re.match(r'<([^>]+)>; rel="next"', first.headers["Link"]).group(1)
        assert [a["acct"] for a in requests.get(next_url, headers={"Authorization": f"Bearer {bob}"},
                                                timeout=10).json()] == ["user0"], path
    blocks = api(server, bob, "GET", "/api/v1/blocks", params={"min_id": "0", "limit": "1"}).json()
    assert [a["acct"] for a in blocks] == ["user0"]  # the oldest block just above the cursor
    api(server, bob, "POST", f"/api/v1/accounts/{ids[1]}/unblock")
    assert [a["acct"] for a in api(server, bob, "GET", "/api/v1/blocks").json()] == ["user2", "user0"]
    assert api(server, alice, "GET", "/api/v1/blocks").json() == []
    assert api(server, alice, "GET", "/api/v1/accounts/relationships",
               params={"id[]": bob_id}).json()[0]["blocked_by"] is False


def test_an_instance_that_approves_sign_ups_says_so_to_apps(tmp_path):
    group = ProcessGroup(tmp_path)
    try:
        approving = group("approving")
        set_config_keys(approving.config, registrations="approval")
        approving.start()
        v1 = requests.get(f"{approving.base}/api/v1/instance", timeout=10).json()
        assert (v1["registrations"], v1["approval_required"]) == (True, True)
        v2 = requests.get(f"{approving.base}/api/v2/instance", timeout=10).json()
        assert (v2["registrations"]["enabled"], v2["registrations"]["approval_required"]) == (True, True)
        nodeinfo = requests.get(f"{approving.base}/nodeinfo/2.0", timeout=10).json()
        assert nodeinfo["openRegistrations"] is True
        # The Mastodon version apps are told about is the same everywhere.
        assert v2["version"].startswith(nodeinfo["metadata"]["upstream"]["version"] + " ")
    finally:
        group.close()


def _next(response: requests.Response) -> str:
    return re.match(r'<([^>]+)>; rel="next"', response.headers["Link"]).group(1)


def test_who_liked_or_boosted_likes_and_media_only_profiles_page_by_link_headers(server: ServerProcess, tokens):
    alice, bob = tokens["alice"], tokens["bob"]
    alice_id = api(server, alice, "GET", "/api/v1/accounts/verify_credentials").json()["id"]
    media = api(server, alice, "POST", "/api/v2/media", files={"file": ("p.png", _png(), "image/png")}).json()
    with_media = api(server, alice, "POST", "/api/v1/statuses",
                     data={"status": "a picture", "media_ids[]": media["id"]})
    plain = api(server, alice, "POST", "/api/v1/statuses", data={"status": "no picture"}).json()
    only_media = api(server, None, "GET", f"/api/v1/accounts/{alice_id}/statuses",
                     params={"only_media": "true"}).json()
    assert only_media[0]["id"] == with_media.json()["id"] and plain["id"] not in [s["id"] for s in only_media]
    assert all(s["media_attachments"] for s in only_media)

    fans = [f"fan{n}" for n in range(3)]
    for name in fans:
        server.run("user", "create", name, "--password-file", str(server.directory / "password.txt"), check=True)
        server.run("like", name, plain["uri"], check=True)
        server.run("boost", name, plain["uri"], check=True)
    for path in ("favourited_by", "reblogged_by"):
        first = api(server, None, "GET", f"/api/v1/statuses/{plain['id']}/{path}", params={"limit": "2"})
        assert [a["acct"] for a in first.json()] == ["fan2", "fan1"], path  # the newest first
        assert [a["acct"] for a in requests.get(_next(first), timeout=10).json()] == ["fan0"], path

    # The person's own likes, newest first, two pages.
    for status in (plain, with_media.json()):
        api(server, bob, "POST", f"/api/v1/statuses/{status['id']}/favourite")
    first = api(server, bob, "GET", "/api/v1/favourites", params={"limit": "1"})
    assert [s["id"] for s in first.json()] == [with_media.json()["id"]]
    following = requests.get(_next(first), headers={"Authorization": f"Bearer {bob}"}, timeout=10).json()
    assert following[0]["id"] == plain["id"]


# sqlite_only: reads the whole database as the SQLite file's dump.
@pytest.mark.sqlite_only
def test_tokens_and_client_secrets_are_stored_only_as_hashes(server: ServerProcess, tokens):
    client_id, client_secret = new_app(server)
    app_token = requests.post(f"{server.base}/oauth/token", timeout=10, data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}).json()
    with sqlite3.connect(server.database, timeout=10) as db:
        dump = "\n".join(db.iterdump())
    assert client_id in dump  # the public half is kept as it is
    for secret in (client_secret, app_token["access_token"], tokens["alice"], tokens["bob"]):
        assert secret not in dump


JUNK_QUERY = {"limit": "many", "max_id": "x", "min_id": "-1", "since_id": "1e9", "types[]": "nope",
              "exclude_types[]": "", "id[]": "99999999999999999999", "q": "\x00", "acct": "@@", "local": "maybe",
              "timeline[]": "nowhere", "resolve": "2", "offset": "-5"}
JUNK_BODIES = ({"data": {"status": "x" * 600, "visibility": "everyone", "poll[options][]": ["a"], "poll[expires_in]": "-1",
                         "media_ids[]": "abc", "in_reply_to_id": "zzz", "scheduled_at": "never", "choices[]": "9",
                         "title": "", "context[]": "nowhere", "focus": "9,9", "description": "d" * 5000,
                         "account_ids[]": "x", "expires_in": "soon", "keywords_attributes[0][keyword]": "",
                         "fields_attributes[0][name]": "n" * 1000, "locked": "perhaps", "bot": "1", "bot[]": "x"}},
               {"json": [1, 2, 3]}, {"json": {"status": {"nested": True}, "poll": "no", "media_ids": {"a": 1},
                                              "keywords_attributes": "none", "fields_attributes": [1, "two"],
                                              "home": "x", "context": 5, "choices": [None]}},
               {"data": b"\xff\xfe not form", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
               {"files": {"file": ("x.bin", b"\x00" * 64, "application/octet-stream")}})


def test_no_endpoint_answers_500_to_nonsense(server: ServerProcess, tokens):
    alice = tokens["alice"]
    status_id = api(server, alice, "POST", "/api/v1/statuses", data={"status": "target"}).json()["id"]
    for method, path in [*_api_routes(), ("POST", "/oauth/token"), ("POST", "/oauth/revoke")]:
        if "streaming" in path:
            continue
        for ids_in_path in ("1", status_id, "99999999999999999999"):
            url = _concrete(path, {"id": ids_in_path, "hashtag": "%00", "name": "a" * 300,
                                   "group_key": "x" * 120})
            bodies = JUNK_BODIES if method in ("POST", "PUT", "PATCH") else ({},)
            for body in bodies:
                extra = dict(body)
                headers = {"Authorization": f"Bearer {alice}", **extra.pop("headers", {})}
                response = requests.request(method, f"{server.base}{url}", params=JUNK_QUERY, headers=headers,
                                            timeout=20, **extra)
                assert response.status_code < 500, (method, url, body, response.text)
                assert "error" in response.json() or response.status_code < 400, (method, url, response.text)


def test_a_form_that_is_not_utf8_gets_400_on_the_authorization_and_sign_in_pages(server: ServerProcess):
    for path in ("/oauth/authorize", "/auth/sign_in"):
        response = requests.post(f"{server.base}{path}", data=b"\xff\xfe csrf_token=x", timeout=10,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 400, path
        assert "This form could not be read." in response.text


def test_a_token_is_refused_with_403_on_every_endpoint_outside_its_scopes(server: ServerProcess, browser):
    context = browser.new_context()
    profile_only = user_token(server, context.new_page(), username="bob", scope="profile", app_scopes=["profile"])
    context.close()
    checked = 0
    for module in pkgutil.iter_modules(fedserver.api.__path__):
        table = getattr(importlib.import_module(f"fedserver.api.{module.name}"), "routes", None)
        if not isinstance(table, ApiRoutes):
            continue
        for route in table.routes:
            if not route.scope or "profile" in route.scope or "streaming" in route.path:
                continue  # open to anyone, or within `profile` (verify_credentials)
            url = _concrete(route.path)
            response = api(server, profile_only, route.method, url)
            assert response.status_code == 403, (route.method, url, response.status_code, response.text)
            assert response.json() == {"error": "This action is outside the authorized scopes"}
            checked += 1
    assert checked > 80


def test_media_marked_sensitive_without_a_content_warning_stays_so_until_an_edit_says_otherwise(
        server: ServerProcess, tokens):
    alice = tokens["alice"]
    media = api(server, alice, "POST", "/api/v2/media", files={"file": ("p.png", _png(), "image/png")}).json()
    posted = api(server, alice, "POST", "/api/v1/statuses",
                 data={"status": "a picture to blur", "media_ids[]": media["id"], "sensitive": "true"}).json()
    assert (posted["sensitive"], posted["spoiler_text"]) == (True, "")
    page = requests.get(posted["url"], timeout=10).text
    assert "Sensitive media" in page and "a picture to blur" in page
    attachment = posted["media_attachments"][0]["id"]
    kept = api(server, alice, "PUT", f"/api/v1/statuses/{posted['id']}",
               data={"status": "a picture to blur, edited", "media_ids[]": attachment}).json()
    assert kept["sensitive"] is True
    cleared = api(server, alice, "PUT", f"/api/v1/statuses/{posted['id']}",
                  data={"status": "a picture to show", "media_ids[]": attachment, "sensitive": "false"}).json()
    assert cleared["sensitive"] is False
    warned = api(server, alice, "POST", "/api/v1/statuses",
                 data={"status": "x", "spoiler_text": "cw", "sensitive": "false"}).json()
    assert warned["sensitive"] is True  # a content warning always makes a post sensitive, as on Mastodon


def test_posting_defaults_set_by_an_app_are_shown_and_used_when_a_post_does_not_say(server: ServerProcess, tokens):
    bob = tokens["bob"]
    me = api(server, bob, "GET", "/api/v1/accounts/verify_credentials").json()
    assert (me["source"]["privacy"], me["source"]["sensitive"], me["source"]["language"]) == ("public", False, None)
    # As Tusky's and Ice Cubes' "default post privacy" settings send them.
    changed = api(server, bob, "PATCH", "/api/v1/accounts/update_credentials", data={
        "source[privacy]": "private", "source[sensitive]": "true", "source[language]": "de"})
    assert changed.status_code == 200, changed.text
    assert_entity("Account", changed.json())
    source = changed.json()["source"]
    assert (source["privacy"], source["sensitive"], source["language"]) == ("private", True, "de")
    preferences = api(server, bob, "GET", "/api/v1/preferences").json()
    assert (preferences["posting:default:visibility"], preferences["posting:default:sensitive"],
            preferences["posting:default:language"]) == ("private", True, "de")
    plain = api(server, bob, "POST", "/api/v1/statuses", data={"status": "with my defaults"}).json()
    assert (plain["visibility"], plain["sensitive"], plain["language"]) == ("private", True, "de")
    said = api(server, bob, "POST", "/api/v1/statuses", data={
        "status": "as I say", "visibility": "unlisted", "sensitive": "false", "language": "en"}).json()
    assert (said["visibility"], said["sensitive"], said["language"]) == ("unlisted", False, "en")
    # A bad value changes nothing.
    refused = api(server, bob, "PATCH", "/api/v1/accounts/update_credentials",
                  data={"source[privacy]": "secret", "display_name": "Not Saved"})
    assert refused.status_code == 422 and "error" in refused.json()
    assert api(server, bob, "PATCH", "/api/v1/accounts/update_credentials",
               data={"source[language]": "<b>", "display_name": "Not Saved"}).status_code == 422
    again = api(server, bob, "GET", "/api/v1/accounts/verify_credentials").json()
    assert again["display_name"] != "Not Saved" and again["source"]["privacy"] == "private"
    restored = api(server, bob, "PATCH", "/api/v1/accounts/update_credentials", data={
        "source[privacy]": "public", "source[sensitive]": "false", "source[language]": ""}).json()["source"]
    assert (restored["privacy"], restored["sensitive"], restored["language"]) == ("public", False, None)


def test_follow_requests_are_paged_newest_first_by_link_headers(server: ServerProcess, tokens):
    bob = tokens["bob"]
    assert api(server, bob, "PATCH", "/api/v1/accounts/update_credentials", data={"locked": "true"}).json()["locked"]
    askers = [f"asker{n}" for n in range(3)]
    for name in askers:
        server.run("user", "create", name, "--password-file", str(server.directory / "password.txt"), check=True)
        server.run("follow", name, server.handle("bob"), check=True)
    first = api(server, bob, "GET", "/api/v1/follow_requests", params={"limit": "2"})
    assert [a["acct"] for a in first.json()] == ["asker2", "asker1"]
    for account in first.json():
        assert_entity("Account", account)
    rest = requests.get(_next(first), headers={"Authorization": f"Bearer {bob}"}, timeout=10).json()
    assert [a["acct"] for a in rest] == ["asker0"]
    accepted = api(server, bob, "POST", f"/api/v1/follow_requests/{first.json()[1]['id']}/authorize").json()
    assert accepted["followed_by"] is True
    assert [a["acct"] for a in api(server, bob, "GET", "/api/v1/follow_requests").json()] == ["asker2", "asker0"]
    api(server, bob, "PATCH", "/api/v1/accounts/update_credentials", data={"locked": "false"})
