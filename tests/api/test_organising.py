"""What people set up on the web (lists, keyword filters, followed hashtags, pinned posts, profile
fields) works through the client API too, as an app drives it: Mastodon.py against a real
`fedserver serve`, tokens from the real authorization page, every entity checked strictly."""
from __future__ import annotations

import io
from typing import Iterator

import pytest
import requests
from mastodon import Mastodon
from PIL import Image
from playwright.sync_api import Page

from tests.api.conftest import PASSWORD
from tests.api.entities import assert_entity
from tests.api.oauth_flow import OOB, SCOPES, api, approve, new_app
from tests.e2e.processes import ProcessGroup, ServerProcess


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """`here` (alice, an admin, bob and carol) and `there` (dave)."""
    group = ProcessGroup(tmp_path_factory.mktemp("api-organising"))
    servers = group("here"), group("there")
    for server, names in zip(servers, (("alice", "bob", "carol"), ("dave",))):
        secret = server.directory / "password.txt"
        secret.write_text(PASSWORD, encoding="utf-8")
        for name in names:
            server.run("user", "create", name, *(["--admin"] if name == "alice" else []), "--password-file",
                       str(secret), check=True)
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        group.close()


@pytest.fixture(scope="module")
def here(pair) -> ServerProcess:
    return pair[0]


def _app_for(page: Page, server: ServerProcess, username: str) -> tuple[Mastodon, str]:
    page.context.clear_cookies()  # each person signs in on the page afresh
    client_id, client_secret = new_app(server)
    app = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=server.base)
    code = approve(page, app.auth_request_url(redirect_uris=OOB, scopes=SCOPES, allow_http=True), username=username)
    token = app.log_in(code=code, redirect_uri=OOB, scopes=SCOPES, allow_http=True)
    return app, token


@pytest.fixture(scope="module")
def apps(here, browser) -> dict[str, tuple[Mastodon, str]]:
    context = browser.new_context()
    try:
        page = context.new_page()
        return {name: _app_for(page, here, name) for name in ("alice", "bob", "carol")}
    finally:
        context.close()


def test_a_list_holds_a_followed_account_and_shows_its_posts(here, apps):
    alice, alice_token = apps["alice"]
    bob, _ = apps["bob"]
    carol, _ = apps["carol"]
    bob_id = bob.me().id
    alice.account_follow(bob_id)
    listed = alice.list_create("Friends")
    raw_lists = api(here, alice_token, "GET", "/api/v1/lists").json()
    assert [entry["title"] for entry in raw_lists] == ["Friends"]
    assert_entity("UserList", raw_lists[0])
    assert raw_lists[0]["replies_policy"] == "list" and raw_lists[0]["exclusive"] is False
    # Only accounts one follows go on a list (Mastodon's rule, the web's rule).
    refused = api(here, alice_token, "POST", f"/api/v1/lists/{listed.id}/accounts",
                  data={"account_ids[]": str(carol.me().id)})
    assert refused.status_code == 422 and "follow" in refused.json()["error"]
    alice.list_accounts_add(listed.id, [bob_id])
    assert [a.acct for a in alice.list_accounts(listed.id)] == ["bob"]
    assert [entry.id for entry in alice.account_lists(bob_id)] == [listed.id]

    from_bob = bob.status_post("hello from bob to the list")
    carol.status_post("carol is not on the list")
    timeline = api(here, alice_token, "GET", f"/api/v1/timelines/list/{listed.id}").json()
    assert [s["id"] for s in timeline] == [str(from_bob.id)]
    assert_entity("Status", timeline[0])

    renamed = api(here, alice_token, "PUT", f"/api/v1/lists/{listed.id}",
                  json={"title": "Close friends", "replies_policy": "followed"}).json()
    assert renamed["title"] == "Close friends" and renamed["replies_policy"] == "followed"
    alice.list_accounts_delete(listed.id, [bob_id])
    assert alice.list_accounts(listed.id) == []
    alice.list_delete(listed.id)
    assert api(here, alice_token, "GET", f"/api/v1/lists/{listed.id}").status_code == 404
    # Someone else's list is not there at all.
    other = bob.list_create("Bob's own")
    assert api(here, alice_token, "GET", f"/api/v1/timelines/list/{other.id}").status_code == 404


