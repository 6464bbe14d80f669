"""Filters v2 (/api/v2/filters and their keywords) over services/keyword_filters.py: the same
filters the web's filter pages edit, applied by the timeline services, which is where
Status.filtered comes from. Context names are Mastodon's (home, notifications, public, thread,
account). A filter may also name single statuses (FilterStatus, /api/v2/filters/:id/statuses and
/api/v2/filter_statuses/:id), and, as in Mastodon, need not have keywords. The v1 filters API (deprecated since Mastodon 4.0) still answers an empty list (stubs.py)."""
from __future__ import annotations

import math

from aiohttp import web

from fedserver.api import ids, serializers
from fedserver.api.errors import ApiError, json_response
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.clock import parse_time
from fedserver.services import keyword_filters
from fedserver.services.keyword_filters import FilterError, FilterNotFound
from fedserver.api.statuses import visible_post
from fedserver.store.keyword_filters import FilterStatus, KeywordFilter

routes = ApiRoutes()

_NOT_FOUND = "Record not found"


def _failed(exc: FilterError) -> ApiError:
    if isinstance(exc, FilterNotFound):
        return ApiError(404, _NOT_FOUND)
    return ApiError(422, f"Validation failed: {exc}")


async def _filter(call: ApiCall, filter_id: int) -> KeywordFilter:
    try:
        return await keyword_filters.get_filter(call.ctx, call.me, filter_id)
    except FilterNotFound:
        raise ApiError(404, _NOT_FOUND) from None


def _remaining(call: ApiCall, found: KeywordFilter) -> int | None:
    """The filter's expiry as seconds from now, to keep it through a save (None: never)."""
    at = parse_time(found.expires_at) if found.expires_at else None
    return None if at is None else max(1, math.ceil(at - call.ctx.clock.now()))


async def _save(call: ApiCall, found: KeywordFilter, keywords: list[tuple[str, bool]], **changes) -> KeywordFilter:
    try:
        return await keyword_filters.save_filter(
            call.ctx, call.me, title=changes.get("title", found.title),
            contexts=changes.get("contexts", list(found.contexts)), action=changes.get("action", found.action),
            keywords=keywords, expires_in=changes.get("expires_in", _remaining(call, found)), filter_id=found.id,
            require_keywords=False)
    except FilterError as exc:
        raise _failed(exc) from None


def _expires_in(call: ApiCall) -> int | None:
    # "" or absent: never expires (Mastodon's forms send an empty value for "never").
    return call.params.int("expires_in") or None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "on", "yes")


@routes.get("/api/v2/filters", scope=("read:filters",))
async def all_filters(call: ApiCall) -> web.Response:
    return json_response([serializers.filter_entity(found)
                          for found in await keyword_filters.filters_of(call.ctx, call.me)])


@routes.post("/api/v2/filters", scope=("write:filters",))
async def create(call: ApiCall) -> web.Response:
    params = call.params
    keywords = [(item.get("keyword", ""), _truthy(item.get("whole_word", "true")))
                for item in params.records("keywords_attributes") if not _truthy(item.get("_destroy"))]
    try:
        created = await keyword_filters.save_filter(
            call.ctx, call.me, title=params.text("title"), contexts=params.list("context"),
            action=params.get("filter_action") or "warn", keywords=keywords, expires_in=_expires_in(call),
            require_keywords=False)
    except FilterError as exc:
        raise _failed(exc) from None
    return json_response(serializers.filter_entity(created))


@routes.get(r"/api/v2/filters/{id:\d+}", scope=("read:filters",))
async def one(call: ApiCall) -> web.Response:
    return json_response(serializers.filter_entity(await _filter(call, ids.require(call.match("id")))))


@routes.put(r"/api/v2/filters/{id:\d+}", scope=("write:filters",))
async def update(call: ApiCall) -> web.Response:
    """Title, context, action and expiry change when given; keywords_attributes with an id change
    or (with _destroy) remove that keyword, without one add a keyword."""
    found = await _filter(call, ids.require(call.match("id")))
    params = call.params
    keywords = [(kw.keyword, kw.whole_word) for kw in found.keywords]
    by_id = {serializers.keyword_id(found.id, i): i for i in range(len(keywords))}
    dropped: set[int] = set()
    added: list[tuple[str, bool]] = []
    for item in params.records("keywords_attributes"):
        position = by_id.get(ids.decode(item.get("id")) or -1) if item.get("id") else None
        if item.get("id") and position is None:
            raise ApiError(404, _NOT_FOUND)
        if position is None:
            added.append((item.get("keyword", ""), _truthy(item.get("whole_word", "true"))))
        elif _truthy(item.get("_destroy")):
            dropped.add(position)
        else:
            word, whole = keywords[position]
            keywords[position] = (item.get("keyword", word),
                                  _truthy(item["whole_word"]) if "whole_word" in item else whole)
    changes: dict = {}
    if params.get("title") is not None:
        changes["title"] = params.text("title")
    if params.list("context"):
        changes["contexts"] = params.list("context")
    if params.get("filter_action"):
        changes["action"] = params.get("filter_action")
    if params.get("expires_in") is not None:
        changes["expires_in"] = _expires_in(call)
    kept = [kw for i, kw in enumerate(keywords) if i not in dropped] + added
    return json_response(serializers.filter_entity(await _save(call, found, kept, **changes)))


