"""A local account's public profile and telling other servers when it changes (Update(Person))."""
from __future__ import annotations

import aiosqlite

from fedserver.context import Context
from fedserver.services import as2, audience, outbox
from fedserver.store import follows as follow_store
from fedserver.store.actors import Actor


async def federate_profile(ctx: Context, tx: aiosqlite.Connection, actor: Actor) -> None:
    """Send the current actor document (with its consent signal) to every server that follows the
    account, inside the caller's transaction."""
    document = await audience.local_actor_document(ctx, actor, conn=tx)
    activity = as2.update_actor_activity(document, ctx.urls.new_activity())
    inboxes = await follow_store.follower_inboxes(tx, actor.id)
    await outbox.publish(ctx, tx, actor=actor, activity=activity, inboxes=inboxes, is_public=True)
