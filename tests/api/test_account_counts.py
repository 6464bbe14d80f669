"""The accounts that come with a page of statuses count what the viewer may see, as the account's
own endpoint and profile page count it: followers-only posts for followers and the author, not for
others. A page's accounts are read together (one read for all their counts, not three per
account, and posts from account_post_counts: bench/api.py), so this checks every account on a page,
for viewers with different views, through posting and deleting."""
from __future__ import annotations

from playwright.sync_api import Page

from tests.api.entities import assert_entity
from tests.api.oauth_flow import api, user_token


def _accounts_on(statuses: list[dict]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for status in statuses:
        assert_entity("Status", status)
        for account in (status["account"], (status.get("reblog") or {}).get("account")):
            if account:
                found[account["acct"]] = account
    return found


def test_accounts_in_a_page_of_statuses_count_what_the_viewer_may_see(page: Page, server):
    alice = user_token(server, page, username="alice")
    page.context.clear_cookies()
    bob = user_token(server, page, username="bob")
    bob_id = api(server, bob, "GET", "/api/v1/accounts/verify_credentials").json()["id"]
    for text, visibility in (("one", "public"), ("two", "private"), ("three", "public"), ("four", "unlisted")):
        assert api(server, bob, "POST", "/api/v1/statuses",
                   json={"status": f"bob {text}", "visibility": visibility}).status_code == 200
    assert api(server, alice, "POST", "/api/v1/statuses",
               json={"status": "alice only for followers", "visibility": "private"}).status_code == 200
    newest_bob = api(server, bob, "GET", f"/api/v1/accounts/{bob_id}/statuses").json()[0]
    assert newest_bob["content"] == "<p>bob four</p>"
    assert api(server, alice, "POST", f"/api/v1/accounts/{bob_id}/follow").json()["following"] is True

    # alice follows bob: his followers-only post counts; she is herself: hers does too.
    home = _accounts_on(api(server, alice, "GET", "/api/v1/timelines/home", params={"limit": "40"}).json())
    assert set(home) == {"alice", "bob"}
    assert (home["bob"]["statuses_count"], home["bob"]["followers_count"], home["bob"]["following_count"]) == (4, 1, 0)
    assert (home["alice"]["statuses_count"], home["alice"]["followers_count"], home["alice"]["following_count"]) \
        == (1, 0, 1)
    assert home["bob"]["last_status_at"] == newest_bob["created_at"][:10]
    single = api(server, alice, "GET", f"/api/v1/accounts/{bob_id}").json()
    assert single["statuses_count"] == 4 and single["followers_count"] == 1

    # Someone signed out sees bob's public and unlisted posts only, and counts those.
    public = _accounts_on(api(server, None, "GET", f"/api/v1/accounts/{bob_id}/statuses").json())
    assert public["bob"]["statuses_count"] == 3
    assert api(server, None, "GET", f"/api/v1/accounts/{bob_id}").json()["statuses_count"] == 3

    # Once alice unfollows, her view counts as a stranger's; a deleted post is counted by nobody.
    assert api(server, alice, "POST", f"/api/v1/accounts/{bob_id}/unfollow").json()["following"] is False
    assert api(server, bob, "DELETE", f"/api/v1/statuses/{newest_bob['id']}").status_code == 200
    statuses = api(server, alice, "GET", f"/api/v1/accounts/{bob_id}/statuses").json()
    shown = _accounts_on(statuses)
    assert (shown["bob"]["statuses_count"], shown["bob"]["followers_count"]) == (2, 0)
    assert api(server, bob, "GET", "/api/v1/accounts/verify_credentials").json()["statuses_count"] == 3
