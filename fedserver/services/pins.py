"""Pinned posts: a person pins up to MAX_PINS of their own public or unlisted posts; they come first
on the profile and make up the actor's `featured` collection (Mastodon's toot:featured, an
OrderedCollection of the Notes), and followers' servers get Add/Remove with that collection as
target, as Mastodon sends them. A remote account's featured collection is fetched in the background
when someone here opens its profile (at most once per FEATURED_REFRESH_SECONDS), so the page never
waits on another server. POST /api/v1/statuses/:id/{pin,unpin} and
GET /api/v1/accounts/:id/statuses?pinned=true expose the same calls."""
from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

from fedserver.activitypub.fetch import FetchError
from fedserver.activitypub.normalize import host_of
from fedserver.activitypub.vocab import AS_CONTEXT
from fedserver.context import Context
from fedserver.db import Database
from fedserver.services import as2, audience, outbox, remote_actors, remote_posts, timelines
from fedserver.services.accounts import require_local_actor
from fedserver.store import follows as follow_store
from fedserver.store import locks
from fedserver.store import pins as pin_store
from fedserver.store import posts as post_store
from fedserver.store.actors import Actor
from fedserver.store.posts import Post

log = logging.getLogger(__name__)

# Mastodon's limit (StatusPinValidator); remote collections are read up to the same number.
MAX_PINS = 5
PINNABLE = ("public", "unlisted")
FEATURED_REFRESH_SECONDS = 900.0


class PinError(Exception):
    """The post cannot be pinned (clear message for the person)."""


async def pin(ctx: Context, username: str, post: Post) -> None:
    actor = await require_local_actor(ctx, username)
    if post.actor_id != actor.id or post.is_deleted:
        raise PinError("you can pin only your own posts")
    if post.visibility not in PINNABLE:
        raise PinError("only public and unlisted posts can be pinned")
    async with ctx.db.transaction() as tx:
        # Pins of two posts reaching two processes at once must not both find room for one more.
        await locks.lock_name(tx, f"pins:{actor.id}")
        if await pin_store.count_live_pins(tx, actor.id) >= MAX_PINS:
            raise PinError(f"you can pin at most {MAX_PINS} posts; unpin one first")
        if await pin_store.add_pin(tx, actor.id, post.id, ctx.clock.now_iso()):
            await _announce(ctx, tx, actor, "Add", post)


async def unpin(ctx: Context, username: str, post: Post) -> None:
    actor = await require_local_actor(ctx, username)
    async with ctx.db.transaction() as tx:
        if await pin_store.remove_pin(tx, actor.id, post.id):
            await _announce(ctx, tx, actor, "Remove", post)


async def _announce(ctx: Context, tx, actor: Actor, kind: str, post: Post) -> None:
    """Add/Remove of the post to/from the featured collection, to the followers' servers (Mastodon's
    ActivityPub::AddSerializer/RemoveSerializer: it updates the pins it shows on the profile)."""
    activity = {"@context": AS_CONTEXT, "id": ctx.urls.new_activity(), "type": kind, "actor": actor.uri,
                "object": post.uri, "target": featured_id(ctx, actor)}
    await outbox.publish(ctx, tx, actor=actor, activity=activity,
                         inboxes=await outbox.follower_inboxes(tx, actor), is_public=True)


def featured_id(ctx: Context, actor: Actor) -> str:
    return actor.featured_url or ctx.urls.featured(actor.username)


async def pinned_posts(ctx: Context, actor: Actor) -> list[Post]:
    """The account's live pinned posts, newest pin first."""
    return await pin_store.pinned_posts(ctx.db.reader, actor.id, MAX_PINS)


async def pinned_cards(ctx: Context, actor: Actor, viewer: Actor | None, *,
                       choices: timelines.TrainingChoices | None = None) -> list[timelines.PostCard]:
    """The pinned posts this viewer may see, as cards (first on the profile)."""
    posts = await pinned_posts(ctx, actor)
    if not posts:  # most profiles: one indexed read, no card queries
        return []
    posts = await audience.may_see_all(ctx, posts, viewer)
    return await timelines.cards_for(ctx, viewer, [(p.id, p, None) for p in posts], choices=choices)


async def featured_collection(ctx: Context, actor: Actor) -> dict[str, Any]:
    """The actor's featured collection as Mastodon serves it: every item inline (a Note without its
    own @context). Only public and unlisted posts are ever pinned; a suspended account has none."""
    posts = [] if actor.is_gone else [p for p in await pinned_posts(ctx, actor) if p.visibility in PINNABLE]
    notes = await audience.local_note_documents(ctx, posts, actor, with_context=False)
    doc = as2.ordered_collection(featured_id(ctx, actor), len(notes), None)
    doc["orderedItems"] = notes
    return doc


# --- remote accounts' featured collections --------------------------------------------------

class _Refreshes:
    def __init__(self) -> None:
        self.last: dict[int, float] = {}
        self.tasks: set[asyncio.Task[None]] = set()


