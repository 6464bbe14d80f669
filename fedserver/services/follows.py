"""Following and unfollowing, answering follow requests to locked accounts, blocking and muting."""
from __future__ import annotations

import logging

from fedserver.context import Context
from fedserver.services import as2, outbox, remote_actors
from fedserver.services.accounts import require_local_actor
from fedserver.store import actors as actor_store
from fedserver.store import follows as follow_store
from fedserver.store import interactions as interaction_store
from fedserver.store import lists as list_store
from fedserver.store import locks
from fedserver.store.actors import Actor
from fedserver.store.follows import Follow

log = logging.getLogger(__name__)


class FollowError(Exception):
    """The follow action cannot be carried out (clear message for the person)."""


async def _target(ctx: Context, handle: str) -> Actor:
    try:
        return await remote_actors.resolve_handle(ctx, handle)
    except remote_actors.ActorNotFound as exc:
        raise FollowError(str(exc)) from exc


async def follow(ctx: Context, username: str, handle: str) -> Follow:
    """Send a Follow (remote) or record it (local). A locked account leaves it pending."""
    follower = await require_local_actor(ctx, username)
    target = await _target(ctx, handle)
    if target.id == follower.id:
        raise FollowError("you cannot follow yourself")
    if target.is_gone:
        raise FollowError(f"{target.handle} is suspended on this server")
    now = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        # Two clicks reaching two processes at once: the second finds the first's follow (one
        # "followed you" notification), as it does when they come one after the other.
        await locks.lock_name(tx, f"follow:{follower.id}:{target.id}")
        if await follow_store.is_blocked_by(tx, target.id, follower.id):
            raise FollowError(f"you blocked {target.handle}; unblock them first")
        existing = await follow_store.get_follow(tx, follower.id, target.id)
        if existing is not None and existing.state == "accepted":
            return existing
        # Every (re)sent Follow gets a fresh id; the stored follow takes the newest one, which the
        # peer's Accept will refer to.
        uri = ctx.urls.new_activity()
        record = await _start_follow(ctx, tx, follower, target, uri, now)
    log.info("%s sent Follow to %s", follower.username, target.uri)
    return record


async def _start_follow(ctx: Context, tx, follower: Actor, target: Actor, uri: str, now: str) -> Follow:
    """Inside tx: a local target is followed at once (or asked, when locked) and notified; a remote
    one is sent a Follow and stays pending until it answers."""
    if target.is_local:
        state = "pending" if target.manually_approves_followers else "accepted"
        record = await follow_store.upsert_follow(tx, uri=uri, follower_id=follower.id, followee_id=target.id,
                                                  state=state, now=now)
        kind = "follow_request" if state == "pending" else "follow"
        await interaction_store.add_notification(tx, recipient_id=target.id, kind=kind,
                                                 from_actor_id=follower.id, post_id=None, now=now)
        return record
    return await _send_follow(ctx, tx, follower, target, uri, now)


async def _send_follow(ctx: Context, tx, follower: Actor, target: Actor, uri: str, now: str) -> Follow:
    """Inside tx: a pending follow of a remote account, and its Follow queued for delivery."""
    record = await follow_store.upsert_follow(tx, uri=uri, follower_id=follower.id, followee_id=target.id,
                                              state="pending", now=now)
    activity = as2.follow_activity(uri, follower.uri, target.uri)
    await outbox.publish(ctx, tx, actor=follower, activity=activity, inboxes=[target.inbox_url], is_public=False)
    return record


async def _send_unfollow(ctx: Context, tx, follower: Actor, target: Actor, existing: Follow) -> bool:
    """Inside tx: end a follow of a remote account and queue the Undo(Follow). False (nothing
    sent) when another request ended it since it was read: a second click reaching another
    process on PostgreSQL, whose Undo has the id this one would have."""
    if not await follow_store.delete_follow(tx, existing.id):
        return False
    original = as2.follow_activity(existing.uri, follower.uri, target.uri)
    undo = as2.undo_activity(f"{existing.uri}/undo", follower.uri, original)
    await outbox.publish(ctx, tx, actor=follower, activity=undo, inboxes=[target.inbox_url], is_public=False)
    return True


