"""Signing up, signing in and out, passwords, and deleting one's account."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from dataclasses import dataclass

from fedserver.clock import iso_from_epoch
from fedserver.context import Context
from fedserver.corpus import sync as corpus_sync
from fedserver.services import accounts, as2, consent, events, outbox, signups, throttles
from fedserver.services.accounts import AccountError
from fedserver.services.instance import registration_mode, set_registration_mode  # noqa: F401 (re-exported)
from fedserver.store import actors as actor_store
from fedserver.store import follows as follow_store
from fedserver.store import posts as post_store
from fedserver.store import web as web_store
from fedserver.store.actors import Actor, LocalAccount

log = logging.getLogger(__name__)

SESSION_DAYS = 30


@dataclass
class Viewer:
    """The signed-in person, as the web layer sees them."""
    actor: Actor
    account: LocalAccount
    session_hash: str
    csrf_token: str

    @property
    def username(self) -> str:
        return self.account.username

    @property
    def is_admin(self) -> bool:
        return bool(self.account.is_admin)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_invite(ctx: Context, *, max_uses: int = 1, days: int | None = 7, created_by: str = "admin") -> str:
    code = secrets.token_urlsafe(12)
    expires = iso_from_epoch(ctx.clock.now() + days * 86400) if days else None
    async with ctx.db.transaction() as tx:
        await web_store.insert_invite(tx, code=code, now=ctx.clock.now_iso(), expires_at=expires, max_uses=max_uses,
                                      created_by=created_by)
    return code


async def sign_up(ctx: Context, username: str, password: str, *, client: str, invite: str | None = None,
                  reason: str = "") -> Actor | None:
    """Create an account through the web form, or (in approval mode) record the sign-up for the
    admins: then None. At most [server] sign_ups_per_address_per_hour attempts per client address
    (throttles.Throttled beyond)."""
    mode = await registration_mode(ctx)
    if mode == "closed":
        raise AccountError("sign-up is closed on this server")
    await throttles.begin_sign_up(ctx, client)
    if mode == "approval":
        await signups.request_signup(ctx, username, password, reason)
        return None
    if mode == "invite":
        if not invite:
            raise AccountError("sign-up needs an invite code on this server")
        async with ctx.db.transaction() as tx:
            if not await web_store.use_invite(tx, invite.strip(), ctx.clock.now_iso()):
                raise AccountError("that invite code is not valid (unknown, expired or used up)")
    created = await accounts.create_account(ctx, username, password=password)
    return created.actor


async def sign_in(ctx: Context, username: str, password: str, *, client: str, user_agent: str = "") -> str:
    """Check the password (with back-off per client address and per account, services/throttles.py)
    and open a session; returns the session token for the cookie. `client` is the address from
    fedserver.client_address (the real client behind trusted proxies). Raises throttles.Throttled
    while this address must wait, AccountError for a wrong name or password."""
    # Usernames have at most 30 characters: a longer name is unknown anyway, and the cut keeps what
    # is stored and logged for failures small.
    name = username.strip().lstrip("@").lower()[:64]
    await throttles.begin_sign_in(ctx, name, client)
    account = await actor_store.get_local_account(ctx.db.reader, name)
    actor = await actor_store.get_actor(ctx.db.reader, account.actor_id) if account else None
    usable = (account is not None and actor is not None and not actor.deleted_at and not actor.suspended_at
              and not account.is_instance_actor)
    # Always one Argon2 verification, off the event loop: answering faster for unknown names (or
    # accounts without a password) would tell an attacker which usernames exist.
    verified = await asyncio.to_thread(_verify, account.password_hash if account else None, password)
    if not (usable and verified):
        if account is None:
            await signups.refuse_if_pending(ctx, name, password)
        log.info("failed sign-in for %r from %s", name, client)
        raise AccountError("wrong username or password")
    assert actor is not None
    await throttles.sign_in_succeeded(ctx, name, client)
    return await open_session(ctx, actor, user_agent=user_agent)


def _verify(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        accounts.verify_password(_dummy_hash(), password)
        return False
    return accounts.verify_password(password_hash, password)


_DUMMY_HASH: list[str] = []


def _dummy_hash() -> str:
    """An Argon2 hash with the same parameters as real ones, of a password nobody knows."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(accounts.hash_password(secrets.token_urlsafe(16)))
    return _DUMMY_HASH[0]


