"""Turning a local action into a stored activity and one queued delivery per target inbox."""
from __future__ import annotations

import json
import logging
from typing import Any, Iterable

import aiosqlite

from fedserver.activitypub.normalize import host_of
from fedserver.context import Context
from fedserver.store import deliveries as delivery_store
from fedserver.store import follows as follow_store
from fedserver.store import hosts as host_store
from fedserver.store.actors import Actor
from fedserver.queue_wakeups import DELIVERY

log = logging.getLogger(__name__)


def _remote_targets(ctx: Context, inboxes: Iterable[str | None]) -> list[tuple[str, str]]:
    """Unique remote inboxes with their hosts; our own inboxes need no HTTP (local readers see the
    database directly)."""
    seen: dict[str, str] = {}
    for inbox in inboxes:
        if not inbox or inbox in seen or ctx.urls.is_local(inbox):
            continue
        host = host_of(inbox)
        if host is not None:
            seen[inbox] = host
    return list(seen.items())


async def publish(ctx: Context, tx: aiosqlite.Connection, *, actor: Actor, activity: dict[str, Any],
                  inboxes: Iterable[str | None], is_public: bool) -> str:
    """Store the activity (served at its id) and queue its deliveries, inside the caller's
    transaction, so an action and its federation are committed together or not at all."""
    body = json.dumps(activity, separators=(",", ":"), ensure_ascii=False)
    obj = activity.get("object")
    object_uri = obj if isinstance(obj, str) else (obj.get("id") if isinstance(obj, dict) else None)
    activity_row = await delivery_store.insert_outbound_activity(
        tx, uri=activity["id"], actor_id=actor.id, activity_type=activity["type"], object_uri=object_uri,
        is_public=is_public, body=body, now=ctx.clock.now_iso())
    targets = _remote_targets(ctx, inboxes)
    if targets:
        # Nothing is queued for a blocked domain (read in this transaction: a block committed
        # before it is seen; one committed after cancels what this queues).
        blocked = await host_store.blocked_among(tx, {host for _, host in targets})
        if blocked:
            log.info("not delivering %s to %d inboxes on blocked domains", activity["id"],
                     sum(host in blocked for _, host in targets))
            targets = [(inbox, host) for inbox, host in targets if host not in blocked]
    if targets:
        await delivery_store.enqueue_deliveries(tx, activity_row, targets, due_ms=ctx.clock.now_ms(),
                                                now=ctx.clock.now_iso())
        ctx.wakeups.notify(DELIVERY)
    return activity["id"]


async def follower_inboxes(tx: aiosqlite.Connection, actor: Actor) -> list[str]:
    return await follow_store.follower_inboxes(tx, actor.id)

