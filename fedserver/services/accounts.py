"""Local accounts: creation (with their signing keys), the instance actor, passwords."""
from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fedserver.activitypub.keys import generate_rsa_private_key_pem, public_pem_from_private
from fedserver.context import Context
from fedserver.services.reserved_names import is_reserved
from fedserver.store import actors as actor_store
from fedserver.store import locks
from fedserver.store import signups as signup_store
from fedserver.store.actors import Actor, LocalAccount

USERNAME_RE = re.compile(r"^[a-z0-9_]{1,30}$")
_hasher = PasswordHasher()


class AccountError(Exception):
    """A request about a local account cannot be carried out (clear message for the person)."""


@dataclass
class CreatedAccount:
    actor: Actor
    password: str | None  # the generated password, when none was given


def configure_password_hashing(memory_kib: int) -> None:
    """New hashes in this process use this Argon2 memory cost ([server] password_hash_memory_kib);
    verifying reads the parameters stored in each hash, so older hashes keep working."""
    global _hasher
    _hasher = PasswordHasher(memory_cost=memory_kib)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def validate_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME_RE.match(name):
        raise AccountError(f"“{username}” cannot be a username: use 1-30 letters a-z, digits or _")
    return name


def validate_new_username(ctx: Context, username: str, *, allow_reserved: bool = False) -> str:
    """A valid name for a new account: also refuses reserved names (official-looking ones, the
    instance actor's, route names) unless an admin explicitly allows it."""
    name = validate_username(username)
    if not allow_reserved and is_reserved(name, domain=ctx.urls.domain):
        raise AccountError(f"the username “{name}” is reserved; choose another one")
    return name


def username_lock(name: str) -> str:
    """The lock (store/locks.py) of every transaction that decides whether a local username is free."""
    return f"username:{name.lower()}"


async def create_account(ctx: Context, username: str, *, password: str | None = None, admin: bool = False,
                         display_name: str = "", locked: bool = False, allow_reserved: bool = False,
                         password_hash: str | None = None, from_pending: bool = False) -> CreatedAccount:
    """Create a local account with its signing keys. `password_hash` (with `from_pending`) carries
    over an approved sign-up's password: its pending row is removed in the same transaction."""
    name = validate_new_username(ctx, username, allow_reserved=allow_reserved or from_pending)
    generated = None
    if password_hash is None:
        if password is None:
            generated = password = secrets.token_urlsafe(16)
        if len(password) < 8:
            raise AccountError("password must be at least 8 characters")
    # Key generation and Argon2 take tens to hundreds of milliseconds: keep them off the event loop.
    private_pem = await asyncio.to_thread(generate_rsa_private_key_pem)
    if password_hash is None:
        assert password is not None
        password_hash = await asyncio.to_thread(hash_password, password)
    urls = ctx.urls
    uri = urls.actor(name)
    now = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        # Two sign-ups (or a sign-up and an approval) of one name in two processes at once: the
        # second must find the name taken, not fail on the unique index (store/locks.py).
        await locks.lock_name(tx, username_lock(name))
        if await actor_store.get_local_account(tx, name) is not None or await actor_store.get_actor_by_uri(tx, uri):
            raise AccountError(f"the username “{name}” is taken")
        if from_pending:
            if not await signup_store.delete_pending(tx, name):
                raise AccountError(f"no sign-up is waiting for approval under the name “{name}”")
        elif await signup_store.get_pending(tx, name) is not None:
            raise AccountError(f"the username “{name}” is taken (by a sign-up waiting for approval)")
        actor_id = await actor_store.insert_actor(
            tx, uri=uri, is_local=True, now=now, fetched_at=None, username=name, domain=urls.domain,
            actor_type="Person", display_name=display_name or name, summary_html="", url=urls.profile(name),
            inbox_url=urls.inbox(name), shared_inbox_url=urls.shared_inbox, outbox_url=urls.outbox(name),
            followers_url=urls.followers(name), following_url=urls.following(name),
            featured_url=urls.featured(name), key_id=urls.key_id(uri),
            public_key_pem=public_pem_from_private(private_pem), manually_approves_followers=int(locked))
        await actor_store.insert_local_account(
            tx, actor_id=actor_id, username=name, private_key_pem=private_pem, password_hash=password_hash,
            is_admin=admin, is_instance_actor=False, now=now)
        actor = await actor_store.get_actor(tx, actor_id)
    assert actor is not None
    return CreatedAccount(actor=actor, password=generated)


async def ensure_instance_actor(ctx: Context) -> tuple[Actor, LocalAccount]:
    """The server's own Application actor, created on first start; it signs the server's fetches."""
    existing = await actor_store.get_instance_actor(ctx.db.reader)
    if existing is not None:
        return existing
    urls = ctx.urls
    private_pem = await asyncio.to_thread(generate_rsa_private_key_pem)
    uri = urls.instance_actor
    now = ctx.clock.now_iso()
    host_name = urls.domain.split(":")[0]
    async with ctx.db.transaction() as tx:
        # Every process of a new instance starting at once (web processes and workers): one creates it.
        await locks.lock_name(tx, "instance-actor")
        found = await actor_store.get_instance_actor(tx)
        if found is not None:
            return found
        actor_id = await actor_store.insert_actor(
            tx, uri=uri, is_local=True, now=now, fetched_at=None, username=host_name, domain=urls.domain,
            actor_type="Application", display_name=urls.domain, url=f"{urls.base}/",
            inbox_url=f"{uri}/inbox", shared_inbox_url=urls.shared_inbox, outbox_url=f"{uri}/outbox",
            key_id=urls.key_id(uri), public_key_pem=public_pem_from_private(private_pem),
            manually_approves_followers=1)
        await actor_store.insert_local_account(
            tx, actor_id=actor_id, username="instance.actor", private_key_pem=private_pem, password_hash=None,
            is_admin=False, is_instance_actor=True, now=now)
        found = await actor_store.get_instance_actor(tx)
    assert found is not None
    return found


async def require_local_actor(ctx: Context, username: str, *, allow_suspended: bool = False) -> Actor:
    actor = await actor_store.get_local_actor(ctx.db.reader, username.lstrip("@"))
    if actor is None or actor.deleted_at:
        raise AccountError(f"there is no account named “{username}” here")
    if actor.suspended_at and not allow_suspended:
        raise AccountError(f"the account “{username}” is suspended")
    return actor


async def list_accounts(ctx: Context) -> list[tuple[Actor, LocalAccount]]:
    return await actor_store.list_local_actors(ctx.db.reader)
