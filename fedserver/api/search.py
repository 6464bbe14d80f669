"""Search (v2) by address: `@someone@server` finds that account, and with resolve=true (for a
signed-in caller) one this server does not know yet, through WebFinger, which is how apps follow
people on other servers. Full-text search of posts and hashtags is not built: those lists are
empty."""
from __future__ import annotations

from aiohttp import web

from fedserver.api import serializers
from fedserver.api.errors import ApiError, json_response
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.services import directory

routes = ApiRoutes()

MAX_QUERY = 300


@routes.get("/api/v2/search", auth="public", scope=("read:search",))
async def search(call: ApiCall) -> web.Response:
    params = call.params
    query = params.text("q").strip()[:MAX_QUERY]
    if not query:
        raise ApiError(422, "Validation failed: q can't be blank")
    kind = params.get("type")
    accounts = []
    # resolve asks this server to fetch from others: Mastodon allows it to signed-in people only.
    resolve = params.bool("resolve") and call.viewer is not None
    if kind in (None, "", "accounts") and (params.int("offset", 0) or 0) == 0:
        actor = await directory.find_account(call.ctx, query, resolve=resolve)
        if actor is not None:
            accounts.append(serializers.account(await directory.account_view(call.ctx, actor, call.viewer),
                                                call.ctx.urls))
    return json_response({"accounts": accounts, "statuses": [], "hashtags": []})
