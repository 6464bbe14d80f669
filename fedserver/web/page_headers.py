"""Headers that protect pages in the browser: a Content-Security-Policy on every answer, and
`Cache-Control: private, no-store` on pages rendered for a signed-in person."""
from __future__ import annotations

from functools import lru_cache

from aiohttp import web

from fedserver.context import CTX_KEY
from fedserver.web.common import Handler, viewer_of

SIGNED_IN_CACHE_CONTROL = "private, no-store"


@lru_cache(maxsize=4)
def content_security_policy(scheme: str) -> str:
    """No script at all inline (templates carry none: no <script>, no on*= handlers, no style=),
    forms only to this site, no <base> rewriting links, no framing (clickjacking). Pictures and
    media come from this server only (remote ones through the media cache, services/media_cache.py):
    a page that loaded another server's picture would tell that server who reads it."""
    return ("default-src 'self'; script-src 'self'; style-src 'self'; "
            "img-src 'self'; media-src 'self'; object-src 'none'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def _apply(request: web.Request, response: web.StreamResponse) -> None:
    scheme = request.app[CTX_KEY].settings.instance.scheme if CTX_KEY in request.app else "https"
    # setdefault: a handler with a stricter policy of its own (uploaded media: a sandbox) keeps it.
    response.headers.setdefault("Content-Security-Policy", content_security_policy(scheme))
    if (viewer_of(request) is not None and (response.content_type or "").startswith("text/html")
            and "no-store" not in response.headers.get("Cache-Control", "")):
        # Someone's timeline, notifications or settings must not stay in a shared cache, nor in the
        # browser's history cache after they sign out on a shared computer.
        response.headers["Cache-Control"] = SIGNED_IN_CACHE_CONTROL


@web.middleware
async def page_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and errors raised as exceptions are answers too
        _apply(request, exc)
        raise
    _apply(request, response)
    return response
