"""Storing posts that come from other servers, whether delivered to us or fetched on demand.

Storing runs as one synchronous function inside a Database.write_batch transaction: the inbox
worker stores a whole batch of delivered posts in one thread hop (save_remote_note stores one)."""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

from fedserver.activitypub.fetch import FetchError
from fedserver.activitypub.normalize import host_of
from fedserver.activitypub.notes import InvalidNote, ParsedNote
from fedserver.activitypub.sanitizing import parse_note_off_loop
from fedserver.clock import iso_from_epoch, parse_time, time_ordered_id
from fedserver.context import Context
from fedserver.corpus.signals import read_signal
from fedserver.services import polls as polls_service
from fedserver.services import events, remote_actors
from fedserver.store import actors as actor_store
from fedserver.store import attachments as attachment_store
from fedserver.store import emojis as emoji_store
from fedserver.store import interactions as interaction_store
from fedserver.store import polls as poll_store
from fedserver.store import posts as post_store
from fedserver.store import remote_media as media_store
from fedserver.store.actors import Actor
from fedserver.store.attachments import Attachment
from fedserver.store.polls import Poll, PollChoice
from fedserver.store.posts import NewPost, Post, PostEdit
from fedserver.urls import Urls

log = logging.getLogger(__name__)

# Mentions of one post looked up (the rest are ignored: a post cannot make us do unbounded work).
MAX_MENTIONS = 50
# Actor ids per look-up query (SQLite before 3.32 allows 999 parameters per statement).
_LOOKUP_CHUNK = 500


class PostNotFound(Exception):
    """The post does not exist here and could not be fetched from its origin."""


@dataclass
class IncomingNote:
    """A parsed remote post with everything storing it needs (store_remote_note)."""
    parsed: ParsedNote
    visibility: str
    author: Actor
    mentions: list[Actor]
    excluded: bool
    published_epoch: float
    # The id it gets if it is new. Drawn on the event loop: time_ordered_id keeps per-process state
    # (ids in creation order within a millisecond) that the database thread must not race with.
    new_id: int


def incoming_note(ctx: Context, parsed: ParsedNote, visibility: str, author: Actor, mentions: list[Actor], *,
                  excluded: bool = False) -> IncomingNote:
    # A post dated in the future is stored as published now (it would otherwise top timelines).
    now = ctx.clock.now()
    published_epoch = min(parse_time(parsed.published) or now, now)
    return IncomingNote(parsed=parsed, visibility=visibility, author=author, mentions=mentions, excluded=excluded,
                        published_epoch=published_epoch, new_id=time_ordered_id(published_epoch))


async def known_mentioned_actors(ctx: Context, hrefs: list[str]) -> list[Actor]:
    """Mentioned actors we know (local ones always; remote ones only from the cache: resolving every
    mention of every incoming post would let one post make us fetch hundreds of documents)."""
    return (await known_mentioned_actors_of(ctx, [hrefs]))[0]


async def known_mentioned_actors_of(ctx: Context, href_lists: list[list[str]]) -> list[list[Actor]]:
    """known_mentioned_actors of many posts at once, in one query per 500 distinct actors."""
    wanted = list(dict.fromkeys(href for hrefs in href_lists for href in hrefs[:MAX_MENTIONS]))
    known: dict[str, Actor] = {}
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        for actor in await actor_store.get_actors_by_uris(ctx.db.reader, wanted[start:start + _LOOKUP_CHUNK]):
            known[actor.uri] = actor
    return [[known[href] for href in dict.fromkeys(hrefs[:MAX_MENTIONS]) if href in known] for hrefs in href_lists]


def author_excluded(obj: dict, context: object = None) -> bool:
    """A Note whose own signal says no (our term or FEP-5e53 noai) is kept out of the corpus, even
    if its author consented in general: the most restrictive signal wins."""
    return read_signal(obj, context=obj.get("@context", context)).choice == "deny"


async def save_remote_note(ctx: Context, note: IncomingNote) -> tuple[Post, bool]:
    """store_remote_note in a transaction of its own."""
    now, urls = ctx.clock.now_iso(), ctx.urls
    stored = await ctx.db.write_batch(lambda conn: store_remote_note(conn, note, now=now, urls=urls))
    events.wake(ctx)
    return stored


