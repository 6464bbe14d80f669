"""The 'Your data' settings page: downloading one's archive (posts, media, likes) and the accounts one
follows, blocks and mutes and the posts one bookmarked as Mastodon's CSV files; importing blocks,
mutes and bookmarks from such files."""
from __future__ import annotations

import logging

from aiohttp import web

from fedserver.services import archive, data_imports, moving
from fedserver.web.common import ctx_of, render, require_viewer, viewer_of

log = logging.getLogger(__name__)


@require_viewer
async def data_page(request: web.Request) -> web.Response:
    return await _page(request)


async def _page(request: web.Request, *, error: str | None = None, status: int = 200,
                summary: data_imports.ImportSummary | None = None) -> web.Response:
    return await render(request, "settings/data.html", status=status, error=error, summary=summary,
                        downloads_per_day=ctx_of(request).settings.server.archive_downloads_per_day,
                        max_import_kb=data_imports.MAX_IMPORT_BYTES // 1024,
                        max_import_rows=data_imports.MAX_IMPORT_ROWS)


@require_viewer
async def download_archive(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    viewer = viewer_of(request)
    assert viewer is not None
    try:
        me = await archive.start_download(ctx, viewer.username)
    except archive.ArchiveLimited as exc:
        return await _page(request, error=str(exc), status=429)
    response = web.StreamResponse(headers={
        "Content-Type": "application/zip", "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{archive.archive_filename(ctx, me)}"'})
    await response.prepare(request)
    try:
        await archive.write_archive(ctx, me, response.write)
    except (ConnectionError, archive.ArchiveReaderStalled) as exc:
        log.info("archive of %s: not finished: %s", me.username, exc or exc.__class__.__name__)
        if request.transport is not None:
            request.transport.abort()  # an unfinished zip must not look complete
        return response
    await response.write_eof()
    return response


def _csv(text: str, filename: str) -> web.Response:
    return web.Response(text=text, content_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


@require_viewer
async def following_csv(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    assert viewer is not None
    return _csv(await moving.following_csv(ctx_of(request), viewer.username), "following_accounts.csv")


@require_viewer
async def blocked_csv(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    assert viewer is not None
    return _csv(await archive.blocked_accounts_csv(ctx_of(request), viewer.username), "blocked_accounts.csv")


@require_viewer
async def muted_csv(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    assert viewer is not None
    return _csv(await archive.muted_accounts_csv(ctx_of(request), viewer.username), "muted_accounts.csv")


@require_viewer
async def bookmarks_csv(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    assert viewer is not None
    return _csv(await archive.bookmarks_csv(ctx_of(request), viewer.username), "bookmarks.csv")


@require_viewer
async def import_file(request: web.Request) -> web.StreamResponse:
    viewer = viewer_of(request)
    assert viewer is not None
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        return await _page(request, error="Choose the CSV file to import.", status=400)
    data = upload.file.read(data_imports.MAX_IMPORT_BYTES + 1)
    try:
        summary = await data_imports.import_file(ctx_of(request), viewer.username, str(form.get("kind", "")), data)
    except data_imports.ImportTooLarge as exc:
        return await _page(request, error=str(exc), status=413)
    except data_imports.ImportRefused as exc:
        return await _page(request, error=str(exc), status=400)
    return await _page(request, summary=summary)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/settings/data", data_page)
    r.add_get("/settings/data/archive.zip", download_archive)
    r.add_get("/settings/data/following_accounts.csv", following_csv)
    r.add_get("/settings/data/blocked_accounts.csv", blocked_csv)
    r.add_get("/settings/data/muted_accounts.csv", muted_csv)
    r.add_get("/settings/data/bookmarks.csv", bookmarks_csv)
    r.add_post("/settings/data/import", import_file)
