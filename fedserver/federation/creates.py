"""Create of a post (Note, Article, Page, Question): what it takes to store a delivered post, for one
Create or a batch of them. The inbox worker applies the Creates of a claimed batch together. First
each is checked and read without its content (author, audience, mentions, parent), and whether
anyone here cares is decided from that: a post nobody here wants costs no HTML parsing. Only the
posts that matter are parsed, one at a time off the event loop within a time budget
(activitypub.sanitizing). The rest (tombstones, relevance again, storing, notifications) runs in one
write transaction, one thread hop for the batch where each Create used to cost about ten aiosqlite
round trips."""
from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass
from typing import Any, Callable

from fedserver.activitypub.normalize import first_type
from fedserver.activitypub.notes import InvalidNote, NoteHead, read_note_head
from fedserver.activitypub.sanitizing import parse_note_off_loop
from fedserver.activitypub.vocab import POST_TYPES
from fedserver.context import Context
from fedserver.services import events, polls, remote_posts
from fedserver.services.remote_posts import IncomingNote
from fedserver.store import inbound_batches
from fedserver.store import posts as post_store
from fedserver.store.actors import Actor
from fedserver.urls import Urls

log = logging.getLogger(__name__)

# Small posts are parsed on the event loop (activitypub.sanitizing): this many between two turns of
# the loop, so that a batch's parsing (~70 us a post) never holds up inbound requests for long.
PARSE_SLICE = 16


@dataclass
class DeliveredCreate:
    """A Create by a known signer, with its object (embedded, or already fetched from its origin;
    None when it could not be had)."""
    activity: dict[str, Any]
    obj: Any
    signer: Actor


@dataclass
class _Checked:
    activity_id: Any
    note: IncomingNote


def _head(create: DeliveredCreate) -> NoteHead | None:
    """What the Create's post says about who it concerns, or None (logged) when the Create is to be
    ignored. Reads no content."""
    obj, activity, signer = create.obj, create.activity, create.signer
    if signer.suspended_at:
        log.info("Create %s ignored: %s is suspended here", activity.get("id"), signer.uri)
        return None
    if not isinstance(obj, dict) or first_type(obj) not in POST_TYPES:
        log.info("Create %s of %s ignored", activity.get("id"), first_type(obj) if isinstance(obj, dict) else None)
        return None
    try:
        head = read_note_head(obj)
    except InvalidNote as exc:
        log.info("Create %s ignored: %s", activity.get("id"), exc)
        return None
    if head.attributed_to != signer.uri:
        log.info("Create %s ignored: attributedTo is not the actor", activity.get("id"))
        return None
    return head


async def _counted_as_vote(ctx: Context, create: DeliveredCreate) -> bool:
    """A vote in one of our polls (Mastodon's Create of a Note named after the choice, in reply to
    the Question) is counted, not stored as a post. Replays are counted once (services.polls)."""
    if not polls.is_vote(create.obj):
        return False
    found = await polls.poll_of_local_post(ctx, create.obj.get("inReplyTo"))
    if found is None:
        return False
    await polls.count_remote_vote(ctx, create.obj, create.signer, *found)
    return True


def is_relevant(head: NoteHead, mentions: list[Actor], *, followed_here: bool, urls: Urls) -> bool:
    """Mastodon's related_to_local_activity?: followed author, addressed/mentioned local account,
    or a reply to a local post."""
    if followed_here:
        return True
    if any(m.is_local for m in mentions) or any(urls.is_local(a) for a in (*head.to, *head.cc)):
        return True
    return bool(head.in_reply_to and urls.is_local(head.in_reply_to))


async def apply_creates(ctx: Context, creates: list[DeliveredCreate], *,
                        also: Callable[[sqlite3.Connection], None] | None = None) -> None:
    """Store the posts of these Creates, in order, in one write transaction. `also` runs at the end
    of the same transaction: the inbox worker marks the batch done there, so a crash leaves the
    batch either applied and done or neither. Raises if any Create fails (nothing is then written)."""
    creates = [create for create in creates if not await _counted_as_vote(ctx, create)]
    heads = [(create, head) for create in creates if (head := _head(create)) is not None]
    mentions = await remote_posts.known_mentioned_actors_of(ctx, [head.mention_hrefs for _, head in heads])
    followed = await inbound_batches.followed_here_of(ctx.db.reader, list({c.signer.id for c, _ in heads}))
    notes: list[_Checked] = []
    for index, ((create, head), mentioned) in enumerate(zip(heads, mentions)):
        if index and index % PARSE_SLICE == 0:
            await asyncio.sleep(0)
        if not is_relevant(head, mentioned, followed_here=create.signer.id in followed, urls=ctx.urls):
            log.info("Create %s ignored: nobody here follows or is addressed", create.activity.get("id"))
            continue
        try:
            parsed, visibility = await parse_note_off_loop(create.obj, followers_url=create.signer.followers_url)
        except InvalidNote as exc:
            log.info("Create %s ignored: %s", create.activity.get("id"), exc)
            continue
        notes.append(_Checked(create.activity.get("id"), remote_posts.incoming_note(
            ctx, parsed, visibility, create.signer, mentioned,
            excluded=remote_posts.author_excluded(create.obj, create.activity.get("@context")))))
    if not notes and also is None:
        return
    now, urls = ctx.clock.now_iso(), ctx.urls
    await ctx.db.write_batch(lambda conn: _store(conn, notes, now, urls, also))
    events.wake(ctx)


def _store(conn: sqlite3.Connection, notes: list[_Checked], now: str, urls: Urls,
           also: Callable[[sqlite3.Connection], None] | None) -> None:
    """Inside the batch's transaction (database thread)."""
    if len(notes) > 1:
        post_store.lock_tag_counts_sync(conn, [tag for c in notes for tag in c.note.parsed.hashtags])
    tombstoned = inbound_batches.tombstoned_among(conn, [c.note.parsed.uri for c in notes])
    followed = inbound_batches.followed_here_among(conn, [c.note.author.id for c in notes])
    for checked in notes:
        note = checked.note
        if note.parsed.uri in tombstoned:
            continue  # deleted before this (late or replayed) Create arrived
        # Again inside the transaction: a follow may have ended since the check before parsing.
        if not is_relevant(_head_of(note), note.mentions, followed_here=note.author.id in followed, urls=urls):
            log.info("Create %s ignored: nobody here follows or is addressed", checked.activity_id)
            continue
        remote_posts.store_remote_note(conn, note, now=now, urls=urls)
    if also is not None:
        also(conn)


def _head_of(note: IncomingNote) -> NoteHead:
    parsed = note.parsed
    return NoteHead(uri=parsed.uri, object_type=parsed.object_type, attributed_to=parsed.attributed_to,
                    to=parsed.to, cc=parsed.cc, in_reply_to=parsed.in_reply_to, mention_hrefs=parsed.mention_hrefs)
