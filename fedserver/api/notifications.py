"""Notifications: the list (types[], exclude_types[]), paged like timelines. Only Mastodon's
standard types are shown (serializers.NOTIFICATION_TYPES)."""
from __future__ import annotations

from aiohttp import web

from fedserver.api import ids, serializers
from fedserver.api.errors import ApiError, json_response
from fedserver.api.pagination import COUNTER_SPAN, link_header, page_request, read_page
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.services import post_details, timelines
from fedserver.context import Context
from fedserver.services.timelines import Notification
from fedserver.store.actors import Actor

routes = ApiRoutes()

# Notifications whose post the viewer may no longer see (deleted, or hidden) have no card; these
# types are meaningless without their post, so they are left out.
NEEDS_STATUS = ("mention", "favourite", "reblog", "status", "poll", "update")


def shown_as(item: Notification, wanted: set[str]) -> str | None:
    """The Mastodon type the notification is shown as, or None when it is not shown."""
    kind = serializers.NOTIFICATION_TYPES.get(item.kind)
    if kind is None or kind not in wanted or (kind in NEEDS_STATUS and item.card is None):
        return None
    return kind


async def _render(call: ApiCall, items: list[Notification], wanted: set[str]) -> list[dict]:
    cards = [item.card for item in items if item.card is not None]
    details = await post_details.details_for(call.ctx, cards, call.me,
                                             also_accounts=[item.from_actor for item in items])
    return [serializers.notification(item, shown_as(item, wanted) or "", details, call.ctx.urls, call.me)
            for item in items]


ALL_TYPES = set(serializers.NOTIFICATION_TYPES.values())


async def notification_json(ctx: Context, me: Actor, item: Notification) -> dict | None:
    """One notification as the list shows it (the streaming API's payload), or None when the list
    would not show it."""
    kind = shown_as(item, ALL_TYPES)
    if kind is None:
        return None
    details = await post_details.details_for(ctx, [item.card] if item.card is not None else [], me,
                                             also_accounts=[item.from_actor])
    return serializers.notification(item, kind, details, ctx.urls, me)


@routes.get("/api/v1/notifications", scope=("read:notifications",))
async def list_notifications(call: ApiCall) -> web.Response:
    ctx, me = call.ctx, call.me
    wanted = set(call.params.list("types")) or set(ALL_TYPES)
    wanted -= set(call.params.list("exclude_types"))

    def shown(item: Notification) -> str | None:
        return shown_as(item, wanted)

    async def fetch(max_id: int | None, limit: int) -> tuple[list[Notification], int | None]:
        page = await timelines.notifications(ctx, me, max_id=max_id, limit=limit)
        return [item for item in page.items if shown(item)], page.next_max_id
    # Notification ids count up one by one (not time-ordered snowflakes): min_id's window starts small.
    items = await read_page(fetch, page_request(call.params, default=40, maximum=80), key=lambda item: item.id,
                            first_span=COUNTER_SPAN)
    return json_response(await _render(call, items, wanted),
                         headers=link_header(ctx.urls.base, call.request, [item.id for item in items]))


@routes.get("/api/v1/notifications/unread_count", scope=("read:notifications",))
async def unread_count(call: ApiCall) -> web.Response:
    return json_response({"count": await timelines.unread_notifications(call.ctx, call.me)})


@routes.get(r"/api/v1/notifications/{id:\d+}", scope=("read:notifications",))
async def get_notification(call: ApiCall) -> web.Response:
    wanted_id = ids.require(call.match("id"))
    # The page just below id + 1 starts with the notification itself, if the person has it.
    page = await timelines.notifications(call.ctx, call.me, max_id=wanted_id + 1, limit=1)
    found = [item for item in page.items if item.id == wanted_id and shown_as(item, ALL_TYPES)]
    if not found:
        raise ApiError(404, "Record not found")
    return json_response((await _render(call, found, ALL_TYPES))[0])


@routes.post(r"/api/v1/notifications/{id:\d+}/dismiss", scope=("write:notifications",))
async def dismiss(call: ApiCall) -> web.Response:
    if not await timelines.dismiss_notification(call.ctx, call.me, ids.require(call.match("id"))):
        raise ApiError(404, "Record not found")
    return json_response({})


@routes.post("/api/v1/notifications/clear", scope=("write:notifications",))
async def clear(call: ApiCall) -> web.Response:
    await timelines.clear_notifications(call.ctx, call.me)
    return json_response({})
