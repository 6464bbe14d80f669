"""When a poll ends, the people who voted in it and its author hear of it (Mastodon's `poll`
notification): on the poll's own server when the closing job ends it, and on another server when
the poll's Update with `closed` arrives. Two real `fedserver serve` processes, apps driven by
Mastodon.py with tokens from the real authorization page, entities checked strictly, and the web
notifications page."""
from __future__ import annotations

from typing import Iterator

import pytest
from mastodon import Mastodon
from playwright.sync_api import Page, expect

from tests.api.conftest import PASSWORD
from tests.api.entities import assert_entity
from tests.api.oauth_flow import OOB, SCOPES, api, approve, new_app
from tests.e2e.processes import ProcessGroup, ServerProcess, serving_with_users, wait_for

SHORTEST = 3
# Long enough for the poll to reach the other server and be voted on there.
POLL_SECONDS = 12


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """`here` (alice, who asks, and carol) and `there` (bob)."""
    group = ProcessGroup(tmp_path_factory.mktemp("api-poll-notes"))
    here, there = group("here", poll_min_expiry_seconds=SHORTEST), group("there")
    with serving_with_users(group, PASSWORD, [(here, ("alice", "carol", "erin")), (there, ("bob",))]):
        yield here, there


def _app_for(page: Page, server: ServerProcess, username: str) -> tuple[Mastodon, str]:
    page.context.clear_cookies()
    client_id, client_secret = new_app(server)
    app = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=server.base)
    code = approve(page, app.auth_request_url(redirect_uris=OOB, scopes=SCOPES, allow_http=True), username=username)
    return app, app.log_in(code=code, redirect_uri=OOB, scopes=SCOPES, allow_http=True)


def _poll_notifications(server: ServerProcess, token: str) -> list[dict]:
    return api(server, token, "GET", "/api/v1/notifications", params={"types[]": "poll"}).json()


def test_voters_here_and_on_another_server_and_the_author_hear_that_the_poll_ended(page: Page, pair):
    here, there = pair
    alice, alice_token = _app_for(page, here, "alice")
    carol, carol_token = _app_for(page, here, "carol")
    _, erin_token = _app_for(page, here, "erin")
    bob, bob_token = _app_for(page, there, "bob")

    found = bob.search_v2(f"@alice@{here.domain}", resolve=True, result_type="accounts").accounts
    bob.account_follow(found[0].id)
    wait_for(lambda: bob.account_relationships([found[0].id])[0].following, what="alice's server to accept")

    status = alice.status_post("Tea or coffee?", poll=alice.make_poll(["Tea", "Coffee"], expires_in=POLL_SECONDS))
    carol.poll_vote(status.poll.id, [0])
    remote = wait_for(lambda: [s for s in bob.timeline_home() if "Tea or coffee" in s.content],
                      what="the poll to reach bob's server")[0]
    bob.poll_vote(remote.poll.id, [1])
    assert not _poll_notifications(here, alice_token) and not _poll_notifications(there, bob_token)

    # The poll ends here: its author and the voter here are told, once each, by the author.
    for token in (alice_token, carol_token):
        items = wait_for(lambda: _poll_notifications(here, token), timeout=POLL_SECONDS + 20,
                         what="the poll-ended notification")
        assert len(items) == 1
        assert_entity("Notification", items[0])
        assert items[0]["type"] == "poll" and items[0]["account"]["acct"] == "alice"
        assert items[0]["status"]["id"] == str(status.id) and items[0]["status"]["poll"]["expired"] is True
    # Someone who did not vote hears nothing.
    assert _poll_notifications(here, erin_token) == []
    # The voter on the other server hears of it when the closing Update arrives there.
    items = wait_for(lambda: _poll_notifications(there, bob_token), timeout=30, what="bob's poll notification")
    assert len(items) == 1
    assert_entity("Notification", items[0])
    assert items[0]["account"]["acct"] == f"alice@{here.domain}" and items[0]["status"]["id"] == str(remote.id)
    assert items[0]["status"]["poll"]["expired"] is True

    # Grouped notifications show it as a group of its own.
    groups = api(here, carol_token, "GET", "/api/v2/notifications").json()["notification_groups"]
    assert [(g["type"], g["status_id"]) for g in groups] == [("poll", str(status.id))]
    assert groups[0]["group_key"].startswith("ungrouped-")

    # The web notifications page says so too, with the poll's results.
    page.context.clear_cookies()
    page.goto(f"{here.base}/auth/sign_in")
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{here.base}/notifications")
    notice = page.locator("li.notification.poll")
    expect(notice).to_contain_text("a poll you voted in has ended")
    expect(notice).to_contain_text("Tea or coffee?")


def test_a_voter_hears_that_a_remote_poll_ended_even_when_its_server_never_says_so(page: Page, pair):
    """As Mastodon does: at a remote poll's end time the voters here are told, whether or not the
    final Update arrives (here the poll's server is down by then)."""
    here, there = pair
    alice, _ = _app_for(page, here, "alice")
    bob, bob_token = _app_for(page, there, "bob")
    before = len(_poll_notifications(there, bob_token))
    status = alice.status_post("Rain or shine?", poll=alice.make_poll(["Rain", "Shine"], expires_in=POLL_SECONDS))
    remote = wait_for(lambda: [s for s in bob.timeline_home() if "Rain or shine" in s.content],
                      what="the poll to reach bob's server")[0]
    bob.poll_vote(remote.poll.id, [1])
    here.kill()  # the poll's server goes away before the end: no Update will come
    items = wait_for(lambda: [n for n in _poll_notifications(there, bob_token) if n["status"]["id"] == str(remote.id)],
                     timeout=POLL_SECONDS + 20, what="bob's poll notification")
    assert len(items) == 1 and len(_poll_notifications(there, bob_token)) == before + 1
    assert_entity("Notification", items[0])
    assert items[0]["type"] == "poll" and items[0]["status"]["poll"]["expired"] is True
    assert items[0]["account"]["acct"] == f"alice@{here.domain}" and status.poll.id
