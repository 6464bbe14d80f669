"""Headers that protect pages in the browser: a Content-Security-Policy on every answer, and
`Cache-Control: private, no-store` on pages rendered for a signed-in person."""
from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

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


# A CSP scheme-source (RFC 3986 scheme) and a host-source's host[:port]: nothing that could end a
# directive (";", ",", whitespace) ever reaches the header.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_HOST_PORT = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def form_target_source(uri: str) -> str | None:
    """The CSP source that lets a form submission end at `uri` (browsers check form-action on the
    redirects that follow a submission too): the origin of an http(s) URI, the scheme of an app's
    custom one (com.example.app:/oauth). None for what cannot be expressed safely."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not _SCHEME.fullmatch(scheme or "-") or scheme in ("javascript", "data", "vbscript", "file", "blob"):
        return None
    if scheme in ("http", "https"):
        host = parts.netloc.rpartition("@")[2]
        return f"{scheme}://{host}" if _HOST_PORT.fullmatch(host) else None
    return f"{scheme}:"


def content_security_policy_with_form_targets(scheme: str, uris: list[str]) -> str:
    """The pages' policy, with form-action widened to where these URIs lead: the OAuth Authorize
    form answers with a redirect to the app's registered URI, which 'self' alone would block."""
    sources = sorted({source for uri in uris if (source := form_target_source(uri))})
    policy = content_security_policy(scheme)
    return policy.replace("form-action 'self'", " ".join(["form-action 'self'", *sources]))


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