async def open_session(ctx: Context, actor: Actor, *, user_agent: str = "") -> str:
    """A new web session for actor; returns the token for the cookie (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    async with ctx.db.transaction() as tx:
        await web_store.insert_session(tx, token_hash=token_hash(token), actor_id=actor.id,
                                       csrf_token=secrets.token_urlsafe(24), now=ctx.clock.now_iso(),
                                       expires_at=iso_from_epoch(ctx.clock.now() + SESSION_DAYS * 86400),
                                       user_agent=user_agent)
    return token


async def viewer_for(ctx: Context, token: str) -> Viewer | None:
    """The person a session cookie signs in, or None (unknown or expired session, account deleted
    or suspended)."""
    hashed = token_hash(token)
    found = await web_store.get_session_account(ctx.db.reader, hashed, ctx.clock.now_iso())
    if found is None:
        return None
    session, actor, account = found
    if actor.deleted_at or actor.suspended_at:
        return None
    return Viewer(actor=actor, account=account, session_hash=hashed, csrf_token=session.csrf_token)


async def sign_out(ctx: Context, viewer: Viewer) -> None:
    async with ctx.db.transaction() as tx:
        await web_store.delete_session(tx, viewer.session_hash)


async def change_password(ctx: Context, viewer: Viewer, current: str, new: str) -> None:
    if not await asyncio.to_thread(accounts.verify_password, viewer.account.password_hash, current):
        raise AccountError("the current password is wrong")
    if len(new) < 8:
        raise AccountError("the new password must be at least 8 characters")
    new_hash = await asyncio.to_thread(accounts.hash_password, new)
    async with ctx.db.transaction() as tx:
        await web_store.set_password_hash(tx, viewer.actor.id, new_hash)
        # Other devices signed in with the old password are signed out.
        await web_store.delete_sessions_of(tx, viewer.actor.id, except_hash=viewer.session_hash)


async def delete_account(ctx: Context, username: str, *, password: str | None = None,
                         by_admin: bool = False) -> None:
    """Delete a local account: it answers 410 from now on, every server that knows it gets a
    Delete, and its posts leave the research corpus (reason account_deleted)."""
    actor = await accounts.require_local_actor(ctx, username)
    account = await actor_store.get_local_account_by_actor(ctx.db.reader, actor.id)
    assert account is not None
    if not by_admin and not await asyncio.to_thread(accounts.verify_password, account.password_hash,
                                                     password or ""):
        raise AccountError("the password is wrong")
    async with ctx.db.transaction() as tx:
        inboxes = await follow_store.follower_inboxes(tx, actor.id)
        inboxes += [a.preferred_inbox for _, a in await follow_store.list_following(tx, actor.id) if not a.is_local]
        state = await consent.get_state(ctx, actor.id, conn=tx)
        if state.choice != "unset":
            await consent.record_choice(ctx, tx, actor, choice="unset", source="system", note="account deleted")
        await outbox.publish(ctx, tx, actor=actor, activity=as2.delete_actor_activity(actor, f"{actor.uri}#delete"),
                             inboxes=inboxes, is_public=True)
        now = ctx.clock.now_iso()
        await actor_store.mark_actor_deleted(tx, actor.id, now)
        for post_id in await post_store.list_live_post_ids_of_actor(tx, actor.id):
            await post_store.mark_post_deleted(tx, post_id, now)
        await web_store.delete_sessions_of(tx, actor.id)
        await events.tokens_revoked(ctx, tx, actor.id)  # its apps' open streams end
    await corpus_sync.reconcile(ctx)
    log.info("account %s deleted%s", actor.username, " by an admin" if by_admin else "")


async def set_suspended(ctx: Context, username: str, suspended: bool) -> Actor:
    """Suspend (or restore) a local account: it cannot sign in or post, its pages are gone, its
    posts leave the corpus (reason account_suspended), and followers' servers get an Update
    saying so (Mastodon's `suspended` flag), which undoes cleanly when the suspension is lifted."""
    from fedserver.services import profile

    actor = await accounts.require_local_actor(ctx, username, allow_suspended=True)
    now = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        await actor_store.set_suspended(tx, actor.id, now if suspended else None, now)
        if suspended:
            await web_store.delete_sessions_of(tx, actor.id)
            await events.tokens_revoked(ctx, tx, actor.id)  # its apps' open streams end
        updated = await actor_store.get_actor(tx, actor.id)
        assert updated is not None
        await profile.federate_profile(ctx, tx, updated)
    await corpus_sync.reconcile(ctx)
    log.info("account %s %s", actor.username, "suspended" if suspended else "restored")
    return updated