async def block(ctx: Context, username: str, target: Actor) -> None:
    """username blocks target: follows either way end, target's notifications to them go, nothing
    target does reaches them any more (no notifications, their posts and boosts left out of
    timelines), and target cannot follow them. A remote target's server gets a Block, as from
    Mastodon (it ends follows there too)."""
    blocker = await require_local_actor(ctx, username)
    if target.id == blocker.id:
        raise FollowError("you cannot block yourself")
    now = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        if await follow_store.is_blocked_by(tx, target.id, blocker.id):
            return
        uri = ctx.urls.new_activity()
        await follow_store.add_block(tx, uri=uri, actor_id=blocker.id, target_id=target.id, now=now)
        mine = await follow_store.get_follow(tx, blocker.id, target.id)
        if mine is not None:
            if target.is_local:
                await follow_store.delete_follow(tx, mine.id)
            else:
                await _send_unfollow(ctx, tx, blocker, target, mine)
        theirs = await follow_store.get_follow(tx, target.id, blocker.id)
        if theirs is not None:
            await follow_store.delete_follow(tx, theirs.id)
        await interaction_store.delete_notifications_from(tx, blocker.id, target.id)
        if not target.is_local:
            await outbox.publish(ctx, tx, actor=blocker, activity=as2.block_activity(uri, blocker.uri, target.uri),
                                 inboxes=[target.inbox_url], is_public=False)
    log.info("%s blocked %s", username, target.uri)


async def unblock(ctx: Context, username: str, target: Actor) -> None:
    """Lift a block (follows it ended stay ended); a remote target's server gets an Undo(Block)."""
    blocker = await require_local_actor(ctx, username)
    async with ctx.db.transaction() as tx:
        uri = await follow_store.get_block_uri(tx, blocker.id, target.id)
        if uri is None:
            return
        await follow_store.remove_block(tx, blocker.id, target.id)
        if not target.is_local:
            undo = as2.undo_activity(f"{uri}/undo", blocker.uri, as2.block_activity(uri, blocker.uri, target.uri))
            await outbox.publish(ctx, tx, actor=blocker, activity=undo, inboxes=[target.inbox_url], is_public=False)
    log.info("%s unblocked %s", username, target.uri)


async def is_blocking(ctx: Context, viewer: Actor, target: Actor) -> bool:
    return await follow_store.is_blocked_by(ctx.db.reader, target.id, viewer.id)


async def mute(ctx: Context, username: str, target: Actor, *, muted: bool) -> None:
    """Mute (or unmute) target for username: their posts, boosts and notifications stop reaching
    username; follows stay, and nobody is told."""
    me = await require_local_actor(ctx, username)
    if target.id == me.id:
        raise FollowError("you cannot mute yourself")
    async with ctx.db.transaction() as tx:
        if muted:
            await follow_store.add_mute(tx, me.id, target.id, ctx.clock.now_iso())
        else:
            await follow_store.remove_mute(tx, me.id, target.id)


async def is_muting(ctx: Context, viewer: Actor, target: Actor) -> bool:
    return await follow_store.is_muted_by(ctx.db.reader, target.id, viewer.id)


async def move_followers(ctx: Context, origin: Actor, target: Actor) -> int:
    """`origin` moved to `target` (the caller has verified the Move): record it, and every local
    account following origin follows target instead, as Mastodon does (a Follow to target, an
    Undo(Follow) to origin). Returns how many local followers were moved."""
    now = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        await actor_store.set_moved(tx, origin.id, target_uri=target.uri, now=now)
        follower_ids = await follow_store.local_followers_of(tx, origin.id)
        for follower_id in follower_ids:
            follower = await actor_store.get_actor(tx, follower_id)
            if follower is None or follower.is_gone:
                continue
            blocked = (await follow_store.is_blocked_by(tx, follower.id, target.id)
                       or await follow_store.is_blocked_by(tx, target.id, follower.id))
            if not blocked and await follow_store.get_follow(tx, follower.id, target.id) is None:
                await _start_follow(ctx, tx, follower, target, ctx.urls.new_activity(), now)
            old = await follow_store.get_follow(tx, follower.id, origin.id)
            if old is not None and origin.is_local:
                await follow_store.delete_follow(tx, old.id)
            elif old is not None:
                await _send_unfollow(ctx, tx, follower, origin, old)
    log.info("%s moved to %s: %d local followers now follow the new account", origin.uri, target.uri,
             len(follower_ids))
    return len(follower_ids)


