"""The OAuth endpoints apps call directly: POST /oauth/token, POST /oauth/revoke and the
authorization server metadata. (The page a person sees, /oauth/authorize, is in web/oauth.py.)
Errors are OAuth's own bodies: {"error": "invalid_grant", "error_description": ...}."""
from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from aiohttp import web

from fedserver.api.errors import json_response
from fedserver.api.params import Params, read_params
from fedserver.context import CTX_KEY
from fedserver.services import oauth
from fedserver.services import scopes as scope_rules
from fedserver.services.oauth import OAuthError

# Pinafore and others recover from a bad client only on a 401 (client-api.md §4, TK#162).
_STATUS = {"invalid_client": 401}


def _oauth_error(exc: OAuthError, *, basic: bool = False) -> web.Response:
    headers = {"WWW-Authenticate": 'Basic realm="fedserver"'} if basic and exc.error == "invalid_client" else {}
    headers["Cache-Control"] = "no-store"
    return json_response({"error": exc.error, "error_description": exc.description},
                         status=_STATUS.get(exc.error, 400), headers=headers)


def _client_credentials(request: web.Request, params: Params) -> tuple[str, str, bool]:
    """(client_id, client_secret, sent as HTTP Basic): client_secret_basic or client_secret_post."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic" and encoded:
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "", "", True
        # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
        return unquote(user.replace("+", " ")), unquote(password.replace("+", " ")), True
    return params.text("client_id"), params.text("client_secret"), False


async def token(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    params = await read_params(request)
    client_id, client_secret, basic = _client_credentials(request, params)
    grant_type = params.text("grant_type")
    try:
        app = await oauth.authenticate_client(ctx, client_id, client_secret)
        if grant_type == "authorization_code":
            issued = await oauth.exchange_code(ctx, app, code=params.text("code"),
                                               redirect_uri=params.text("redirect_uri"),
                                               code_verifier=params.get("code_verifier"))
        elif grant_type == "client_credentials":
            issued = await oauth.client_credentials(ctx, app, params.get("scope") or params.get("scopes"))
        else:
            raise OAuthError("unsupported_grant_type", "The authorization grant type is not supported by the "
                                                       "authorization server.")
    except OAuthError as exc:
        return _oauth_error(exc, basic=basic)
    return json_response({"access_token": issued.access_token, "token_type": "Bearer",
                          "scope": " ".join(issued.scopes), "created_at": issued.created_at},
                         headers={"Cache-Control": "no-store"})


async def revoke(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    params = await read_params(request)
    client_id, client_secret, basic = _client_credentials(request, params)
    try:
        app = await oauth.authenticate_client(ctx, client_id, client_secret)
    except OAuthError as exc:
        return _oauth_error(exc, basic=basic)
    await oauth.revoke(ctx, app, params.text("token"))
    return json_response({})


async def metadata(request: web.Request) -> web.Response:
    base = request.app[CTX_KEY].urls.base
    return json_response({
        "issuer": f"{base}/",
        "service_documentation": "https://docs.joinmastodon.org/",
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "app_registration_endpoint": f"{base}/api/v1/apps",
        "scopes_supported": sorted(scope_rules.ALL_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
    }, headers={"Cache-Control": "public, max-age=3600"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/oauth/token", token)
    app.router.add_post("/oauth/revoke", revoke)
    app.router.add_get("/.well-known/oauth-authorization-server", metadata)
