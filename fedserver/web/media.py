"""Serving the media cache: content-addressed copies of remote pictures (/media/cache/<sha256>.<ext>),
and the stable address pages use for a remote picture before it is cached (/media/remote/<url
hash>), which fetches it on first view. Only URLs that a stored post or actor names have a row:
a request can never make this server fetch an address of its choosing."""
from __future__ import annotations

import re

from aiohttp import web

from fedserver import av_media
from fedserver.context import CTX_KEY
from fedserver.services import media_cache
from fedserver.store import remote_media as media_store

CACHE_NAME = re.compile(r"^[0-9a-f]{64}\.(jpg|png|gif|webp|mp4|m4a|webm|weba|ogg|mp3|flac)$")
URL_HASH = re.compile(r"^[0-9a-f]{64}$")
# Our own files, written from Pillow's output: the extension is the type (never the remote's claim).
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
                 **av_media.EXTENSIONS}  # video and audio: the type ffprobe found (fedserver/av_media.py)
# A content-addressed file never changes: browsers may keep it as long as they like.
IMMUTABLE = "public, max-age=31536000, immutable"
# Where /media/remote/ sends to may change (a later refetch of a changed picture): kept a day.
REDIRECT_CACHE = "public, max-age=86400"
SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
                "Cross-Origin-Resource-Policy": "same-origin"}


async def cached_file(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX_KEY]
    name = request.match_info["name"]
    match = CACHE_NAME.match(name)
    if match is None:
        raise web.HTTPNotFound()
    path = media_cache.cached_file_path(ctx, name)
    if not path.is_file():
        # Pruned: fetched again from the row that wrote it (its content may have changed meanwhile,
        # and then this name stays missing).
        row = await media_store.by_file_name(ctx.db.reader, name)
        if row is None or await media_cache.ensure_cached(ctx, row) is None or not path.is_file():
            raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Type": CONTENT_TYPES[match.group(1)], "Cache-Control": IMMUTABLE,
                                           **SAFE_HEADERS})


async def remote_picture(request: web.Request) -> web.StreamResponse:
    """?size=small for the thumbnail, ?size=blur for the blurhash picture; else the picture."""
    ctx = request.app[CTX_KEY]
    key = request.match_info["key"]
    if URL_HASH.match(key) is None:
        raise web.HTTPNotFound()
    row = await media_store.by_hash(ctx.db.reader, key)
    if row is None:
        raise web.HTTPNotFound()
    row = await media_cache.ensure_cached(ctx, row)
    if row is None:
        raise web.HTTPNotFound(headers={"Cache-Control": "no-store"})
    size = request.query.get("size")
    name = row.thumb_name if size == "small" else row.blur_name if size == "blur" else row.file_name
    if not name:  # audio has no poster
        raise web.HTTPNotFound()
    raise web.HTTPFound(f"/media/{media_cache.CACHE_FOLDER}/{name}", headers={"Cache-Control": REDIRECT_CACHE})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/media/cache/{name}", cached_file)
    app.router.add_get("/media/remote/{key}", remote_picture)
