"""An app posts, pages the home timeline, and sees another server's posts, favourites and replies
arrive, through Mastodon.py against two real fedserver processes (tokens from the real
authorization page)."""
from __future__ import annotations

import io
from typing import Iterator

import pytest
import requests
from PIL import Image
from mastodon import Mastodon, MastodonNotFoundError
from playwright.sync_api import Page

from tests.api.conftest import PASSWORD
from tests.api.entities import assert_entity
from tests.api.oauth_flow import OOB, SCOPES, api, approve, new_app, user_token
from tests.e2e.processes import ProcessGroup, ServerProcess, wait_for


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """`here` (alice, an admin, bob, and dana whose account is locked) and `there` (carol)."""
    group = ProcessGroup(tmp_path_factory.mktemp("api-pair"))
    here, there = group("here"), group("there")
    for server, users in ((here, ("alice", "bob", "dana")), (there, ("carol",))):
        secret = server.directory / "password.txt"
        secret.write_text(PASSWORD, encoding="utf-8")
        for index, name in enumerate(users):
            options = ["--admin"] if index == 0 else ["--locked"] if name == "dana" else []
            server.run("user", "create", name, *options, "--password-file", str(secret), check=True)
    try:
        here.start()
        there.start()
        yield here, there
    finally:
        group.close()


def _app_for(page: Page, server: ServerProcess, username: str) -> tuple[Mastodon, str]:
    client_id, client_secret = new_app(server)
    app = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=server.base)
    code = approve(page, app.auth_request_url(redirect_uris=OOB, scopes=SCOPES, allow_http=True), username=username)
    token = app.log_in(code=code, redirect_uri=OOB, scopes=SCOPES, allow_http=True)
    return app, token


def test_posting_paging_the_home_timeline_and_deleting(page: Page, pair):
    here, _ = pair
    app, token = _app_for(page, here, "alice")
    posted = [app.status_post(f"post number {n}", idempotency_key=f"key-{n}") for n in range(5)]
    # A retried request with the same Idempotency-Key does not post twice.
    again = app.status_post("post number 4", idempotency_key="key-4")
    assert again.id == posted[-1].id
    raw = api(here, token, "GET", f"/api/v1/statuses/{posted[0].id}").json()
    assert_entity("Status", raw)
    assert raw["content"] == "<p>post number 0</p>" and raw["visibility"] == "public"
    assert raw["account"]["acct"] == "alice" and raw["favourited"] is False

    # Pages of two, newest first, by the Link header's next (what fetch_next follows).
    first = app.timeline_home(limit=2)
    seen = [s.id for s in first]
    following = app.fetch_next(first)
    while following:
        seen += [s.id for s in following]
        following = app.fetch_next(following)
    assert seen == [s.id for s in reversed(posted)]
    # And back up with min_id (fetch_previous): the items just above the cursor, without gaps.
    oldest_two = app.timeline_home(limit=2, min_id=posted[0].id)
    assert [s.id for s in oldest_two] == [posted[2].id, posted[1].id]
    assert [s.id for s in app.timeline_home(since_id=posted[2].id)] == [posted[4].id, posted[3].id]
    response = api(here, token, "GET", "/api/v1/timelines/home", params={"limit": "1000"})
    assert len(response.json()) == 5 and 'rel="next"' in response.headers["Link"]
    for status in response.json():
        assert_entity("Status", status)

    # Read positions set by one device are there for the next; each update counts a version.
    assert app.markers_get(["home"]) == {}
    app.markers_set(["home"], [posted[2].id])
    marker = app.markers_set(["home"], [posted[4].id])["home"]
    assert (marker.last_read_id, marker.version) == (posted[4].id, 2)
    raw_markers = api(here, token, "GET", "/api/v1/markers", params={"timeline[]": ["home", "notifications"]}).json()
    assert list(raw_markers) == ["home"] and raw_markers["home"]["last_read_id"] == str(posted[4].id)
    assert_entity("Marker", raw_markers["home"])
    form = api(here, token, "POST", "/api/v1/markers", data={"notifications[last_read_id]": "7"}).json()
    assert form["notifications"]["last_read_id"] == "7"

    # Replies name their parent; followers-only posts are "private" to apps.
    reply = app.status_post("a reply", in_reply_to_id=posted[0].id, visibility="private", spoiler_text="cw")
    assert reply.in_reply_to_id == posted[0].id and reply.visibility == "private" and reply.spoiler_text == "cw"

    deleted = app.status_delete(posted[1].id)
    assert deleted.text == "post number 1"
    with pytest.raises(MastodonNotFoundError):
        app.status(posted[1].id)
    public = api(here, None, "GET", "/api/v1/timelines/public", params={"local": "true"}).json()
    assert posted[1].id not in [s["id"] for s in public] and reply.id not in [s["id"] for s in public]


