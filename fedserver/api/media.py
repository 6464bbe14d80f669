"""Media: pictures, video and audio uploaded before the post that carries them (POST /api/v2/media
and /api/v1/media), read and described (GET/PUT /api/v1/media/:id), then attached with
media_ids[] on status create. A picture is cleaned at once (the image worker, as for the web
compose form), so v2 answers 200 with its url. Video and audio take seconds (ffprobe/ffmpeg):
as in Mastodon, v2 answers 202 with `url: null` and GET /api/v1/media/:id answers 206 until the
file is ready (then 200), or 422 with the reason when it was refused; v1 waits for it. A
`thumbnail` picture becomes the preview of a video or audio file."""
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


async def _upload(call: ApiCall, *, wait: bool) -> web.Response:
    field = call.params.file("file")
    if field is None:
        raise ApiError(422, "Validation failed: file is missing (send the picture as multipart field `file`)")
    data = await asyncio.to_thread(field.file.read)
    try:
        declared = field.content_type or ""
        # A picture by its bytes, or one the app says is a picture (its errors then speak of pictures);
        # the rest is for ffprobe to judge.
        if uploads.is_picture(data) or declared.startswith("image/"):
            item = await uploads.upload(call.ctx, call.me, data, call.params.text("description"), _focus(call))
            return json_response(serializers.upload(item, call.ctx.urls))
        thumbnail = call.params.file("thumbnail")
        item, task = await uploads.upload_av(
            call.ctx, call.me, data, call.params.text("description"), _focus(call),
            thumbnail=await asyncio.to_thread(thumbnail.file.read) if thumbnail is not None else None,
            audio_hint=declared.startswith("audio/"))
    except UploadError as exc:
        raise ApiError(422, f"Validation failed: {exc}") from None
    if wait:  # v1 answers once the file is processed
        await asyncio.shield(task)
        return await _answer(call, item.id)
    return json_response(serializers.upload(item, call.ctx.urls), status=202)


async def _answer(call: ApiCall, upload_id: int) -> web.Response:
    item = await uploads.own_upload(call.ctx, call.me, upload_id)
    if item is None:
        raise ApiError(404, "Record not found")
    if item.state == "failed":
        raise ApiError(422, f"Validation failed: {item.error or 'the file could not be processed'}")
    return json_response(serializers.upload(item, call.ctx.urls), status=206 if item.state == "processing" else 200)


@routes.post("/api/v2/media", scope=("write:media",))
async def upload_v2(call: ApiCall) -> web.Response:
    return await _upload(call, wait=False)


@routes.post("/api/v1/media", scope=("write:media",))
async def upload_v1(call: ApiCall) -> web.Response:
    return await _upload(call, wait=True)


@routes.get(r"/api/v1/media/{id:\d+}", scope=("write:media",))
async def get_media(call: ApiCall) -> web.Response:
    return await _answer(call, ids.require(call.match("id")))


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