def test_a_filter_marks_a_matching_status_in_home_as_filtered(here, apps):
    alice, alice_token = apps["alice"]
    bob, _ = apps["bob"]
    alice.account_follow(bob.me().id)
    created = alice.create_filter_v2("Spoilers", ["home", "public"], "warn",
                                     keywords_attributes=[{"keyword": "finale", "whole_word": True}])
    raw = api(here, alice_token, "GET", f"/api/v2/filters/{created.id}").json()
    assert_entity("FilterV2", raw)
    assert raw["context"] == ["home", "public"] and raw["keywords"][0]["keyword"] == "finale"
    keyword = alice.add_filter_keyword_v2(created.id, "ending", whole_word=False)
    # Someone else's filter and its keywords are not there at all.
    _, bob_token = apps["bob"]
    assert api(here, bob_token, "GET", f"/api/v2/filters/{created.id}").status_code == 404
    assert api(here, bob_token, "DELETE", f"/api/v2/filters/keywords/{keyword.id}").status_code == 404
    assert [k.keyword for k in alice.filter_keywords_v2(created.id)] == ["finale", "ending"]

    matching = bob.status_post("what a Finale that was")
    plain = bob.status_post("nothing to hide here")
    home = {s["id"]: s for s in api(here, alice_token, "GET", "/api/v1/timelines/home").json()}
    flagged = home[str(matching.id)]
    assert_entity("Status", flagged)
    assert [f["filter"]["title"] for f in flagged["filtered"]] == ["Spoilers"]
    assert flagged["filtered"][0]["keyword_matches"] == ["finale"]
    assert_entity("FilterResult", flagged["filtered"][0])
    assert home[str(plain.id)]["filtered"] == []

    # hide: the post no longer reaches the home timeline at all.
    api(here, alice_token, "PUT", f"/api/v2/filters/{created.id}", json={"filter_action": "hide"})
    assert str(matching.id) not in [s["id"] for s in api(here, alice_token, "GET", "/api/v1/timelines/home").json()]
    alice.delete_filter_keyword_v2(keyword.id)
    assert [k.keyword for k in alice.filter_keywords_v2(created.id)] == ["finale"]
    # keywords_attributes on update: with an id changes or (_destroy) removes it, without one adds.
    first = alice.filter_keywords_v2(created.id)[0]
    updated = alice.update_filter_v2(created.id, keywords_attributes=[
        {"id": first.id, "_destroy": True}, {"keyword": "season finale", "whole_word": False}])
    assert [(k.keyword, k.whole_word) for k in updated.keywords] == [("season finale", False)]
    assert updated.filter_action == "hide" and updated.title == "Spoilers"
    alice.delete_filter_v2(created.id)
    assert alice.filters_v2() == []
    bad = api(here, alice_token, "POST", "/api/v2/filters",
              json={"title": "x", "context": ["everywhere"], "keywords_attributes": [{"keyword": "a"}]})
    assert bad.status_code == 422


def test_following_a_tag_lists_it_and_brings_its_posts_home(here, apps):
    alice, alice_token = apps["alice"]
    carol, _ = apps["carol"]  # alice does not follow carol
    tag = alice.tag_follow("Gardening")
    assert tag.name == "gardening" and tag.following is True
    raw = api(here, alice_token, "GET", "/api/v1/followed_tags").json()
    assert [t["name"] for t in raw] == ["gardening"]
    assert_entity("Tag", raw[0])
    assert api(here, alice_token, "GET", "/api/v1/tags/gardening").json()["following"] is True
    anonymous = api(here, None, "GET", "/api/v1/tags/Gardening").json()  # public, as in Mastodon
    assert anonymous["name"] == "gardening" and "following" not in anonymous
    tagged = carol.status_post("first tomatoes #gardening")
    assert str(tagged.id) in [s["id"] for s in api(here, alice_token, "GET", "/api/v1/timelines/home").json()]
    alice.tag_unfollow("gardening")
    assert alice.followed_tags() == []


def test_search_v2_finds_an_indexable_post_an_account_and_a_hashtag(here, apps):
    alice, alice_token = apps["alice"]
    carol, _ = apps["carol"]
    carol.account_update_credentials(indexable=True, display_name="Carol Quince")
    found_post = carol.status_post("the marmalade recipe #preserves")
    results = api(here, alice_token, "GET", "/api/v2/search", params={"q": "marmalade"}).json()
    assert_entity("SearchV2", results)
    assert [s["id"] for s in results["statuses"]] == [str(found_post.id)]
    for status in results["statuses"]:
        assert_entity("Status", status)
    accounts = alice.search_v2("Quince", result_type="accounts")
    assert [a.acct for a in accounts.accounts] == ["carol"]
    assert_entity("Account", api(here, alice_token, "GET", "/api/v2/search",
                                 params={"q": "Quince", "type": "accounts"}).json()["accounts"][0])
    tags = api(here, alice_token, "GET", "/api/v2/search", params={"q": "#preserves", "type": "hashtags"}).json()
    assert [t["name"] for t in tags["hashtags"]] == ["preserves"]
    # A person who did not let their posts be found is not found by their words.
    _, bob_token = apps["bob"]
    alice.status_post("alice writes about marmalade too")
    again = api(here, bob_token, "GET", "/api/v2/search", params={"q": "marmalade", "type": "statuses"}).json()
    assert [s["id"] for s in again["statuses"]] == [str(found_post.id)]
    assert api(here, None, "GET", "/api/v2/search", params={"q": "@carol"}).json()["accounts"][0]["acct"] == "carol"


