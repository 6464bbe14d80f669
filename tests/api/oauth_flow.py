"""What an app and its person do to get a token: register, open the authorization page in the
browser, sign in there, press Authorize, and hand the code to the app."""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import urlencode

import requests
from mastodon import Mastodon
from playwright.sync_api import Page, expect

from tests.api.conftest import PASSWORD
from tests.e2e.processes import ServerProcess

OOB = "urn:ietf:wg:oauth:2.0:oob"
SCOPES = ["read", "write", "follow", "push"]


def sign_in_on_page(page: Page, username: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def approve(page: Page, url: str, *, username: str | None = None) -> str:
    """Open the authorization URL; sign in as `username` when the server asks; press Authorize and
    read the code that the out-of-band page shows."""
    page.goto(url)
    if username is not None:
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        sign_in_on_page(page, username)
    page.get_by_role("button", name="Authorize").click()
    code = page.locator("#authorization-code").inner_text().strip()
    assert re.fullmatch(r"[A-Za-z0-9_\-]{20,}", code), code
    return code


def new_app(server: ServerProcess, *, scopes: list[str] = SCOPES, redirect_uris: str | list[str] = OOB,
            website: str | None = "https://app.example/") -> tuple[str, str]:
    return Mastodon.create_app("Test App", scopes=scopes, redirect_uris=redirect_uris, website=website,
                               api_base_url=server.base)


def authorize_url(server: ServerProcess, client_id: str, *, scope: str = "read write follow push",
                  redirect_uri: str = OOB, **extra: str) -> str:
    params = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "scope": scope,
              **extra}
    return f"{server.base}/oauth/authorize?{urlencode(params)}"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def exchange(server: ServerProcess, client_id: str, client_secret: str, code: str, *,
             redirect_uri: str = OOB, **extra: str) -> requests.Response:
    return requests.post(f"{server.base}/oauth/token", data={
        "grant_type": "authorization_code", "client_id": client_id, "client_secret": client_secret,
        "code": code, "redirect_uri": redirect_uri, **extra}, timeout=10)


def api(server: ServerProcess, token: str | None, method: str, path: str, **kw) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, f"{server.base}{path}", headers=headers, timeout=10, **kw)


def user_token(server: ServerProcess, page: Page, *, username: str = "alice", scope: str = "read write follow push",
               app_scopes: list[str] = SCOPES, signed_in: bool = False) -> str:
    """A fresh app and a token for `username` through the real page."""
    client_id, client_secret = new_app(server, scopes=app_scopes)
    code = approve(page, authorize_url(server, client_id, scope=scope), username=None if signed_in else username)
    response = exchange(server, client_id, client_secret, code)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]
