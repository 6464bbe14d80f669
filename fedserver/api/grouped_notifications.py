"""Grouped notifications (/api/v2/notifications, Mastodon 4.3) over services/notification_groups.py:
the page of groups with the accounts and statuses they name, one group by its key, its accounts,
dismissing a group, and the unread group count. Apps turn these on from the instance's version
(4.3) and api_versions.mastodon >= 2 (Phanpy, Mastodon.py; client-api.md §1.1)."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from fedserver.api import serializers
from fedserver.api.errors import ApiError, json_response
from fedserver.api.notifications import ALL_TYPES, shown_as
from fedserver.api.pagination import COUNTER_SPAN, link_header, page_request, read_page
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.services import notification_groups, post_details, timelines
from fedserver.services.notification_groups import NotificationGroup
from fedserver.services.timelines import Notification

routes = ApiRoutes()

# The Mastodon types that may be grouped, as fedserver's kinds (Mastodon 4.3 groups these too).
GROUPABLE = {"favourite": "like", "reblog": "boost", "follow": "follow"}
GROUP_KEY = r"{group_key:[A-Za-z0-9_-]{1,120}}"


def _wanted(call: ApiCall) -> set[str]:
    wanted = set(call.params.list("types")) or set(ALL_TYPES)
    return wanted - set(call.params.list("exclude_types"))


def _grouped_kinds(call: ApiCall) -> set[str]:
    asked = call.params.list("grouped_types")
    return {GROUPABLE[name] for name in (asked or GROUPABLE) if name in GROUPABLE}


async def _results(call: ApiCall, groups: list[NotificationGroup], wanted: set[str], *,
                   partial: bool) -> dict[str, Any]:
    """GroupedNotificationsResults: the groups, and each account and status they name once."""
    ctx, me = call.ctx, call.me
    cards = list({g.newest.card.post.id: g.newest.card for g in groups if g.newest.card is not None}.values())
    samples = [actor for g in groups for actor in g.sample_accounts]
    details = await post_details.details_for(ctx, cards, me, also_accounts=samples)
    # partial_avatars: the newest account of each group in full, the others' avatars only.
    full_ids = {g.sample_accounts[0].id for g in groups} if partial else {a.id for a in samples}
    accounts = {actor.id: actor for actor in samples}
    out: dict[str, Any] = {
        "accounts": [serializers.account(details.accounts[i], ctx.urls) for i in accounts if i in full_ids],
        "statuses": [serializers.status(card, details, ctx.urls, me) for card in cards],
        "notification_groups": [serializers.notification_group(g, shown_as(g.newest, wanted) or "")
                                for g in groups],
    }
    if partial:
        out["partial_accounts"] = [serializers.partial_account(details.accounts[i], ctx.urls)
                                   for i in accounts if i not in full_ids]
    return out


@routes.get("/api/v2/notifications", scope=("read:notifications",))
async def list_groups(call: ApiCall) -> web.Response:
    ctx, me = call.ctx, call.me
    wanted, grouped = _wanted(call), _grouped_kinds(call)
    request = page_request(call.params, default=40, maximum=80)

    def keep(item: Notification) -> bool:
        return shown_as(item, wanted) is not None

    if request.min_id is not None:
        # The notifications just above min_id (at most `limit`, so at most `limit` groups).
        async def fetch(max_id: int | None, limit: int) -> tuple[list[Notification], int | None]:
            page = await timelines.notifications(ctx, me, max_id=max_id, limit=limit)
            return [item for item in page.items if keep(item)], page.next_max_id
        items = await read_page(fetch, request, key=lambda item: item.id, first_span=COUNTER_SPAN)
        groups = notification_groups.group(items, grouped)
    else:
        groups = await notification_groups.groups_below(ctx, me, max_id=request.max_id, since_id=request.since_id,
                                                        limit=request.limit, keep=keep, grouped_kinds=grouped)
    member_ids = sorted((item.id for g in groups for item in g.items), reverse=True)
    partial = call.params.get("expand_accounts") == "partial_avatars"
    return json_response(await _results(call, groups, wanted, partial=partial),
                         headers=link_header(ctx.urls.base, call.request, member_ids[:1] + member_ids[-1:]))


@routes.get("/api/v2/notifications/unread_count", scope=("read:notifications",))
async def unread_count(call: ApiCall) -> web.Response:
    wanted = _wanted(call)
    limit = max(1, min(call.params.int("limit", 100) or 100, 1000))
    count = await notification_groups.unread_group_count(
        call.ctx, call.me, limit=limit, grouped_kinds=_grouped_kinds(call),
        keep=lambda kind: serializers.NOTIFICATION_TYPES.get(kind) in wanted)
    return json_response({"count": count})


async def _group(call: ApiCall) -> NotificationGroup:
    key = call.match("group_key")
    members = [item for item in await notification_groups.group_members(call.ctx, call.me, key)
               if shown_as(item, ALL_TYPES)]
    if not members:
        raise ApiError(404, "Record not found")
    return NotificationGroup(key, members[0].kind, members)


@routes.get(f"/api/v2/notifications/{GROUP_KEY}", scope=("read:notifications",))
async def get_group(call: ApiCall) -> web.Response:
    return json_response(await _results(call, [await _group(call)], ALL_TYPES, partial=False))


@routes.get(f"/api/v2/notifications/{GROUP_KEY}/accounts", scope=("read:notifications",))
async def group_accounts(call: ApiCall) -> web.Response:
    found = await _group(call)
    actors = list({item.from_actor.id: item.from_actor for item in found.items}.values())
    details = await post_details.details_for(call.ctx, [], call.me, also_accounts=actors)
    return json_response([serializers.account(details.accounts[actor.id], call.ctx.urls) for actor in actors])


@routes.post(f"/api/v2/notifications/{GROUP_KEY}/dismiss", scope=("write:notifications",))
async def dismiss_group(call: ApiCall) -> web.Response:
    if not await notification_groups.dismiss_group(call.ctx, call.me, call.match("group_key")):
        raise ApiError(404, "Record not found")
    return json_response({})

