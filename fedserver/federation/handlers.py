"""What each inbound activity type does. The inbox endpoint has already verified the signer is the
activity's actor and that embedded objects come from the actor's server."""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Awaitable, Callable

from fedserver.activitypub.normalize import first_type, host_of, id_of, ids_of
from fedserver.activitypub.notes import InvalidNote
from fedserver.activitypub.sanitizing import parse_note_off_loop
from fedserver.activitypub.vocab import ACTOR_TYPES, POST_TYPES
from fedserver.clock import parse_time, time_ordered_id
from fedserver.context import Context
from fedserver.federation import creates
from fedserver.services import follows as follow_service
from fedserver.services import pins as pin_service
from fedserver.services import events, remote_actors, remote_posts
from fedserver.services import reports as report_service
from fedserver.store import actors as actor_store
from fedserver.store import follows as follow_store
from fedserver.store import hosts as host_store
from fedserver.store import interactions as interaction_store
from fedserver.store import posts as post_store
from fedserver.store.actors import Actor

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """A transient problem (a remote server did not answer): process the activity again later."""


Handler = Callable[[Context, dict[str, Any], Actor], Awaitable[None]]


async def handle_follow(ctx: Context, activity: dict[str, Any], signer: Actor) -> None:
    target_uri = id_of(activity.get("object"))
    target = await actor_store.get_actor_by_uri(ctx.db.reader, target_uri or "")
    if target is None or not target.is_local or target.deleted_at or target.actor_type == "Application":
        log.info("Follow of %s ignored: not a local account", target_uri)
        return
    follow_uri = activity["id"]
    now = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        # Stored before its domain was blocked, applied after: the block ended follows with that
        # domain and no new one may start (read in this transaction, so the block is seen).
        signer_host = host_of(signer.uri)
        if signer_host is None or await host_store.is_domain_blocked(tx, signer_host):
            log.info("Follow %s from %s ignored: its domain is blocked", follow_uri, signer.uri)
            return
        if await follow_store.is_blocked_by(tx, signer.id, target.id):
            await follow_service.send_follow_answer(ctx, tx, target, signer, follow_uri, accept=False)
            return
        existing = await follow_store.get_follow(tx, signer.id, target.id)
        state = "pending" if target.manually_approves_followers else "accepted"
        record = await follow_store.upsert_follow(tx, uri=follow_uri, follower_id=signer.id, followee_id=target.id,
                                                  state=state, now=now)
        if existing is None or existing.state != record.state:
            kind = "follow" if record.state == "accepted" else "follow_request"
            await interaction_store.add_notification(tx, recipient_id=target.id, kind=kind, from_actor_id=signer.id,
                                                     post_id=None, now=now)
        if record.state == "accepted":
            # A repeated Follow gets a fresh Accept (Mastodon does the same).
            await follow_service.send_follow_answer(ctx, tx, target, signer, follow_uri, accept=True)


async def _our_follow_of(ctx: Context, tx, activity: dict[str, Any], signer: Actor):
    """The local follow an Accept/Reject refers to: by the Follow's id, else by the embedded actor."""
    obj = activity.get("object")
    follow = await follow_store.get_follow_by_uri(tx, id_of(obj) or "")
    if follow is None and isinstance(obj, dict):
        follower = await actor_store.get_actor_by_uri(tx, id_of(obj.get("actor")) or "")
        if follower is not None and follower.is_local:
            follow = await follow_store.get_follow(tx, follower.id, signer.id)
    if follow is None or follow.followee_id != signer.id:
        return None
    return follow


async def handle_accept(ctx: Context, activity: dict[str, Any], signer: Actor) -> None:
    async with ctx.db.transaction() as tx:
        follow = await _our_follow_of(ctx, tx, activity, signer)
        if follow is None:
            log.info("Accept %s refers to no follow of ours", activity.get("id"))
            return
        await follow_store.set_follow_state(tx, follow.id, "accepted", ctx.clock.now_iso())


async def handle_reject(ctx: Context, activity: dict[str, Any], signer: Actor) -> None:
    async with ctx.db.transaction() as tx:
        follow = await _our_follow_of(ctx, tx, activity, signer)
        if follow is not None:
            await follow_store.delete_follow(tx, follow.id)


