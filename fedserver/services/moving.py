"""Moving accounts between servers, the way Mastodon does it: a person lists their other accounts
as aliases (alsoKnownAs), which an account elsewhere needs before it may move here; a person moves
their account away to one that lists it, and their followers' servers then follow the new one; and
the accounts a person follows travel as Mastodon's CSV file, exported here or imported here.
"""
from __future__ import annotations

import csv
import io
import logging

from fedserver.context import Context
from fedserver.services import as2, outbox, remote_actors
from fedserver.services.accounts import require_local_actor
from fedserver.services.follows import FollowError, follow, move_followers
from fedserver.services.profile import federate_profile
from fedserver.store import actors as actor_store
from fedserver.store import follows as follow_store
from fedserver.store.actors import Actor

log = logging.getLogger(__name__)

MAX_ALIASES = 10
# Follows started by one import: each needs a WebFinger look-up and a Follow, within one request.
MAX_IMPORTED_FOLLOWS = 200
# Mastodon's header for following_accounts.csv.
FOLLOWING_CSV_HEADER = ["Account address", "Show boosts", "Notify on new posts", "Languages"]


class MoveError(Exception):
    """The alias or move cannot be made (clear message for the person)."""


async def _account(ctx: Context, handle: str, *, fresh: bool) -> Actor:
    try:
        actor = await remote_actors.resolve_handle(ctx, handle)
        if fresh and not actor.is_local:
            # What the other account lists now, not what we fetched a while ago.
            actor = await remote_actors.fetch_actor(ctx, actor.uri)
    except remote_actors.ActorNotFound as exc:
        raise MoveError(f"could not find {handle}: {exc}") from exc
    return actor


async def add_alias(ctx: Context, username: str, handle: str) -> Actor:
    """List the account at handle as also this person's (so that it may move here)."""
    me = await require_local_actor(ctx, username)
    other = await _account(ctx, handle, fresh=False)
    if other.id == me.id:
        raise MoveError("that is this account")
    aliases = me.aliases
    if other.uri in aliases:
        return me
    if len(aliases) >= MAX_ALIASES:
        raise MoveError(f"at most {MAX_ALIASES} other accounts")
    return await _save_aliases(ctx, me, [*aliases, other.uri])


async def remove_alias(ctx: Context, username: str, uri: str) -> Actor:
    me = await require_local_actor(ctx, username)
    return await _save_aliases(ctx, me, [alias for alias in me.aliases if alias != uri])


async def _save_aliases(ctx: Context, me: Actor, aliases: list[str]) -> Actor:
    async with ctx.db.transaction() as tx:
        await actor_store.set_aliases(tx, me.id, aliases, ctx.clock.now_iso())
        updated = await actor_store.get_actor(tx, me.id)
        assert updated is not None
        await federate_profile(ctx, tx, updated)  # alsoKnownAs is in the actor document
    return updated


async def move_away(ctx: Context, username: str, handle: str) -> Actor:
    """Move this account to the one at handle, which must list this account as an alias: the actor
    document says movedTo, and every follower's server (this one too) is sent a Move, after which
    Mastodon and fedserver servers make those followers follow the new account."""
    me = await require_local_actor(ctx, username)
    if me.moved_to_uri:
        raise MoveError("this account has already moved")
    target = await _account(ctx, handle, fresh=True)
    if target.id == me.id:
        raise MoveError("that is this account")
    if target.is_gone:
        raise MoveError(f"{handle} is no longer there")
    if me.uri not in remote_actors.aliases_of(target):
        raise MoveError(f"{handle} does not list this account as its alias yet: add {me.handle} there first")
    # Records the move (movedTo) and moves the followers on this server, here and now (a Move to
    # ourselves would not be delivered); then the other servers are told.
    await move_followers(ctx, me, target)
    async with ctx.db.transaction() as tx:
        moved = await actor_store.get_actor(tx, me.id)
        assert moved is not None
        await federate_profile(ctx, tx, moved)
        inboxes = await follow_store.follower_inboxes(tx, me.id)
        await outbox.publish(ctx, tx, actor=moved, activity=as2.move_activity(ctx.urls.new_activity(), moved, target.uri),
                             inboxes=inboxes, is_public=True)
    log.info("%s moved to %s", me.uri, target.uri)
    return moved


async def following_csv(ctx: Context, username: str) -> str:
    """The accounts username follows, in Mastodon's following_accounts.csv format (which Mastodon and
    fedserver import)."""
    me = await require_local_actor(ctx, username)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FOLLOWING_CSV_HEADER)
    after = None
    while page := await follow_store.list_following(ctx.db.reader, me.id, after_id=after, limit=500):
        for follow, actor in page:
            writer.writerow([f"{actor.username}@{actor.domain}", "true", "false", ""])
        after = page[-1][0].id
    return out.getvalue()


async def import_following(ctx: Context, username: str, text: str) -> tuple[int, list[str]]:
    """Follow every account a following CSV lists (Mastodon's, or only addresses, one a line):
    (follows started or already there, addresses that could not be followed)."""
    me = await require_local_actor(ctx, username)
    addresses = []
    for row in csv.reader(io.StringIO(text)):
        address = row[0].strip().lstrip("@") if row else ""
        if "@" in address and address != FOLLOWING_CSV_HEADER[0]:
            addresses.append(address)
    if len(addresses) > MAX_IMPORTED_FOLLOWS:
        raise MoveError(f"at most {MAX_IMPORTED_FOLLOWS} accounts per import; split the file")
    followed, failed = 0, []
    for address in addresses:
        try:
            await follow(ctx, me.username, address)
            followed += 1
        except FollowError as exc:
            log.info("import of %s's follows: %s: %s", username, address, exc)
            failed.append(address)
    return followed, failed
