"""An admin's moderation of single accounts on other servers: suspension (everything of the
account disappears from every view here, what it sends is refused, follows both ways end) and
silence (its posts stay out of public timelines and away from people here who do not follow it).
Local accounts are suspended through services.auth.set_suspended instead."""
from __future__ import annotations

import logging

from fedserver.activitypub.webfinger import parse_handle
from fedserver.context import Context
from fedserver.corpus import sync as corpus_sync
from fedserver.services import follows, remote_actors
from fedserver.store import actors as actor_store
from fedserver.store.actors import Actor

log = logging.getLogger(__name__)


class ModerationError(Exception):
    """The moderation action cannot be carried out (clear message for the admin)."""


async def find_remote_account(ctx: Context, name: str) -> Actor:
    """The remote account named by @user@host (or its actor id): the one known here, else found
    through WebFinger (an admin may act on an account before it ever reaches us)."""
    name = name.strip()
    if name.startswith(("https://", "http://")):
        actor = await actor_store.get_actor_by_uri(ctx.db.reader, name)
        if actor is None:
            try:
                actor = await remote_actors.get_actor(ctx, name)
            except remote_actors.ActorNotFound as exc:
                raise ModerationError(f"no account {name} is known: {exc}") from None
    else:
        try:
            user, host = parse_handle(name)
        except ValueError:
            raise ModerationError(f"“{name}” is not an account address like @user@example.social") from None
        if host == ctx.urls.domain.lower():
            raise ModerationError(f"@{user} is an account of this server: use `fedserver user suspend {user}`")
        actor = await actor_store.get_actor_by_handle(ctx.db.reader, user, host)
        if actor is None:
            try:
                actor = await remote_actors.resolve_handle(ctx, f"{user}@{host}")
            except remote_actors.ActorNotFound as exc:
                raise ModerationError(f"cannot find @{user}@{host}: {exc}") from None
    if actor.is_local:
        raise ModerationError(f"{actor.handle} is an account of this server: use `fedserver user suspend`")
    return actor


async def suspend(ctx: Context, name: str) -> Actor:
    """Suspend a remote account: its posts and boosts leave every page, timeline and thread here,
    its inbound activities are refused (but its own Delete), it cannot be followed or mentioned,
    and every follow between it and people here ends, its server being told (Undo, Reject)."""
    actor = await find_remote_account(ctx, name)
    now = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        await actor_store.set_suspended(tx, actor.id, now, now)
        ended = await follows.end_follows_with(ctx, tx, actor)
        updated = await actor_store.get_actor(tx, actor.id)
    # This process may remember the key as a live signer; other processes notice the changed row.
    remote_actors.forget_signer(ctx, actor.key_id or "")
    await corpus_sync.reconcile(ctx)
    log.info("remote account %s suspended (%d follows ended)", actor.uri, ended)
    assert updated is not None
    return updated


async def unsuspend(ctx: Context, name: str) -> Actor:
    """Lift a suspension: the account's posts show again; the follows it ended stay ended."""
    actor = await _set(ctx, name, actor_store.set_suspended, on=False, what="suspension lifted")
    await corpus_sync.reconcile(ctx)
    return actor


async def silence(ctx: Context, name: str, *, on: bool = True) -> Actor:
    """Silence (or unsilence) a remote account: its posts stay out of the public timelines (local,
    hashtags) and away from people here who do not follow it; its followers here still see them."""
    return await _set(ctx, name, actor_store.set_silenced, on=on, what="silenced" if on else "unsilenced")


async def _set(ctx: Context, name: str, setter, *, on: bool, what: str) -> Actor:
    actor = await find_remote_account(ctx, name)
    now = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        await setter(tx, actor.id, now if on else None, now)
        updated = await actor_store.get_actor(tx, actor.id)
    assert updated is not None
    log.info("remote account %s %s", actor.uri, what)
    return updated


async def list_moderated(ctx: Context) -> list[Actor]:
    """Remote accounts that are suspended or silenced."""
    return await actor_store.list_moderated_remote_actors(ctx.db.reader)