_refreshes: weakref.WeakKeyDictionary[Database, _Refreshes] = weakref.WeakKeyDictionary()


def refresh_featured_soon(ctx: Context, actor: Actor) -> None:
    """Fetch a remote account's featured posts in the background, unless that was tried lately."""
    if actor.is_local or actor.is_gone or not actor.featured_url:
        return
    state = _refreshes.get(ctx.db)
    if state is None:
        state = _refreshes[ctx.db] = _Refreshes()
    now = time.monotonic()
    if now - state.last.get(actor.id, -FEATURED_REFRESH_SECONDS) < FEATURED_REFRESH_SECONDS:
        return
    if len(state.last) > 10_000:
        state.last.clear()
    state.last[actor.id] = now
    task = asyncio.create_task(_refresh_logged(ctx, actor), name=f"featured-{actor.id}")
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)


async def _refresh_logged(ctx: Context, actor: Actor) -> None:
    try:
        count = await refresh_featured(ctx, actor)
        log.info("featured collection of %s: %d pinned posts", actor.uri, count)
    except (FetchError, remote_actors.ActorNotFound, FeaturedUnusable) as exc:
        log.info("featured collection of %s not read: %s", actor.uri, exc)
    except Exception:  # a background task: whatever a remote sends must not go unreported
        log.exception("featured collection of %s failed", actor.uri)


class FeaturedUnusable(Exception):
    """The remote featured collection cannot be used (wrong host, blocked, malformed)."""


async def refresh_featured(ctx: Context, actor: Actor) -> int:
    """Read the account's featured collection and store its first MAX_PINS posts as its pins. Each
    post is taken from our database or fetched from its own id (never trusted as embedded), and
    must be by this account, on its host, and public or unlisted."""
    url = actor.featured_url
    if not url or host_of(url) is None or host_of(url) != host_of(actor.uri):
        raise FeaturedUnusable(f"featured collection {url!r} is not on the account's host")
    if await remote_actors.domain_blocked(ctx, url):
        raise FeaturedUnusable(f"the domain of {url} is blocked")
    doc = await ctx.fetcher.fetch_object(url, expected_id=url)
    post_ids: list[int] = []
    for uri in _item_ids(doc, host_of(actor.uri))[:MAX_PINS]:
        try:
            post = await remote_posts.get_or_fetch_post(ctx, uri)
        except remote_posts.PostNotFound as exc:
            log.info("featured post %s of %s skipped: %s", uri, actor.uri, exc)
            continue
        if post.actor_id == actor.id and post.visibility in PINNABLE and not post.is_deleted:
            post_ids.append(post.id)
    async with ctx.db.transaction() as tx:
        await pin_store.replace_pins(tx, actor.id, post_ids, ctx.clock.now_iso())
    return len(post_ids)


def _item_ids(doc: dict[str, Any], host: str | None) -> list[str]:
    """The ids listed by a collection (inline items, or those of an inline first page), on the
    account's host, without repeats."""
    items = doc.get("orderedItems", doc.get("items"))
    first = doc.get("first")
    if items is None and isinstance(first, dict):
        items = first.get("orderedItems", first.get("items"))
    if not isinstance(items, list):
        return []
    ids: list[str] = []
    for item in items[:100]:
        value = item.get("id") if isinstance(item, dict) else item
        if isinstance(value, str) and len(value) <= 2000 and host_of(value) == host and value not in ids:
            ids.append(value)
    return ids


async def receive_featured_change(ctx: Context, signer: Actor, kind: str, object_uri: str | None,
                                  target: str | None) -> bool:
    """A remote account's Add/Remove of one of its posts to/from its featured collection (what
    Mastodon sends its followers on pin/unpin). Only about the signer's own collection (Mastodon's
    ActivityPub::Activity::Add checks the target the same way), only when someone here follows it,
    and the post is read from our database or its own id, never from the activity. Whether a pin
    changed."""
    if signer.is_local or not object_uri or not target or target != signer.featured_url:
        return False
    if kind == "Remove":
        post = await post_store.get_post_by_uri(ctx.db.reader, object_uri)
        if post is None:
            return False
        async with ctx.db.transaction() as tx:
            return await pin_store.remove_pin(tx, signer.id, post.id)
    if not await follow_store.local_followers_of(ctx.db.reader, signer.id):
        return False  # nobody here shows its profile often enough to fetch for
    try:
        post = await remote_posts.get_or_fetch_post(ctx, object_uri)
    except remote_posts.PostNotFound as exc:
        log.info("Add of %s to %s's featured posts ignored: %s", object_uri, signer.uri, exc)
        return False
    if post.actor_id != signer.id or post.visibility not in PINNABLE or post.is_deleted:
        return False
    async with ctx.db.transaction() as tx:
        return await pin_store.add_pin(tx, signer.id, post.id, ctx.clock.now_iso())
