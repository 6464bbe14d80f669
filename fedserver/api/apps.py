"""POST /api/v1/apps (registering an app) and GET /api/v1/apps/verify_credentials."""
from __future__ import annotations

from aiohttp import web

from fedserver.api import serializers
from fedserver.api.errors import ApiError, json_response
from fedserver.web.common import client_address
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.api.throttle import SlidingWindow
from fedserver.config import Settings
from fedserver.services import oauth, push
from fedserver.services import scopes as scope_rules

routes = ApiRoutes()

# Anyone may register an app, and each is a stored row: a budget per client address.
REGISTRATIONS = web.AppKey("api_app_registrations", SlidingWindow)


def add_budgets(app: web.Application, settings: Settings) -> None:
    app[REGISTRATIONS] = SlidingWindow(settings.server.api_app_registrations_per_hour, 3600)


@routes.post("/api/v1/apps", auth="public")
async def create_app(call: ApiCall) -> web.Response:
    params = call.params
    # client_address: the web edge's one answer to "who is this client" (proxies included).
    call.request.app[REGISTRATIONS].take(client_address(call.request))
    # One string with one URI per line (Mastodon.py joins a list with "\n") or a list (Mastodon 4.3+).
    uris = [line for value in params.list("redirect_uris") for line in value.splitlines()]
    try:
        registered = await oauth.register_app(call.ctx, name=params.text("client_name"), redirect_uris=uris,
                                              scopes=params.get("scopes"), website=params.get("website"))
    except oauth.AppRegistrationError as exc:
        raise ApiError(422, f"Validation failed: {exc}") from None
    body = serializers.application(registered.app, with_secrets={
        "client_id": registered.app.client_id, "client_secret": registered.client_secret,
        "client_secret_expires_at": 0})
    body["vapid_key"] = await push.public_vapid_key(call.ctx)  # what apps subscribe to Web Push with
    return json_response(body)


@routes.get("/api/v1/apps/verify_credentials", auth="app", scope=scope_rules.TOP_LEVEL + scope_rules.READ_SCOPES
            + scope_rules.WRITE_SCOPES)
async def verify_app(call: ApiCall) -> web.Response:
    assert call.caller is not None
    body = serializers.application(call.caller.app)
    body["vapid_key"] = await push.public_vapid_key(call.ctx)
    return json_response(body)
