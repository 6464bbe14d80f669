"""Public HTML pages: the landing page, local profiles and single local posts with their thread."""
from __future__ import annotations

from aiohttp import web

from fedserver.activitypub.mediatypes import wants_activitypub
from fedserver.context import CTX_KEY, Context
from fedserver.services import audience, timelines
from fedserver.web import crawlers, social
from fedserver.web.common import TEMPLATES_DIR, render, training_choices, viewer_of
from fedserver.web.timeline import compose_values


def _ctx(request: web.Request) -> Context:
    return request.app[CTX_KEY]


async def home(request: web.Request) -> web.Response:
    if viewer_of(request) is not None:
        raise web.HTTPSeeOther("/home")
    ctx = _ctx(request)
    stats = await audience.usage_stats(ctx)
    return await render(request, "public/home.html", stats=stats,
                        crawler=crawlers.page_meta(ctx, False))


async def profile(request: web.Request) -> web.StreamResponse:
    ctx = _ctx(request)
    if "@" in request.match_info["username"]:
        return await social.profile_by_handle(request)
    actor = await timelines.local_actor(ctx, request.match_info["username"])
    if actor is None:
        return await render(request, "public/not_found.html", status=404)
    if wants_activitypub(request.headers.get("Accept")):
        raise web.HTTPFound(actor.uri)
    values = await social.profile_values(request, actor)
    posts = [card.post for card in [*values["pinned"], *values["page"].cards]]
    # The page shows these posts: it may say yes to training only if each of them may be used.
    request[crawlers.ALLOWS_TRAINING] = allows = await crawlers.posts_allow(ctx, actor, posts,
                                                                            choices=training_choices(request))
    return await render(request, "public/profile.html", actor=actor, crawler=crawlers.page_meta(ctx, allows),
                        **values)


async def post_page(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    actor = await timelines.local_actor(ctx, request.match_info["username"])
    raw_id = request.match_info["post_id"]
    post_id = int(raw_id) if raw_id.isdigit() and len(raw_id) < 20 else -1
    post = await timelines.post_by_id(ctx, post_id) if actor else None
    if actor is None or post is None or post.actor_id != actor.id:
        return await render(request, "public/not_found.html", status=404)
    viewer = viewer_of(request)
    if post.is_deleted:
        status = await audience.deleted_post_status(ctx, post, viewer.actor if viewer else None)
        return await render(request, "public/not_found.html", status=status)
    if not await audience.may_see(ctx, post, viewer.actor if viewer else None):
        return await render(request, "public/not_found.html", status=404)
    if wants_activitypub(request.headers.get("Accept")):
        raise web.HTTPFound(post.uri)
    choices = training_choices(request)
    thread = await timelines.thread(ctx, post, viewer.actor if viewer else None, choices=choices)
    others = [*thread.ancestors, *thread.descendants]
    # The page shows the whole thread: it may say yes only if every post on it is the author's own
    # and may be used (a reply by someone else carries that person's choice, not this author's).
    request[crawlers.ALLOWS_TRAINING] = allows = (
        await crawlers.post_allows(ctx, actor, post, choices=choices)
        and all(card.author.id == actor.id for card in others)
        and (not others or await crawlers.posts_allow(ctx, actor, [card.post for card in others], choices=choices)))
    compose = (await compose_values(ctx, viewer, back=request.path, reply_to=thread.focus, choices=choices)
               if viewer else None)
    return await render(request, "public/post.html", actor=actor, post=post, thread=thread, compose=compose,
                        crawler=crawlers.page_meta(ctx, allows))


FAVICON = TEMPLATES_DIR / "static" / "favicon.ico"


async def favicon(request: web.Request) -> web.FileResponse:
    """Browsers ask for /favicon.ico whatever the page links (feed readers and bookmarks too)."""
    return web.FileResponse(FAVICON, headers={"Cache-Control": "public, max-age=604800",
                                              "Content-Type": "image/x-icon"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/@{username}", profile)
    app.router.add_get("/@{username}/{post_id}", post_page)
