"""Start-up calls for features fedserver does not have yet, answered with valid empty data, never
404: Tusky shows errors for a 404 on trends, Ice Cubes blanks its notifications screen without the
notification policy, Ivory calls lists at sign-in (client-api.md §2, §5.8). Each is here only until
its feature exists; an endpoint backed by real data (bookmarks, lists, filters v2, followed tags...) never belongs
here, because an empty answer there would be a wrong one."""
from __future__ import annotations

from aiohttp import web

from fedserver.api.errors import json_response
from fedserver.api.routing import ApiCall, ApiRoutes

routes = ApiRoutes()

_EMPTY_LISTS = {
    # path: the scope an app's token must hold to read it
    "/api/v1/filters": ("read:filters",),
    "/api/v2/suggestions": ("read",),
    "/api/v1/suggestions": ("read",),
    "/api/v1/notifications/requests": ("read:notifications",),
    "/api/v1/scheduled_statuses": ("read:statuses",),
    "/api/v1/featured_tags": ("read:accounts",),
}
_PUBLIC_EMPTY_LISTS = ("/api/v1/announcements", "/api/v1/trends", "/api/v1/trends/tags", "/api/v1/trends/statuses",
                       "/api/v1/trends/links")


async def _empty_list(call: ApiCall) -> web.Response:
    return json_response([])


for _path, _scope in _EMPTY_LISTS.items():
    routes.get(_path, scope=_scope)(_empty_list)
for _path in _PUBLIC_EMPTY_LISTS:
    routes.get(_path, auth="public")(_empty_list)


@routes.get("/api/v2/notifications/policy", scope=("read:notifications",))
async def notification_policy(call: ApiCall) -> web.Response:
    # Everything is accepted: fedserver does not filter notifications into requests.
    return json_response({"for_not_following": "accept", "for_not_followers": "accept",
                          "for_new_accounts": "accept", "for_private_mentions": "accept",
                          "for_limited_accounts": "accept", "for_bots": "accept", "filter_not_following": False,
                          "filter_not_followers": False, "filter_new_accounts": False,
                          "filter_private_mentions": False,
                          "summary": {"pending_requests_count": 0, "pending_notifications_count": 0}})


@routes.get("/api/v1/notifications/requests/merged", scope=("read:notifications",))
async def notification_requests_merged(call: ApiCall) -> web.Response:
    # Nothing is ever filtered into requests, so nothing waits to be merged (Mastodon 4.3's web
    # app and Mastodon.py's notifications_merged ask after the policy changes).
    return json_response({"merged": True})
