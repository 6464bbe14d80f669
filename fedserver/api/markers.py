"""Markers: the read positions of the home timeline and the notifications, shared between a
person's apps."""
from __future__ import annotations

from aiohttp import web

from fedserver.api import ids
from fedserver.api.errors import ApiError, json_response
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.services import markers
from fedserver.store.markers import Marker

routes = ApiRoutes()


def _entities(found: list[Marker]) -> dict:
    return {m.timeline: {"last_read_id": m.last_read_id, "version": m.version,
                         "updated_at": ids.datetime_text(m.updated_at)} for m in found}


@routes.get("/api/v1/markers", scope=("read:statuses",))
async def get_markers(call: ApiCall) -> web.Response:
    return json_response(_entities(await markers.get_markers(call.ctx, call.me, call.params.list("timeline"))))


@routes.post("/api/v1/markers", scope=("write:statuses",))
async def set_markers(call: ApiCall) -> web.Response:
    # home[last_read_id]=... (form) or {"home": {"last_read_id": ...}} (JSON) read alike.
    positions = {timeline: call.params.text(f"{timeline}[last_read_id]") for timeline in markers.TIMELINES
                 if call.params.get(f"{timeline}[last_read_id]")}
    if not positions:
        raise ApiError(422, "Validation failed: give home[last_read_id] or notifications[last_read_id]")
    return json_response(_entities(await markers.set_markers(call.ctx, call.me, positions)))
