"""Sign-ups that wait for an admin (registrations = "approval"): the request with its reason, the
admin's approval or rejection, and what signing in says meanwhile."""
from __future__ import annotations

import asyncio
import logging

from fedserver.context import Context
from fedserver.services import accounts
from fedserver.services.accounts import AccountError
from fedserver.store import actors as actor_store
from fedserver.store import locks
from fedserver.store import signups as signup_store
from fedserver.store.actors import Actor
from fedserver.store.signups import PendingSignup

log = logging.getLogger(__name__)

MAX_REASON = 1000
# Anyone may ask, so the queue is bounded: a flood of sign-ups cannot grow the database without
# end, and an admin can still read what waits (they reject or approve, and room comes back).
MAX_PENDING = 1000


class PendingApproval(AccountError):
    """The account exists as a sign-up an admin has not approved yet."""


async def request_signup(ctx: Context, username: str, password: str, reason: str) -> str:
    """Record a sign-up for the admins to approve; returns the (normalised) username. Nothing is
    federated or shown until it is approved: there is no actor yet."""
    name = accounts.validate_new_username(ctx, username)
    reason = reason.strip()
    if not reason:
        raise AccountError("tell the administrators why you would like to join (the reason field is empty)")
    if len(reason) > MAX_REASON:
        raise AccountError(f"the reason may have at most {MAX_REASON} characters")
    if len(password) < 8:
        raise AccountError("password must be at least 8 characters")
    password_hash = await asyncio.to_thread(accounts.hash_password, password)
    async with ctx.db.transaction() as tx:
        await locks.lock_name(tx, "pending-signups")  # (the count below holds across processes)
        if await signup_store.count_pending(tx) >= MAX_PENDING:
            log.warning("sign-up %r refused: %d sign-ups already wait for approval", name, MAX_PENDING)
            raise AccountError("too many sign-ups are waiting for approval right now; please try again later")
        await locks.lock_name(tx, accounts.username_lock(name))
        taken = (await actor_store.get_local_account(tx, name) is not None
                 or await actor_store.get_actor_by_uri(tx, ctx.urls.actor(name)) is not None)
        if taken or not await signup_store.insert_pending(tx, username=name, password_hash=password_hash,
                                                          reason=reason, now=ctx.clock.now_iso()):
            raise AccountError(f"the username “{name}” is taken")
    log.info("sign-up %r is waiting for approval", name)
    return name


async def list_pending(ctx: Context) -> list[PendingSignup]:
    return await signup_store.list_pending(ctx.db.reader)


async def approve(ctx: Context, username: str) -> Actor:
    """Turn a pending sign-up into an account (keys, actor, the password it chose)."""
    pending = await signup_store.get_pending(ctx.db.reader, username.strip().lstrip("@"))
    if pending is None:
        raise AccountError(f"no sign-up is waiting for approval under the name “{username}”")
    created = await accounts.create_account(ctx, pending.username, password_hash=pending.password_hash,
                                            from_pending=True)
    log.info("sign-up %r approved", pending.username)
    return created.actor


async def reject(ctx: Context, username: str) -> None:
    """Delete a pending sign-up; its name is free again."""
    async with ctx.db.transaction() as tx:
        if not await signup_store.delete_pending(tx, username.strip().lstrip("@")):
            raise AccountError(f"no sign-up is waiting for approval under the name “{username}”")
    log.info("sign-up %r rejected", username)


async def refuse_if_pending(ctx: Context, username: str, password: str) -> None:
    """Raise PendingApproval when this name and password belong to a sign-up still waiting: the
    person gets a clear answer instead of "wrong password" (only with the right password, so the
    answer tells a stranger nothing)."""
    pending = await signup_store.get_pending(ctx.db.reader, username)
    if pending is not None and await asyncio.to_thread(accounts.verify_password, pending.password_hash, password):
        raise PendingApproval("your account is waiting for approval by an administrator; you can sign in once "
                              "it is approved")
