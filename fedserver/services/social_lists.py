"""Lists of accounts: a local person's followers and followed accounts (hidden from others when
they chose so, as Mastodon's hide_collections), and one's own blocked and muted accounts. Paged
newest first on the list's own ids (next_max_id), as GET /api/v1/accounts/:id/{followers,following},
/api/v1/blocks and /api/v1/mutes page them."""
from __future__ import annotations

from dataclasses import dataclass

from fedserver.context import Context
from fedserver.services.accounts import require_local_actor
from fedserver.store import relations as relation_store
from fedserver.store.actors import Actor
from fedserver.store.relations import Related

PAGE_SIZE = 40


class ListHidden(Exception):
    """The account chose not to show this list to others."""


@dataclass
class AccountPage:
    items: list[Related]
    next_max_id: int | None


def _page(items: list[Related], limit: int) -> AccountPage:
    return AccountPage(items, items[-1].cursor if len(items) == limit else None)


async def hides_collections(ctx: Context, actor: Actor) -> bool:
    """Whether a local account hides its follow lists (a remote one's server decides for itself)."""
    return bool(actor.is_local) and await relation_store.hides_collections(ctx.db.reader, actor.id)


async def set_hide_collections(ctx: Context, username: str, hide: bool) -> None:
    actor = await require_local_actor(ctx, username)
    async with ctx.db.transaction() as tx:
        await relation_store.set_hide_collections(tx, actor.id, hide)


async def follow_list(ctx: Context, actor: Actor, viewer: Actor | None, *, followers: bool,
                      max_id: int | None = None, limit: int = PAGE_SIZE) -> AccountPage:
    """Who follows the account (followers=True) or whom it follows; raises ListHidden for anyone
    but the account itself when it hides them. Deleted and suspended accounts are left out."""
    if await hides_collections(ctx, actor) and (viewer is None or viewer.id != actor.id):
        raise ListHidden(f"{actor.handle} chose not to show whom they follow and who follows them")
    items = await relation_store.follow_list(ctx.db.reader, actor.id, followers=followers, max_id=max_id,
                                             limit=limit)
    return _page(items, limit)


async def blocked_accounts(ctx: Context, username: str, *, max_id: int | None = None,
                           limit: int = PAGE_SIZE) -> AccountPage:
    actor = await require_local_actor(ctx, username)
    return _page(await relation_store.blocked_list(ctx.db.reader, actor.id, max_id=max_id, limit=limit), limit)


async def muted_accounts(ctx: Context, username: str, *, max_id: int | None = None,
                         limit: int = PAGE_SIZE) -> AccountPage:
    actor = await require_local_actor(ctx, username)
    return _page(await relation_store.muted_list(ctx.db.reader, actor.id, max_id=max_id, limit=limit), limit)
