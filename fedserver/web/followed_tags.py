"""Following hashtags from the web: the Follow/Unfollow button on a tag page, and the page listing
the hashtags one follows (/followed_tags)."""
from __future__ import annotations

from aiohttp import web

from fedserver.services import followed_tags
from fedserver.services.followed_tags import TagError
from fedserver.web.common import ctx_of, redirect, render, require_viewer, viewer_of
from fedserver.web.return_paths import return_path


@require_viewer
async def index(request: web.Request) -> web.Response:
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    return await render(request, "tags/followed.html", tags=await followed_tags.followed(ctx, viewer.actor))


def _change(follow: bool):
    @require_viewer
    async def handler(request: web.Request) -> web.StreamResponse:
        ctx, viewer = ctx_of(request), viewer_of(request)
        assert viewer is not None
        form = await request.post()
        tag = request.match_info["tag"]
        back = return_path(form.get("back"), default=f"/tags/{tag}")
        try:
            if follow:
                name = await followed_tags.follow_tag(ctx, viewer.actor, tag)
                message = f"You follow #{name}: its posts appear on your home timeline."
            else:
                name = await followed_tags.unfollow_tag(ctx, viewer.actor, tag)
                message = f"You no longer follow #{name}."
        except TagError as exc:
            return await render(request, "error.html", status=400, message=f"That did not work: {exc}.")
        return redirect(back, flash=message)
    return handler


def add_routes(app: web.Application) -> None:
    app.router.add_get("/followed_tags", index)
    app.router.add_post("/tags/{tag}/follow", _change(True))
    app.router.add_post("/tags/{tag}/unfollow", _change(False))
