"""A person's bookmarks, and the lists of the posts they bookmarked or liked, as post cards (only
posts they may still see)."""
from __future__ import annotations

from typing import Awaitable, Callable


from fedserver.context import Context
from fedserver.services import audience
from fedserver.services.timelines import Page, cards_for
from fedserver.store import bookmarks as bookmark_store
from fedserver.store.actors import Actor
from fedserver.store.posts import Post


async def bookmark(ctx: Context, actor: Actor, post: Post, *, on: bool) -> None:
    """Bookmark (or not) a post the person may see (the caller checked): private, never federated."""
    async with ctx.db.transaction() as tx:
        if on:
            await bookmark_store.add_bookmark(tx, actor.id, post.id, ctx.clock.now_iso())
        else:
            await bookmark_store.remove_bookmark(tx, actor.id, post.id)


async def bookmarked_ids(ctx: Context, actor: Actor, post_ids: list[int]) -> set[int]:
    return await bookmark_store.bookmarked_among(ctx.db.reader, actor.id, post_ids)


Lister = Callable[..., Awaitable[list[tuple[int, Post]]]]


async def _page(ctx: Context, actor: Actor, lister: Lister, max_id: int | None, limit: int) -> Page:
    rows = await lister(ctx.db.reader, actor.id, max_id=max_id, limit=limit)
    visible = {post.id for post in await audience.may_see_all(ctx, [post for _, post in rows], actor)}
    cards = await cards_for(ctx, actor, [(row_id, post, None) for row_id, post in rows if post.id in visible])
    return Page(cards, rows[-1][0] if len(rows) == limit else None)


async def bookmarks_page(ctx: Context, actor: Actor, *, max_id: int | None, limit: int) -> Page:
    """Bookmarked posts, newest bookmark first; a card's sort_id is the bookmark's id."""
    return await _page(ctx, actor, bookmark_store.bookmarked_posts, max_id, limit)


async def favourites_page(ctx: Context, actor: Actor, *, max_id: int | None, limit: int) -> Page:
    """Liked posts, newest like first; a card's sort_id is the like's id."""
    return await _page(ctx, actor, bookmark_store.liked_posts, max_id, limit)