async def unfollow(ctx: Context, username: str, handle: str) -> None:
    follower = await require_local_actor(ctx, username)
    target = await _target(ctx, handle)
    async with ctx.db.transaction() as tx:
        existing = await follow_store.get_follow(tx, follower.id, target.id)
        if existing is None:
            raise FollowError(f"{username} does not follow {handle}")
        if target.is_local:
            ended = await follow_store.delete_follow(tx, existing.id)
        else:
            ended = await _send_unfollow(ctx, tx, follower, target, existing)
        if not ended:
            raise FollowError(f"{username} does not follow {handle}")
        # Lists hold accounts one follows (Mastodon drops them from lists on unfollow too).
        await list_store.remove_from_owner_lists(tx, follower.id, target.id)


async def answer_follow_request(ctx: Context, username: str, handle: str, *, accept: bool) -> None:
    """Approve or reject a pending follower of a locked account."""
    followee = await require_local_actor(ctx, username)
    follower = await _target(ctx, handle)
    now = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        request = await follow_store.get_follow(tx, follower.id, followee.id)
        if request is None or request.state != "pending":
            raise FollowError(f"{handle} has no pending follow request to {username}")
        if accept:
            await follow_store.set_follow_state(tx, request.id, "accepted", now)
        else:
            await follow_store.delete_follow(tx, request.id)
        if not follower.is_local:
            await send_follow_answer(ctx, tx, followee, follower, request.uri, accept=accept)


async def send_follow_answer(ctx: Context, tx, followee: Actor, follower: Actor, follow_uri: str, *,
                             accept: bool) -> None:
    follow_doc = as2.follow_activity(follow_uri, follower.uri, followee.uri)
    kind = "Accept" if accept else "Reject"
    answer = as2.answer_follow_activity(kind, ctx.urls.new_activity(), followee.uri, follow_doc)
    await outbox.publish(ctx, tx, actor=followee, activity=answer, inboxes=[follower.inbox_url], is_public=False)


async def remove_follower(ctx: Context, username: str, handle: str) -> None:
    """Stop someone following you: Mastodon sends Reject of their (accepted) Follow."""
    followee = await require_local_actor(ctx, username)
    follower = await _target(ctx, handle)
    async with ctx.db.transaction() as tx:
        existing = await follow_store.get_follow(tx, follower.id, followee.id)
        if existing is None:
            raise FollowError(f"{handle} does not follow {username}")
        await follow_store.delete_follow(tx, existing.id)
        if not follower.is_local:
            await send_follow_answer(ctx, tx, followee, follower, existing.uri, accept=False)


async def list_requests(ctx: Context, username: str) -> list[Actor]:
    followee = await require_local_actor(ctx, username)
    return [actor for _, actor in await follow_store.list_follow_requests(ctx.db.reader, followee.id)]


async def requests_page(ctx: Context, username: str, *, max_id: int | None,
                        limit: int) -> tuple[list[tuple[int, Actor]], int | None]:
    """A page of the follow requests waiting for username, newest first, as (follow id, who asks),
    leaving out accounts that are gone; and the follow id the read stopped at (None at the end).
    Paged, because anyone anywhere can ask."""
    followee = await require_local_actor(ctx, username)
    rows = await follow_store.list_side_before(ctx.db.reader, followee.id, followers=True, max_id=max_id,
                                               limit=limit, state="pending")
    return [(fid, actor) for fid, actor in rows if not actor.is_gone], (rows[-1][0] if len(rows) == limit else None)



async def end_follows_with(ctx: Context, tx, remote: Actor) -> int:
    """Inside tx: end every follow, pending or accepted, between local accounts and this remote
    account, telling its server (an Undo of our Follow of it, a Reject of its Follow of us), as
    Mastodon does when an admin suspends a remote account. Returns how many follows ended."""
    ended = await follow_store.follows_involving(tx, remote.id)
    for follow in ended:
        theirs = follow.follower_id == remote.id
        local = await actor_store.get_actor(tx, follow.followee_id if theirs else follow.follower_id)
        if local is None or not local.is_local or local.deleted_at:
            await follow_store.delete_follow(tx, follow.id)
        elif theirs:
            await follow_store.delete_follow(tx, follow.id)
            await send_follow_answer(ctx, tx, local, remote, follow.uri, accept=False)
        else:
            await _send_unfollow(ctx, tx, local, remote, follow)
    return len(ended)
