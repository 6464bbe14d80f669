"""Grouped notifications (Mastodon 4.3's /api/v2/notifications): likes of one post, boosts of one
post and follows that arrived within one 12-hour slot share a stored group key
(store.interactions.group_key) and are shown as one group; every other notification is a group of
one, keyed `ungrouped-<id>`. A page holds whole runs of notifications in id order, so a group whose
older members fall past the page's end shows again on the next page with those (clients merge
groups by key, as they do with Mastodon's)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from fedserver.context import Context
from fedserver.services import timelines
from fedserver.services.timelines import Notification
from fedserver.store import interactions as interaction_store
from fedserver.store import timelines as timeline_store
from fedserver.store.actors import Actor

UNGROUPED = "ungrouped-"
# How many notifications one page reads at most while it collects its groups (a page of 80
# groups of likes could otherwise read a person's whole history).
MAX_READ = 2000
_CHUNK = 200
# The accounts a group names (Mastodon's sample_account_ids holds up to 8).
SAMPLE_ACCOUNTS = 8
# The most members one group's own page (GET /api/v2/notifications/:key) and accounts list read.
MAX_GROUP_READ = 400


@dataclass
class NotificationGroup:
    key: str
    kind: str
    # The group's notifications on this page, newest first (never empty).
    items: list[Notification]

    @property
    def newest(self) -> Notification:
        return self.items[0]

    @property
    def sample_accounts(self) -> list[Actor]:
        seen: dict[int, Actor] = {}
        for item in self.items:
            seen.setdefault(item.from_actor.id, item.from_actor)
        return list(seen.values())[:SAMPLE_ACCOUNTS]


def shown_key(item: Notification, grouped_kinds: set[str]) -> str:
    """The notification's group as this request shows it: its stored group when its kind may be
    grouped (the app's grouped_types), else a group of its own."""
    if item.group_key and item.kind in grouped_kinds:
        return item.group_key
    return f"{UNGROUPED}{item.id}"


def group(items: list[Notification], grouped_kinds: set[str]) -> list[NotificationGroup]:
    """Notifications (newest first) as groups, in the order of each group's newest member."""
    groups: dict[str, NotificationGroup] = {}
    for item in items:
        key = shown_key(item, grouped_kinds)
        groups.setdefault(key, NotificationGroup(key, item.kind, [])).items.append(item)
    return list(groups.values())


async def groups_below(ctx: Context, viewer: Actor, *, max_id: int | None, since_id: int | None, limit: int,
                       keep: Callable[[Notification], bool], grouped_kinds: set[str]) -> list[NotificationGroup]:
    """Up to `limit` groups of the notifications below max_id (and above since_id) that `keep`
    accepts, newest first. The page ends just before the notification that would start group
    limit + 1, so that it is one unbroken run of ids (Link headers page on from its lowest)."""
    taken: list[Notification] = []
    keys: set[str] = set()
    cursor, read = max_id, 0
    while read < MAX_READ:
        page = await timelines.notifications(ctx, viewer, max_id=cursor, limit=_CHUNK)
        read += _CHUNK
        for item in page.items:
            if since_id is not None and item.id <= since_id:
                return group(taken, grouped_kinds)
            if not keep(item):
                continue
            key = shown_key(item, grouped_kinds)
            if key not in keys:
                if len(keys) >= limit:
                    return group(taken, grouped_kinds)
                keys.add(key)
            taken.append(item)
        if page.next_max_id is None:
            break
        cursor = page.next_max_id
    return group(taken, grouped_kinds)


async def group_members(ctx: Context, viewer: Actor, key: str) -> list[Notification]:
    """The notifications of one group the viewer may see, newest first (empty: no such group)."""
    if key.startswith(UNGROUPED):
        number = key.removeprefix(UNGROUPED)
        if not number.isdigit() or len(number) > 18:
            return []
        rows = await timeline_store.notification_by_id(ctx.db.reader, viewer.id, int(number))
    else:
        rows = await timeline_store.notifications_in_group(ctx.db.reader, viewer.id, key, limit=MAX_GROUP_READ)
    return await timelines.notification_items(ctx, viewer, rows)


async def dismiss_group(ctx: Context, viewer: Actor, key: str) -> bool:
    """Remove all of the viewer's notifications in the group; False when there were none."""
    async with ctx.db.transaction() as tx:
        if key.startswith(UNGROUPED):
            number = key.removeprefix(UNGROUPED)
            if not number.isdigit() or len(number) > 18:
                return False
            return await interaction_store.delete_notification(tx, viewer.id, int(number))
        return await interaction_store.delete_notification_group(tx, viewer.id, key) > 0


async def unread_group_count(ctx: Context, viewer: Actor, *, limit: int, keep: Callable[[str], bool],
                             grouped_kinds: set[str]) -> int:
    """How many groups the unread notifications (of the kinds `keep` accepts) make, at most limit."""
    rows = await timeline_store.unread_notification_kinds(ctx.db.reader, viewer.id, limit=MAX_READ)
    keys = {row["group_key"] if row["group_key"] and row["kind"] in grouped_kinds else f"{UNGROUPED}{row['id']}"
            for row in rows if keep(row["kind"])}
    return min(len(keys), limit)
