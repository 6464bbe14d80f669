"""Where a person stopped reading their home timeline and notifications, as their apps report it
(Mastodon's markers), so another device can continue there."""
from __future__ import annotations

from fedserver.context import Context
from fedserver.store import markers as marker_store
from fedserver.store.actors import Actor
from fedserver.store.markers import Marker

TIMELINES = ("home", "notifications")


async def get_markers(ctx: Context, actor: Actor, timelines: list[str]) -> list[Marker]:
    return await marker_store.get_markers(ctx.db.reader, actor.id, [t for t in timelines if t in TIMELINES])


async def set_markers(ctx: Context, actor: Actor, positions: dict[str, str]) -> list[Marker]:
    """positions: timeline -> last read id (numeric, as apps send them); others are ignored."""
    wanted = {timeline: value for timeline, value in positions.items()
              if timeline in TIMELINES and value.isdigit() and len(value) <= 19}
    async with ctx.db.transaction() as tx:
        for timeline, value in wanted.items():
            await marker_store.set_marker(tx, actor.id, timeline, value, ctx.clock.now_iso())
    return await get_markers(ctx, actor, list(wanted))
