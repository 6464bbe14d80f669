"""Who may see a post, and our own documents as served to peers."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiosqlite

from fedserver.clock import iso_from_epoch
from fedserver.context import Context
from fedserver.corpus import signals
from fedserver.corpus.eligibility import ConsentFacts, PostFacts
from fedserver.corpus.terms import TRAIN_AI
from fedserver.services import as2
from fedserver.store import consent as consent_store
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


async def training_choice(conn: aiosqlite.Connection, actor_id: int) -> tuple[str, str | None]:
    """The author's current training choice (allow/deny/unset) and licence."""
    row = await consent_store.get_choice(conn, actor_id, TRAIN_AI)
    return (row.choice, row.license) if row is not None else ("unset", None)


async def local_actor_document(ctx: Context, actor: Actor, *, conn: aiosqlite.Connection | None = None
                               ) -> dict[str, Any]:
    """Our actor document, carrying the person's training choice (docs/fep-consent.md)."""
    choice, license = await training_choice(conn or ctx.db.reader, actor.id)
    return as2.actor_document(actor, ctx.urls, extra_context=signals.actor_context_extension(),
                              extra_fields=signals.document_fields(choice, license))


async def local_note_document(ctx: Context, post: Post, author: Actor, *, with_context: bool = True,
                              conn: aiosqlite.Connection | None = None) -> dict[str, Any]:
    """Our Note, carrying the author's choice as it applies to this post (an excluded post says no)."""
    conn = conn or ctx.db.reader
    mention_ids = await post_store.list_mentioned_actor_ids(conn, post.id)
    mentions = [a for a in [await actor_store.get_actor(conn, i) for i in mention_ids] if a is not None]
    tags = await post_store.list_tags(conn, post.id)
    row = await consent_store.get_choice(conn, author.id, TRAIN_AI)
    consent = None if row is None else ConsentFacts(choice=row.choice, include_unlisted=bool(row.include_unlisted),
                                                    effective_from=row.effective_from)
    facts = PostFacts(visibility=post.visibility, published_at=post.published_at, deleted=post.is_deleted,
                      excluded=bool(post.corpus_excluded))
    # The Note says yes only when the corpus rule would take this very post (public, within the
    # consent's scope, not excluded), so its body and the crawler headers never disagree.
    choice = signals.post_choice(consent, facts)
    return as2.note_document(post, author, mentions=mentions, tags=tags, urls=ctx.urls, with_context=with_context,
                             extra_context=signals.actor_context_extension(),
                             extra_fields=signals.document_fields(choice, row.license if row else None))


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