async def handle_undo(ctx: Context, activity: dict[str, Any], signer: Actor) -> None:
    obj = activity.get("object")
    inner_type = first_type(obj) if isinstance(obj, dict) else None
    object_uri = id_of(obj) or ""
    async with ctx.db.transaction() as tx:
        if inner_type in (None, "Follow"):
            follow = await follow_store.get_follow_by_uri(tx, object_uri)
            if follow is None and isinstance(obj, dict):
                target = await actor_store.get_actor_by_uri(tx, id_of(obj.get("object")) or "")
                follow = await follow_store.get_follow(tx, signer.id, target.id) if target else None
            if follow is not None and follow.follower_id == signer.id:
                await follow_store.delete_follow(tx, follow.id)
                return
        if inner_type in (None, "Like"):
            like = await interaction_store.get_like_by_uri(tx, object_uri)
            if like is None and isinstance(obj, dict):
                post = await post_store.get_post_by_uri(tx, id_of(obj.get("object")) or "")
                like = await interaction_store.get_like(tx, signer.id, post.id) if post else None
            if like is not None and like.actor_id == signer.id:
                await interaction_store.delete_like(tx, like.id)
                return
        if inner_type in (None, "Announce"):
            announce = await interaction_store.get_announce_by_uri(tx, object_uri)
            if announce is not None and announce.actor_id == signer.id:
                await interaction_store.delete_announce(tx, announce.id, ctx.clock.now_iso())
                return
        if inner_type == "Block":
            target = await actor_store.get_actor_by_uri(tx, id_of(obj.get("object")) or "")
            if target is not None:
                await follow_store.remove_block(tx, signer.id, target.id)
            return
        if inner_type == "Accept":
            # Undo(Accept): the remote account no longer lets our account follow it.
            inner_follow = obj.get("object")
            follow = await follow_store.get_follow_by_uri(tx, id_of(inner_follow) or "")
            if follow is not None and follow.followee_id == signer.id:
                await follow_store.delete_follow(tx, follow.id)
            return
    log.info("Undo %s of %s matched nothing", activity.get("id"), object_uri)


async def _note_from(ctx: Context, activity: dict[str, Any], signer: Actor) -> dict[str, Any] | None:
    obj = activity.get("object")
    if isinstance(obj, str):
        # A bare id: dereference it from its origin, which must be the signer's server.
        if host_of(obj) != host_of(signer.uri):
            return None
        try:
            obj = await ctx.fetcher.fetch_object(obj, expected_id=obj)
        except Exception as exc:  # noqa: BLE001 - any fetch failure is retried later
            raise RetryLater(f"could not fetch {activity.get('object')}: {exc}") from exc
    return obj if isinstance(obj, dict) else None


async def handle_create(ctx: Context, activity: dict[str, Any], signer: Actor) -> None:
    # (The inbox worker applies Creates with embedded objects many at a time: creates.apply_creates.)
    obj = await _note_from(ctx, activity, signer)
    await creates.apply_creates(ctx, [creates.DeliveredCreate(activity, obj, signer)])


async def handle_update(ctx: Context, activity: dict[str, Any], signer: Actor) -> None:
    obj = activity.get("object")
    if not isinstance(obj, dict):
        return
    if first_type(obj) in ACTOR_TYPES:
        if obj.get("id") != signer.uri:
            log.info("Update %s ignored: an actor may only update itself", activity.get("id"))
            return
        # The embedded actor inherits the activity's @context (JSON-LD), where peers define extension terms.
        await _update_actor(ctx, {"@context": activity["@context"], **obj} if "@context" in activity else obj, signer)
        return
    if first_type(obj) in POST_TYPES:
        existing = await post_store.get_post_by_uri(ctx.db.reader, obj.get("id") or "")
        if existing is None and await _create_may_be_on_its_way(ctx, obj, signer):
            # Deliveries race: an edit made right after posting can arrive before the Create
            # (two POSTs in flight at once). Applied after a retry, once the post is here.
            raise RetryLater(f"an Update of {obj.get('id')}, which has not arrived yet")
        if existing is None or existing.actor_id != signer.id:
            return  # an edit of a post we never stored
        try:
            parsed, visibility = await parse_note_off_loop(obj, followers_url=signer.followers_url)
        except InvalidNote as exc:
            log.info("Update %s ignored: %s", activity.get("id"), exc)
            return
        mentions = await remote_posts.known_mentioned_actors(ctx, parsed.mention_hrefs)
        excluded = remote_posts.author_excluded(obj, activity.get("@context"))
        await remote_posts.save_remote_edit(
            ctx, remote_posts.incoming_note(ctx, parsed, visibility, signer, mentions, excluded=excluded))


# An Update of a post we do not have is retried while the post is this new (its Create may still be
# in flight); older ones are edits of posts that never reached us, and are dropped.
CREATE_IN_FLIGHT_SECONDS = 600


