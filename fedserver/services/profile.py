"""A local account's public profile and telling other servers when it changes (Update(Person))."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets

import aiosqlite

from fedserver.context import Context
from fedserver.images import InvalidImage
from fedserver.services import as2, audience, outbox, profile_fields
from fedserver.services.accounts import require_local_actor
from fedserver.store import actors as actor_store
from fedserver.store import follows as follow_store
from fedserver.store import web as web_store
from fedserver.store.actors import Actor
from fedserver.text import render_html

log = logging.getLogger(__name__)


async def federate_profile(ctx: Context, tx: aiosqlite.Connection, actor: Actor) -> None:
    """Send the current actor document (with its consent signal) to every server that follows the
    account, inside the caller's transaction."""
    document = await audience.local_actor_document(ctx, actor, conn=tx)
    activity = as2.update_actor_activity(document, ctx.urls.new_activity())
    inboxes = await follow_store.follower_inboxes(tx, actor.id)
    await outbox.publish(ctx, tx, actor=actor, activity=activity, inboxes=inboxes, is_public=True)


class ProfileError(Exception):
    """The profile change is not valid (clear message for the person)."""


MAX_DISPLAY_NAME = 100
MAX_BIO = 2000
MAX_AVATAR_BYTES = 2 * 1024 * 1024


async def update_profile(ctx: Context, username: str, *, display_name: str, bio: str, locked: bool,
                         fields: list[tuple[str, str]] | None = None) -> Actor:
    """Save the profile and federate it; fields (label, value pairs) replace the profile fields
    when given, and link values are then checked for rel=me in the background."""
    actor = await require_local_actor(ctx, username)
    display_name = display_name.strip()
    if len(display_name) > MAX_DISPLAY_NAME:
        raise ProfileError(f"the display name may have at most {MAX_DISPLAY_NAME} characters")
    if len(bio) > MAX_BIO:
        raise ProfileError(f"the bio may have at most {MAX_BIO} characters")
    try:
        pairs = profile_fields.checked_fields(fields) if fields is not None else None
    except profile_fields.FieldsError as exc:
        raise ProfileError(str(exc)) from None
    extra = {} if pairs is None else {"fields_json": profile_fields.stored_fields(ctx, pairs, actor.fields)}
    bio_html = render_html(bio, mentions={}, tag_url=ctx.urls.tag, local_domain=ctx.urls.domain) if bio.strip() else ""
    async with ctx.db.transaction() as tx:
        await actor_store.update_actor_profile(tx, actor.id, now=ctx.clock.now_iso(),
                                               display_name=display_name or actor.username, summary_html=bio_html,
                                               manually_approves_followers=int(locked), **extra)
        await actor_store.set_local_bio_source(tx, actor.id, bio)
        updated = await actor_store.get_actor(tx, actor.id)
        assert updated is not None
        await federate_profile(ctx, tx, updated)
    profile_fields.schedule_verification(ctx, updated)
    return updated


# Mastodon marks an automated account by publishing it as a Service actor (and reads Service and
# Application actors of other servers as bots); a person's account is a Person.
BOT_ACTOR_TYPE = "Service"
PERSON_ACTOR_TYPE = "Person"


async def set_account_flags(ctx: Context, username: str, *, bot: bool | None = None,
                            discoverable: bool | None = None) -> Actor:
    """Mark the account as automated (`bot`, federated as the actor type) and whether it may be
    featured in other servers' directories and suggestions (`discoverable`, Mastodon's flag);
    None leaves a flag as it is. Followers' servers get one Update when anything changed."""
    actor = await require_local_actor(ctx, username)
    changes: dict[str, object] = {}
    if bot is not None:
        actor_type = BOT_ACTOR_TYPE if bot else PERSON_ACTOR_TYPE
        if actor.actor_type != actor_type:
            changes["actor_type"] = actor_type
    if discoverable is not None and bool(actor.discoverable) != discoverable:
        changes["discoverable"] = int(discoverable)
    if not changes:
        return actor
    async with ctx.db.transaction() as tx:
        await actor_store.update_actor_profile(tx, actor.id, now=ctx.clock.now_iso(), **changes)
        updated = await actor_store.get_actor(tx, actor.id)
        assert updated is not None
        await federate_profile(ctx, tx, updated)
    log.info("%s changed account flags %s", username, sorted(changes))
    return updated


async def set_avatar(ctx: Context, username: str, data: bytes) -> Actor:
    return await _set_picture(ctx, username, data, "icon")


async def set_header(ctx: Context, username: str, data: bytes) -> Actor:
    """The profile's header picture, published as the actor's `image` (Mastodon's header)."""
    return await _set_picture(ctx, username, data, "image")


async def _set_picture(ctx: Context, username: str, data: bytes, field: str) -> Actor:
    actor = await require_local_actor(ctx, username)
    if len(data) > MAX_AVATAR_BYTES:
        raise ProfileError(f"the picture may be at most {MAX_AVATAR_BYTES // (1024 * 1024)} MB")
    # Decoded and written again (in the image worker process, within its limits): what is published
    # is the picture alone, without the EXIF position a phone puts in it, and its type is what Pillow
    # decoded, never the name or the browser's claim (serving uploads as anything else is how
    # CVE-2024-23832-style spoofing works).
    try:
        image = await ctx.image_worker.clean(data)
    except InvalidImage as exc:
        raise ProfileError(str(exc)) from None
    data, content_type = image.data, image.content_type
    media_id = f"{secrets.token_hex(16)}.{image.extension}"
    await asyncio.to_thread(ctx.media.write, media_id, data)
    async with ctx.db.transaction() as tx:
        await web_store.insert_media(tx, media_id=media_id, actor_id=actor.id, content_type=content_type,
                                     size=len(data), sha256=hashlib.sha256(data).hexdigest(), now=ctx.clock.now_iso())
        await actor_store.update_actor_profile(tx, actor.id, now=ctx.clock.now_iso(),
                                               **{f"{field}_url": f"{ctx.urls.base}/media/{media_id}",
                                                  f"{field}_media_type": content_type})
        updated = await actor_store.get_actor(tx, actor.id)
        assert updated is not None
        await federate_profile(ctx, tx, updated)
    return updated
