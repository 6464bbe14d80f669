"""Public HTML pages: the home page, profiles and single posts (the full web interface builds on these)."""
from __future__ import annotations

from pathlib import Path

import jinja2
from aiohttp import web

from fedserver.activitypub.mediatypes import wants_activitypub
from fedserver.context import Context
from fedserver.services import audience
from fedserver.store import actors as actor_store
from fedserver.store import posts as post_store

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "templates"
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                          autoescape=jinja2.select_autoescape(["html"]), enable_async=True)


async def render(template: str, status: int = 200, **values) -> web.Response:
    html = await _env.get_template(template).render_async(**values)
    return web.Response(text=html, content_type="text/html", status=status)


def _ctx(request: web.Request) -> Context:
    return request.app["ctx"]


async def home(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    stats = await audience.usage_stats(ctx)
    return await render("public/home.html", instance=ctx.settings.instance, stats=stats)


async def profile(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    actor = await actor_store.get_local_actor(ctx.db.reader, request.match_info["username"])
    if actor is None or actor.deleted_at:
        return await render("public/not_found.html", status=404, instance=ctx.settings.instance)
    if wants_activitypub(request.headers.get("Accept")):
        raise web.HTTPFound(actor.uri)
    posts = await post_store.list_actor_posts(ctx.db.reader, actor.id, visibilities=("public",), limit=20)
    return await render("public/profile.html", instance=ctx.settings.instance, actor=actor, posts=posts)


async def post_page(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    actor = await actor_store.get_local_actor(ctx.db.reader, request.match_info["username"])
    try:
        post_id = int(request.match_info["post_id"])
    except ValueError:
        post_id = -1
    post = await post_store.get_post(ctx.db.reader, post_id) if actor else None
    if actor is None or post is None or post.actor_id != actor.id:
        return await render("public/not_found.html", status=404, instance=ctx.settings.instance)
    if post.is_deleted:
        return await render("public/not_found.html", status=410, instance=ctx.settings.instance)
    if not await audience.may_see(ctx, post, None):
        return await render("public/not_found.html", status=404, instance=ctx.settings.instance)
    if wants_activitypub(request.headers.get("Accept")):
        raise web.HTTPFound(post.uri)
    return await render("public/post.html", instance=ctx.settings.instance, actor=actor, post=post)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/@{username}", profile)
    app.router.add_get("/@{username}/{post_id}", post_page)
