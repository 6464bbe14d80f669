"""Who may see a post, and our own documents as served to peers."""
from __future__ import annotations

from dataclasses import replace
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
from fedserver.store import attachments as attachment_store
from fedserver.store import note_batches
from fedserver.store import polls as poll_store
from fedserver.store import posts as post_store
from fedserver.store.actors import Actor
from fedserver.store.attachments import Attachment
from fedserver.store.consent import ConsentChoice
from fedserver.store.polls import Poll
from fedserver.store.posts import Post


OPEN_TO_ALL = ("public", "unlisted")


async def may_see(ctx: Context, post: Post, viewer: Actor | None) -> bool:
    """Public and unlisted posts: anyone. Followers-only: the author's accepted followers and the
    people mentioned. Direct: the people mentioned. The author always. Nobody, when the author is
    suspended."""
    return bool(await may_see_all(ctx, [post], viewer))


async def may_see_all(ctx: Context, posts: list[Post], viewer: Actor | None) -> list[Post]:
    """The posts this viewer may see (may_see's rule), in their order; the mentions and follows the
    rule needs are read for all the posts at once."""
    live = [post for post in posts if not post.is_deleted]
    # Nobody sees the posts of an account an admin suspended (local or remote).
    if live:
        suspended = await note_batches.suspended_among(ctx.db.reader, list({post.actor_id for post in live}))
        live = [post for post in live if post.actor_id not in suspended]
    if viewer is None:
        return [post for post in live if post.visibility in OPEN_TO_ALL]
    restricted = [post for post in live if post.visibility not in OPEN_TO_ALL and post.actor_id != viewer.id]
    if not restricted:
        return live
    mentioned = await note_batches.mentioning(ctx.db.reader, viewer.id, [post.id for post in restricted])
    authors = [post.actor_id for post in restricted if post.visibility == "followers" and post.id not in mentioned]
    followed = await note_batches.followed_among(ctx.db.reader, viewer.id, authors) if authors else set()
    hidden = {post.id for post in restricted if post.id not in mentioned
              and not (post.visibility == "followers" and post.actor_id in followed)}
    return [post for post in live if post.id not in hidden]


async def deleted_post_status(ctx: Context, post: Post, viewer: Actor | None) -> int:
    """What a deleted post answers: 410 Gone to whoever could see it while it lived, 404 to everyone
    else. That a followers-only or direct post existed is itself not for strangers (Mastodon answers
    them 404 too); public and unlisted posts were open to all, so everyone learns they are gone."""
    if post.visibility in OPEN_TO_ALL:
        return 410
    return 410 if await may_see(ctx, replace(post, deleted_at=None), viewer) else 404


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


def _note_document(ctx: Context, post: Post, author: Actor, *, mentions: list[Actor], tags: list[str],
                   choice: ConsentChoice | None, with_context: bool, attachments: list[Attachment],
                   poll: Poll | None = None) -> dict[str, Any]:
    consent = None if choice is None else ConsentFacts(choice=choice.choice,
                                                       include_unlisted=bool(choice.include_unlisted),
                                                       effective_from=choice.effective_from)
    facts = PostFacts(visibility=post.visibility, published_at=post.published_at, deleted=post.is_deleted,
                      excluded=bool(post.corpus_excluded))
    # The Note says yes only when the corpus rule would take this very post (public, within the
    # consent's scope, not excluded), so its body and the crawler headers never disagree.
    post_choice = signals.post_choice(consent, facts)
    return as2.note_document(post, author, mentions=mentions, tags=tags, urls=ctx.urls, with_context=with_context,
                             attachments=attachments, poll=poll, extra_context=signals.actor_context_extension(),
                             extra_fields=signals.document_fields(post_choice, choice.license if choice else None))


async def local_note_document(ctx: Context, post: Post, author: Actor, *, with_context: bool = True,
                              conn: aiosqlite.Connection | None = None) -> dict[str, Any]:
    """Our Note, carrying the author's choice as it applies to this post (an excluded post says no)."""
    conn = conn or ctx.db.reader
    mention_ids = await post_store.list_mentioned_actor_ids(conn, post.id)
    mentions = [a for a in [await actor_store.get_actor(conn, i) for i in mention_ids] if a is not None]
    tags = await post_store.list_tags(conn, post.id)
    choice = await consent_store.get_choice(conn, author.id, TRAIN_AI)
    media = await attachment_store.attachments_for(conn, [post.id])
    polls = await poll_store.polls_for(conn, [post.id])
    return _note_document(ctx, post, author, mentions=mentions, tags=tags, choice=choice, with_context=with_context,
                          attachments=media.get(post.id, []), poll=polls.get(post.id))


async def local_note_documents(ctx: Context, posts: list[Post], author: Actor, *, with_context: bool = True,
                               conn: aiosqlite.Connection | None = None) -> list[dict[str, Any]]:
    """local_note_document for several posts of one author (an outbox page), in the same order:
    four queries whatever the number of posts (mentions with their actors, hashtags, media, the
    author's choice) instead of four or more per post."""
    if any(post.actor_id != author.id for post in posts):
        raise ValueError(f"not all posts are by {author.uri}")
    if not posts:
        return []
    conn = conn or ctx.db.reader
    post_ids = [post.id for post in posts]
    mentions = await note_batches.mentioned_actors(conn, post_ids)
    tags = await note_batches.tags(conn, post_ids)
    choice = await consent_store.get_choice(conn, author.id, TRAIN_AI)
    media = await attachment_store.attachments_for(conn, post_ids)
    polls = await poll_store.polls_for(conn, post_ids)
    return [_note_document(ctx, post, author, mentions=mentions.get(post.id, []), tags=tags.get(post.id, []),
                           choice=choice, with_context=with_context, attachments=media.get(post.id, []),
                           poll=polls.get(post.id))
            for post in posts]


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
