"""Bookmarks: a person keeps posts they may see for later; nobody else is told (nothing federates).
GET /api/v1/bookmarks and POST /api/v1/statuses/:id/{bookmark,unbookmark} expose the same calls."""
from __future__ import annotations

from fedserver.context import Context
from fedserver.services import audience, timelines
from fedserver.services.accounts import require_local_actor
from fedserver.store import bookmarks as bookmark_store
from fedserver.store.posts import Post


class BookmarkError(Exception):
    """The post cannot be bookmarked (clear message for the person)."""


async def bookmark(ctx: Context, username: str, post: Post) -> None:
    actor = await require_local_actor(ctx, username)
    # Only what the person may see: a bookmark must not become a way to read a post later.
    if not await audience.may_see(ctx, post, actor):
        raise BookmarkError("that post is not available")
    async with ctx.db.transaction() as tx:
        await bookmark_store.add_bookmark(tx, actor.id, post.id, ctx.clock.now_iso())


async def unbookmark(ctx: Context, username: str, post: Post) -> None:
    actor = await require_local_actor(ctx, username)
    async with ctx.db.transaction() as tx:
        await bookmark_store.remove_bookmark(tx, actor.id, post.id)


async def bookmarks(ctx: Context, username: str, *, max_id: int | None = None, limit: int = timelines.PAGE_SIZE,
                    choices: timelines.TrainingChoices | None = None) -> timelines.Page:
    """The person's bookmarks, newest first, as cards; next_max_id is a bookmark id. A bookmarked
    post the person may no longer see (deleted, or its author suspended or no longer followed for
    a followers-only post) is left out, though it stays bookmarked should it come back."""
    actor = await require_local_actor(ctx, username)
    rows = await bookmark_store.list_bookmarks(ctx.db.reader, actor.id, max_id=max_id, limit=limit)
    visible = {post.id for post in await audience.may_see_all(ctx, [post for _, post in rows], actor)}
    cards = await timelines.cards_for(ctx, actor, [(bookmark_id, post, None) for bookmark_id, post in rows
                                                   if post.id in visible], choices=choices,
                                      shown_anyway=frozenset(visible))
    return timelines.Page(cards, rows[-1][0] if len(rows) == limit else None)