def test_someone_elses_posts_are_404_where_they_may_not_see_or_change_them(page: Page, pair):
    here, _ = pair
    alice_token = user_token(here, page, username="alice")
    page.context.clear_cookies()
    bob_token = user_token(here, page, username="bob")
    private = api(here, alice_token, "POST", "/api/v1/statuses",
                  data={"status": "only for followers", "visibility": "private"}).json()
    public = api(here, alice_token, "POST", "/api/v1/statuses", json={"status": "for everyone"}).json()
    assert api(here, bob_token, "GET", f"/api/v1/statuses/{private['id']}").status_code == 404
    assert api(here, None, "GET", f"/api/v1/statuses/{private['id']}").status_code == 404
    assert api(here, bob_token, "GET", f"/api/v1/statuses/{public['id']}").status_code == 200
    refused = api(here, bob_token, "DELETE", f"/api/v1/statuses/{public['id']}")
    assert refused.status_code == 404 and refused.json() == {"error": "Record not found"}
    assert api(here, alice_token, "GET", f"/api/v1/statuses/{public['id']}").status_code == 200
    invalid = api(here, alice_token, "POST", "/api/v1/statuses", data={"status": "x", "visibility": "secret"})
    assert invalid.status_code == 422 and invalid.json()["error"].startswith("Validation failed")
    assert api(here, alice_token, "POST", "/api/v1/statuses", data={"status": ""}).status_code == 422
    assert api(here, alice_token, "POST", "/api/v1/statuses",
               data={"status": "x", "language": "en\"><script>"}).status_code == 422
    with_media = api(here, alice_token, "POST", "/api/v1/statuses", data={"status": "x", "media_ids[]": "1"})
    assert with_media.status_code == 422
    media_only = api(here, alice_token, "GET", "/api/v1/timelines/public", params={"only_media": "true"}).json()
    assert media_only == []  # no post here has media


