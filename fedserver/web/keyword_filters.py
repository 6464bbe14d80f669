"""Keyword filter pages (/filters): the person's filters, creating, editing and deleting one."""
from __future__ import annotations

from aiohttp import web

from fedserver.clock import parse_time
from fedserver.context import Context

from fedserver.services import keyword_filters
from fedserver.services.keyword_filters import CONTEXTS, FilterError, FilterNotFound
from fedserver.store.keyword_filters import KeywordFilter
from fedserver.web.common import ctx_of, redirect, render, require_viewer, viewer_of

CONTEXT_LABELS = {"home": "Home and lists", "notifications": "Notifications", "public": "Public timelines",
                  "thread": "Conversations", "account": "Profiles"}
# Mastodon's expiry choices, in seconds ("" = never).
EXPIRY_CHOICES = [("", "Never"), ("1800", "30 minutes"), ("3600", "1 hour"), ("21600", "6 hours"),
                  ("43200", "12 hours"), ("86400", "1 day"), ("604800", "1 week")]
KEEP_EXPIRY = "keep"
BLANK_KEYWORD_ROWS = 3


def _filter_id(request: web.Request) -> int | None:
    value = request.match_info["filter_id"]
    return int(value) if value.isdigit() and len(value) < 19 else None


@require_viewer
async def index(request: web.Request) -> web.Response:
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    return await render(request, "filters/index.html", filters=await keyword_filters.filters_of(ctx, viewer.actor),
                        labels=CONTEXT_LABELS, now_iso=ctx.clock.now_iso())


async def _form_page(request: web.Request, existing: KeywordFilter | None, *, error: str | None = None,
                     status: int = 200) -> web.Response:
    keywords = [(kw.keyword, kw.whole_word) for kw in existing.keywords] if existing else []
    keywords += [("", True)] * BLANK_KEYWORD_ROWS
    return await render(request, "filters/edit.html", status=status, existing=existing, keywords=keywords,
                        contexts=CONTEXTS, labels=CONTEXT_LABELS, expiries=EXPIRY_CHOICES, error=error)


@require_viewer
async def new_form(request: web.Request) -> web.Response:
    return await _form_page(request, None)


@require_viewer
async def edit_form(request: web.Request) -> web.StreamResponse:
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    filter_id = _filter_id(request)
    try:
        existing = await keyword_filters.get_filter(ctx, viewer.actor, filter_id) if filter_id else None
    except FilterNotFound:
        existing = None
    if existing is None:
        return await render(request, "public/not_found.html", status=404)
    return await _form_page(request, existing)


def _keywords(form) -> list[tuple[str, bool]]:
    """The keyword rows: keyword_N with whole_word_N ticked or not."""
    rows = []
    for n in range(keyword_filters.MAX_KEYWORDS + BLANK_KEYWORD_ROWS):
        word = form.get(f"keyword_{n}")
        if word is not None:
            rows.append((str(word), form.get(f"whole_word_{n}") == "on"))
    return rows


@require_viewer
async def save(request: web.Request) -> web.StreamResponse:
    """Create (POST /filters/new) or change (POST /filters/N) a filter."""
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    filter_id = _filter_id(request) if "filter_id" in request.match_info else None
    existing = None
    if filter_id is not None:
        try:
            existing = await keyword_filters.get_filter(ctx, viewer.actor, filter_id)
        except FilterNotFound:
            return await render(request, "public/not_found.html", status=404)
    elif "filter_id" in request.match_info:
        return await render(request, "public/not_found.html", status=404)
    form = await request.post()
    expiry = str(form.get("expires_in", ""))
    try:
        if existing is not None and expiry == KEEP_EXPIRY:
            left = None if existing.expires_at is None else _seconds_left(ctx, existing.expires_at)
        elif expiry == "":
            left = None
        elif expiry.isdigit() and len(expiry) < 10:
            left = int(expiry)
        else:
            raise FilterError("choose when the filter ends")
        saved = await keyword_filters.save_filter(
            ctx, viewer.actor, title=str(form.get("title", "")), contexts=[str(c) for c in form.getall("context", [])],
            action=str(form.get("action", "")), keywords=_keywords(form), expires_in=left,
            filter_id=existing.id if existing else None)
    except FilterError as exc:
        return await _form_page(request, existing, error=str(exc), status=400)
    return redirect("/filters", flash=f"The filter “{saved.title}” was saved.")


def _seconds_left(ctx: Context, expires_at: str) -> int:
    left = int((parse_time(expires_at) or 0) - ctx.clock.now())
    if left <= 0:
        raise FilterError("this filter has expired: choose a new end")
    return left


@require_viewer
async def delete(request: web.Request) -> web.StreamResponse:
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    filter_id = _filter_id(request)
    try:
        if filter_id is None:
            raise FilterNotFound("there is no such filter")
        await keyword_filters.delete_filter(ctx, viewer.actor, filter_id)
    except FilterNotFound:
        return await render(request, "public/not_found.html", status=404)
    return redirect("/filters", flash="The filter was deleted.")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/filters", index)
    r.add_get("/filters/new", new_form)
    r.add_post("/filters/new", save)
    r.add_get("/filters/{filter_id}", edit_form)
    r.add_post("/filters/{filter_id}", save)
    r.add_post("/filters/{filter_id}/delete", delete)
