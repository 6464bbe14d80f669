"""Search (v2) over services/search.py, the search the web's search page runs: accounts by name,
hashtags by prefix and posts by their words (only posts whose authors let them be found, and that
the caller may see); a URL opens that post or account (fetched, with resolve=true); an
`@someone@server` address finds that account, and with resolve=true one this server does not know
yet, through WebFinger, which is how apps follow people on other servers. `type`, `limit`,
`offset` and (for statuses) `max_id` page the results. Anonymous callers get the address lookup
only: full-text search is for signed-in people, as on the web page."""
from __future__ import annotations

import logging

from aiohttp import web

from fedserver.api import ids, serializers
from fedserver.api.errors import ApiError, json_response
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.api.statuses import statuses_json
from fedserver.services import directory, followed_tags, search as search_service, timelines
from fedserver.services.remote_actors import ActorNotFound
from fedserver.services.search import SearchError
from fedserver.store.actors import Actor
from fedserver.store.posts import Post

log = logging.getLogger(__name__)
routes = ApiRoutes()

MAX_QUERY = 300


@routes.get("/api/v2/search", auth="public", scope=("read:search",))
async def search(call: ApiCall) -> web.Response:
    ctx, params, viewer = call.ctx, call.params, call.viewer
    query = search_service.clean_query(params.text("q"))
    if not query:
        raise ApiError(422, "Validation failed: q can't be blank")
    kind = params.get("type") or None
    if kind is not None and kind not in search_service.TYPES:
        raise ApiError(422, "Validation failed: type must be accounts, hashtags or statuses")
    offset = max(0, params.int("offset", 0) or 0)
    limit = max(1, min(params.int("limit", 20) or 20, 40))
    # resolve asks this server to fetch from others: Mastodon allows it to signed-in people only.
    resolve = params.bool("resolve") and viewer is not None
    accounts: list[Actor] = []
    posts: list[Post] = []
    hashtags: list[str] = []
    cards: list[timelines.PostCard] = []
    if search_service.is_url(query):
        if viewer is not None and offset == 0:
            try:
                opened = await search_service.resolve_url(ctx, viewer, query, resolve=resolve)
            except (SearchError, ActorNotFound) as exc:
                log.info("API search could not open %s: %s", query[:200], exc)
            else:
                accounts += [opened.actor] if opened.actor is not None and kind in (None, "accounts") else []
                posts += [opened.post] if opened.post is not None and kind in (None, "statuses") else []
    elif search_service.is_handle(query.lstrip("@")) or viewer is None:
        if kind in (None, "accounts") and offset == 0:
            actor = await directory.find_account(ctx, query, resolve=resolve)
            if actor is not None:
                accounts.append(actor)
    else:
        try:
            results = await search_service.search(ctx, viewer, query, kind=kind, offset=offset, limit=limit,
                                                  max_id=ids.decode(params.get("max_id")))
        except SearchError as exc:
            raise ApiError(422, f"Validation failed: {exc}") from None
        accounts += results.accounts
        hashtags = [name for name, _ in results.hashtags]
        cards = results.posts.cards
    if posts:
        cards = [await timelines.card_of(ctx, post, viewer) for post in posts]
    followed = set(await followed_tags.followed(ctx, viewer)) if viewer is not None and hashtags else set()
    history = await followed_tags.history(ctx, hashtags[:limit])
    return json_response({
        "accounts": [serializers.account(await directory.account_view(ctx, actor, viewer), ctx.urls)
                     for actor in accounts[:limit]],
        "statuses": await statuses_json(ctx, cards[:limit], viewer),
        "hashtags": [serializers.tag(name, ctx.urls, following=(name in followed) if viewer else None,
                                     history=history[name]) for name in hashtags[:limit]],
    })