def store_remote_note(conn: sqlite3.Connection, note: IncomingNote, *, now: str, urls: Urls) -> tuple[Post, bool]:
    """Insert a remote post inside the transaction of a Database.write_batch; returns (post,
    created). Local notifications for mentions and replies to local posts are written in the same
    transaction. A post already stored under this id is returned unchanged: a Create (or a fetch)
    never changes an existing post, or any actor of the same host could rewrite another's post by
    reusing its id (the origin check only compares hosts). Edits arrive as Updates from the author
    (apply_remote_edit), as in Mastodon, where a Create of a known status is a no-op."""
    parsed = note.parsed
    existing = post_store.get_post_by_uri_sync(conn, parsed.uri)
    if existing is not None:
        if existing.actor_id != note.author.id:
            log.warning("Create of %s by %s ignored: the post exists and belongs to another actor",
                        parsed.uri, note.author.uri)
        else:
            log.info("Create of %s ignored: the post is already stored", parsed.uri)
        return existing, False
    new_post = NewPost(
        id=note.new_id, uri=parsed.uri, url=parsed.url, actor_id=note.author.id, is_local=False,
        object_type=parsed.object_type, visibility=note.visibility, content_html=parsed.content_html,
        content_text=parsed.content_text, source_text=None, summary=parsed.summary, sensitive=parsed.sensitive,
        language=parsed.language, in_reply_to_uri=parsed.in_reply_to, audience={"to": parsed.to, "cc": parsed.cc},
        published_at=iso_from_epoch(note.published_epoch), corpus_excluded=note.excluded)
    while not post_store.insert_post_sync(conn, new_post, now):
        stored = post_store.get_post_by_uri_sync(conn, parsed.uri)
        if stored is not None:
            # Another process (a second inbox worker fetching the same boosted post) stored it
            # since the look-up above: theirs is the post, as if it had been found there.
            log.info("Create of %s ignored: stored by another process a moment ago", parsed.uri)
            return stored, False
        # The id is taken (by another process's post in the same millisecond): draw another.
        new_post.id = time_ordered_id(note.published_epoch)
    mention_ids = [m.id for m in note.mentions]
    post_store.set_mentions_sync(conn, new_post.id, mention_ids, new=True)
    post_store.set_tags_sync(conn, new_post.id, parsed.hashtags, new=True)
    if parsed.attachments:
        attachment_store.set_attachments_sync(conn, new_post.id, _attachment_rows(parsed), new=True)
    if parsed.emojis:
        emoji_store.set_emojis_sync(conn, new_post.id, parsed.emojis, new=True)
    _queue_media(conn, parsed, note.author, now)
    if parsed.poll is not None:
        poll_store.set_poll_sync(conn, new_post.id, _poll_row(parsed), new=True)
    _notify_local(conn, new_post.id, note, now, urls)
    events.status_created_sync(conn, new_post.id, now)
    return new_post.stored(now), True


async def save_remote_edit(ctx: Context, note: IncomingNote) -> Post | None:
    """apply_remote_edit in a transaction of its own."""
    now = ctx.clock.now_iso()
    edited = await ctx.db.write_batch(lambda conn: apply_remote_edit(conn, note, now=now))
    events.wake(ctx)
    return edited


def apply_remote_edit(conn: sqlite3.Connection, note: IncomingNote, *, now: str) -> Post | None:
    """Apply an Update of a stored remote post by its own author (inside a Database.write_batch);
    the post as it now is, or None when there is nothing this author may change (unknown, deleted,
    or someone else's post)."""
    existing = post_store.get_post_by_uri_sync(conn, note.parsed.uri)
    if existing is not None:
        # As it is once locked: a deletion committed since the read (a moderator's, in another
        # process) must not get the content written back by this edit.
        existing = post_store.lock_post_sync(conn, existing.id)
    if existing is None or existing.is_deleted:
        return None
    if existing.actor_id != note.author.id:
        log.warning("Update of %s by %s ignored: the post belongs to another actor", note.parsed.uri, note.author.uri)
        return None
    if bool(existing.corpus_excluded) != note.excluded:
        post_store.set_corpus_excluded_sync(conn, existing.id, note.excluded, now)
    _apply_update(conn, existing, note, now)
    events.status_edited_sync(conn, existing.id, now)
    return post_store.get_post_sync(conn, existing.id)


def _apply_update(conn: sqlite3.Connection, existing: Post, note: IncomingNote, now: str) -> None:
    parsed = note.parsed
    if parsed.poll is not None:
        # New counts, or the end of the poll: Mastodon sends these as Updates that are not edits
        # (no newer `updated`), so they apply whatever the time check below decides.
        poll_store.set_poll_sync(conn, existing.id, _poll_row(parsed))
        if parsed.poll.closed_at is not None:
            # The poll's server closed it: the people here who voted hear of it (once).
            polls_service.notify_poll_ended_sync(conn, existing, now)
    new_time = parse_time(parsed.updated)
    old_time = parse_time(existing.edited_at) or parse_time(existing.published_at) or 0
    # Ignore undated and older updates (Mastodon does). An equal time is applied: wire times have
    # second precision, so a quick edit can carry the same second as the original.
    if new_time is None or new_time < old_time:
        return
    post_store.update_post_content_sync(conn, existing.id, PostEdit(
        content_html=parsed.content_html, content_text=parsed.content_text, source_text=None,
        summary=parsed.summary, sensitive=parsed.sensitive, language=parsed.language,
        visibility=_narrowest(existing.visibility, note.visibility), audience={"to": parsed.to, "cc": parsed.cc},
        edited_at=iso_from_epoch(new_time)), now)
    post_store.set_mentions_sync(conn, existing.id, [m.id for m in note.mentions])
    post_store.set_tags_sync(conn, existing.id, parsed.hashtags)
    attachment_store.set_attachments_sync(conn, existing.id, _attachment_rows(parsed))
    emoji_store.set_emojis_sync(conn, existing.id, parsed.emojis)
    _queue_media(conn, parsed, note.author, now)


