"""Polls through the client API, as an app makes them: Mastodon.py posts a status with a poll
(make_poll), another person votes (poll_vote), the Poll entity is checked strictly, and the poll
ends at its end time. A real `fedserver serve`; tokens from the real authorization page."""
from __future__ import annotations

from typing import Iterator

import pytest
from mastodon import Mastodon, MastodonAPIError
from playwright.sync_api import Page

from tests.api.conftest import PASSWORD
from tests.api.entities import assert_entity
from tests.api.oauth_flow import OOB, SCOPES, api, approve, new_app
from tests.e2e.processes import ProcessGroup, ServerProcess, wait_for

# The shortest poll the test instance allows (production: 300 s, Mastodon's minimum).
SHORTEST = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    group = ProcessGroup(tmp_path_factory.mktemp("api-polls"))
    here = group("here", poll_min_expiry_seconds=SHORTEST)
    secret = here.directory / "password.txt"
    secret.write_text(PASSWORD, encoding="utf-8")
    for name in ("alice", "bob"):
        here.run("user", "create", name, "--password-file", str(secret), check=True)
    try:
        here.start()
        yield here
    finally:
        group.close()


def _app_for(page: Page, server: ServerProcess, username: str) -> tuple[Mastodon, str]:
    client_id, client_secret = new_app(server)
    app = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=server.base)
    page.context.clear_cookies()
    code = approve(page, app.auth_request_url(redirect_uris=OOB, scopes=SCOPES, allow_http=True), username=username)
    token = app.log_in(code=code, redirect_uri=OOB, scopes=SCOPES, allow_http=True)
    return app, token


def test_an_app_posts_a_poll_another_person_votes_and_it_ends_at_its_time(page: Page, server):
    alice, alice_token = _app_for(page, server, "alice")
    bob, bob_token = _app_for(page, server, "bob")

    limits = api(server, None, "GET", "/api/v2/instance").json()["configuration"]["polls"]
    assert limits == {"max_options": 4, "max_characters_per_option": 50, "min_expiration": SHORTEST,
                      "max_expiration": 7 * 86400}
    status = alice.status_post("Which fruit?", poll=alice.make_poll(["Apple", "Pear", "Plum"], expires_in=3600,
                                                                   multiple=True))
    raw = api(server, alice_token, "GET", f"/api/v1/statuses/{status.id}").json()
    assert_entity("Status", raw)
    assert_entity("Poll", raw["poll"])
    assert raw["poll"]["multiple"] is True and raw["poll"]["expired"] is False
    assert [o["title"] for o in raw["poll"]["options"]] == ["Apple", "Pear", "Plum"]
    assert raw["poll"]["voted"] is True and raw["poll"]["own_votes"] == []  # the author's own poll
    poll_id = raw["poll"]["id"]

    seen = api(server, bob_token, "GET", f"/api/v1/polls/{poll_id}").json()
    assert_entity("Poll", seen)
    assert seen["voted"] is False and seen["votes_count"] == 0 and seen["voters_count"] == 0
    voted = bob.poll_vote(poll_id, [0, 2])
    assert voted.voted and voted.own_votes == [0, 2]
    after = api(server, bob_token, "GET", f"/api/v1/polls/{poll_id}").json()
    assert_entity("Poll", after)
    assert [o["votes_count"] for o in after["options"]] == [1, 0, 1]
    assert after["votes_count"] == 2 and after["voters_count"] == 1 and after["own_votes"] == [0, 2]
    with pytest.raises(MastodonAPIError, match="already voted"):
        bob.poll_vote(poll_id, [1])
    with pytest.raises(MastodonAPIError, match="your own poll"):
        alice.poll_vote(poll_id, [1])
    anonymous = api(server, None, "GET", f"/api/v1/polls/{poll_id}").json()
    assert_entity("Poll", anonymous)

    # Limits answer 422 with the reason: too many options, too long, too short a duration.
    for poll, reason in ((["1", "2", "3", "4", "5"], "2 to 4 options"), (["x" * 51, "y"], "50 characters")):
        response = api(server, alice_token, "POST", "/api/v1/statuses",
                       data={"status": "bad", "poll[options][]": poll, "poll[expires_in]": "3600"})
        assert response.status_code == 422 and reason in response.json()["error"]
    response = api(server, alice_token, "POST", "/api/v1/statuses",
                   json={"status": "bad", "poll": {"options": ["a", "b"], "expires_in": 1}})
    assert response.status_code == 422 and "between" in response.json()["error"]

    # A one-choice poll with hidden totals ends after SHORTEST seconds.
    short = alice.status_post("Quick?", poll=alice.make_poll(["Yes", "No"], expires_in=SHORTEST, hide_totals=True))
    bob.poll_vote(short.poll.id, 1)
    hidden = api(server, bob_token, "GET", f"/api/v1/polls/{short.poll.id}").json()
    assert_entity("Poll", hidden)
    assert [o["votes_count"] for o in hidden["options"]] == [None, None]
    with pytest.raises(MastodonAPIError, match="one choice"):
        bob.poll_vote(short.poll.id, [0, 1])

    def ended():
        body = api(server, bob_token, "GET", f"/api/v1/polls/{short.poll.id}").json()
        return body if body["expired"] else None
    final = wait_for(ended, timeout=SHORTEST + 15, what="the poll ended")
    assert_entity("Poll", final)
    assert [o["votes_count"] for o in final["options"]] == [0, 1] and final["voters_count"] == 1
    # The closing job runs within seconds of the end (the worker looks at least every 5 s).
    wait_for(lambda: server.value("SELECT closed_at FROM polls WHERE post_id = ?", (int(short.id),)),
             timeout=15, what="the poll closed")
    with pytest.raises(MastodonAPIError, match="ended"):
        bob.poll_vote(short.poll.id, 0)
