"""The 'Moving' settings page: aliases (other accounts that are also you, so they may move here)
and moving this account to another server."""
from __future__ import annotations

from aiohttp import web

from fedserver.services import moving
from fedserver.web.common import ctx_of, redirect, render, require_viewer, viewer_of


@require_viewer
async def moving_page(request: web.Request) -> web.Response:
    return await _page(request)


async def _page(request: web.Request, *, error: str | None = None, status: int = 200) -> web.Response:
    viewer = viewer_of(request)
    assert viewer is not None
    return await render(request, "settings/moving.html", status=status, error=error, me=viewer.actor)


@require_viewer
async def save_alias(request: web.Request) -> web.StreamResponse:
    viewer = viewer_of(request)
    assert viewer is not None
    form = await request.post()
    try:
        if form.get("action") == "remove":
            await moving.remove_alias(ctx_of(request), viewer.username, str(form.get("uri", "")))
            return redirect("/settings/moving", flash="That account is no longer listed as yours.")
        await moving.add_alias(ctx_of(request), viewer.username, str(form.get("handle", "")).strip())
    except moving.MoveError as exc:
        return await _page(request, error=str(exc), status=400)
    return redirect("/settings/moving", flash="Listed. That account may now move here.")


@require_viewer
async def move(request: web.Request) -> web.StreamResponse:
    viewer = viewer_of(request)
    assert viewer is not None
    form = await request.post()
    try:
        await moving.move_away(ctx_of(request), viewer.username, str(form.get("handle", "")).strip())
    except moving.MoveError as exc:
        return await _page(request, error=str(exc), status=400)
    return redirect("/settings/moving", flash="Your account has moved. Your followers are being moved to the new one.")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/settings/moving", moving_page)
    app.router.add_post("/settings/aliases", save_alias)
    app.router.add_post("/settings/move", move)
