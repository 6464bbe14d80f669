"""The account settings apps change besides the profile text: `bot` (published as Mastodon
publishes it, a Service actor, and read back so from other servers) and `discoverable`, through
Mastodon.py against two real fedserver processes."""
from __future__ import annotations

from typing import Iterator

import pytest
import requests
from mastodon import Mastodon
from playwright.sync_api import Page, expect

from tests.api.conftest import PASSWORD
from tests.api.entities import assert_entity
from tests.api.oauth_flow import OOB, SCOPES, api, approve, new_app
from tests.e2e.processes import ProcessGroup, ServerProcess, wait_for

AS2 = "application/activity+json"


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """`here` (alice, an admin, and bob) and `there` (carol, who follows bob)."""
    group = ProcessGroup(tmp_path_factory.mktemp("api-flags"))
    here, there = group("here"), group("there")
    for server, users in ((here, ("alice", "bob")), (there, ("carol",))):
        secret = server.directory / "password.txt"
        secret.write_text(PASSWORD, encoding="utf-8")
        for index, name in enumerate(users):
            options = ["--admin"] if index == 0 else []
            server.run("user", "create", name, *options, "--password-file", str(secret), check=True)
    try:
        here.start()
        there.start()
        there.run("follow", "carol", here.handle("bob"), check=True)
        wait_for(lambda: there.value("SELECT state FROM follows f JOIN actors a ON a.id = f.followee_id"
                                     " WHERE a.username = 'bob'") == "accepted", what="bob's server to accept",
                 timeout=30)
        yield here, there
    finally:
        group.close()


def _bobs_copy_there(there: ServerProcess) -> tuple[str, int]:
    return there.value("SELECT actor_type FROM actors WHERE username = 'bob' AND is_local = 0"), \
        there.value("SELECT discoverable FROM actors WHERE username = 'bob' AND is_local = 0")


def test_an_app_marks_an_account_as_a_bot_which_is_federated_as_a_service_and_shown_as_automated(
        page: Page, pair):
    here, there = pair
    client_id, client_secret = new_app(here)
    bob = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=here.base)
    token = bob.log_in(code=approve(page, bob.auth_request_url(redirect_uris=OOB, scopes=SCOPES, allow_http=True),
                                    username="bob"), redirect_uri=OOB, scopes=SCOPES, allow_http=True)
    me = bob.me()
    assert (me.bot, me.discoverable) == (False, False)

    updated = bob.account_update_credentials(bot=True, discoverable=True)
    assert (updated.bot, updated.discoverable, updated.source.discoverable) == (True, True, True)
    raw = api(here, token, "GET", "/api/v1/accounts/verify_credentials").json()
    assert_entity("Account", raw)
    assert (raw["bot"], raw["discoverable"], raw["display_name"]) == (True, True, me.display_name)
    assert api(here, None, "GET", f"/api/v1/accounts/{me.id}").json()["bot"] is True
    # Published as Mastodon publishes a bot, and sent to the followers' servers at once.
    document = requests.get(here.actor_uri("bob"), headers={"Accept": AS2}, timeout=10).json()
    assert (document["type"], document["discoverable"]) == ("Service", True)
    wait_for(lambda: _bobs_copy_there(there) == ("Service", 1), what="the Update to reach carol's server",
             timeout=30, interval=0.3)
    # The other server reads a Service actor as a bot, as Mastodon does.
    bob_there = there.value("SELECT id FROM actors WHERE username = 'bob' AND is_local = 0")
    seen_there = api(there, None, "GET", f"/api/v1/accounts/{bob_there}").json()
    assert (seen_there["bot"], seen_there["discoverable"]) == (True, True)
    # The web profile says so too.
    assert "Automated" in requests.get(f"{here.base}/@bob", timeout=10).text

    # Only what is sent changes; a value that is not a boolean changes nothing.
    assert api(here, token, "PATCH", "/api/v1/accounts/update_credentials", data={"note": "beep"}).json()["bot"]
    refused = api(here, token, "PATCH", "/api/v1/accounts/update_credentials",
                  data={"bot": "perhaps", "display_name": "Not Saved"})
    assert refused.status_code == 422 and "error" in refused.json()
    assert bob.me().display_name != "Not Saved"

    person = bob.account_update_credentials(bot=False)
    assert (person.bot, person.discoverable) == (False, True)
    document = requests.get(here.actor_uri("bob"), headers={"Accept": AS2}, timeout=10).json()
    assert document["type"] == "Person"
    assert "Automated" not in requests.get(f"{here.base}/@bob", timeout=10).text
    # The same setting on the profile settings page (bob is signed in there since authorizing).
    page.goto(f"{here.base}/settings/profile")
    page.get_by_label("This account posts automatically").check()
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_text("Your profile was saved.")).to_be_visible()
    assert bob.me().bot is True and "Automated" in requests.get(f"{here.base}/@bob", timeout=10).text
    page.goto(f"{here.base}/settings/profile")
    page.get_by_label("This account posts automatically").uncheck()
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_text("Your profile was saved.")).to_be_visible()
    assert bob.me().bot is False
    undiscoverable = bob.account_update_credentials(discoverable=False)
    assert (undiscoverable.discoverable, undiscoverable.source.discoverable) == (False, False)
    wait_for(lambda: _bobs_copy_there(there) == ("Person", 0), what="the second Update to reach carol's server",
             timeout=30, interval=0.3)


def test_the_public_timeline_splits_into_local_and_remote_and_keeps_content_warnings(page: Page, pair):
    here, there = pair
    here.run("follow", "alice", there.handle("carol"), check=True)
    wait_for(lambda: here.value("SELECT state FROM follows f JOIN actors a ON a.id = f.followee_id"
                                " WHERE a.username = 'carol'") == "accepted", what="carol's server to accept",
             timeout=30)
    there.run("post", "carol", "a post from the other server", check=True)
    wait_for(lambda: here.value("SELECT id FROM posts WHERE content_text LIKE '%from the other server%'"),
             what="carol's post here", timeout=30)
    client_id, client_secret = new_app(here)
    alice = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=here.base)
    token = alice.log_in(code=approve(page, alice.auth_request_url(redirect_uris=OOB, scopes=SCOPES, allow_http=True),
                                      username="alice"), redirect_uri=OOB, scopes=SCOPES, allow_http=True)
    warned = alice.status_post("the ending of the film", sensitive=True, spoiler_text="film spoilers")
    assert (warned.sensitive, warned.spoiler_text) == (True, "film spoilers")

    def accts(reader: str | None = token, **params: str) -> set[str]:
        answer = api(here, reader, "GET", "/api/v1/timelines/public", params=params)
        return {s["account"]["acct"] for s in answer.json()}
    assert accts(local="true") == {"alice"}
    assert accts(remote="true") == {f"carol@{there.domain}"}
    assert accts() == {"alice", f"carol@{there.domain}"}
    # Other servers' posts are not republished to the open web (the web's public pages' rule).
    assert accts(None) == {"alice"} and accts(None, remote="true") == set()
    shown = next(s for s in api(here, None, "GET", "/api/v1/timelines/public", params={"local": "true"}).json()
                 if s["id"] == str(warned.id))
    assert (shown["sensitive"], shown["spoiler_text"]) == (True, "film spoilers")
