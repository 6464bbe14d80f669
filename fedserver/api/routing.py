"""How API endpoints are declared: each resource module lists its routes with the authentication
and OAuth scope they need, and one wrapper enforces both before the handler runs, so no endpoint
can forget its check. Also the middleware every API answer passes through: CORS (browser apps such
as Elk and Phanpy), preflights, and `{"error": ...}` bodies for every failure."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, Literal

from aiohttp import web

from fedserver.api.errors import ApiError, error_response
from fedserver.api.params import Params, read_params
from fedserver.context import CTX_KEY, Context
from fedserver.services import oauth
from fedserver.services import scopes as scope_rules
from fedserver.services.oauth import Caller
from fedserver.store.actors import Actor

log = logging.getLogger(__name__)

# "user": a token that acts for a person; "app": any valid token (client_credentials too);
# "public": no token needed, but a token that is sent must hold the scope (Mastodon's
# authorize_if_got_token!).
Auth = Literal["user", "app", "public"]


@dataclass
class ApiCall:
    """What a handler gets besides the request: the context, who calls, and the parameters."""
    ctx: Context
    caller: Caller | None
    params: Params
    request: web.Request

    @property
    def viewer(self) -> Actor | None:
        return self.caller.actor if self.caller else None

    @property
    def me(self) -> Actor:
        """The signed-in person (routes declared auth="user" always have one)."""
        assert self.caller is not None and self.caller.actor is not None
        return self.caller.actor

    def match(self, name: str) -> str:
        return self.request.match_info[name]


Handler = Callable[[ApiCall], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    handler: Handler
    auth: Auth
    scope: tuple[str, ...]


class ApiRoutes:
    """A resource module's route table: `@routes.get(path, scope=("read:accounts",))`."""

    def __init__(self) -> None:
        self.routes: list[ApiRoute] = []

    def route(self, method: str, path: str, *, auth: Auth = "user",
              scope: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
        if auth != "public" and not scope:
            raise ValueError(f"{method} {path}: an authenticated route must name its scope")

        def register(handler: Handler) -> Handler:
            self.routes.append(ApiRoute(method, path, handler, auth, scope))
            return handler
        return register

    def get(self, path: str, **kw) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def patch(self, path: str, **kw) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def _authenticate(route: ApiRoute, request: web.Request, ctx: Context) -> Caller | None:
    token = bearer_token(request)
    caller = await oauth.caller_for_token(ctx, token) if token else None
    if route.auth == "public":
        if caller is not None and route.scope and not scope_rules.satisfies(caller.scopes, route.scope):
            raise ApiError(403, "This action is outside the authorized scopes")
        return caller
    if caller is None:
        raise ApiError(401, "The access token is invalid" if token else "The access token is missing")
    if not scope_rules.satisfies(caller.scopes, route.scope):
        raise ApiError(403, "This action is outside the authorized scopes")
    if route.auth == "user" and caller.actor is None:
        raise ApiError(422, "This method requires an authenticated user")
    return caller


def _wrap(route: ApiRoute) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        ctx = request.app[CTX_KEY]
        caller = await _authenticate(route, request, ctx)
        params = await read_params(request)
        return await route.handler(ApiCall(ctx=ctx, caller=caller, params=params, request=request))
    handle.__name__ = route.handler.__name__
    return handle


def install(app: web.Application, tables: list[ApiRoutes]) -> None:
    """Register every route, each also with a trailing slash (Mastodon.py asks for
    /api/v1/instance/ and /api/v2/instance/, client-api.md §5.5)."""
    for table in tables:
        for route in table.routes:
            handler = _wrap(route)
            app.router.add_route(route.method, route.path, handler)
            app.router.add_route(route.method, route.path + "/", handler)


# --- the middleware ------------------------------------------------------------------------

API_PREFIXES = ("/api/v1/", "/api/v2/", "/oauth/token", "/oauth/revoke")
CORS_PREFIXES = (*API_PREFIXES, "/.well-known/oauth-authorization-server", "/.well-known/nodeinfo",
                 "/nodeinfo/")
# Bearer tokens, never cookies, authenticate these paths, so any origin may call them
# (mastodon#38914; Link must be exposed for browser apps to page).
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Link, X-RateLimit-Reset, X-RateLimit-Limit, X-RateLimit-Remaining, "
                                     "X-Request-Id, Idempotency-Key",
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "POST, PUT, DELETE, GET, PATCH, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key, Accept",
    "Access-Control-Max-Age": "1728000",
}


@web.middleware
async def api_middleware(request: web.Request, handler) -> web.StreamResponse:
    path = request.path
    if not path.startswith(CORS_PREFIXES):
        return await handler(request)
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=PREFLIGHT_HEADERS)
    if not path.startswith(API_PREFIXES):
        response = await handler(request)
    else:
        try:
            response = await handler(request)
        except ApiError as exc:
            response = error_response(exc.status, exc.message, **exc.extra)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = "Record not found" if exc.status == 404 else exc.reason
            response = error_response(exc.status, message)
        except Exception:
            log.exception("client API %s %s failed", request.method, path)
            response = error_response(500, "Internal server error")
    for name, value in CORS_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
