"""Create of a post (Note, Article, Page, Question): what it takes to store a delivered post, for one
Create or a batch of them. The inbox worker applies the Creates of a claimed batch together: each is
checked and parsed on the event loop, their mentions read in one query, and the rest (tombstones,
whether anyone here cares, storing, notifications) runs in one write transaction, one thread hop
for the batch where each Create used to cost about ten aiosqlite round trips."""
from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass
from typing import Any, Callable

from fedserver.activitypub.normalize import first_type
from fedserver.activitypub.notes import InvalidNote, ParsedNote, parse_note
from fedserver.activitypub.vocab import POST_TYPES
from fedserver.context import Context
from fedserver.services import remote_posts
from fedserver.services.remote_posts import IncomingNote
from fedserver.store import inbound_batches
from fedserver.store.actors import Actor
from fedserver.urls import Urls

log = logging.getLogger(__name__)

# Posts parsed (sanitised) between two turns of the event loop: a batch's parsing, ~70 us a post,
# would otherwise hold up inbound requests for the whole batch.
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


def _parse(create: DeliveredCreate) -> tuple[ParsedNote, str] | None:
    """The parsed post and its visibility, or None (logged) when the Create is to be ignored."""
    obj, activity, signer = create.obj, create.activity, create.signer
    if signer.suspended_at:
        log.info("Create %s ignored: %s is suspended here", activity.get("id"), signer.uri)
        return None
    if not isinstance(obj, dict) or first_type(obj) not in POST_TYPES:
        log.info("Create %s of %s ignored", activity.get("id"), first_type(obj) if isinstance(obj, dict) else None)
        return None
    try:
        parsed, visibility = parse_note(obj, followers_url=signer.followers_url)
    except InvalidNote as exc:
        log.info("Create %s ignored: %s", activity.get("id"), exc)
        return None
    if parsed.attributed_to != signer.uri:
        log.info("Create %s ignored: attributedTo is not the actor", activity.get("id"))
        return None
    return parsed, visibility


def is_relevant(note: IncomingNote, *, followed_here: bool, urls: Urls) -> bool:
    """Mastodon's related_to_local_activity?: followed author, addressed/mentioned local account,
    or a reply to a local post."""
    if followed_here:
        return True
    parsed = note.parsed
    addressed = set(parsed.to) | set(parsed.cc)
    if any(m.is_local for m in note.mentions) or any(urls.is_local(a) for a in addressed):
        return True
    return bool(parsed.in_reply_to and urls.is_local(parsed.in_reply_to))


async def apply_creates(ctx: Context, creates: list[DeliveredCreate], *,
                        also: Callable[[sqlite3.Connection], None] | None = None) -> None:
    """Store the posts of these Creates, in order, in one write transaction. `also` runs at the end
    of the same transaction: the inbox worker marks the batch done there, so a crash leaves the
    batch either applied and done or neither. Raises if any Create fails (nothing is then written)."""
    checked: list[tuple[DeliveredCreate, ParsedNote, str]] = []
    for index, create in enumerate(creates):
        if index and index % PARSE_SLICE == 0:
            await asyncio.sleep(0)
        result = _parse(create)
        if result is not None:
            checked.append((create, *result))
    mentions = await remote_posts.known_mentioned_actors_of(ctx, [parsed.mention_hrefs for _, parsed, _ in checked])
    notes = [
        _Checked(create.activity.get("id"), remote_posts.incoming_note(
            ctx, parsed, visibility, create.signer, mentioned,
            excluded=remote_posts.author_excluded(create.obj, create.activity.get("@context"))))
        for (create, parsed, visibility), mentioned in zip(checked, mentions)]
    if not notes and also is None:
        return
    now, urls = ctx.clock.now_iso(), ctx.urls
    await ctx.db.write_batch(lambda conn: _store(conn, notes, now, urls, also))


def _store(conn: sqlite3.Connection, notes: list[_Checked], now: str, urls: Urls,
           also: Callable[[sqlite3.Connection], None] | None) -> None:
    """Inside the batch's transaction (database thread)."""
    tombstoned = inbound_batches.tombstoned_among(conn, [c.note.parsed.uri for c in notes])
    followed = inbound_batches.followed_here_among(conn, [c.note.author.id for c in notes])
    for checked in notes:
        note = checked.note
        if note.parsed.uri in tombstoned:
            continue  # deleted before this (late or replayed) Create arrived
        if not is_relevant(note, followed_here=note.author.id in followed, urls=urls):
            log.info("Create %s ignored: nobody here follows or is addressed", checked.activity_id)
            continue
        remote_posts.store_remote_note(conn, note, now=now, urls=urls)
    if also is not None:
        also(conn)