def _queue_media(conn: sqlite3.Connection, parsed: ParsedNote, author: Actor, now: str) -> None:
    """A post stored here is for people here: its pictures, and its author's avatar, go to the media
    cache's queue (services/media_cache.py), so that they are ready before anyone looks."""
    urls = [(a.url, "attachment") for a in _attachment_rows(parsed) if a.kind == "image"]
    # Video and audio go through ffprobe/ffmpeg instead of the image worker (media_cache.AV_PURPOSES).
    urls += [(a.url, a.kind) for a in _attachment_rows(parsed) if a.kind in ("video", "audio")]
    urls += [(url, "emoji") for _, url in parsed.emojis]
    if author.icon_url:
        urls.append((author.icon_url, "avatar"))
    media_store.note_urls_sync(conn, urls, state=media_store.QUEUED, now=now)


def _poll_row(parsed: ParsedNote) -> Poll | None:
    poll = parsed.poll
    if poll is None:
        return None
    return Poll(multiple=poll.multiple, ends_at=poll.ends_at, closed_at=poll.closed_at, voters=poll.voters,
                choices=tuple(PollChoice(option.name, option.votes) for option in poll.options))


def _attachment_rows(parsed: ParsedNote) -> list[Attachment]:
    return [Attachment(position=index, media_type=media.media_type, url=media.url, description=media.description,
                       width=media.width, height=media.height, duration=media.duration)
            for index, media in enumerate(parsed.attachments)]


_ORDER = ("direct", "followers", "unlisted", "public")


def _narrowest(a: str, b: str) -> str:
    # An edit may narrow who sees a post but never widen it: widening would expose a post to people
    # who were not meant to see it when it was written (Mastodon also keeps visibility fixed).
    return a if _ORDER.index(a) < _ORDER.index(b) else b


def _notify_local(conn: sqlite3.Connection, post_id: int, note: IncomingNote, now: str, urls: Urls) -> None:
    parsed, author = note.parsed, note.author
    notified: set[int] = set()
    addressed = set(parsed.to) | set(parsed.cc)
    if parsed.in_reply_to and urls.is_local(parsed.in_reply_to):
        parent = post_store.get_post_by_uri_sync(conn, parsed.in_reply_to)
        if parent is not None and parent.actor_id != author.id:
            interaction_store.add_notification_sync(conn, recipient_id=parent.actor_id, kind="reply",
                                                    from_actor_id=author.id, post_id=post_id, now=now)
            notified.add(parent.actor_id)
    for actor in note.mentions:
        # Mastodon notifies only accounts both tagged and addressed (tagged-only is a silent mention).
        if actor.is_local and actor.id not in notified and actor.uri in addressed:
            interaction_store.add_notification_sync(conn, recipient_id=actor.id, kind="mention",
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
    if host_of(uri) is None:
        raise PostNotFound(f"{uri} is not an http(s) URL with a valid host and no user info")
    if await remote_actors.domain_blocked(ctx, uri):
        raise PostNotFound(f"the domain of {uri} is blocked")
    try:
        obj = await ctx.fetcher.fetch_object(uri, expected_id=uri)
    except FetchError as exc:
        raise PostNotFound(f"could not fetch {uri}: {exc.plain}") from exc
    return await store_fetched_post(ctx, uri, obj)


async def store_fetched_post(ctx: Context, uri: str, obj: dict) -> Post:
    """Store a post object just fetched from uri (its id, checked by the fetcher), by the same
    rules as get_or_fetch_post; the stored post if we hold it already."""
    post = await post_store.get_post_by_uri(ctx.db.reader, uri)
    if post is not None:
        return post
    if await post_store.is_tombstoned(ctx.db.reader, uri):
        raise PostNotFound(f"{uri} was deleted")
    attributed = obj.get("attributedTo")
    author_uri = attributed if isinstance(attributed, str) else None
    if author_uri is None or host_of(author_uri) != host_of(uri):
        raise PostNotFound(f"{uri} is attributed to an actor on another host")
    try:
        author = await remote_actors.get_actor(ctx, author_uri)
    except remote_actors.ActorNotFound as exc:
        raise PostNotFound(str(exc)) from exc
    try:
        parsed, visibility = await parse_note_off_loop(obj, followers_url=author.followers_url)
    except InvalidNote as exc:
        raise PostNotFound(f"{uri}: {exc}") from exc
    if parsed.attributed_to != author.uri:
        raise PostNotFound(f"{uri}: attributedTo mismatch")
    mentions = await known_mentioned_actors(ctx, parsed.mention_hrefs)
    post, _ = await save_remote_note(ctx, incoming_note(ctx, parsed, visibility, author, mentions,
                                                        excluded=author_excluded(obj)))
    return post


