"""Grouped notifications (/api/v2/notifications, Mastodon 4.3) as an app that sees version 4.3 and
api_versions.mastodon 2 uses them: Mastodon.py against a real `fedserver serve`, tokens from the
real authorization page, every entity checked strictly."""
from __future__ import annotations

from typing import Iterator

import pytest
from mastodon import Mastodon
from playwright.sync_api import Page

from tests.api.conftest import PASSWORD
from tests.api.entities import assert_entity
from tests.api.oauth_flow import OOB, SCOPES, api, approve, new_app
from tests.e2e.processes import ProcessGroup, ServerProcess

PEOPLE = ("alice", "bob", "carol", "dave")


@pytest.fixture(scope="module")
def here(tmp_path_factory) -> Iterator[ServerProcess]:
    group = ProcessGroup(tmp_path_factory.mktemp("api-grouped"))
    server = group("here")
    secret = server.directory / "password.txt"
    secret.write_text(PASSWORD, encoding="utf-8")
    for name in PEOPLE:
        # alice administers the instance (its contact account, which InstanceV2 requires).
        server.run("user", "create", name, *(["--admin"] if name == "alice" else []), "--password-file",
                   str(secret), check=True)
    try:
        server.start()
        yield server
    finally:
        group.close()


def app_for(page: Page, server: ServerProcess, username: str, **options) -> tuple[Mastodon, str]:
    page.context.clear_cookies()
    client_id, client_secret = new_app(server)
    app = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=server.base, **options)
    code = approve(page, app.auth_request_url(redirect_uris=OOB, scopes=SCOPES, allow_http=True), username=username)
    token = app.log_in(code=code, redirect_uri=OOB, scopes=SCOPES, allow_http=True)
    return app, token


@pytest.fixture(scope="module")
def apps(here, browser) -> dict[str, tuple[Mastodon, str]]:
    context = browser.new_context()
    try:
        page = context.new_page()
        return {name: app_for(page, here, name, version_check_mode="created") for name in PEOPLE}
    finally:
        context.close()


def _check_results(raw: dict) -> None:
    assert_entity("GroupedNotificationsResults", raw)
    for group in raw["notification_groups"]:
        assert_entity("NotificationGroup", group)
    for account in raw["accounts"]:
        assert_entity("Account", account)
    for partial in raw.get("partial_accounts") or []:
        assert_entity("PartialAccountWithAvatar", partial)
    for status in raw["statuses"]:
        assert_entity("Status", status)
    # Every account and status a group names is in the answer.
    known = {a["id"] for a in raw["accounts"]} | {a["id"] for a in raw.get("partial_accounts") or []}
    statuses = {s["id"] for s in raw["statuses"]}
    for group in raw["notification_groups"]:
        assert set(group["sample_account_ids"]) <= known, group
        assert group["status_id"] is None or group["status_id"] in statuses, group


