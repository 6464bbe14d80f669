"""A filter may name single posts (Mastodon's filter statuses): an app adds a post to a filter,
and the post is then shown behind the filter's warning (Status.filtered with status_matches) or
hidden, in the filter's contexts, whatever its words. Mastodon.py against a real `fedserver
serve`, tokens from the real authorization page, every entity checked strictly."""
from __future__ import annotations

from typing import Iterator

import pytest
from mastodon import Mastodon, MastodonAPIError
from playwright.sync_api import Page

from tests.api.conftest import PASSWORD
from tests.api.entities import assert_entity
from tests.api.oauth_flow import OOB, SCOPES, api, approve, new_app
from tests.e2e.processes import ProcessGroup, ServerProcess


@pytest.fixture(scope="module")
def here(tmp_path_factory) -> Iterator[ServerProcess]:
    group = ProcessGroup(tmp_path_factory.mktemp("api-filter-statuses"))
    server = group("here")
    secret = server.directory / "password.txt"
    secret.write_text(PASSWORD, encoding="utf-8")
    for name in ("alice", "bob", "carol"):
        server.run("user", "create", name, "--password-file", str(secret), check=True)
    try:
        server.start()
        yield server
    finally:
        group.close()


def _app_for(page: Page, server: ServerProcess, username: str) -> tuple[Mastodon, str]:
    page.context.clear_cookies()
    client_id, client_secret = new_app(server)
    app = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=server.base)
    code = approve(page, app.auth_request_url(redirect_uris=OOB, scopes=SCOPES, allow_http=True), username=username)
    return app, app.log_in(code=code, redirect_uri=OOB, scopes=SCOPES, allow_http=True)


def _home(server: ServerProcess, token: str) -> dict[str, dict]:
    statuses = api(server, token, "GET", "/api/v1/timelines/home").json()
    for status in statuses:
        assert_entity("Status", status)
    return {status["id"]: status for status in statuses}


def test_a_post_named_by_a_filter_is_warned_about_then_hidden_then_shown_again(page: Page, here):
    alice, alice_token = _app_for(page, here, "alice")
    bob, _ = _app_for(page, here, "bob")
    _, carol_token = _app_for(page, here, "carol")
    alice.account_follow(bob.me().id)
    named = bob.status_post("The ending of the film, in detail")
    other = bob.status_post("Nice weather today")
    private = bob.status_post("Only for my followers", visibility="private")

    # A filter of single posts needs no keywords (as in Mastodon).
    created = alice.create_filter_v2("Spoilers", ["home"], filter_action="warn")
    added = alice.add_filter_status_v2(created.id, named.id)
    raw_added = api(here, alice_token, "GET", f"/api/v2/filters/statuses/{added.id}").json()
    assert_entity("FilterStatus", raw_added)
    assert raw_added == {"id": str(added.id), "status_id": str(named.id)}
    assert api(here, alice_token, "GET", f"/api/v2/filter_statuses/{added.id}").json() == raw_added
    listed = api(here, alice_token, "GET", f"/api/v2/filters/{created.id}/statuses").json()
    assert listed == [raw_added]
    whole = api(here, alice_token, "GET", f"/api/v2/filters/{created.id}").json()
    assert_entity("FilterV2", whole)
    assert whole["statuses"] == [raw_added] and whole["keywords"] == []

    home = _home(here, alice_token)
    result = home[str(named.id)]["filtered"]
    assert len(result) == 1
    assert_entity("FilterResult", result[0])
    assert result[0]["status_matches"] == [str(named.id)] and result[0]["keyword_matches"] is None
    assert result[0]["filter"]["title"] == "Spoilers"
    assert home[str(other.id)]["filtered"] == []

    # Twice is refused; a post the caller cannot see, or that does not exist, is not found.
    with pytest.raises(MastodonAPIError, match="already"):
        alice.add_filter_status_v2(created.id, named.id)
    carol_filter = api(here, carol_token, "POST", "/api/v2/filters",
                       json={"title": "Mine", "context": ["home"]}).json()
    assert api(here, carol_token, "POST", f"/api/v2/filters/{carol_filter['id']}/statuses",
               data={"status_id": str(private.id)}).status_code == 404  # carol does not follow bob
    assert api(here, alice_token, "POST", f"/api/v2/filters/{created.id}/statuses",
               data={"status_id": "12345"}).status_code == 404
    # Someone else's filter status is not theirs to read or remove.
    for method in ("GET", "DELETE"):
        assert api(here, carol_token, method, f"/api/v2/filters/statuses/{added.id}").status_code == 404
    assert api(here, carol_token, "POST", f"/api/v2/filters/{created.id}/statuses",
               data={"status_id": str(other.id)}).status_code == 404

    alice.update_filter_v2(created.id, filter_action="hide")
    home = _home(here, alice_token)
    assert str(named.id) not in home and str(other.id) in home
    # Other contexts are not filtered: the profile still shows it, unmarked.
    profile = api(here, alice_token, "GET", f"/api/v1/accounts/{bob.me().id}/statuses").json()
    assert [s["filtered"] for s in profile if s["id"] == str(named.id)] == [[]]

    alice.delete_filter_status_v2(added.id)
    assert api(here, alice_token, "GET", f"/api/v2/filters/statuses/{added.id}").status_code == 404
    home = _home(here, alice_token)
    assert home[str(named.id)]["filtered"] == []
    assert alice.filter_statuses_v2(created.id) == []
