"""The 'Moving' settings page: aliases (other accounts that are also you, so they may move here),
moving this account to another server, and the accounts you follow as a CSV file."""
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


@require_viewer
async def following_csv(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    assert viewer is not None
    text = await moving.following_csv(ctx_of(request), viewer.username)
    return web.Response(text=text, content_type="text/csv", headers={
        "Content-Disposition": 'attachment; filename="following_accounts.csv"', "Cache-Control": "no-store"})


@require_viewer
async def import_following(request: web.Request) -> web.StreamResponse:
    viewer = viewer_of(request)
    assert viewer is not None
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        return await _page(request, error="choose the CSV file of the accounts you follow", status=400)
    text = upload.file.read(1024 * 1024).decode("utf-8", "replace")
    try:
        followed, failed = await moving.import_following(ctx_of(request), viewer.username, text)
    except moving.MoveError as exc:
        return await _page(request, error=str(exc), status=400)
    missing = f" Not found: {', '.join(failed[:10])}{' ...' if len(failed) > 10 else ''}." if failed else ""
    return redirect("/settings/moving", flash=f"You follow or asked to follow {followed} accounts from the file.{missing}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/settings/moving", moving_page)
    app.router.add_post("/settings/aliases", save_alias)
    app.router.add_post("/settings/move", move)
    app.router.add_get("/settings/moving/following.csv", following_csv)
    app.router.add_post("/settings/moving/following", import_following)
