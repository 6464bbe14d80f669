"""What every HTML page shares: templates, the signed-in viewer, CSRF protection, flash messages."""
from __future__ import annotations

import asyncio
import hmac
import secrets
from functools import wraps
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import quote, unquote

import jinja2
from aiohttp import web

from fedserver.client_address import request_client_address
from fedserver.context import CTX_KEY, Context
from fedserver.services import auth, instance, timelines
from fedserver.web import filters

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "templates"
SESSION_COOKIE = "fs_session"
CSRF_COOKIE = "fs_csrf"
FLASH_COOKIE = "fs_flash"
# Machine-to-machine endpoints that authenticate by HTTP signature, bearer token or OAuth client
# credentials, not cookies.
CSRF_EXEMPT_PREFIXES = ("/inbox", "/actor/inbox", "/api/", "/oauth/token", "/oauth/revoke")

VIEWER_KEY = web.RequestKey("viewer", object)  # auth.Viewer | None
ANON_CSRF_KEY = web.RequestKey("anon_csrf", str)
CHOICES_KEY = web.RequestKey("training_choices", timelines.TrainingChoices)

# Pages render synchronously: handlers read every value before rendering, so async mode bought
# nothing and made each output chunk of each nested template (base, page, thread, every post card)
# an awaited generator step, a third of the rendering time (bench/pages.py's signed-in thread of 49
# posts: 3.8 -> 2.6 ms). Templates are not reloaded while the server runs (Flask's default outside
# debug mode): checking cost a stat() per included template, two per post card.
env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                         autoescape=jinja2.select_autoescape(["html"]), auto_reload=False)
filters.install(env)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def ctx_of(request: web.Request) -> Context:
    return request.app[CTX_KEY]


def viewer_of(request: web.Request) -> auth.Viewer | None:
    return request.get(VIEWER_KEY)


def training_choices(request: web.Request) -> timelines.TrainingChoices:
    """This request's training choices: the cards, the compose form and the crawler signals of one
    page share each person's choice, read once."""
    choices = request.get(CHOICES_KEY)
    if choices is None:
        choices = request[CHOICES_KEY] = timelines.TrainingChoices(ctx_of(request))
    return choices


def csrf_token(request: web.Request) -> str:
    viewer = viewer_of(request)
    if viewer is not None:
        return viewer.csrf_token
    token = request.get(ANON_CSRF_KEY) or request.cookies.get(CSRF_COOKIE)
    if not token:
        token = secrets.token_urlsafe(24)
    request[ANON_CSRF_KEY] = token
    return token


async def render(request: web.Request, template: str, *, status: int = 200, **values: Any) -> web.Response:
    ctx = ctx_of(request)
    flash = unquote(request.cookies.get(FLASH_COOKIE, ""))
    viewer = viewer_of(request)
    # Both reads queued at once: one wake-up of the loop, not two (timelines.cards_for says more).
    info, unread = await asyncio.gather(
        instance.instance_info(ctx),
        timelines.unread_notifications(ctx, viewer.actor if viewer else None))
    navigation = {"unread": unread, "registrations": info.registrations}
    html = env.get_template(template).render(
        request=request, viewer=viewer, csrf_token=csrf_token(request), instance=info,
        flash=flash, base_url=ctx.urls.base, navigation=navigation, now=ctx.clock.now(), **values)
    response = web.Response(text=html, content_type="text/html", status=status)
    if flash:
        response.del_cookie(FLASH_COOKIE, path="/")
    return response


def redirect(location: str, *, flash: str | None = None) -> web.Response:
    """303 See Other to location (after a form post), optionally with a one-time flash message."""
    response = web.Response(status=303, headers={"Location": location})
    if flash:
        response.set_cookie(FLASH_COOKIE, quote(flash)[:500], path="/", httponly=True, samesite="Lax", max_age=60)
    return response


def require_viewer(handler: Handler) -> Handler:
    @wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        if viewer_of(request) is None:
            raise web.HTTPSeeOther(f"/auth/sign_in?next={quote(request.path_qs)}")
        return await handler(request)
    return wrapper


def require_admin(handler: Handler) -> Handler:
    @wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        viewer = viewer_of(request)
        if viewer is None:
            raise web.HTTPSeeOther(f"/auth/sign_in?next={quote(request.path_qs)}")
        if not viewer.is_admin:
            return await render(request, "error.html", status=403, message="This page is for administrators.")
        return await handler(request)
    return wrapper


def _secure(request: web.Request) -> bool:
    return ctx_of(request).settings.instance.scheme == "https"


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, path="/", httponly=True, samesite="Lax", secure=_secure(request),
                        max_age=auth.SESSION_DAYS * 86400)


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.cookies.get(SESSION_COOKIE)
    if token and CTX_KEY in request.app:
        request[VIEWER_KEY] = await auth.viewer_for(ctx_of(request), token)
    response = await handler(request)
    anon = request.get(ANON_CSRF_KEY)
    if anon and request.get(VIEWER_KEY) is None and request.cookies.get(CSRF_COOKIE) != anon:
        response.set_cookie(CSRF_COOKIE, anon, path="/", httponly=True, samesite="Lax", secure=_secure(request))
    return response


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every state-changing form must carry the token bound to the session (or, before sign-in, to
    the anonymous CSRF cookie). SameSite=Lax cookies are a second line, not the only one."""
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and not _exempt(request.path):
        try:
            form = await request.post()
        except ValueError:  # not UTF-8 (UnicodeDecodeError) or a broken multipart body: a 400, not a 500
            return await render(request, "error.html", status=400, message="This form could not be read.")
        sent = form.get("csrf_token")
        viewer = viewer_of(request)
        expected = viewer.csrf_token if viewer is not None else request.cookies.get(CSRF_COOKIE)
        if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
            return await render(request, "error.html", status=403,
                                message="This form has expired or did not come from this site. Go back, "
                                        "reload the page and try again.")
    return await handler(request)


def _exempt(path: str) -> bool:
    return path.startswith(CSRF_EXEMPT_PREFIXES) or (path.startswith("/users/") and path.endswith("/inbox"))


def client_address(request: web.Request) -> str:
    """The client's address: the TCP peer, or behind [server] trusted_proxies the address they
    received the request from (fedserver/client_address.py). Use it for logging and every limit."""
    return request_client_address(request)