def test_a_pinned_post_shows_in_account_statuses_with_pinned_true(here, apps):
    bob, bob_token = apps["bob"]
    alice, alice_token = apps["alice"]
    older = bob.status_post("pin me")
    bob.status_post("a newer post")
    pinned = bob.status_pin(older.id)
    assert pinned.pinned is True
    me = bob.me().id
    raw = api(here, alice_token, "GET", f"/api/v1/accounts/{me}/statuses", params={"pinned": "true"}).json()
    assert [s["id"] for s in raw] == [str(older.id)]
    assert_entity("Status", raw[0])
    assert api(here, bob_token, "GET", f"/api/v1/statuses/{older.id}").json()["pinned"] is True
    # Only one's own posts can be pinned: someone else's is not found.
    assert api(here, alice_token, "POST", f"/api/v1/statuses/{older.id}/pin").status_code == 404
    bob.status_unpin(older.id)
    assert bob.account_statuses(me, pinned=True) == []


def test_profile_fields_round_trip_through_update_credentials(here, apps):
    bob, bob_token = apps["bob"]
    updated = bob.account_update_credentials(fields=[("Pronouns", "they/them"), ("Site", "https://bob.example/")])
    assert [(f.name, f.verified_at) for f in updated.fields] == [("Pronouns", None), ("Site", None)]
    raw = api(here, bob_token, "GET", "/api/v1/accounts/verify_credentials").json()
    assert_entity("Account", raw)
    assert raw["fields"][0] == {"name": "Pronouns", "value": "they/them", "verified_at": None}
    assert 'href="https://bob.example/"' in raw["fields"][1]["value"]
    assert [(f["name"], f["value"]) for f in raw["source"]["fields"]] == [
        ("Pronouns", "they/them"), ("Site", "https://bob.example/")]
    for item in raw["fields"]:
        assert_entity("AccountField", item)
    too_many = api(here, bob_token, "PATCH", "/api/v1/accounts/update_credentials",
                   data={f"fields_attributes[{i}][{k}]": f"{k}{i}" for i in range(5) for k in ("name", "value")})
    assert too_many.status_code == 422
    assert len(api(here, bob_token, "GET", "/api/v1/accounts/verify_credentials").json()["fields"]) == 2


def _png(color: str, size: tuple[int, int]) -> io.BytesIO:
    data = io.BytesIO()
    Image.new("RGB", size, color).save(data, "PNG")
    data.seek(0)
    return data


def test_account_pictures_come_from_this_server_also_for_other_servers_accounts(pair, apps, browser):
    here, there = pair
    context = browser.new_context()
    try:
        dave, _ = _app_for(context.new_page(), there, "dave")
    finally:
        context.close()
    dave.account_update_credentials(avatar=_png("red", (64, 64)), avatar_mime_type="image/png",
                                    header=_png("blue", (300, 100)), header_mime_type="image/png")
    on_there = dave.me()
    assert on_there.avatar.startswith(there.base + "/") and on_there.header.startswith(there.base + "/")
    assert not on_there.header.endswith("/static/api/header.png")  # the picture, not the placeholder

    alice, alice_token = apps["alice"]
    found = alice.search_v2(f"@dave@{there.domain}", resolve=True, result_type="accounts").accounts
    raw = api(here, alice_token, "GET", f"/api/v1/accounts/{found[0].id}").json()
    assert_entity("Account", raw)
    # What the app loads is this server's media cache, never the other server (which would learn
    # who reads): the same route the web pages use.
    for name in ("avatar", "avatar_static", "header", "header_static"):
        assert raw[name].startswith(here.base + "/media/remote/"), (name, raw[name])
    for name in ("avatar", "header"):
        picture = requests.get(raw[name], timeout=10)
        assert picture.status_code == 200 and picture.headers["Content-Type"].startswith("image/"), name
        assert picture.url.startswith(here.base + "/")
