"""Lists: a person's named sets of accounts they follow, each with its own timeline (Mastodon's
lists, for the web pages and for /api/v1/lists and /api/v1/timelines/list/:id)."""
from __future__ import annotations

from fedserver.clock import time_ordered_id
from fedserver.context import Context
from fedserver.services import timelines
from fedserver.services.timelines import Page, TrainingChoices
from fedserver.store import follows as follow_store
from fedserver.store import lists as list_store
from fedserver.store import timelines as timeline_store
from fedserver.store.actors import Actor
from fedserver.store.lists import AccountList

REPLIES_POLICIES = ("followed", "list", "none")
MAX_TITLE = 100
MAX_LISTS = 100
# Mastodon's cap on accounts per list is a few thousand; far beyond what a page can show anyway.
MAX_MEMBERS = 2000


class ListError(Exception):
    """The list change is not valid (clear message for the person)."""


class ListNotFound(ListError):
    """No list with that id belongs to this person."""


def _checked(title: str, replies_policy: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise ListError("give the list a title")
    if len(title) > MAX_TITLE:
        raise ListError(f"a list title may have at most {MAX_TITLE} characters")
    if replies_policy not in REPLIES_POLICIES:
        raise ListError("choose which replies the list shows: followed, list or none")
    return title


async def create_list(ctx: Context, owner: Actor, title: str, *, replies_policy: str = "list",
                      exclusive: bool = False) -> AccountList:
    title = _checked(title, replies_policy)
    list_id = time_ordered_id(ctx.clock.now())
    async with ctx.db.transaction() as tx:
        if await list_store.count_lists(tx, owner.id) >= MAX_LISTS:
            raise ListError(f"you can have at most {MAX_LISTS} lists")
        await list_store.create_list(tx, list_id=list_id, owner_id=owner.id, title=title,
                                     replies_policy=replies_policy, exclusive=exclusive, now=ctx.clock.now_iso())
        created = await list_store.get_list(tx, owner.id, list_id)
    assert created is not None
    return created


async def get_list(ctx: Context, owner: Actor, list_id: int) -> AccountList:
    found = await list_store.get_list(ctx.db.reader, owner.id, list_id)
    if found is None:
        raise ListNotFound("there is no such list")
    return found


async def lists_of(ctx: Context, owner: Actor) -> list[AccountList]:
    return await list_store.lists_of(ctx.db.reader, owner.id)


async def update_list(ctx: Context, owner: Actor, list_id: int, title: str, *, replies_policy: str,
                      exclusive: bool) -> AccountList:
    """Rename the list, or change its replies policy or exclusivity."""
    title = _checked(title, replies_policy)
    async with ctx.db.transaction() as tx:
        if await list_store.get_list(tx, owner.id, list_id) is None:
            raise ListNotFound("there is no such list")
        await list_store.update_list(tx, list_id, title=title, replies_policy=replies_policy, exclusive=exclusive)
        updated = await list_store.get_list(tx, owner.id, list_id)
    assert updated is not None
    return updated


async def delete_list(ctx: Context, owner: Actor, list_id: int) -> None:
    async with ctx.db.transaction() as tx:
        if await list_store.get_list(tx, owner.id, list_id) is None:
            raise ListNotFound("there is no such list")
        await list_store.delete_list(tx, list_id)


async def members(ctx: Context, owner: Actor, list_id: int) -> list[Actor]:
    await get_list(ctx, owner, list_id)
    ids = await list_store.member_ids(ctx.db.reader, list_id)
    actors = await timeline_store.actors_by_ids(ctx.db.reader, ids)
    return [actors[i] for i in ids if i in actors]


async def followed_candidates(ctx: Context, owner: Actor, list_id: int) -> list[Actor]:
    """Accounts the owner follows that are not on the list yet (what the add form offers)."""
    on_list = set(await list_store.member_ids(ctx.db.reader, list_id))
    followed = await follow_store.list_following(ctx.db.reader, owner.id)
    return [actor for _, actor in followed if actor.id not in on_list and not actor.is_gone]


async def add_member(ctx: Context, owner: Actor, list_id: int, account: Actor) -> None:
    """Put an account the owner follows (an accepted follow, as Mastodon requires) on the list."""
    async with ctx.db.transaction() as tx:
        if await list_store.get_list(tx, owner.id, list_id) is None:
            raise ListNotFound("there is no such list")
        follow = await follow_store.get_follow(tx, owner.id, account.id)
        if follow is None or follow.state != "accepted":
            raise ListError(f"you can only add accounts you follow; you do not follow {account.handle}")
        if len(await list_store.member_ids(tx, list_id)) >= MAX_MEMBERS:
            raise ListError(f"a list can hold at most {MAX_MEMBERS} accounts")
        await list_store.add_member(tx, list_id, account.id, ctx.clock.now_iso())


async def remove_member(ctx: Context, owner: Actor, list_id: int, account: Actor) -> None:
    async with ctx.db.transaction() as tx:
        if await list_store.get_list(tx, owner.id, list_id) is None:
            raise ListNotFound("there is no such list")
        await list_store.remove_member(tx, list_id, account.id)


async def lists_with(ctx: Context, owner: Actor, account: Actor) -> set[int]:
    """Ids of the owner's lists that hold the account."""
    return await list_store.lists_with_member(ctx.db.reader, owner.id, account.id)


async def timeline(ctx: Context, owner: Actor, list_id: int, *, max_id: int | None = None,
                   limit: int = timelines.PAGE_SIZE, choices: TrainingChoices | None = None) -> Page:
    """The list's timeline: what its members posted and boosted that the owner may see, replies by
    the list's replies_policy, the owner's keyword filters for home applied (Mastodon's "home"
    context covers lists)."""
    lst = await get_list(ctx, owner, list_id)
    entries = await list_store.list_entries(ctx.db.reader, lst, owner.id, max_id=max_id, limit=limit)
    return await timelines.page_of_entries(ctx, owner, entries, limit, "home", choices=choices)
