"""Storing posts that come from other servers, whether delivered to us or fetched on demand."""
from __future__ import annotations

import logging

import aiosqlite

from fedserver.activitypub.fetch import FetchError
from fedserver.activitypub.normalize import host_of
from fedserver.activitypub.notes import InvalidNote, ParsedNote, parse_note
from fedserver.clock import iso_from_epoch, parse_time, time_ordered_id
from fedserver.context import Context
from fedserver.corpus.signals import read_signal
from fedserver.services import remote_actors
from fedserver.store import actors as actor_store
from fedserver.store import interactions as interaction_store
from fedserver.store import posts as post_store
from fedserver.store.actors import Actor
from fedserver.store.posts import NewPost, Post

log = logging.getLogger(__name__)


class PostNotFound(Exception):
    """The post does not exist here and could not be fetched from its origin."""


async def known_mentioned_actors(ctx: Context, hrefs: list[str]) -> list[Actor]:
    """Mentioned actors we know (local ones always; remote ones only from the cache: resolving every
    mention of every incoming post would let one post make us fetch hundreds of documents)."""
    return await actor_store.get_actors_by_uris(ctx.db.reader, hrefs[:50])


def author_excluded(obj: dict, context: object = None) -> bool:
    """A Note whose own signal says no (our term or FEP-5e53 noai) is kept out of the corpus, even
    if its author consented in general: the most restrictive signal wins."""
    return read_signal(obj, context=obj.get("@context", context)).choice == "deny"


async def store_remote_note(ctx: Context, tx: aiosqlite.Connection, parsed: ParsedNote, visibility: str,
                            author: Actor, mentions: list[Actor], *, excluded: bool = False) -> tuple[Post, bool]:
    """Insert or update a remote post inside tx; returns (post, created). Local notifications for
    mentions and replies to local posts are written in the same transaction."""
    now = ctx.clock.now_iso()
    existing = await post_store.get_post_by_uri(tx, parsed.uri)
    if existing is not None:
        if existing.is_deleted:
            return existing, False
        if bool(existing.corpus_excluded) != excluded:
            await post_store.set_corpus_excluded(tx, existing.id, excluded, now)
        await _apply_update(ctx, tx, existing, parsed, visibility, mentions)
        updated = await post_store.get_post(tx, existing.id)
        assert updated is not None
        return updated, False
    published_epoch = min(parse_time(parsed.published) or ctx.clock.now(), ctx.clock.now())
    new_post = NewPost(
        id=time_ordered_id(published_epoch), uri=parsed.uri, url=parsed.url, actor_id=author.id, is_local=False,
        object_type=parsed.object_type, visibility=visibility, content_html=parsed.content_html,
        content_text=parsed.content_text, source_text=None, summary=parsed.summary, sensitive=parsed.sensitive,
        language=parsed.language, in_reply_to_uri=parsed.in_reply_to, audience={"to": parsed.to, "cc": parsed.cc},
        published_at=iso_from_epoch(published_epoch), corpus_excluded=excluded)
    while not await post_store.insert_post(tx, new_post, now):
        new_post.id = time_ordered_id(published_epoch)
    await post_store.set_mentions(tx, new_post.id, [m.id for m in mentions], new=True)
    await post_store.set_tags(tx, new_post.id, parsed.hashtags, new=True)
    await _notify_local(ctx, tx, new_post.id, parsed, author, mentions)
    return new_post.stored(now), True


async def _apply_update(ctx: Context, tx: aiosqlite.Connection, existing: Post, parsed: ParsedNote,
                        visibility: str, mentions: list[Actor]) -> None:
    new_time = parse_time(parsed.updated)
    old_time = parse_time(existing.edited_at) or parse_time(existing.published_at) or 0
    # Ignore undated and older updates (Mastodon does). An equal time is applied: wire times have
    # second precision, so a quick edit can carry the same second as the original.
    if new_time is None or new_time < old_time:
        return
    await post_store.update_post_content(
        tx, existing.id, content_html=parsed.content_html, content_text=parsed.content_text, source_text=None,
        summary=parsed.summary, sensitive=parsed.sensitive, language=parsed.language,
        visibility=_narrowest(existing.visibility, visibility), audience={"to": parsed.to, "cc": parsed.cc},
        edited_at=iso_from_epoch(new_time), now=ctx.clock.now_iso())
    await post_store.set_mentions(tx, existing.id, [m.id for m in mentions])
    await post_store.set_tags(tx, existing.id, parsed.hashtags)


_ORDER = ("direct", "followers", "unlisted", "public")


def _narrowest(a: str, b: str) -> str:
    # An edit may narrow who sees a post but never widen it: widening would expose a post to people
    # who were not meant to see it when it was written (Mastodon also keeps visibility fixed).
    return a if _ORDER.index(a) < _ORDER.index(b) else b


async def _notify_local(ctx: Context, tx: aiosqlite.Connection, post_id: int, parsed: ParsedNote,
                        author: Actor, mentions: list[Actor]) -> None:
    now = ctx.clock.now_iso()
    notified: set[int] = set()
    addressed = set(parsed.to) | set(parsed.cc)
    if parsed.in_reply_to and ctx.urls.is_local(parsed.in_reply_to):
        parent = await post_store.get_post_by_uri(tx, parsed.in_reply_to)
        if parent is not None and parent.actor_id != author.id:
            await interaction_store.add_notification(tx, recipient_id=parent.actor_id, kind="reply",
                                                     from_actor_id=author.id, post_id=post_id, now=now)
            notified.add(parent.actor_id)
    for actor in mentions:
        # Mastodon notifies only accounts both tagged and addressed (tagged-only is a silent mention).
        if actor.is_local and actor.id not in notified and actor.uri in addressed:
            await interaction_store.add_notification(tx, recipient_id=actor.id, kind="mention",
                                                     from_actor_id=author.id, post_id=post_id, now=now)
            notified.add(actor.id)


async def get_or_fetch_post(ctx: Context, uri: str) -> Post:
    """A post by id: from the database, else fetched from its origin (its author must be on the
    same host as the object: Mastodon's FetchRemoteStatusService rule)."""
    post = await post_store.get_post_by_uri(ctx.db.reader, uri)
    if post is not None:
        return post
    if ctx.urls.is_local(uri) or await post_store.is_tombstoned(ctx.db.reader, uri):
        raise PostNotFound(f"no post {uri}")
    try:
        obj = await ctx.fetcher.fetch_object(uri, expected_id=uri)
    except FetchError as exc:
        raise PostNotFound(f"could not fetch {uri}: {exc}") from exc
    attributed = obj.get("attributedTo")
    author_uri = attributed if isinstance(attributed, str) else None
    if author_uri is None or host_of(author_uri) != host_of(uri):
        raise PostNotFound(f"{uri} is attributed to an actor on another host")
    try:
        author = await remote_actors.get_actor(ctx, author_uri)
    except remote_actors.ActorNotFound as exc:
        raise PostNotFound(str(exc)) from exc
    try:
        parsed, visibility = parse_note(obj, followers_url=author.followers_url)
    except InvalidNote as exc:
        raise PostNotFound(f"{uri}: {exc}") from exc
    if parsed.attributed_to != author.uri:
        raise PostNotFound(f"{uri}: attributedTo mismatch")
    mentions = await known_mentioned_actors(ctx, parsed.mention_hrefs)
    async with ctx.db.transaction() as tx:
        post, _ = await store_remote_note(ctx, tx, parsed, visibility, author, mentions,
                                          excluded=author_excluded(obj))
    return post