@routes.delete(r"/api/v2/filters/{id:\d+}", scope=("write:filters",))
async def delete(call: ApiCall) -> web.Response:
    try:
        await keyword_filters.delete_filter(call.ctx, call.me, ids.require(call.match("id")))
    except FilterError as exc:
        raise _failed(exc) from None
    return json_response({})


# --- keywords ------------------------------------------------------------------------------

@routes.get(r"/api/v2/filters/{id:\d+}/keywords", scope=("read:filters",))
async def keywords(call: ApiCall) -> web.Response:
    found = await _filter(call, ids.require(call.match("id")))
    return json_response([serializers.filter_keyword(found, i, kw) for i, kw in enumerate(found.keywords)])


@routes.post(r"/api/v2/filters/{id:\d+}/keywords", scope=("write:filters",))
async def add_keyword(call: ApiCall) -> web.Response:
    found = await _filter(call, ids.require(call.match("id")))
    word = call.params.text("keyword").strip()
    if not word:
        raise ApiError(422, "Validation failed: keyword can't be blank")
    kept = [(kw.keyword, kw.whole_word) for kw in found.keywords]
    saved = await _save(call, found, [*kept, (word, call.params.bool("whole_word", True))])
    return json_response(serializers.filter_keyword(saved, len(saved.keywords) - 1, saved.keywords[-1]))


async def _keyword(call: ApiCall) -> tuple[KeywordFilter, int]:
    value = ids.require(call.match("id"))
    found = await _filter(call, value // 64)
    position = value % 64
    if position >= len(found.keywords):
        raise ApiError(404, _NOT_FOUND)
    return found, position


@routes.get(r"/api/v2/filters/keywords/{id:\d+}", scope=("read:filters",))
async def one_keyword(call: ApiCall) -> web.Response:
    found, position = await _keyword(call)
    return json_response(serializers.filter_keyword(found, position, found.keywords[position]))


@routes.put(r"/api/v2/filters/keywords/{id:\d+}", scope=("write:filters",))
async def update_keyword(call: ApiCall) -> web.Response:
    found, position = await _keyword(call)
    kept = [(kw.keyword, kw.whole_word) for kw in found.keywords]
    word, whole = kept[position]
    kept[position] = (call.params.get("keyword") or word, call.params.bool("whole_word", whole))
    saved = await _save(call, found, kept)
    return json_response(serializers.filter_keyword(saved, position, saved.keywords[position]))


@routes.delete(r"/api/v2/filters/keywords/{id:\d+}", scope=("write:filters",))
async def delete_keyword(call: ApiCall) -> web.Response:
    found, position = await _keyword(call)
    kept = [(kw.keyword, kw.whole_word) for i, kw in enumerate(found.keywords) if i != position]
    await _save(call, found, kept)  # the last one may go too: the filter then names posts only
    return json_response({})


@routes.get(r"/api/v2/filters/{id:\d+}/statuses", scope=("read:filters",))
async def statuses(call: ApiCall) -> web.Response:
    found = await _filter(call, ids.require(call.match("id")))
    return json_response([serializers.filter_status(item) for item in found.statuses])


@routes.post(r"/api/v2/filters/{id:\d+}/statuses", scope=("write:filters",))
async def add_status(call: ApiCall) -> web.Response:
    found = await _filter(call, ids.require(call.match("id")))
    # Only a post the caller may see: whether others exist is not told (404, as for any status).
    post = await visible_post(call, call.params.get("status_id"))
    try:
        added = await keyword_filters.add_filter_status(call.ctx, call.me, found.id, post.id)
    except FilterError as exc:
        raise _failed(exc) from None
    return json_response(serializers.filter_status(added))


async def _filter_status(call: ApiCall) -> FilterStatus:
    try:
        return await keyword_filters.get_filter_status(call.ctx, call.me, ids.require(call.match("id")))
    except FilterNotFound:
        raise ApiError(404, _NOT_FOUND) from None


@routes.get(r"/api/v2/filters/statuses/{id:\d+}", scope=("read:filters",))
@routes.get(r"/api/v2/filter_statuses/{id:\d+}", scope=("read:filters",))
async def one_status(call: ApiCall) -> web.Response:
    return json_response(serializers.filter_status(await _filter_status(call)))


@routes.delete(r"/api/v2/filters/statuses/{id:\d+}", scope=("write:filters",))
@routes.delete(r"/api/v2/filter_statuses/{id:\d+}", scope=("write:filters",))
async def remove_status(call: ApiCall) -> web.Response:
    found = await _filter_status(call)
    await keyword_filters.remove_filter_status(call.ctx, call.me, found.id)
    return json_response({})