def test_another_servers_posts_favourites_and_replies_reach_the_app(page: Page, pair):
    here, there = pair
    app, token = _app_for(page, here, "alice")
    # Found by address (WebFinger on the other server), followed from the app.
    found = app.search_v2(f"@carol@{there.domain}", resolve=True, result_type="accounts").accounts
    assert [a.acct for a in found] == [f"carol@{there.domain}"]
    carol = found[0]
    assert_entity("Account", api(here, token, "GET", f"/api/v1/accounts/{carol.id}").json())
    app.account_follow(carol.id)
    wait_for(lambda: app.account_relationships([carol.id])[0].following, what="carol's server to accept",
             timeout=30, interval=0.3)
    carol_post = there.run("post", "carol", "hello from the other server", check=True).stdout.strip()
    wait_for(lambda: any("hello from the other server" in s.content for s in app.timeline_home()),
             what="carol's post on alice's home timeline", timeout=30, interval=0.3)
    remote = next(s for s in app.timeline_home() if "other server" in s.content)
    assert remote.account.acct == f"carol@{there.domain}" and remote.uri == carol_post

    there.run("follow", "carol", here.handle("alice"), check=True)
    wait_for(lambda: there.value("SELECT state FROM follows f JOIN actors a ON a.id = f.followee_id"
                                 " WHERE a.username = 'alice'") == "accepted", what="alice's server to accept",
             timeout=30)
    mine = app.status_post("a post carol will like and answer")
    local_copy = wait_for(lambda: there.value("SELECT uri FROM posts WHERE content_text LIKE '%carol will like%'"),
                          what="alice's post on carol's server", timeout=30)
    there.run("like", "carol", local_copy, check=True)
    there.run("post", "carol", f"@alice@{here.domain} nice one", "--reply-to", local_copy, check=True)
    notifications = wait_for(lambda: [n for n in app.notifications() if n.type in ("favourite", "mention")]
                             if len(app.notifications(types=["favourite", "mention"])) >= 2 else None,
                             what="the favourite and the reply as notifications", timeout=30, interval=0.3)
    kinds = {n.type for n in notifications}
    assert kinds == {"favourite", "mention"}
    favourite = next(n for n in notifications if n.type == "favourite")
    assert favourite.status.id == mine.id and favourite.account.acct == f"carol@{there.domain}"
    mention = next(n for n in notifications if n.type == "mention")
    assert mention.status.in_reply_to_id == mine.id
    raw = api(here, token, "GET", "/api/v1/notifications").json()
    for item in raw:
        assert_entity("Notification", item)
        if item["status"] is not None:
            assert_entity("Status", item["status"])
    assert {n["type"] for n in raw} == {"favourite", "mention", "follow"}
    without = api(here, token, "GET", "/api/v1/notifications",
                  params=[("exclude_types[]", "mention"), ("exclude_types[]", "follow")]).json()
    assert {n["type"] for n in without} == {"favourite"}
    only = api(here, token, "GET", "/api/v1/notifications", params={"types[]": "follow"}).json()
    assert [(n["type"], n["account"]["acct"], n["status"]) for n in only] == [("follow", f"carol@{there.domain}", None)]
    assert app.status(mine.id).favourites_count == 1 and app.status(mine.id).replies_count == 1

    assert api(here, token, "GET", "/api/v1/notifications/unread_count").json()["count"] >= 3
    one = api(here, token, "GET", f"/api/v1/notifications/{favourite.id}").json()
    assert (one["id"], one["type"]) == (str(favourite.id), "favourite")
    app.notifications_dismiss(favourite.id)
    assert api(here, token, "GET", f"/api/v1/notifications/{favourite.id}").status_code == 404
    assert "favourite" not in {n.type for n in app.notifications()}
    app.notifications_clear()
    assert app.notifications() == []