def test_likes_of_one_post_and_follows_arrive_as_groups_that_an_app_pages_opens_and_dismisses(here, apps):
    alice, alice_token = apps["alice"]
    instance = alice.instance()
    assert instance.version.startswith("4.3.0 (compatible; fedserver ")
    assert alice.verify_minimum_version("4.3.0", cached=True)
    post = alice.status_post("Which tea?")
    alice_id = alice.me().id
    for name in ("bob", "carol", "dave"):
        app, _ = apps[name]
        app.status_favourite(post.id)
        app.account_follow(alice_id)
    apps["bob"][0].status_post("@alice green, always")

    raw = api(here, alice_token, "GET", "/api/v2/notifications").json()
    _check_results(raw)
    by_type = {group["type"]: group for group in raw["notification_groups"]}
    assert [group["type"] for group in raw["notification_groups"]] == ["mention", "follow", "favourite"]
    likes = by_type["favourite"]
    assert likes["notifications_count"] == 3 and likes["status_id"] == str(post.id)
    assert len(likes["sample_account_ids"]) == 3 and likes["group_key"].startswith("like-")
    assert by_type["follow"]["notifications_count"] == 3
    assert by_type["mention"]["group_key"] == f"ungrouped-{by_type['mention']['most_recent_notification_id']}"
    # v1 shows each notification on its own, carrying its group's key.
    v1 = api(here, alice_token, "GET", "/api/v1/notifications").json()
    assert len(v1) == 7 and sum(item["group_key"] == likes["group_key"] for item in v1) == 3

    # An app that does not want follows grouped gets each on its own.
    ungrouped = api(here, alice_token, "GET", "/api/v2/notifications", params={"grouped_types[]": "favourite"}).json()
    assert [g["type"] for g in ungrouped["notification_groups"]].count("follow") == 3
    only_likes = alice.grouped_notifications(types=["favourite"])
    assert [g.type for g in only_likes.notification_groups] == ["favourite"]
    # partial_avatars (Mastodon.py's default): the newest account in full, the others' avatars.
    partial = api(here, alice_token, "GET", "/api/v2/notifications",
                  params={"expand_accounts": "partial_avatars", "types[]": "favourite"}).json()
    _check_results(partial)
    assert len(partial["accounts"]) == 1 and len(partial["partial_accounts"]) == 2

    # Paging one group at a time with the Link headers, as Mastodon.py's fetch_next does: the
    # likes and follows came in turns, so their groups show again on later pages (apps merge them
    # by key, as with Mastodon), and the pages together hold every notification exactly once.
    page = alice.grouped_notifications(limit=1, expand_accounts="full")
    counts: dict[str, int] = {}
    order: list[str] = []
    while page is not None and page.notification_groups:
        assert len(page.notification_groups) == 1
        group = page.notification_groups[0]
        counts[group.group_key] = counts.get(group.group_key, 0) + group.notifications_count
        order += [] if group.type in order else [group.type]
        page = alice.fetch_next(page)
    assert order == ["mention", "follow", "favourite"]
    assert counts[likes["group_key"]] == 3 and sum(counts.values()) == 7
    previous = api(here, alice_token, "GET", "/api/v2/notifications",
                   params={"min_id": likes["page_max_id"], "limit": 1}).json()
    assert [g["type"] for g in previous["notification_groups"]] == ["follow"]

    opened = alice.grouped_notification(likes["group_key"])
    raw_opened = api(here, alice_token, "GET", f"/api/v2/notifications/{likes['group_key']}").json()
    _check_results(raw_opened)
    assert opened.notification_groups[0].notifications_count == 3
    accounts = api(here, alice_token, "GET", f"/api/v2/notifications/{likes['group_key']}/accounts").json()
    for account in accounts:
        assert_entity("Account", account)
    assert sorted(a["acct"] for a in accounts) == ["bob", "carol", "dave"]

    assert alice.unread_grouped_notifications_count() == 3
    assert api(here, alice_token, "GET", "/api/v2/notifications/unread_count",
               params={"grouped_types[]": "favourite"}).json() == {"count": 5}

    alice.dismiss_grouped_notification(likes["group_key"])
    after = api(here, alice_token, "GET", "/api/v2/notifications").json()
    assert [g["type"] for g in after["notification_groups"]] == ["mention", "follow"]
    assert api(here, alice_token, "GET", f"/api/v2/notifications/{likes['group_key']}").status_code == 404
    assert api(here, alice_token, "POST", f"/api/v2/notifications/{likes['group_key']}/dismiss").status_code == 404


def test_someone_elses_group_is_not_found(here, apps):
    _, alice_token = apps["alice"]
    _, carol_token = apps["carol"]
    groups = api(here, alice_token, "GET", "/api/v2/notifications").json()["notification_groups"]
    assert groups
    for group in groups:
        assert api(here, carol_token, "GET", f"/api/v2/notifications/{group['group_key']}").status_code == 404
        assert api(here, carol_token, "POST",
                   f"/api/v2/notifications/{group['group_key']}/dismiss").status_code == 404
    assert api(here, None, "GET", "/api/v2/notifications").status_code == 401


def test_a_4_3_aware_app_finds_every_start_up_endpoint(here, apps):
    """The calls Mastodon's web app, Phanpy and Mastodon.py make at start-up once the server says
    4.3 and api_versions.mastodon 2: none answers 404."""
    _, token = apps["dave"]
    instance = api(here, token, "GET", "/api/v2/instance").json()
    assert_entity("InstanceV2", instance)
    assert instance["api_versions"] == {"mastodon": 2}
    for path, params in (("/api/v2/notifications", {"limit": "40", "expand_accounts": "partial_avatars",
                                                    "grouped_types[]": "favourite"}),
                         ("/api/v2/notifications/unread_count", {}), ("/api/v2/notifications/policy", {}),
                         ("/api/v1/notifications/requests", {}), ("/api/v1/notifications/requests/merged", {}),
                         ("/api/v1/markers", {"timeline[]": "notifications"}), ("/api/v1/followed_tags", {}),
                         ("/api/v1/lists", {}), ("/api/v2/filters", {}), ("/api/v1/announcements", {}),
                         ("/api/v1/custom_emojis", {}), ("/api/v1/instance/rules", {}),
                         ("/api/v1/preferences", {}), ("/api/v1/trends/tags", {})):
        response = api(here, token, "GET", path, params=params)
        assert response.status_code == 200, (path, response.status_code, response.text)
    assert_entity("NotificationPolicy", api(here, token, "GET", "/api/v2/notifications/policy").json())
