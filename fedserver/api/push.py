"""Web Push subscriptions: `/api/v1/push/subscription` (POST, GET, PUT, DELETE), one per access
token, all behind the `push` scope as in Mastodon. Parameters come as forms (Mastodon.py, Tusky)
or JSON (masto.js): `subscription[endpoint]`, `subscription[keys][p256dh|auth]`,
`subscription[standard]`, `data[alerts][<type>]`, `data[policy]` (also a bare `policy`, which
Mastodon.py sends)."""
from __future__ import annotations

from aiohttp import web

from fedserver.api import serializers
from fedserver.api.errors import ApiError, json_response
from fedserver.api.params import Params
from fedserver.api.routing import ApiCall, ApiRoutes, bearer_token
from fedserver.services import push
from fedserver.services.push import ALERT_TYPES, PushError

routes = ApiRoutes()
PATH = "/api/v1/push/subscription"


def _alerts(params: Params) -> dict[str, bool]:
    return {name: params.bool(f"data[alerts][{name}]") for name in ALERT_TYPES
            if params.get(f"data[alerts][{name}]") is not None}


def _policy(params: Params) -> str | None:
    return params.get("data[policy]") or params.get("policy")


def _token(call: ApiCall) -> str:
    token = bearer_token(call.request)
    assert token is not None  # the route needs a user token
    return token


@routes.post(PATH, scope=("push",))
async def create(call: ApiCall) -> web.Response:
    params = call.params
    caller = call.caller
    assert caller is not None
    try:
        view = await push.subscribe(
            call.ctx, token=_token(call), actor=call.me, account=caller.account,
            endpoint=params.text("subscription[endpoint]"), p256dh=params.text("subscription[keys][p256dh]"),
            auth=params.text("subscription[keys][auth]"), alerts=_alerts(params), policy=_policy(params),
            standard=params.bool("subscription[standard]"))
    except PushError as exc:
        raise ApiError(422, str(exc)) from None
    return json_response(serializers.web_push_subscription(view.subscription, view.server_key))


@routes.get(PATH, scope=("push",))
async def show(call: ApiCall) -> web.Response:
    view = await push.subscription_of(call.ctx, _token(call))
    if view is None:
        raise ApiError(404, "Record not found")
    return json_response(serializers.web_push_subscription(view.subscription, view.server_key))


@routes.put(PATH, scope=("push",))
async def update(call: ApiCall) -> web.Response:
    assert call.caller is not None
    try:
        view = await push.change(call.ctx, token=_token(call), account=call.caller.account,
                                 alerts=_alerts(call.params), policy=_policy(call.params))
    except PushError as exc:
        raise ApiError(422, str(exc)) from None
    if view is None:
        raise ApiError(404, "Record not found")
    return json_response(serializers.web_push_subscription(view.subscription, view.server_key))


@routes.delete(PATH, scope=("push",))
async def destroy(call: ApiCall) -> web.Response:
    await push.unsubscribe(call.ctx, _token(call))
    return json_response({})
