"""The search page (/search): one box for addresses, links, #hashtags, names and words; a link or
an address that names one post or account opens it. And the person's search setting."""
from __future__ import annotations

import logging
from urllib.parse import urlencode

from aiohttp import web

from fedserver.activitypub import fetch
from fedserver.services import remote_actors, search, timelines
from fedserver.services.search import SearchError
from fedserver.store.actors import Actor
from fedserver.web.common import ctx_of, redirect, render, require_viewer, training_choices, viewer_of
from fedserver.web.timeline import max_id_of

log = logging.getLogger(__name__)

TEMPLATE = "social/search.html"


def _handle_problem(handle: str, exc: remote_actors.ActorNotFound) -> str:
    """A plain sentence for why the account could not be found."""
    user, _, host = handle.lstrip("@").partition("@")
    cause = exc.__cause__
    if isinstance(cause, (fetch.FetchConnectionError, fetch.FetchTimeout)):
        return f"We could not reach {host}: the server may be down, or the address may be misspelt."
    if isinstance(cause, (fetch.FetchNotFound, fetch.FetchGone)):
        return f"{host} has no account named {user}."
    if isinstance(cause, fetch.FetchBlocked):
        return f"This server does not connect to {host}."
    if isinstance(cause, fetch.FetchError):
        return f"Could not find @{handle.lstrip('@')}: {cause.plain}."
    return f"Could not find @{handle.lstrip('@')}: {exc}."


def _opened_path(opened: search.Opened) -> str:
    if opened.post is not None:
        return f"/posts/{opened.post.id}"  # which sends a post of ours on to its own page
    actor = opened.actor
    assert actor is not None
    return f"/@{actor.username}" if actor.is_local else f"/remote/{actor.id}"


def _offset_of(request: web.Request) -> int:
    value = request.query.get("offset", "")
    return min(int(value), search.MAX_OFFSET) if value.isdigit() and len(value) < 7 else 0


async def _relations(request: web.Request, viewer: Actor, accounts: list[Actor]) -> dict[int, str]:
    ctx = ctx_of(request)
    return {actor.id: await timelines.relationship(ctx, viewer, actor) for actor in accounts}


@require_viewer
async def search_page(request: web.Request) -> web.StreamResponse:
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    query = search.clean_query(request.query.get("q", ""))
    if not query:
        return await render(request, TEMPLATE, q="", results=None)
    if search.is_url(query):
        try:
            opened = await search.resolve_url(ctx, viewer.actor, query)
        except SearchError as exc:
            return await render(request, TEMPLATE, status=exc.status, q=query, results=None, error=str(exc))
        raise web.HTTPSeeOther(_opened_path(opened))
    if search.is_handle(query):
        return await _account_page(request, viewer.actor, query)
    kind = request.query.get("type")
    kind = kind if kind in search.TYPES else None
    max_id = max_id_of(request)
    if max_id is not None and kind is None:
        kind = "statuses"  # older posts: the people and hashtags were on the first page
    try:
        results = await search.search(ctx, viewer.actor, query, kind=kind, max_id=max_id,
                                      offset=_offset_of(request), choices=training_choices(request))
    except SearchError as exc:
        return await render(request, TEMPLATE, status=exc.status, q=query, results=None, error=str(exc))
    return await render(request, TEMPLATE, q=query, results=results, kind=kind, offset=_offset_of(request),
                        relations=await _relations(request, viewer.actor, results.accounts),
                        query_of=lambda **extra: urlencode({"q": query, **extra}))


async def _account_page(request: web.Request, viewer: Actor, handle: str) -> web.Response:
    """@user@host: the account, found by WebFinger if it is not known yet, with its follow button."""
    ctx = ctx_of(request)
    try:
        found = await search.resolve_account(ctx, handle)
    except remote_actors.ActorNotFound as exc:
        log.info("search for %r failed: %s", handle, exc)
        return await render(request, TEMPLATE, status=404, q=handle, results=None, error=_handle_problem(handle, exc))
    except SearchError as exc:
        return await render(request, TEMPLATE, status=exc.status, q=handle, results=None, error=str(exc))
    results = search.Results(query=handle, resolved=found)
    return await render(request, TEMPLATE, q=handle, results=results, kind=None, offset=0,
                        relations=await _relations(request, viewer, [found]),
                        query_of=lambda **extra: urlencode({"q": handle, **extra}))


@require_viewer
async def save_search_setting(request: web.Request) -> web.StreamResponse:
    viewer = viewer_of(request)
    assert viewer is not None
    form = await request.post()
    indexable = form.get("indexable") == "on"
    await search.set_indexable(ctx_of(request), viewer.username, indexable)
    return redirect("/settings/profile", flash="Your public posts can now be found in search." if indexable
                    else "Your posts no longer show up in other people's searches.")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/search", search_page)
    app.router.add_post("/settings/search", save_search_setting)
