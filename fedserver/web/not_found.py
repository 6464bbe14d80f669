"""One styled "not found" page for every route: what the router, the static files and handlers that
raise 404 answer to a browser, instead of aiohttp's bare "404: Not Found" text."""
from __future__ import annotations

from aiohttp import web

from fedserver.context import CTX_KEY
from fedserver.web.common import TEMPLATES_DIR, Handler, render

STATIC_DIR = (TEMPLATES_DIR / "static").resolve()

# Machine clients get the plain answer they expect (JSON APIs, WebFinger, NodeInfo).
_MACHINE_PREFIXES = ("/api/", "/.well-known/", "/nodeinfo")


def _wants_page(request: web.Request) -> bool:
    if request.path.startswith(_MACHINE_PREFIXES) or CTX_KEY not in request.app:
        return False
    accept = request.headers.get("Accept", "")
    return "json" not in accept or "text/html" in accept


def _missing_static_file(path: str) -> bool:
    """aiohttp's static route finds a file missing only while sending the answer, past every
    middleware (an octet-stream 404 that browsers download): so look first."""
    if not path.startswith("/static/"):
        return False
    target = (STATIC_DIR / path.removeprefix("/static/")).resolve()
    return not target.is_relative_to(STATIC_DIR) or not target.is_file()


@web.middleware
async def styled_not_found(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _missing_static_file(request.path) and request.method in ("GET", "HEAD") and _wants_page(request):
        return await render(request, "public/not_found.html", status=404)
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if not _wants_page(request) or request.method not in ("GET", "HEAD"):
            raise
        return await render(request, "public/not_found.html", status=404)
