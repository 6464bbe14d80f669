"""Who may see a post, and our own documents as served to peers."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from fedserver.clock import iso_from_epoch
from fedserver.context import Context
from fedserver.services import as2
from fedserver.store import actors as actor_store
from fedserver.store import follows as follow_store
from fedserver.store import posts as post_store
from fedserver.store.actors import Actor
from fedserver.store.posts import Post


async def may_see(ctx: Context, post: Post, viewer: Actor | None) -> bool:
    """Public and unlisted posts: anyone. Followers-only: the author's accepted followers and the
    people mentioned. Direct: the people mentioned. The author always."""
    if post.is_deleted:
        return False
    if post.visibility in ("public", "unlisted"):
        return True
    if viewer is None:
        return False
    if viewer.id == post.actor_id:
        return True
    if viewer.id in await post_store.list_mentioned_actor_ids(ctx.db.reader, post.id):
        return True
    if post.visibility == "followers":
        return await follow_store.is_following(ctx.db.reader, viewer.id, post.actor_id)
    return False


async def local_actor_document(ctx: Context, actor: Actor) -> dict[str, Any]:
    return as2.actor_document(actor, ctx.urls)


async def local_note_document(ctx: Context, post: Post, author: Actor, *, with_context: bool = True) -> dict[str, Any]:
    mention_ids = await post_store.list_mentioned_actor_ids(ctx.db.reader, post.id)
    mentions = [a for a in [await actor_store.get_actor(ctx.db.reader, i) for i in mention_ids] if a is not None]
    tags = await post_store.list_tags(ctx.db.reader, post.id)
    return as2.note_document(post, author, mentions=mentions, tags=tags, urls=ctx.urls, with_context=with_context)


async def usage_stats(ctx: Context) -> dict[str, int]:
    now = ctx.clock.now()
    month = iso_from_epoch(now - timedelta(days=30).total_seconds())
    halfyear = iso_from_epoch(now - timedelta(days=180).total_seconds())
    reader = ctx.db.reader
    return {
        "users": await actor_store.count_local_users(reader),
        "active_month": await actor_store.count_active_local_users(reader, month),
        "active_halfyear": await actor_store.count_active_local_users(reader, halfyear),
        "local_posts": await post_store.count_local_posts(reader),
    }