def test_favourites_boosts_threads_and_a_profiles_posts(page: Page, pair):
    here, _ = pair
    alice, alice_token = _app_for(page, here, "alice")
    page.context.clear_cookies()
    bob, bob_token = _app_for(page, here, "bob")
    root = alice.status_post("a thread about #gardens")
    own_reply = alice.status_post("and more", in_reply_to_id=root.id)
    answer = bob.status_post(f"@alice nice", in_reply_to_id=root.id)
    bob.status_post("something else")

    liked = bob.status_favourite(root.id)
    assert liked.favourited is True and liked.favourites_count == 1
    assert bob.status_favourite(root.id).favourites_count == 1  # twice is once
    boost = bob.status_reblog(root.id)
    assert boost.reblog.id == root.id and boost.account.acct == "bob" and boost.reblog.reblogged is True
    assert [a.acct for a in alice.status_favourited_by(root.id)] == ["bob"]
    assert [a.acct for a in alice.status_reblogged_by(root.id)] == ["bob"]
    raw_boost = api(here, bob_token, "POST", f"/api/v1/statuses/{root.id}/reblog").json()
    assert_entity("Status", raw_boost)
    assert_entity("Status", raw_boost["reblog"])
    # Bob's boost is on the home timeline of bob, as a reblog wrapper with its own, newer id.
    top = bob.timeline_home(limit=1)[0]
    assert top.reblog is not None and top.reblog.id == root.id and int(top.id) > int(root.id)
    assert [s.id for s in bob.favourites()] == [root.id]
    assert bob.status_bookmark(root.id).bookmarked is True
    assert bob.status_bookmark(answer.id).bookmarked is True
    first = bob.bookmarks(limit=1)
    assert [s.id for s in first] == [answer.id]  # the newest bookmark first
    assert [s.id for s in bob.fetch_next(first)] == [root.id]
    assert bob.status(root.id).bookmarked is True and alice.status(root.id).bookmarked is False
    assert bob.status_unbookmark(root.id).bookmarked is False
    assert [s.id for s in bob.bookmarks()] == [answer.id]
    assert bob.status_unreblog(root.id).reblogged is False
    assert bob.status_unfavourite(root.id).favourited is False
    assert bob.status_unfavourite(root.id).favourites_count == 0  # undoing what was not done is fine
    assert bob.favourites() == []

    thread = api(here, alice_token, "GET", f"/api/v1/statuses/{own_reply.id}/context").json()
    assert [s["id"] for s in thread["ancestors"]] == [root.id] and thread["descendants"] == []
    whole = alice.status_context(root.id)
    assert {s.id for s in whole.descendants} == {own_reply.id, answer.id}
    for status in api(here, alice_token, "GET", f"/api/v1/statuses/{root.id}/context").json()["descendants"]:
        assert_entity("Status", status)

    # Editing: the text changes, the earlier version stays in the history, the source is the text.
    edited = alice.status_update(root.id, "a thread about #gardens, edited", spoiler_text="plants")
    assert edited.edited_at is not None and "edited" in edited.content and edited.spoiler_text == "plants"
    source = alice.status_source(root.id)
    assert (source.text, source.spoiler_text) == ("a thread about #gardens, edited", "plants")
    history = api(here, alice_token, "GET", f"/api/v1/statuses/{root.id}/history").json()
    assert [h["content"] for h in history] == [root.content, edited.content]
    for version in history:
        assert_entity("StatusEdit", version)
    assert api(here, bob_token, "PUT", f"/api/v1/statuses/{root.id}", data={"status": "mine now"}).status_code == 404
    assert api(here, bob_token, "GET", f"/api/v1/statuses/{root.id}/source").status_code == 404

    me = alice.me()
    everything = [s.id for s in alice.account_statuses(me.id, limit=40)]
    assert everything[:2] == [own_reply.id, root.id]
    no_replies = [s.id for s in alice.account_statuses(me.id, exclude_replies=True, limit=40)]
    assert own_reply.id in no_replies  # a reply in one's own thread stays
    bob_me = bob.me()
    bob_posts = [s.id for s in alice.account_statuses(bob_me.id, exclude_replies=True)]
    assert answer.id not in bob_posts and bob_posts
    assert [s.id for s in alice.account_statuses(me.id, tagged="gardens")] == [root.id]
    assert [s.id for s in alice.timeline_hashtag("gardens")] == [root.id]
    assert [s["id"] for s in api(here, None, "GET", "/api/v1/timelines/tag/Gardens").json()] == [root.id]
    assert alice.account_statuses(me.id, pinned=True) == []
    response = api(here, None, "GET", f"/api/v1/accounts/{me.id}/statuses", params={"limit": "1"})
    assert len(response.json()) == 1 and 'rel="next"' in response.headers["Link"]


def test_following_a_locked_account_blocking_and_muting_from_apps(page: Page, pair):
    here, _ = pair
    alice, alice_token = _app_for(page, here, "alice")
    page.context.clear_cookies()
    dana, _ = _app_for(page, here, "dana")
    dana_id = alice.account_lookup("dana").id
    alice_id = alice.me().id

    asked = alice.account_follow(dana_id)
    assert (asked.following, asked.requested) == (False, True)
    assert [a.acct for a in dana.follow_requests()] == ["alice"]
    accepted = dana.follow_request_authorize(alice_id)
    assert accepted.followed_by is True
    assert alice.account_relationships([dana_id])[0].following is True
    assert dana.follow_requests() == []
    assert api(here, alice_token, "POST", "/api/v1/follow_requests/999999/authorize").status_code == 404

    bob_id = alice.account_lookup("bob").id
    assert alice.account_follow(bob_id).following is True
    first = alice.account_following(alice_id, limit=1)
    assert [a.acct for a in first] == ["bob"]  # the newest follow first
    assert [a.acct for a in alice.fetch_next(first)] == ["dana"]
    assert [a.acct for a in dana.account_followers(dana_id)] == ["alice"]
    for account in api(here, alice_token, "GET", f"/api/v1/accounts/{alice_id}/following").json():
        assert_entity("Account", account)
    muted = alice.account_mute(bob_id)
    assert muted.muting is True and muted.muting_notifications is True
    assert alice.account_unmute(bob_id).muting is False
    blocked = alice.account_block(bob_id)
    assert blocked.blocking is True and blocked.following is False
    relationship = api(here, alice_token, "GET", "/api/v1/accounts/relationships", params={"id[]": bob_id}).json()[0]
    assert_entity("Relationship", relationship)
    assert alice.account_unblock(bob_id).blocking is False
    assert alice.account_unfollow(dana_id).following is False
    assert alice.account_unfollow(dana_id).following is False  # unfollowing twice is fine
    assert api(here, alice_token, "POST", f"/api/v1/accounts/{alice_id}/follow").status_code == 422


