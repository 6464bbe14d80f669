"""The OAuth rules apps and attackers meet: registration in every encoding apps use, codes that
work once and briefly, PKCE, registered redirect URIs only, state echoed, scopes enforced,
force_login, client authentication, and the errors each gets."""
from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import requests
from playwright.sync_api import Page, expect

from tests.api.oauth_flow import (OOB, api, approve, authorize_url, exchange, new_app, pkce_pair, sign_in_on_page,
                                  user_token)
from tests.e2e.processes import ProcessGroup, ServerProcess, set_config_keys


def _register(server: ServerProcess, **kw) -> requests.Response:
    return requests.post(f"{server.base}/api/v1/apps", timeout=10, **kw)


def test_apps_register_with_form_json_multipart_or_query_parameters(server: ServerProcess):
    form = _register(server, data={"client_name": "Tusky", "redirect_uris": "oauth2redirect://com.keylesspalace.tusky/",
                                   "scopes": "read write follow push", "website": "https://tusky.app"})
    as_json = _register(server, json={"client_name": "Elk", "redirect_uris": ["https://elk.zone/callback",
                                                                             "http://localhost:5314/callback"],
                                      "scopes": "read write"})
    multipart = _register(server, files={"client_name": (None, "Multi"), "redirect_uris": (None, OOB)})
    query = requests.post(f"{server.base}/api/v1/apps", timeout=10, params={
        "client_name": "Ice Cubes", "redirect_uris": "icecubesapp://", "scopes": "read write follow push"})
    newline = _register(server, data={"client_name": "Mastodon.py",
                                      "redirect_uris": f"{OOB}\ncom.tapbots.Ivory.19300:/request_token"})
    for response in (form, as_json, multipart, query, newline):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["client_id"] and body["client_secret"] and body["client_secret_expires_at"] == 0
        assert body["id"].isdigit()
        # The instance's one VAPID public key (a P-256 point, base64url as Mastodon sends it).
        assert body["vapid_key"] == form.json()["vapid_key"]
        assert len(base64.urlsafe_b64decode(body["vapid_key"])) == 65
    assert form.json()["scopes"] == ["read", "write", "follow", "push"]
    assert form.json()["website"] == "https://tusky.app"
    assert as_json.json()["redirect_uris"] == ["https://elk.zone/callback", "http://localhost:5314/callback"]
    assert as_json.json()["redirect_uri"] == "https://elk.zone/callback\nhttp://localhost:5314/callback"
    assert multipart.json()["scopes"] == ["read"]  # Mastodon's default
    assert query.json()["name"] == "Ice Cubes"
    assert newline.json()["redirect_uris"] == [OOB, "com.tapbots.Ivory.19300:/request_token"]


