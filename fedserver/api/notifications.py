"""Notifications: the list (types[], exclude_types[]), paged like timelines. Only Mastodon's
standard types are shown (serializers.NOTIFICATION_TYPES)."""
from __future__ import annotations

from aiohttp import web

from fedserver.api import serializers
from fedserver.api.errors import json_response
from fedserver.api.pagination import link_header, page_request, read_page
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.services import post_details, timelines
from fedserver.services.timelines import Notification

routes = ApiRoutes()

# Notifications whose post the viewer may no longer see (deleted, or hidden) have no card; these
# types are meaningless without their post, so they are left out.
NEEDS_STATUS = ("mention", "favourite", "reblog", "status", "poll", "update")


@routes.get("/api/v1/notifications", scope=("read:notifications",))
async def list_notifications(call: ApiCall) -> web.Response:
    ctx, me = call.ctx, call.me
    wanted = set(call.params.list("types")) or set(serializers.NOTIFICATION_TYPES.values())
    wanted -= set(call.params.list("exclude_types"))

    def shown(item: Notification) -> str | None:
        kind = serializers.NOTIFICATION_TYPES.get(item.kind)
        if kind is None or kind not in wanted or (kind in NEEDS_STATUS and item.card is None):
            return None
        return kind

    async def fetch(max_id: int | None, limit: int) -> tuple[list[Notification], int | None]:
        page = await timelines.notifications(ctx, me, max_id=max_id, limit=limit)
        return [item for item in page.items if shown(item)], page.next_max_id
    # Notification ids count up one by one (not time-ordered snowflakes): min_id's window starts small.
    items = await read_page(fetch, page_request(call.params, default=40, maximum=80), key=lambda item: item.id,
                            first_span=64)
    cards = [item.card for item in items if item.card is not None]
    details = await post_details.details_for(ctx, cards, me, also_accounts=[item.from_actor for item in items])
    body = [serializers.notification(item, shown(item) or "", details, ctx.urls, me) for item in items]
    return json_response(body, headers=link_header(ctx.urls.base, call.request, [item.id for item in items]))