async def _create_may_be_on_its_way(ctx: Context, obj: dict[str, Any], signer: Actor) -> bool:
    published = parse_time(obj.get("published") if isinstance(obj.get("published"), str) else None)
    return (id_of(obj.get("attributedTo")) == signer.uri and published is not None
            and abs(ctx.clock.now() - published) < CREATE_IN_FLIGHT_SECONDS
            and not await post_store.is_tombstoned(ctx.db.reader, obj.get("id") or ""))


async def _update_actor(ctx: Context, doc: dict[str, Any], signer: Actor) -> None:
    """Update(Person): store the new profile and consent signal; a new key here is how key
    rotation arrives."""
    if "@context" not in doc:
        doc = {"@context": "https://www.w3.org/ns/activitystreams", **doc}
    try:
        await remote_actors.store_document(ctx, doc)
    except remote_actors.ActorNotFound as exc:
        log.info("Update of %s ignored: %s", signer.uri, exc)


async def handle_delete(ctx: Context, activity: dict[str, Any], signer: Actor) -> None:
    object_uri = id_of(activity.get("object")) or ""
    now = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        if object_uri == signer.uri:
            await actor_store.mark_actor_deleted(tx, signer.id, now)
            await follow_store.delete_follows_of_actor(tx, signer.id)
            await post_store.lock_tag_counts_of_actor(tx, signer.id)  # (in tag order: no deadlock)
            for post_id in await post_store.list_live_post_ids_of_actor(tx, signer.id):
                await post_store.mark_post_deleted(tx, post_id, now)
            log.info("actor %s deleted", signer.uri)
            return
        post = await post_store.get_post_by_uri(tx, object_uri)
        if post is not None and post.actor_id == signer.id:
            await post_store.mark_post_deleted(tx, post.id, now)
            await events.status_deleted(ctx, tx, post.id)
        # Remember the id so a late or replayed Create cannot bring the post back.
        await post_store.add_tombstone(tx, object_uri, now)


async def handle_like(ctx: Context, activity: dict[str, Any], signer: Actor) -> None:
    post = await post_store.get_post_by_uri(ctx.db.reader, id_of(activity.get("object")) or "")
    if post is None or not post.is_local or post.is_deleted:
        return  # Mastodon records likes of its own posts only
    now = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        if await interaction_store.add_like(tx, uri=activity["id"], actor_id=signer.id, post_id=post.id, now=now):
            await interaction_store.add_notification(tx, recipient_id=post.actor_id, kind="like",
                                                     from_actor_id=signer.id, post_id=post.id, now=now)


async def handle_announce(ctx: Context, activity: dict[str, Any], signer: Actor) -> None:
    object_uri = id_of(activity.get("object"))
    if not object_uri:
        return
    local_post = await post_store.get_post_by_uri(ctx.db.reader, object_uri)
    if local_post is None:
        if not await follow_store.local_followers_of(ctx.db.reader, signer.id):
            return  # nobody here would see the boost
        try:
            # Never trust an embedded copy of someone else's post: fetch it from its origin.
            local_post = await remote_posts.get_or_fetch_post(ctx, object_uri)
        except remote_posts.PostNotFound as exc:
            log.info("Announce %s ignored: %s", activity.get("id"), exc)
            return
    if local_post.is_deleted or local_post.visibility not in ("public", "unlisted"):
        return
    now = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        announce_id = time_ordered_id(ctx.clock.now())
        added = await interaction_store.add_announce(
            tx, announce_id=announce_id, uri=activity["id"], actor_id=signer.id,
            post_id=local_post.id, published_at=now, now=now)
        if added:
            await events.status_boosted(ctx, tx, announce_id, local_post.id)
        if added and local_post.is_local:
            await interaction_store.add_notification(tx, recipient_id=local_post.actor_id, kind="boost",
                                                     from_actor_id=signer.id, post_id=local_post.id, now=now)


async def handle_block(ctx: Context, activity: dict[str, Any], signer: Actor) -> None:
    target = await actor_store.get_actor_by_uri(ctx.db.reader, id_of(activity.get("object")) or "")
    if target is None or not target.is_local:
        return
    async with ctx.db.transaction() as tx:
        await follow_store.add_block(tx, uri=activity["id"], actor_id=signer.id, target_id=target.id,
                                     now=ctx.clock.now_iso())
        for follower, followee in ((signer.id, target.id), (target.id, signer.id)):
            follow = await follow_store.get_follow(tx, follower, followee)
            if follow is not None:
                await follow_store.delete_follow(tx, follow.id)


