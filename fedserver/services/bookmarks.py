"""Bookmarks: a person keeps posts they may see for later; nobody else is told (nothing federates).
The web pages and the client API (GET /api/v1/bookmarks, POST /api/v1/statuses/:id/{bookmark,
unbookmark}) call the same functions; the API's favourites list pages the person's likes alike."""
from __future__ import annotations

from typing import Awaitable, Callable

from fedserver.context import Context
from fedserver.services import audience, timelines
from fedserver.services.accounts import require_local_actor
from fedserver.store import bookmarks as bookmark_store
from fedserver.store.actors import Actor
from fedserver.store.posts import Post


class BookmarkError(Exception):
    """The post cannot be bookmarked (clear message for the person)."""


async def set_bookmark(ctx: Context, actor: Actor, post: Post, *, on: bool) -> None:
    """Bookmark (or not) a post. Only what the person may see: a bookmark must not become a way to
    read a post later."""
    if on and not await audience.may_see(ctx, post, actor):
        raise BookmarkError("that post is not available")
    async with ctx.db.transaction() as tx:
        if on:
            await bookmark_store.add_bookmark(tx, actor.id, post.id, ctx.clock.now_iso())
        else:
            await bookmark_store.remove_bookmark(tx, actor.id, post.id)


async def bookmark(ctx: Context, username: str, post: Post) -> None:
    await set_bookmark(ctx, await require_local_actor(ctx, username), post, on=True)


async def unbookmark(ctx: Context, username: str, post: Post) -> None:
    await set_bookmark(ctx, await require_local_actor(ctx, username), post, on=False)


async def bookmarked_ids(ctx: Context, actor: Actor, post_ids: list[int]) -> set[int]:
    return await bookmark_store.bookmarked_among(ctx.db.reader, actor.id, post_ids)


Lister = Callable[..., Awaitable[list[tuple[int, Post]]]]


async def _page(ctx: Context, actor: Actor, lister: Lister, max_id: int | None, limit: int,
                choices: timelines.TrainingChoices | None = None) -> timelines.Page:
    """A page of cards; a card's sort_id is the bookmark's (or like's) id. A post the person may no
    longer see (its author suspended, a followers-only post of someone no longer followed) is left
    out, though it stays bookmarked should it come back."""
    rows = await lister(ctx.db.reader, actor.id, max_id=max_id, limit=limit)
    visible = {post.id for post in await audience.may_see_all(ctx, [post for _, post in rows], actor)}
    cards = await timelines.cards_for(ctx, actor, [(row_id, post, None) for row_id, post in rows
                                                   if post.id in visible], choices=choices,
                                      shown_anyway=frozenset(visible))
    return timelines.Page(cards, rows[-1][0] if len(rows) == limit else None)


async def bookmarks_page(ctx: Context, actor: Actor, *, max_id: int | None, limit: int) -> timelines.Page:
    """Bookmarked posts, newest bookmark first."""
    return await _page(ctx, actor, bookmark_store.list_bookmarks, max_id, limit)


async def favourites_page(ctx: Context, actor: Actor, *, max_id: int | None, limit: int) -> timelines.Page:
    """Liked posts, newest like first."""
    return await _page(ctx, actor, bookmark_store.liked_posts, max_id, limit)


async def bookmarks(ctx: Context, username: str, *, max_id: int | None = None, limit: int = timelines.PAGE_SIZE,
                    choices: timelines.TrainingChoices | None = None) -> timelines.Page:
    """The /bookmarks page of a local person."""
    actor = await require_local_actor(ctx, username)
    return await _page(ctx, actor, bookmark_store.list_bookmarks, max_id, limit, choices)