def test_the_per_post_corpus_opt_out_is_a_fedserver_extension_for_people_who_consented(page: Page, pair):
    here, _ = pair
    here.run("consent", "set", "bob", "--train-ai", "allow", "--license", "CC-BY-4.0", "--scope", "all", check=True)
    bob_token = user_token(here, page, username="bob")
    kept_out = api(here, bob_token, "POST", "/api/v1/statuses",
                   data={"status": "not for training", "exclude_from_corpus": "true"}).json()
    assert kept_out["fedserver"] == {"exclude_from_corpus": True}
    assert here.value("SELECT corpus_excluded FROM posts WHERE id = ?", (int(kept_out["id"]),)) == 1
    source = api(here, bob_token, "GET", f"/api/v1/statuses/{kept_out['id']}/source").json()
    assert source["fedserver"] == {"exclude_from_corpus": True}
    let_in = api(here, bob_token, "PUT", f"/api/v1/statuses/{kept_out['id']}",
                 json={"status": "not for training", "exclude_from_corpus": False}).json()
    assert let_in["fedserver"] == {"exclude_from_corpus": False}
    assert here.value("SELECT corpus_excluded FROM posts WHERE id = ?", (int(kept_out["id"]),)) == 0
    # Others see no such field on bob's posts.
    assert "fedserver" not in api(here, None, "GET", f"/api/v1/statuses/{kept_out['id']}").json()

    # Without consent the opt-out means nothing (nothing goes into the corpus anyway), as on the web form.
    page.context.clear_cookies()
    alice_token = user_token(here, page, username="alice")
    plain = api(here, alice_token, "POST", "/api/v1/statuses",
                data={"status": "hello", "exclude_from_corpus": "1"}).json()
    assert plain["fedserver"] == {"exclude_from_corpus": False}


def test_editing_the_profile_from_an_app(page: Page, pair):
    here, _ = pair
    bob, token = _app_for(page, here, "bob")
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(picture, format="PNG")
    updated = bob.account_update_credentials(display_name="Bob Builder", note="I build *things*",
                                             avatar=picture.getvalue(), avatar_mime_type="image/png")
    assert updated.display_name == "Bob Builder" and updated.source.note == "I build *things*"
    assert "/media/" in updated.avatar
    assert requests.get(updated.avatar, timeout=10).headers["Content-Type"] == "image/png"
    # Only what is sent changes.
    locked = api(here, token, "PATCH", "/api/v1/accounts/update_credentials", data={"locked": "true"}).json()
    assert_entity("Account", locked)
    assert (locked["locked"], locked["display_name"], locked["source"]["note"]) == (True, "Bob Builder",
                                                                                  "I build *things*")
    assert api(here, token, "PATCH", "/api/v1/accounts/update_credentials",
               data={"display_name": "x" * 500}).status_code == 422
    bad = api(here, token, "PATCH", "/api/v1/accounts/update_credentials",
              files={"avatar": ("a.png", b"not a picture", "image/png")})
    assert bad.status_code == 422 and "error" in bad.json()
    api(here, token, "PATCH", "/api/v1/accounts/update_credentials", data={"locked": "false"})