# After a Move is carried out for an account, further Moves of it are ignored this long (Mastodon).
MOVE_COOLDOWN_SECONDS = 7 * 86400


async def handle_move(ctx: Context, activity: dict[str, Any], signer: Actor) -> None:
    """An account moved (Mastodon's account migration): its local followers follow the new account
    instead. Believed only when the moving account is the signer and the new account (fetched afresh
    from its own server, or one of ours) lists the old one in alsoKnownAs."""
    origin_uri, target_uri = id_of(activity.get("object")), id_of(activity.get("target"))
    if origin_uri != signer.uri or not target_uri or target_uri == origin_uri or host_of(target_uri) is None:
        log.info("Move %s ignored: an account may only move itself, to another http(s) account", activity.get("id"))
        return
    last_move = parse_time(signer.moved_at)
    if last_move is not None and ctx.clock.now() - last_move < MOVE_COOLDOWN_SECONDS:
        log.info("Move %s ignored: %s already moved less than 7 days ago", activity.get("id"), signer.uri)
        return
    if ctx.urls.is_local(target_uri):
        target = await actor_store.get_actor_by_uri(ctx.db.reader, target_uri)
        if target is None:
            log.info("Move %s ignored: no account %s here", activity.get("id"), target_uri)
            return
    else:
        try:
            target = await remote_actors.fetch_actor(ctx, target_uri)
        except remote_actors.ActorNotFound as exc:
            raise RetryLater(f"cannot fetch the Move's target {target_uri}: {exc}") from exc
    if target.is_gone:
        log.info("Move %s ignored: the target %s is gone", activity.get("id"), target_uri)
        return
    if origin_uri not in remote_actors.aliases_of(target):
        log.info("Move %s ignored: %s does not list %s in alsoKnownAs", activity.get("id"), target_uri, origin_uri)
        return
    await follow_service.move_followers(ctx, signer, target)


async def handle_flag(ctx: Context, activity: dict[str, Any], signer: Actor) -> None:
    """A report about local accounts or their posts, for the admin page (Mastodon's Flag)."""
    flag_uri = activity.get("id")
    if not isinstance(flag_uri, str):
        # An id keeps a repeated delivery from making a second report; without one, the content does.
        flag_uri = "urn:sha256:" + hashlib.sha256(json.dumps(activity, sort_keys=True).encode()).hexdigest()
    comment = activity.get("content") if isinstance(activity.get("content"), str) else ""
    created = await report_service.receive_flag(ctx, flag_uri, signer, ids_of(activity.get("object")), comment)
    if not created:
        log.info("Flag %s from %s: no new report (nothing local named, or already received)", flag_uri, signer.uri)


async def handle_featured_change(ctx: Context, activity: dict[str, Any], signer: Actor) -> None:
    """Add/Remove: a pin or unpin on the signer's featured collection (services/pins.py)."""
    kind = first_type(activity) or ""
    changed = await pin_service.receive_featured_change(ctx, signer, kind, id_of(activity.get("object")),
                                                        id_of(activity.get("target")))
    if not changed:
        log.info("%s %s from %s changed no pinned post", kind, activity.get("id"), signer.uri)


HANDLERS: dict[str, Handler] = {
    "Follow": handle_follow,
    "Accept": handle_accept,
    "Reject": handle_reject,
    "Undo": handle_undo,
    "Create": handle_create,
    "Update": handle_update,
    "Delete": handle_delete,
    "Like": handle_like,
    "Announce": handle_announce,
    "Block": handle_block,
    "Move": handle_move,
    "Flag": handle_flag,
    "Add": handle_featured_change,
    "Remove": handle_featured_change,
}


async def dispatch(ctx: Context, activity: dict[str, Any], signer_uri: str) -> None:
    activity_type = first_type(activity) or "Unknown"
    handler = HANDLERS.get(activity_type)
    if handler is None:
        log.info("inbox: %s %s from %s accepted and ignored (type not handled)", activity_type,
                 activity.get("id"), signer_uri)
        return
    signer = await actor_store.get_actor_by_uri(ctx.db.reader, signer_uri)
    if signer is None:
        try:
            signer = await remote_actors.get_actor(ctx, signer_uri)
        except remote_actors.ActorNotFound as exc:
            raise RetryLater(str(exc)) from exc
    if signer.deleted_at and activity_type != "Delete":
        return
    if signer.suspended_at and activity_type != "Delete":
        # Suspended after the activity was stored: what it sends is ignored (the inbox refuses it now).
        log.info("inbox: %s %s from suspended %s ignored", activity_type, activity.get("id"), signer_uri)
        return
    await handler(ctx, activity, signer)