def test_app_registration_with_bad_parameters_is_refused_with_422(server: ServerProcess):
    for data in ({"client_name": "", "redirect_uris": OOB},
                 {"client_name": "x", "redirect_uris": ""},
                 {"client_name": "x", "redirect_uris": "javascript:alert(1)"},
                 {"client_name": "x", "redirect_uris": "not a uri"},
                 {"client_name": "x", "redirect_uris": OOB, "scopes": "read admin:everything"},
                 {"client_name": "x", "redirect_uris": OOB, "website": "javascript:alert(1)"}):
        response = _register(server, data=data)
        assert response.status_code == 422, (data, response.text)
        assert response.json()["error"].startswith("Validation failed")
    bad_json = _register(server, data=b"{not json", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400 and "error" in bad_json.json()


def test_a_code_works_once_and_a_replay_revokes_the_token_it_gave(page: Page, server: ServerProcess):
    client_id, client_secret = new_app(server)
    code = approve(page, authorize_url(server, client_id), username="alice")
    first = exchange(server, client_id, client_secret, code)
    assert first.status_code == 200
    body = first.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "read write follow push"
    assert isinstance(body["created_at"], int)
    token = body["access_token"]
    assert api(server, token, "GET", "/api/v1/accounts/verify_credentials").status_code == 200

    again = exchange(server, client_id, client_secret, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # Someone replaying the code may have stolen it: what it gave stops working too.
    assert api(server, token, "GET", "/api/v1/accounts/verify_credentials").status_code == 401


def test_an_expired_code_is_refused(page: Page, server: ServerProcess):
    client_id, client_secret = new_app(server)
    code = approve(page, authorize_url(server, client_id), username="alice")
    # Ten minutes pass (the server's clock is real; the code's expiry is moved back instead).
    server.write("UPDATE oauth_codes SET expires_at = '2000-01-01T00:00:00.000000Z'")
    response = exchange(server, client_id, client_secret, code)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_pkce_needs_the_right_verifier(page: Page, server: ServerProcess):
    client_id, client_secret = new_app(server)
    verifier, challenge = pkce_pair()
    code = approve(page, authorize_url(server, client_id, code_challenge=challenge, code_challenge_method="S256"),
                   username="alice")
    wrong, _ = pkce_pair()
    for attempt in ({}, {"code_verifier": wrong}):
        refused = exchange(server, client_id, client_secret, code, **attempt)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    accepted = exchange(server, client_id, client_secret, code, code_verifier=verifier)
    assert accepted.status_code == 200, accepted.text
    # A plain (non-S256) challenge is not offered.
    page.goto(authorize_url(server, client_id, code_challenge=challenge, code_challenge_method="plain"))
    expect(page.get_by_text("Only the S256 code challenge method is supported.")).to_be_visible()


def test_a_redirect_uri_the_app_did_not_register_is_refused_without_redirecting(page: Page, server: ServerProcess):
    client_id, client_secret = new_app(server, redirect_uris=["https://app.example/callback"])
    response = requests.get(authorize_url(server, client_id, redirect_uri="https://evil.example/steal"),
                            allow_redirects=False, timeout=10)
    assert response.status_code == 400 and "Location" not in response.headers
    assert "not one this app registered" in response.text
    unknown = requests.get(authorize_url(server, "no-such-client"), allow_redirects=False, timeout=10)
    assert unknown.status_code == 400 and "Location" not in unknown.headers

    # The code goes only to the registered URI, with the state; the token only for the same URI.
    page.goto(f"{server.base}/auth/sign_in")
    sign_in_on_page(page, "alice")
    page.goto(authorize_url(server, client_id, redirect_uri="https://app.example/callback", state="s t&8"))
    question = page.request.get(authorize_url(server, client_id, redirect_uri="https://app.example/callback"))
    assert question.headers["x-frame-options"] == "DENY" and question.headers["cache-control"] == "no-store"
    form = {name: page.locator(f"form[action='/oauth/authorize'] input[name='{name}']").get_attribute("value")
            for name in ("csrf_token", "client_id", "redirect_uri", "response_type", "scope", "state")}
    answer = page.request.post(f"{server.base}/oauth/authorize", form={**form, "decision": "authorize"},
                               max_redirects=0)
    assert answer.status == 302
    location = urlsplit(answer.headers["location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "app.example", "/callback")
    query = parse_qs(location.query)
    assert query["state"] == ["s t&8"]
    code = query["code"][0]
    assert exchange(server, client_id, client_secret, code, redirect_uri=OOB).json()["error"] == "invalid_grant"

    denied = page.request.post(f"{server.base}/oauth/authorize", form={**form, "decision": "deny"}, max_redirects=0)
    assert parse_qs(urlsplit(denied.headers["location"]).query)["error"] == ["access_denied"]
    # The form is protected like every other form of the site.
    forged = page.request.post(f"{server.base}/oauth/authorize", form={**form, "csrf_token": "forged",
                                                                      "decision": "authorize"}, max_redirects=0)
    assert forged.status == 403


def test_a_bad_authorization_request_is_explained_on_a_page_and_never_redirected(page: Page, server: ServerProcess):
    # Anyone can register any redirect URI: redirecting errors on their own would make the server an
    # open redirector (RFC 9700 4.11.2).
    client_id, _ = new_app(server, scopes=["read"], redirect_uris=["https://elsewhere.example/landing"])
    bad_requests = [authorize_url(server, client_id, redirect_uri="https://elsewhere.example/landing", state="abc",
                                  **extra)
                    for extra in ({"scope": "read write"}, {"scope": "admin:read"},
                                  {"scope": "read", "response_type": "token"})]
    for url in bad_requests:
        anonymous = requests.get(url, allow_redirects=False, timeout=10)
        assert anonymous.status_code == 400 and "Location" not in anonymous.headers, url
    page.goto(f"{server.base}/auth/sign_in")
    sign_in_on_page(page, "alice")
    for url in bad_requests:
        answer = page.request.get(url, max_redirects=0)
        assert answer.status == 400 and "location" not in answer.headers, url
        assert "Test App asked for something this server cannot grant" in answer.text()


def test_force_login_asks_who_signs_in_even_with_a_session(page: Page, server: ServerProcess):
    client_id, client_secret = new_app(server)
    page.goto(f"{server.base}/auth/sign_in")
    sign_in_on_page(page, "alice")
    page.goto(authorize_url(server, client_id, force_login="true"))
    expect(page.get_by_text("Test App asks you to sign in")).to_be_visible()
    sign_in_on_page(page, "bob")
    expect(page.get_by_text("act as @bob@")).to_be_visible()
    code = approve(page, page.url)
    token = exchange(server, client_id, client_secret, code).json()["access_token"]
    assert api(server, token, "GET", "/api/v1/accounts/verify_credentials").json()["username"] == "bob"


def test_tokens_answer_401_without_a_valid_token_and_403_outside_their_scopes(page: Page, server: ServerProcess):
    missing = api(server, None, "GET", "/api/v1/accounts/verify_credentials")
    assert missing.status_code == 401 and missing.json() == {"error": "The access token is missing"}
    assert api(server, "made-up", "GET", "/api/v1/accounts/verify_credentials").status_code == 401

    writer = user_token(server, page, scope="write:statuses", app_scopes=["read", "write"])
    refused = api(server, writer, "GET", "/api/v1/accounts/verify_credentials")
    assert refused.status_code == 403 and refused.json()["error"] == "This action is outside the authorized scopes"
    assert api(server, writer, "GET", "/api/v1/accounts/relationships", params={"id[]": "1"}).status_code == 403
    # A token that is sent to a public endpoint must hold its scope too (Mastodon's authorize_if_got_token).
    assert api(server, writer, "GET", "/api/v1/accounts/lookup", params={"acct": "bob"}).status_code == 403
    assert api(server, None, "GET", "/api/v1/accounts/lookup", params={"acct": "bob"}).status_code == 200

    # `profile` reads the person's own account and nothing else; granular scopes are enough alone.
    profile = user_token(server, page, scope="profile", app_scopes=["profile"], signed_in=True)
    assert api(server, profile, "GET", "/api/v1/accounts/verify_credentials").status_code == 200
    assert api(server, profile, "GET", "/api/v1/preferences").status_code == 403
    granular = user_token(server, page, scope="read:accounts", app_scopes=["read"], signed_in=True)
    assert api(server, granular, "GET", "/api/v1/preferences").status_code == 200
    assert api(server, granular, "GET", "/api/v1/lists").status_code == 403


def test_client_credentials_give_an_app_token_that_cannot_act_for_a_person(server: ServerProcess):
    client_id, client_secret = new_app(server)
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    response = requests.post(f"{server.base}/oauth/token", timeout=10, headers={"Authorization": f"Basic {basic}"},
                             json={"grant_type": "client_credentials", "scope": "read"})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert response.json()["scope"] == "read"
    assert api(server, token, "GET", "/api/v1/apps/verify_credentials").json()["name"] == "Test App"
    person_only = api(server, token, "GET", "/api/v1/accounts/verify_credentials")
    assert person_only.status_code == 422
    assert person_only.json()["error"] == "This method requires an authenticated user"

    wrong = requests.post(f"{server.base}/oauth/token", timeout=10, data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": "wrong"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    too_much = requests.post(f"{server.base}/oauth/token", timeout=10, data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret, "scope": "admin"})
    assert too_much.status_code == 400 and too_much.json()["error"] == "invalid_scope"
    password = requests.post(f"{server.base}/oauth/token", timeout=10, data={
        "grant_type": "password", "client_id": client_id, "client_secret": client_secret, "username": "alice",
        "password": "correct horse battery"})
    assert password.status_code == 400 and password.json()["error"] == "unsupported_grant_type"

    # Revoking needs the client's own credentials; then the token is gone.
    other_id, other_secret = new_app(server)
    assert requests.post(f"{server.base}/oauth/revoke", timeout=10, data={
        "client_id": other_id, "client_secret": other_secret, "token": token}).json() == {}
    assert api(server, token, "GET", "/api/v1/apps/verify_credentials").status_code == 200
    assert requests.post(f"{server.base}/oauth/revoke", timeout=10, data={
        "client_id": client_id, "client_secret": client_secret, "token": token}).status_code == 200
    assert api(server, token, "GET", "/api/v1/apps/verify_credentials").status_code == 401


def test_discovery_cors_and_errors_are_what_browser_apps_expect(server: ServerProcess):
    metadata = requests.get(f"{server.base}/.well-known/oauth-authorization-server", timeout=10).json()
    assert metadata["authorization_endpoint"] == f"{server.base}/oauth/authorize"
    assert metadata["token_endpoint"] == f"{server.base}/oauth/token"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert "password" not in metadata["grant_types_supported"]
    assert {"read", "write", "follow", "push", "profile", "read:statuses"} <= set(metadata["scopes_supported"])

    for path in ("/api/v1/apps", "/oauth/token", "/api/v1/accounts/verify_credentials", "/api/v2/instance"):
        preflight = requests.options(f"{server.base}{path}", timeout=10, headers={
            "Origin": "https://elk.zone", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert preflight.status_code in (200, 204), path
        assert preflight.headers["Access-Control-Allow-Origin"] == "*"
        assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    answer = requests.get(f"{server.base}/api/v1/instance", headers={"Origin": "https://elk.zone"}, timeout=10)
    assert answer.headers["Access-Control-Allow-Origin"] == "*" and "Link" in answer.headers[
        "Access-Control-Expose-Headers"]

    unknown = requests.get(f"{server.base}/api/v1/no_such_thing", timeout=10)
    assert unknown.status_code == 404 and unknown.json() == {"error": "Record not found"}
    assert requests.get(f"{server.base}/api/v1/accounts/999999", timeout=10).json() == {"error": "Record not found"}
    assert requests.get(f"{server.base}/api/v1/accounts/lookup", params={"acct": "nobody"},
                        timeout=10).status_code == 404
    nodeinfo = json.loads(requests.get(f"{server.base}/nodeinfo/2.0", timeout=10).text)
    assert nodeinfo["metadata"]["upstream"]["name"] == "mastodon"


def test_registering_apps_past_the_hourly_budget_of_an_address_answers_429(tmp_path):
    group = ProcessGroup(tmp_path)
    try:
        server = group("budget")
        set_config_keys(server.config, api_app_registrations_per_hour=3)
        server.start()
        answers = [_register(server, data={"client_name": f"app {n}", "redirect_uris": OOB}) for n in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[-1].json() == {"error": "Too many requests"}
        assert answers[-1].headers["X-RateLimit-Remaining"] == "0" and int(answers[-1].headers["Retry-After"]) > 0
        # Only registering is budgeted: the rest of the API still answers.
        assert requests.get(f"{server.base}/api/v1/instance", timeout=10).status_code == 200
    finally:
        group.close()


def test_an_app_that_registered_no_scopes_gets_what_the_person_authorized(page: Page, server: ServerProcess):
    # Tusky registered without scopes and relied on the authorization request's (Takahē, TK#162).
    registered = _register(server, data={"client_name": "No Scopes", "redirect_uris": OOB}).json()
    assert registered["scopes"] == ["read"]
    code = approve(page, authorize_url(server, registered["client_id"], scope="read write follow push"),
                   username="alice")
    token = exchange(server, registered["client_id"], registered["client_secret"], code)
    assert token.status_code == 200 and token.json()["scope"] == "read write follow push"
    # An app that named its scopes gets no more than those (see the bad authorization request test).
