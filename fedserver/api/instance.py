"""The instance as apps read it at start-up: /api/v1/instance, /api/v2/instance, rules and
custom emojis."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from fedserver.api import serializers
from fedserver.api.errors import json_response
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.av_media import available
from fedserver.context import Context
from fedserver.services import audience, directory, instance, push

routes = ApiRoutes()


async def _contact(ctx: Context) -> dict[str, Any] | None:
    actor = await directory.contact_account(ctx)
    if actor is None:
        return None
    return serializers.account(await directory.account_view(ctx, actor, None), ctx.urls)


@routes.get("/api/v1/instance", auth="public")
async def instance_v1(call: ApiCall) -> web.Response:
    ctx = call.ctx
    info = await instance.instance_info(ctx)
    stats = await audience.usage_stats(ctx)
    body = serializers.instance_v1(
        info, ctx.urls, users=stats["users"], statuses=stats["local_posts"],
        domains=await directory.known_domains(ctx), contact=await _contact(ctx),
        approval_required=info.registrations == "approval",
        # Apps shrink pictures to this before uploading: the image worker's bound ([uploads]).
        image_matrix_limit=ctx.settings.uploads.upload_max_pixels, video_size_limit=_video_size_limit(ctx))
    body["configuration"]["polls"] = serializers.poll_limits(ctx.settings.instance)
    return json_response(body)


@routes.get("/api/v2/instance", auth="public")
async def instance_v2(call: ApiCall) -> web.Response:
    ctx = call.ctx
    info = await instance.instance_info(ctx)
    stats = await audience.usage_stats(ctx)
    body = serializers.instance_v2(info, ctx.urls, active_month=stats["active_month"],
                                   contact=await _contact(ctx), approval_required=info.registrations == "approval",
                                   image_matrix_limit=ctx.settings.uploads.upload_max_pixels,
                                   video_size_limit=_video_size_limit(ctx))
    body["configuration"]["polls"] = serializers.poll_limits(ctx.settings.instance)
    # What apps subscribe to Web Push with (Mastodon shows it in v2 and on apps, not in v1).
    body["configuration"]["vapid"] = {"public_key": await push.public_vapid_key(ctx)}
    return json_response(body)


@routes.get("/api/v1/instance/rules", auth="public")
async def rules(call: ApiCall) -> web.Response:
    return json_response([])  # fedserver has no server rules to list (yet)


@routes.get("/api/v1/custom_emojis", auth="public")
async def custom_emojis(call: ApiCall) -> web.Response:
    return json_response([])  # fedserver has no custom emojis


@routes.get("/api/v1/instance/languages", auth="public")
async def languages(call: ApiCall) -> web.Response:
    return json_response([{"code": "en", "name": "English"}])


def _video_size_limit(ctx: Context) -> int:
    """0 when video and audio are not taken here (no ffmpeg), which tells apps not to offer them."""
    return ctx.settings.media.media_video_max_bytes if available() else 0
