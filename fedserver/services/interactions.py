"""Liking and boosting posts, and undoing both."""
from __future__ import annotations

from fedserver.clock import time_ordered_id
from fedserver.context import Context
from fedserver.services import as2, events, outbox, remote_posts
from fedserver.services.accounts import require_local_actor
from fedserver.store import actors as actor_store
from fedserver.store import interactions as interaction_store
from fedserver.store import posts as post_store
from fedserver.store.actors import Actor
from fedserver.store.posts import Post


class InteractionError(Exception):
    """The like or boost cannot be carried out (clear message for the person)."""


async def _target(ctx: Context, post_uri: str) -> tuple[Post, Actor]:
    try:
        post = await remote_posts.get_or_fetch_post(ctx, post_uri)
    except remote_posts.PostNotFound as exc:
        raise InteractionError(str(exc)) from exc
    if post.is_deleted:
        raise InteractionError("that post was deleted")
    author = await actor_store.get_actor(ctx.db.reader, post.actor_id)
    assert author is not None
    return post, author


async def like(ctx: Context, username: str, post_uri: str) -> None:
    actor = await require_local_actor(ctx, username)
    post, author = await _target(ctx, post_uri)
    if post.visibility == "direct" and not post.is_local and actor.id not in await _mentioned(ctx, post):
        raise InteractionError("that post is not addressed to you")
    now = ctx.clock.now_iso()

    async def record(tx) -> None:
        uri = ctx.urls.new_activity()
        if not await interaction_store.add_like(tx, uri=uri, actor_id=actor.id, post_id=post.id, now=now):
            return
        if author.is_local:
            if author.id != actor.id:
                await interaction_store.add_notification(tx, recipient_id=author.id, kind="like",
                                                         from_actor_id=actor.id, post_id=post.id, now=now)
            return
        await outbox.publish(ctx, tx, actor=actor, activity=as2.like_activity(uri, actor.uri, post.uri),
                             inboxes=[author.inbox_url], is_public=False)
    # A whole transaction again if PostgreSQL aborts it for a conflict with another process's
    # (likes of the same posts, notifications of the same people): not the person's fault.
    await ctx.db.run_transaction(record, what=f"like of {post.uri}")


async def unlike(ctx: Context, username: str, post_uri: str) -> None:
    actor = await require_local_actor(ctx, username)
    post, author = await _target(ctx, post_uri)
    async with ctx.db.transaction() as tx:
        existing = await interaction_store.get_like(tx, actor.id, post.id)
        # (Gone since the read: undone a moment ago by another request, a double click reaching
        # another process on PostgreSQL, whose Undo has this one's id.)
        if existing is None or not await interaction_store.delete_like(tx, existing.id):
            raise InteractionError("you have not liked that post")
        if not author.is_local:
            original = as2.like_activity(existing.uri, actor.uri, post.uri)
            await outbox.publish(ctx, tx, actor=actor, activity=as2.undo_activity(f"{existing.uri}/undo", actor.uri,
                                                                                  original),
                                 inboxes=[author.inbox_url], is_public=False)


async def boost(ctx: Context, username: str, post_uri: str) -> None:
    actor = await require_local_actor(ctx, username)
    post, author = await _target(ctx, post_uri)
    if post.visibility not in ("public", "unlisted"):
        raise InteractionError("only public and unlisted posts can be boosted")
    now_epoch = ctx.clock.now()
    now = ctx.clock.now_iso()

    async def record(tx) -> None:
        uri = ctx.urls.new_activity()
        announce_id = time_ordered_id(now_epoch)
        added = await interaction_store.add_announce(tx, announce_id=announce_id, uri=uri,
                                                     actor_id=actor.id, post_id=post.id, published_at=now, now=now)
        if not added:
            return
        await events.status_boosted(ctx, tx, announce_id, post.id)
        if author.is_local and author.id != actor.id:
            await interaction_store.add_notification(tx, recipient_id=author.id, kind="boost",
                                                     from_actor_id=actor.id, post_id=post.id, now=now)
        activity = as2.announce_activity(uri, actor, post.uri, author.uri, now)
        inboxes = [*await outbox.follower_inboxes(tx, actor), author.inbox_url if not author.is_local else None]
        await outbox.publish(ctx, tx, actor=actor, activity=activity, inboxes=inboxes, is_public=True)
    await ctx.db.run_transaction(record, what=f"boost of {post.uri}")  # (as in like)


async def unboost(ctx: Context, username: str, post_uri: str) -> None:
    actor = await require_local_actor(ctx, username)
    post, author = await _target(ctx, post_uri)
    async with ctx.db.transaction() as tx:
        existing = await interaction_store.get_announce(tx, actor.id, post.id)
        if existing is None or not await interaction_store.delete_announce(tx, existing.id, ctx.clock.now_iso()):
            raise InteractionError("you have not boosted that post")  # (as in unlike)
        original = as2.announce_activity(existing.uri, actor, post.uri, author.uri, existing.published_at)
        undo = as2.undo_activity(f"{existing.uri}/undo", actor.uri, original)
        inboxes = [*await outbox.follower_inboxes(tx, actor), author.inbox_url if not author.is_local else None]
        await outbox.publish(ctx, tx, actor=actor, activity=undo, inboxes=inboxes, is_public=True)


async def _mentioned(ctx: Context, post: Post) -> list[int]:
    return await post_store.list_mentioned_actor_ids(ctx.db.reader, post.id)
