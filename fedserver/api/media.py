"""Media: pictures uploaded before the post that carries them (POST /api/v2/media and /api/v1/media),
read and described (GET/PUT /api/v1/media/:id), then attached with media_ids[] on status create.
Cleaning is synchronous (the image worker, as for the web compose form), so v2 answers 200 with
the url at once rather than Mastodon's 202-then-poll; Mastodon.py's media_post takes either."""
from __future__ import annotations

import asyncio

from aiohttp import web

from fedserver.api import ids, serializers
from fedserver.api.errors import ApiError, json_response
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.services import uploads
from fedserver.services.uploads import UploadError

routes = ApiRoutes()


def _focus(call: ApiCall) -> tuple[float, float] | None:
    """Mastodon's `focus`: "x,y", each between -1.0 and 1.0."""
    text = call.params.get("focus")
    if text is None or not text.strip():
        return None
    x, sep, y = text.partition(",")
    try:
        if not sep:
            raise ValueError
        return float(x), float(y)
    except ValueError:
        raise ApiError(422, "Validation failed: focus must be two numbers such as 0.5,-0.25") from None


async def _upload(call: ApiCall) -> web.Response:
    field = call.params.file("file")
    if field is None:
        raise ApiError(422, "Validation failed: file is missing (send the picture as multipart field `file`)")
    data = await asyncio.to_thread(field.file.read)
    try:
        item = await uploads.upload(call.ctx, call.me, data, call.params.text("description"), _focus(call))
    except UploadError as exc:
        raise ApiError(422, f"Validation failed: {exc}") from None
    return json_response(serializers.upload(item, call.ctx.urls))


@routes.post("/api/v2/media", scope=("write:media",))
async def upload_v2(call: ApiCall) -> web.Response:
    return await _upload(call)


@routes.post("/api/v1/media", scope=("write:media",))
async def upload_v1(call: ApiCall) -> web.Response:
    return await _upload(call)


@routes.get(r"/api/v1/media/{id:\d+}", scope=("write:media",))
async def get_media(call: ApiCall) -> web.Response:
    item = await uploads.own_upload(call.ctx, call.me, ids.require(call.match("id")))
    if item is None:
        raise ApiError(404, "Record not found")
    return json_response(serializers.upload(item, call.ctx.urls))


@routes.put(r"/api/v1/media/{id:\d+}", scope=("write:media",))
async def update_media(call: ApiCall) -> web.Response:
    try:
        item = await uploads.describe(call.ctx, call.me, ids.require(call.match("id")),
                                      call.params.get("description"), _focus(call))
    except UploadError as exc:
        raise ApiError(422, f"Validation failed: {exc}") from None
    if item is None:
        raise ApiError(404, "Record not found")
    return json_response(serializers.upload(item, call.ctx.urls))
