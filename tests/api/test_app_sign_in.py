"""An app signs a person in as Mastodon apps do (Mastodon.py from PyPI, the real authorization page
in Chromium), reads what apps read at start-up, and signs out by revoking its token."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from mastodon import Mastodon, MastodonUnauthorizedError
from playwright.sync_api import Page, expect

from tests.api.entities import assert_entity
from tests.api.oauth_flow import OOB, SCOPES, api, approve, authorize_url, exchange, new_app
from tests.conftest import free_port
from tests.e2e.processes import ServerProcess


def _check_start_up_reads(server: ServerProcess, token: str, me_id: str) -> None:
    """The raw JSON of what apps read at start-up, strictly against Mastodon 4.3's entities."""
    me = api(server, token, "GET", "/api/v1/accounts/verify_credentials").json()
    assert_entity("Account", me)
    assert_entity("CredentialAccountSource", me["source"])
    assert me["id"] == me_id and me["acct"] == "alice" and me["source"]["privacy"] == "public"
    for path in ("/api/v1/instance", "/api/v1/instance/"):
        instance = api(server, token, "GET", path).json()
        assert_entity("Instance", instance)
        assert instance["version"].startswith("4.3.0 (compatible; fedserver ")
        assert instance["contact_account"]["acct"] == "alice"
        assert instance["urls"]["streaming_api"] == "ws://" + server.domain
    for path in ("/api/v2/instance", "/api/v2/instance/"):
        instance2 = api(server, token, "GET", path).json()
        assert_entity("InstanceV2", instance2)
        assert instance2["api_versions"] == {"mastodon": 2}
        assert instance2["configuration"]["urls"]["streaming"] == "ws://" + server.domain
    assert_entity("Account", api(server, token, "GET", f"/api/v1/accounts/{me_id}").json())
    looked_up = api(server, token, "GET", "/api/v1/accounts/lookup", params={"acct": "bob"}).json()
    assert_entity("Account", looked_up)
    relationships = api(server, token, "GET", "/api/v1/accounts/relationships",
                        params=[("id[]", looked_up["id"]), ("id[]", me_id)]).json()
    assert [r["id"] for r in relationships] == [looked_up["id"], me_id]
    for relationship in relationships:
        assert_entity("Relationship", relationship)
    assert_entity("Application", api(server, token, "GET", "/api/v1/apps/verify_credentials").json())
    # Calls apps make at start-up for features fedserver does not have: valid and empty, never 404.
    for path, empty in (("/api/v1/custom_emojis", []), ("/api/v1/instance/rules", []), ("/api/v1/lists", []),
                        ("/api/v2/filters", []), ("/api/v1/announcements", []), ("/api/v1/followed_tags", []),
                        ("/api/v1/trends/tags", []), ("/api/v1/trends/statuses", []), ("/api/v1/trends/links", []),
                        ("/api/v2/suggestions", []), ("/api/v1/markers", {})):
        response = api(server, token, "GET", path)
        assert (response.status_code, response.json()) == (200, empty), path
    preferences = api(server, token, "GET", "/api/v1/preferences").json()
    assert preferences["posting:default:visibility"] == "public"


@pytest.mark.parametrize("version_check_mode", ["none", "created"])
def test_an_app_signs_in_on_the_authorization_page_reads_the_account_and_revokes_its_token(
        page: Page, server: ServerProcess, version_check_mode: str):
    client_id, client_secret = new_app(server)
    app = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=server.base,
                   version_check_mode=version_check_mode)
    url = app.auth_request_url(redirect_uris=OOB, scopes=SCOPES, state="xyz-state", allow_http=True)

    # The person is not signed in: the server asks them to, then shows the question in plain words.
    page.goto(url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Let Test App use your account?")).to_be_visible()
    expect(page.get_by_role("link", name="https://app.example/")).to_be_visible()
    expect(page.get_by_text("see everything in your account")).to_be_visible()
    expect(page.get_by_text("receive your notifications as push messages")).to_be_visible()
    expect(page.get_by_text(re.compile(r"act as @alice@127\.0\.0\.1:\d+"))).to_be_visible()
    code = approve(page, page.url)

    token = app.log_in(code=code, redirect_uri=OOB, scopes=SCOPES, allow_http=True)
    if version_check_mode == "created":
        assert app.verify_minimum_version("4.2.0", cached=True)
    me = app.account_verify_credentials()
    assert me.username == "alice" and me.source.privacy == "public"
    assert app.instance().title == "fedserver"
    assert app.account_lookup("bob").username == "bob"
    assert app.account_relationships([me.id])[0].following is False
    assert app.app_verify_credentials().name == "Test App"
    _check_start_up_reads(server, token, str(me.id))

    # The settings page lists the app with its permissions and last use.
    page.goto(f"{server.base}/settings/apps")
    entry = page.locator("li.card", has_text="Test App")
    expect(entry.first).to_contain_text("read write follow push")
    expect(entry.first).to_contain_text("last used 20")

    app.revoke_access_token(allow_http=True)
    with pytest.raises(MastodonUnauthorizedError):
        app.account_verify_credentials()
    assert api(server, token, "GET", "/api/v1/accounts/verify_credentials").status_code == 401


def test_revoking_an_app_on_the_settings_page_ends_its_access(page: Page, server: ServerProcess):
    client_id, client_secret = new_app(server)
    app = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=server.base)
    page.goto(f"{server.base}/auth/sign_in")
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    code = approve(page, app.auth_request_url(redirect_uris=OOB, scopes=SCOPES, allow_http=True))
    token = app.log_in(code=code, redirect_uri=OOB, scopes=SCOPES, allow_http=True)
    assert app.account_verify_credentials().username == "bob"

    page.goto(f"{server.base}/settings/apps")
    page.get_by_role("button", name="Revoke Test App").click()
    expect(page.get_by_text("The app can no longer use your account.")).to_be_visible()
    expect(page.get_by_text("No apps use your account.")).to_be_visible()
    response = api(server, token, "GET", "/api/v1/accounts/verify_credentials")
    assert response.status_code == 401 and "error" in response.json()


def test_authorize_sends_the_browser_back_to_the_apps_web_redirect_uri_despite_the_pages_policy(
        page: Page, server: ServerProcess):
    """Browser apps (Elk, Phanpy) register an https/http redirect URI: after Authorize, Chromium
    follows the 302 there. The pages' Content-Security-Policy has form-action 'self', which would
    block that redirect, so the authorization page allows the app's registered origin too."""
    callback = f"http://127.0.0.1:{free_port()}/callback"  # nothing listens: the browser's attempt is enough
    client_id, client_secret = new_app(server, redirect_uris=[callback])
    page.goto(f"{server.base}/auth/sign_in")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.goto(authorize_url(server, client_id, redirect_uri=callback, state="s1"))
    with page.expect_request(lambda request: request.url.startswith(callback)) as sent:
        page.get_by_role("button", name="Authorize").click()
    query = parse_qs(urlsplit(sent.value.url).query)
    assert query["state"] == ["s1"]
    response = exchange(server, client_id, client_secret, query["code"][0], redirect_uri=callback)
    assert response.status_code == 200, response.text
