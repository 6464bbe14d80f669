"""What an admin does to a local account besides suspending or deleting it (services.auth):
resetting its password and granting or removing admin rights."""
from __future__ import annotations

import asyncio
import logging
import secrets

from fedserver.context import Context
from fedserver.services import accounts
from fedserver.store import actors as actor_store
from fedserver.store import web as web_store
from fedserver.store.actors import Actor

log = logging.getLogger(__name__)


async def reset_password(ctx: Context, username: str) -> str:
    """Give the account a new generated password and end all its sessions; returns the password
    (shown once to the admin, stored only as a hash)."""
    actor = await accounts.require_local_actor(ctx, username, allow_suspended=True)
    password = secrets.token_urlsafe(16)
    password_hash = await asyncio.to_thread(accounts.hash_password, password)
    async with ctx.db.transaction() as tx:
        await web_store.set_password_hash(tx, actor.id, password_hash)
        # Whoever was signed in (perhaps the person who took the account over) is signed out.
        await web_store.delete_sessions_of(tx, actor.id)
    log.info("password of %s reset by an admin; its sessions were ended", actor.username)
    return password


async def set_admin(ctx: Context, username: str, admin: bool) -> Actor:
    """Grant or remove admin rights; takes effect on the account's next request."""
    actor = await accounts.require_local_actor(ctx, username, allow_suspended=True)
    async with ctx.db.transaction() as tx:
        await actor_store.set_admin(tx, actor.id, admin)
    log.info("account %s is %s", actor.username, "an admin now" if admin else "no longer an admin")
    return actor
