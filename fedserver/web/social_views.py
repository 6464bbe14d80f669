"""Pages of issue 16's "every day" part: followers and following lists of local profiles, the
blocked and muted lists in settings, bookmarks, pinning, and the federated timeline. Each handler
calls one service (services/social_lists, bookmarks, pins, timelines), so the Mastodon client API
can offer the same."""
from __future__ import annotations

from aiohttp import web

from fedserver.services import audience, bookmarks, pins, social_lists, timelines
from fedserver.services.auth import Viewer
from fedserver.store.posts import Post
from fedserver.web.common import ctx_of, redirect, render, require_viewer, training_choices, viewer_of
from fedserver.web.return_paths import return_path
from fedserver.web.timeline import max_id_of


def _viewer(request: web.Request) -> Viewer:
    viewer = viewer_of(request)
    assert viewer is not None
    return viewer


async def _follow_list(request: web.Request, *, followers: bool) -> web.Response:
    ctx = ctx_of(request)
    actor = await timelines.local_actor(ctx, request.match_info["username"])
    if actor is None:
        return await render(request, "public/not_found.html", status=404)
    viewer = viewer_of(request)
    values = {"target": actor, "followers": followers,
              "lists_hidden": await social_lists.hides_collections(ctx, actor)}
    try:
        page = await social_lists.follow_list(ctx, actor, viewer.actor if viewer else None, followers=followers,
                                              max_id=max_id_of(request))
    except social_lists.ListHidden:
        return await render(request, "social/follow_list.html", page=None, hidden=True, **values)
    return await render(request, "social/follow_list.html", page=page, hidden=False, **values)


async def followers_page(request: web.Request) -> web.Response:
    return await _follow_list(request, followers=True)


async def following_page(request: web.Request) -> web.Response:
    return await _follow_list(request, followers=False)


@require_viewer
async def blocked_page(request: web.Request) -> web.Response:
    page = await social_lists.blocked_accounts(ctx_of(request), _viewer(request).username, max_id=max_id_of(request))
    return await render(request, "settings/related.html", page=page, kind="blocks")


@require_viewer
async def muted_page(request: web.Request) -> web.Response:
    page = await social_lists.muted_accounts(ctx_of(request), _viewer(request).username, max_id=max_id_of(request))
    return await render(request, "settings/related.html", page=page, kind="mutes")


@require_viewer
async def save_hide_collections(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    hide = form.get("hide_collections") == "on"
    await social_lists.set_hide_collections(ctx_of(request), _viewer(request).username, hide)
    return redirect("/settings/profile", flash="Only you see whom you follow and who follows you now." if hide
                    else "Everyone may see whom you follow and who follows you now.")


@require_viewer
async def bookmarks_page(request: web.Request) -> web.Response:
    page = await bookmarks.bookmarks(ctx_of(request), _viewer(request).username, max_id=max_id_of(request),
                                     choices=training_choices(request))
    return await render(request, "timeline/bookmarks.html", page=page)


@require_viewer
async def federated_page(request: web.Request) -> web.Response:
    page = await timelines.federated(ctx_of(request), _viewer(request).actor, max_id=max_id_of(request),
                                     choices=training_choices(request))
    return await render(request, "timeline/federated.html", page=page)


async def _post_in_url(request: web.Request) -> Post | None:
    """The live post named in the URL, if the viewer may see it."""
    value = request.match_info["post_id"]
    if not value.isdigit() or len(value) > 19:
        return None
    ctx = ctx_of(request)
    post = await timelines.post_by_id(ctx, int(value))
    if post is None or post.is_deleted or not await audience.may_see(ctx, post, _viewer(request).actor):
        return None
    return post


def _post_form(action, error: type[Exception], done: str | None = None):
    """A form posted about one post (bookmark, pin...): back to where it came from (its anchor),
    with the service's refusal as a message; an unknown post answers 404."""
    @require_viewer
    async def handler(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        back = return_path(form.get("back"))
        post = await _post_in_url(request)
        if post is None:
            return await render(request, "public/not_found.html", status=404)
        try:
            await action(ctx_of(request), _viewer(request).username, post)
        except error as exc:
            return redirect(back, flash=f"That did not work: {exc}.")
        return redirect(back, flash=done)
    return handler


bookmark = _post_form(bookmarks.bookmark, bookmarks.BookmarkError)
unbookmark = _post_form(bookmarks.unbookmark, bookmarks.BookmarkError)
pin = _post_form(pins.pin, pins.PinError, "Pinned: it comes first on your profile.")
unpin = _post_form(pins.unpin, pins.PinError, "Unpinned.")


def add_routes(app: web.Application) -> None:
    """Registered before pages.add_routes: /@{username}/followers must not be read as a post id."""
    r = app.router
    r.add_get("/@{username}/followers", followers_page)
    r.add_get("/@{username}/following", following_page)
    r.add_get("/settings/blocks", blocked_page)
    r.add_get("/settings/mutes", muted_page)
    r.add_post("/settings/collections", save_hide_collections)
    r.add_get("/bookmarks", bookmarks_page)
    r.add_get("/federated", federated_page)
    r.add_post("/posts/{post_id}/bookmark", bookmark)
    r.add_post("/posts/{post_id}/unbookmark", unbookmark)
    r.add_post("/posts/{post_id}/pin", pin)
    r.add_post("/posts/{post_id}/unpin", unpin)
