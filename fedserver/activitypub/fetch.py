"""Outbound HTTP for federation: fetching AS2 objects, JSON discovery documents, POSTs.

One :class:`RemoteFetcher` owns one ``aiohttp.ClientSession`` (keep-alive pool, per-host
connection cap -- federation.md §5.4) whose connector resolves through
:class:`~fedserver.activitypub.netpolicy.SafeResolver`.  Every request target, including
each redirect hop, also goes through :func:`~fedserver.activitypub.netpolicy.check_url`
because aiohttp never asks the resolver about IP literals.

Object fetches follow Mastodon's post-CVE-2024-23832 rules (§2.1, §4.11, §7.1):
status 200 only, AS2 content type only, ``@context`` must name AS2, no redirects, and
the document's ``id`` must equal the URL that was requested -- a document may not vouch
for an id it was not served from.  Bodies are capped (Content-Length pre-check plus a
streaming cap, like Mastodon's 1 MB ``body_with_limit``) and the whole exchange runs
under one deadline, so slow-loris peers cannot pin a worker.

Object fetches are also budgeted per origin (:class:`_Origins`): a few at a time per
host:port, failures remembered for ``failure_ttl`` seconds (the same URL is not asked again
meanwhile; a key or post referenced by many activities costs one timeout, not one each), and
an origin that fails several fetches in a row is paused for as long, so one dead or hanging
server costs a bounded share of our time however many references to it arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from .mediatypes import AS2_ACCEPT, AS_CONTEXT, is_activitypub_content_type
from .netpolicy import BlockedAddressError, SafeResolver, check_url, parse_networks

__all__ = [
    "FetchBlocked",
    "FetchConnectionError",
    "FetchError",
    "FetchGone",
    "FetchHTTPError",
    "FetchInvalid",
    "FetchNotFound",
    "FetchRedirect",
    "FetchTimeout",
    "FetchUnavailable",
    "RemoteFetcher",
    "fetch_origin",
    "Signer",
    "httpsig_signer",
]

log = logging.getLogger(__name__)

#: ``signer(method, url, body, accept) -> headers``; may also return an awaitable.
Signer = Callable[
    [str, str, bytes | None, str | None],
    Mapping[str, str] | Awaitable[Mapping[str, str]],
]

_T = TypeVar("_T")
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_MAX_BODY = 1024 * 1024


class FetchError(Exception):
    """Base class for every failure of :class:`RemoteFetcher`.

    str(exc) is the technical detail, for logs; `plain` says what happened in a sentence a person
    can read on a page or in a terminal (no exception text such as aiohttp's "ssl:default")."""

    plain_text = "the other server could not be asked"

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url

    @property
    def plain(self) -> str:
        return self.plain_text


class FetchHTTPError(FetchError):
    """Unexpected HTTP status (including any 3xx on an AP object fetch)."""

    def __init__(self, status: int, message: str | None = None, *, url: str | None = None) -> None:
        super().__init__(message or f"HTTP {status}", url=url)
        self.status = status

    @property
    def plain(self) -> str:
        if self.status == 404:
            return "it does not exist on its server"
        if self.status == 410:
            return "it was deleted on its server"
        if self.status in (401, 403):
            return "its server does not allow this server to see it"
        if self.status == 429:
            return "its server is busy; try again in a few minutes"
        return f"its server answered with an error (HTTP {self.status}); try again later"


class FetchNotFound(FetchHTTPError):
    """404."""

    def __init__(self, message: str | None = None, *, url: str | None = None) -> None:
        super().__init__(404, message, url=url)


class FetchGone(FetchHTTPError):
    """410: the remote object/actor was deleted (§5.3)."""

    def __init__(self, message: str | None = None, *, url: str | None = None) -> None:
        super().__init__(410, message, url=url)


class FetchRedirect(FetchHTTPError):
    """A 3xx with a Location: an object fetch never follows it by itself (the id must equal the
    URL asked), but a caller resolving a URL typed by a person may ask the target (follow_id)."""

    def __init__(self, status: int, location: str, *, url: str | None = None) -> None:
        super().__init__(status, f"HTTP {status} redirect", url=url)
        self.location = location


class FetchBlocked(FetchError):
    """The target is forbidden by the network policy (SSRF protection)."""

    plain_text = "that address is not one this server may contact (a local or private network address)"


class FetchTimeout(FetchError):
    """The overall deadline expired (connect, headers or body)."""

    plain_text = "its server did not answer in time; try again later"


class FetchInvalid(FetchError):
    """Response unusable: wrong content type, bad JSON, id mismatch, too large, ..."""

    plain_text = "its server sent something that is not a readable fediverse document"


class FetchConnectionError(FetchError):
    """Connection refused/reset, DNS failure, TLS error, truncated body."""

    plain_text = "its server could not be reached (it may be down, or the address may be wrong)"


class FetchUnavailable(FetchConnectionError):
    """Not asked: the origin failed several fetches in a row and is paused, or all its fetch
    slots stayed busy for the whole deadline."""

    plain_text = "its server is not answering at the moment; try again later"


def fetch_origin(url: str) -> str | None:
    """``host:port`` of an http(s) URL as the fetcher budgets it (the port is part of it: two
    servers on one address are two origins), or None."""
    try:
        u = URL(url)
    except (ValueError, TypeError):
        return None
    return _origin_of(u) if u.scheme in ("http", "https") and u.host else None


def _origin_of(u: URL) -> str:
    return f"{(u.host or '').lower()}:{u.port}"


# An origin whose fetches fail (timeout, connection, 5xx, 429) this many times in a row is paused.
ORIGIN_FAILURES_TO_PAUSE = 3
# Remembered failed URLs and origins at most; the oldest are forgotten first (a cache that may be lost).
FAILURE_CACHE_SIZE = 10_000


def _origin_failed(exc: FetchError) -> bool:
    """Whether the failure says the origin is down or overloaded (not that it answered no)."""
    if isinstance(exc, FetchHTTPError):
        return exc.status >= 500 or exc.status == 429
    return isinstance(exc, (FetchTimeout, FetchConnectionError))


def _again(failure: FetchError, note: str) -> FetchError:
    """A fresh exception of the same kind as a remembered failure: callers branch on the kind
    (a remembered 410 still marks an actor gone)."""
    again = Exception.__new__(type(failure))
    again.__dict__.update(failure.__dict__)
    again.args = (f"{failure.args[0] if failure.args else failure} ({note})",)
    return again


class _Origin:
    __slots__ = ("users", "busy", "slots_free", "failures", "paused_until")

    def __init__(self) -> None:
        self.users = 0  # fetches waiting for or holding a slot
        self.busy = 0  # slots held
        self.slots_free = asyncio.Event()
        self.failures = 0  # consecutive
        self.paused_until = 0.0  # time.monotonic()


class _Origins:
    """Per-origin fetch slots, consecutive failures and pauses, and failed URLs (in memory)."""

    def __init__(self, per_origin: int, failure_ttl: float) -> None:
        self.per_origin = max(1, per_origin)
        self.failure_ttl = failure_ttl
        self.origins: dict[str, _Origin] = {}
        # url -> (expiry, failure), oldest first
        self.failed: OrderedDict[str, tuple[float, FetchError]] = OrderedDict()

    def remembered(self, url: str) -> FetchError | None:
        entry = self.failed.get(url)
        if entry is None:
            return None
        expiry, failure = entry
        left = expiry - time.monotonic()
        if left <= 0:
            del self.failed[url]  # expired: the next fetch goes to the network again
            return None
        return _again(failure, f"failed a moment ago; not asked again for {left:.0f} s")

    def refuse_early(self, key: str, origin: str, url: str, *, remember: bool = True) -> None:
        """Raise, without asking the network, when this URL failed a moment ago (where failures
        are remembered) or its origin is paused."""
        remembered = self.remembered(key) if remember else None
        if remembered is not None:
            raise remembered
        paused = self.paused_for(origin)
        if paused > 0:
            raise FetchUnavailable(f"{origin} failed {ORIGIN_FAILURES_TO_PAUSE} fetches in a row; paused for "
                                   f"another {paused:.0f} s", url=url)

    def paused_for(self, origin: str) -> float:
        state = self.origins.get(origin)
        return 0.0 if state is None else max(0.0, state.paused_until - time.monotonic())

    @contextlib.asynccontextmanager
    async def slot(self, origin: str, deadline: float) -> AsyncIterator[_Origin]:
        state = self.origins.get(origin)
        if state is None:
            state = self.origins[origin] = _Origin()
        state.users += 1
        try:
            if state.busy >= self.per_origin:
                try:
                    # One deadline for the whole wait: every freed slot wakes all waiters, and only
                    # one of them gets it.
                    async with asyncio.timeout(deadline):
                        while state.busy >= self.per_origin:
                            state.slots_free.clear()
                            await state.slots_free.wait()
                except TimeoutError:
                    raise FetchUnavailable(f"all {self.per_origin} fetch slots for {origin} stayed busy for "
                                           f"{deadline} s") from None
            state.busy += 1
            try:
                yield state
            finally:
                state.busy -= 1
                state.slots_free.set()
        finally:
            state.users -= 1
            if state.users == 0 and state.failures == 0:
                del self.origins[origin]

    def outcome(self, url: str, origin: str, state: _Origin, failure: FetchError | None, *,
                remember: bool = True) -> None:
        if failure is None or not _origin_failed(failure):
            state.failures = 0  # it answered
        else:
            state.failures += 1
            if state.failures >= ORIGIN_FAILURES_TO_PAUSE and self.failure_ttl > 0:
                state.paused_until = time.monotonic() + self.failure_ttl
                log.info("fetch: pausing %s for %.0f s after %d failures in a row (last: %s)",
                         origin, self.failure_ttl, state.failures, failure)
        if failure is not None and remember and self.failure_ttl > 0:
            self.failed[url] = (time.monotonic() + self.failure_ttl, failure)
            self.failed.move_to_end(url)
            while len(self.failed) > FAILURE_CACHE_SIZE:
                self.failed.popitem(last=False)
        if len(self.origins) > FAILURE_CACHE_SIZE:
            now = time.monotonic()
            for key in [k for k, o in self.origins.items() if o.users == 0 and o.paused_until <= now]:
                del self.origins[key]


def _redirect_target(resp: aiohttp.ClientResponse, url: str) -> URL:
    """Where a 3xx answer points (fragment dropped), for the caller to check against the policy."""
    location = resp.headers.get(aiohttp.hdrs.LOCATION)
    if not location:
        raise FetchHTTPError(resp.status, "redirect without Location", url=url)
    try:
        return resp.url.join(URL(location)).with_fragment(None)
    except ValueError:
        raise FetchInvalid("bad redirect Location", url=url) from None


def _strip_fragment(url: str) -> str:
    # Fragments never reach the server (keyIds like ``actor#main-key``), so the fetched
    # document can only be expected to carry the fragment-less id.
    return url.split("#", 1)[0]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _parse_json_object(body: bytes, url: str) -> dict[str, Any]:
    if not body:
        raise FetchInvalid("empty body", url=url)
    try:
        doc = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # RecursionError: deeply nested bombs
        raise FetchInvalid(f"invalid JSON: {exc.__class__.__name__}", url=url) from None
    if not isinstance(doc, dict):
        raise FetchInvalid("JSON document is not an object", url=url)
    return doc


def _has_as_context(doc: Mapping[str, Any]) -> bool:
    # Mastodon's supported_context?: equal to, or an array containing, the AS2 IRI (§2.2).
    ctx = doc.get("@context")
    if isinstance(ctx, list):
        return AS_CONTEXT in ctx
    return ctx == AS_CONTEXT


def httpsig_signer(key_id: str, private_key_pem: str) -> Signer:
    """Adapt ``fedserver.activitypub.httpsig`` draft-cavage signing to the :data:`Signer` shape.

    The RSA signature (~0.3 ms of CPU) is made on a thread: cryptography releases the GIL while
    signing, so it runs beside the event loop, which a wave of first contacts (one signed key
    fetch each) otherwise spent over a third of its time on (bench/RESULTS.md). The import is lazy
    so this module (and its tests) do not depend on httpsig.
    """

    async def sign(method: str, url: str, body: bytes | None, accept: str | None) -> Mapping[str, str]:
        from .httpsig import prepare_signed_request, sign_message
        from .keys import load_private_key

        key = load_private_key(private_key_pem)
        unsigned = prepare_signed_request(method, url, body=body, key_id=key_id, key=key, accept=accept)
        return unsigned.with_signature(await asyncio.to_thread(sign_message, key, unsigned.message))

    return sign


class RemoteFetcher:
    """Policy-enforcing HTTP client for federation traffic.

    ``allow_private``/``allowed_private_networks``: see :mod:`.netpolicy` (tests on
    127.0.0.1 need ``allow_private=True``); ``allow_http``: permit plain http (Mastodon
    only uses https, §1.1); ``timeout``: deadline for a whole call in seconds, connect
    phase additionally capped at ``connect_timeout``; ``max_body``: response size cap
    after decompression; ``fetches_per_origin``: object fetches in flight per host:port
    (a fetch waits at most ``timeout`` for a slot); ``failure_ttl``: seconds a failed object
    fetch is remembered (and a failing origin paused), 0 for never.  Create and use it
    inside a running event loop.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        allow_http: bool = False,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_body: int = DEFAULT_MAX_BODY,
        user_agent: str = "fedserver/0.1",
        signer: Signer | None = None,
        limit: int = 100,
        limit_per_host: int = 8,
        max_redirects: int = 3,
        allowed_private_networks: tuple[str, ...] | list[str] = (),
        resolver: AbstractResolver | None = None,
        fetches_per_origin: int = 4,
        failure_ttl: float = 0.0,
    ) -> None:
        self.allow_private = allow_private
        self.allow_http = allow_http
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_body = max_body
        self.user_agent = user_agent
        self.signer = signer
        self.max_redirects = max_redirects
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._allowed_networks = parse_networks(allowed_private_networks)
        self._schemes: tuple[str, ...] = ("http", "https") if allow_http else ("https",)
        self._inner_resolver = resolver  # only for tests / custom DNS
        self._resolver: SafeResolver | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._origins = _Origins(fetches_per_origin, failure_ttl)
        # Media has budgets of its own: a host slow to send pictures must not hold the slots its
        # key and object fetches (signature checks) need.
        self._media_origins = _Origins(fetches_per_origin, failure_ttl)

    def origin_paused_for(self, url: str) -> float:
        """Seconds until the origin of ``url`` is asked again (0: not paused)."""
        origin = fetch_origin(url)
        return 0.0 if origin is None else self._origins.paused_for(origin)

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> RemoteFetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("RemoteFetcher is closed")
        if self._session is None:
            self._resolver = SafeResolver(
                self.allow_private,
                allowed_networks=self._allowed_networks,
                inner=self._inner_resolver,
            )
            connector = aiohttp.TCPConnector(
                resolver=self._resolver,
                limit=self._limit,
                limit_per_host=self._limit_per_host,
                keepalive_timeout=30.0,  # Mastodon's pool idle timeout (§5.4)
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.user_agent},
                timeout=aiohttp.ClientTimeout(
                    total=self.timeout, sock_connect=min(self.connect_timeout, self.timeout)
                ),
                # No env proxies: a proxy would resolve names itself, bypassing SafeResolver.
                trust_env=False,
                # Peers' cookies must not leak between hosts or requests.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    # -- helpers ---------------------------------------------------------------------

    def _checked(self, url: str | URL, *, encoded: bool = False) -> URL:
        """Policy-check ``url``; return the URL object to request.

        ``encoded=True`` returns the URL exactly as given (no re-quoting), for requests
        the caller already signed over the raw path; both spellings are checked.
        """
        try:
            u = url if isinstance(url, URL) else URL(url)
            check_url(u, self.allow_private, self._schemes, allowed_networks=self._allowed_networks)
            if encoded and not isinstance(url, URL):
                u = URL(url, encoded=True)
                check_url(
                    u, self.allow_private, self._schemes, allowed_networks=self._allowed_networks
                )
        except BlockedAddressError as exc:
            raise FetchBlocked(str(exc), url=str(url)) from None
        except ValueError as exc:
            raise FetchBlocked(f"invalid URL: {exc}", url=str(url)) from None
        return u

    async def _sign(
        self, method: str, url: str, body: bytes | None, accept: str | None
    ) -> dict[str, str]:
        if self.signer is None:
            return {}
        result = self.signer(method, url, body, accept)
        if inspect.isawaitable(result):
            result = await result
        return dict(result)

    async def _guard(self, url: str, fn: Callable[[], Awaitable[_T]], timeout: float | None = None) -> _T:
        """Run ``fn`` under the deadline (``timeout``, else the fetcher's) and translate transport errors."""
        deadline = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(deadline):
                return await fn()
        except FetchError:
            raise
        except TimeoutError:  # asyncio.timeout and aiohttp's ServerTimeoutError alike
            raise FetchTimeout(f"timed out after {deadline}s", url=url) from None
        except BlockedAddressError as exc:
            raise FetchBlocked(str(exc), url=url) from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, BlockedAddressError) or isinstance(
                exc.__cause__, BlockedAddressError
            ):
                raise FetchBlocked(str(exc.os_error), url=url) from None
            raise FetchConnectionError(f"cannot connect: {exc}", url=url) from exc
        except aiohttp.InvalidURL as exc:
            raise FetchBlocked(f"invalid URL: {exc}", url=url) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise FetchConnectionError(f"{exc.__class__.__name__}: {exc}", url=url) from exc

    def _raise_for_status(self, resp: aiohttp.ClientResponse, url: str) -> None:
        if resp.status == 200:
            return
        if resp.status == 404:
            raise FetchNotFound(url=url)
        if resp.status == 410:
            raise FetchGone(url=url)
        location = resp.headers.get(aiohttp.hdrs.LOCATION)
        if resp.status in _REDIRECT_STATUSES and location:
            try:
                target = str(resp.url.join(URL(location)).with_fragment(None))
            except ValueError:
                raise FetchInvalid("bad redirect Location", url=url) from None
            raise FetchRedirect(resp.status, target, url=url)
        raise FetchHTTPError(resp.status, url=url)

    async def _read_capped(self, resp: aiohttp.ClientResponse, url: str) -> bytes:
        length = resp.content_length
        if length is not None and length > self.max_body:
            raise FetchInvalid(f"Content-Length {length} exceeds {self.max_body}", url=url)
        buf = bytearray()
        # Content-Length can be absent (chunked) or lie about decompressed size.
        async for chunk in resp.content.iter_chunked(64 * 1024):
            buf += chunk
            if len(buf) > self.max_body:
                raise FetchInvalid(f"body exceeds {self.max_body} bytes", url=url)
        return bytes(buf)

    async def _drain(self, resp: aiohttp.ClientResponse) -> None:
        read = 0
        async for chunk in resp.content.iter_chunked(64 * 1024):
            read += len(chunk)
            if read > self.max_body:
                resp.close()  # drop the connection rather than read an endless body
                return

    # -- public API --------------------------------------------------------------------

    async def fetch_object(
        self, url: str, *, expected_id: str | None = None, follow_id: bool = False
    ) -> dict[str, Any]:
        """GET an ActivityPub document; its ``id`` must equal ``url`` (minus fragment).

        ``follow_id=True`` implements Mastodon's "id not known in advance" path (§4.11):
        when the served ``id`` differs, fetch once more from that id and require an exact
        match there.  ``expected_id`` (fragment ignored) additionally pins the final id.
        With ``follow_id`` one redirect is followed too (a profile or post page that sends
        ActivityPub clients to the object's id, as fedserver's /@user/ID does): the target
        is checked like any URL and must serve a document whose id is its own URL (or whose
        id is then fetched as above), so a redirect vouches for nothing.
        """
        target = _strip_fragment(url)
        try:
            doc = await self._fetch_ap(target)
        except FetchRedirect as exc:
            if not follow_id:
                raise
            target = exc.location
            doc = await self._fetch_ap(target)
        doc_id = doc.get("id")
        if doc_id != target:
            if not (follow_id and isinstance(doc_id, str) and "#" not in doc_id):
                raise FetchInvalid(f"document id {doc_id!r} does not match URL", url=target)
            doc = await self._fetch_ap(doc_id)
            if doc.get("id") != doc_id:
                raise FetchInvalid("document id does not match its own id URL", url=doc_id)
        if expected_id is not None and doc["id"] != _strip_fragment(expected_id):
            raise FetchInvalid(f"document id {doc['id']!r} is not the expected id", url=target)
        return doc

    async def _fetch_ap(self, url: str) -> dict[str, Any]:
        u = self._checked(url)
        return await self._budgeted(self._origins, u, url, lambda: self._fetch_ap_now(u, url), deadline=self.timeout)

    async def _budgeted(self, origins: _Origins, u: URL, url: str, fetch: Callable[[], Awaitable[_T]], *,
                        deadline: float, remember: bool = True) -> _T:
        """Every GET's one way to the network: refused early while the URL's failure is remembered
        or its origin paused, run in one of the origin's slots, its outcome counted towards a pause
        and (remember=True) remembered for the URL."""
        key, origin = str(u), _origin_of(u)
        origins.refuse_early(key, origin, url, remember=remember)
        async with origins.slot(origin, deadline) as state:
            # While this waited for a slot, the same URL may have failed or its origin been paused.
            origins.refuse_early(key, origin, url, remember=remember)
            try:
                result = await fetch()
            except FetchBlocked:
                raise
            except FetchError as exc:
                origins.outcome(key, origin, state, exc, remember=remember)
                raise
            origins.outcome(key, origin, state, None, remember=remember)
            return result

    async def _fetch_ap_now(self, u: URL, url: str) -> dict[str, Any]:
        session = self._get_session()
        headers = {"Accept": AS2_ACCEPT}
        # Sign the yarl-normalised spelling: it is byte-for-byte what aiohttp sends.
        headers.update(await self._sign("GET", str(u), None, AS2_ACCEPT))

        async def run() -> bytes:
            # No redirects: the id must equal the requested URL anyway (§2.1).
            async with session.get(u, headers=headers, allow_redirects=False) as resp:
                self._raise_for_status(resp, url)
                ctype = resp.headers.get(aiohttp.hdrs.CONTENT_TYPE)
                if not is_activitypub_content_type(ctype):
                    raise FetchInvalid(f"not an ActivityPub content type: {ctype!r}", url=url)
                return await self._read_capped(resp, url)

        body = await self._guard(url, run)
        doc = _parse_json_object(body, url)
        if not _has_as_context(doc):
            raise FetchInvalid("@context does not include ActivityStreams", url=url)
        return doc

    async def fetch_media(self, url: str, *, max_bytes: int, timeout: float | None = None) -> bytes:
        """GET a remote picture's bytes for the media cache; unsigned (Mastodon fetches media
        unsigned too, and a media host need not be an ActivityPub server).

        The same rules as object fetches where they apply: the network policy on every hop (up
        to ``max_redirects``: media often sits behind a CDN that redirects), one deadline for the
        whole exchange (``timeout``, else the fetcher's), a body cap (``max_bytes``, checked on
        Content-Length and while streaming), per-origin slots, remembered failures and paused
        origins (budgets apart from object fetches'). The Content-Type is not looked at: the
        caller decides the type from the bytes themselves (a server may call anything image/png)."""
        deadline = self.timeout if timeout is None else timeout
        u = self._checked(url)
        session = self._get_session()

        async def run() -> bytes:
            current = u
            for _hop in range(self.max_redirects + 1):
                async with session.get(current, headers={"Accept": "image/*"}, allow_redirects=False,
                                       timeout=aiohttp.ClientTimeout(total=deadline)) as resp:
                    if resp.status in _REDIRECT_STATUSES:
                        current = self._checked(_redirect_target(resp, url))
                        continue
                    self._raise_for_status(resp, str(current))
                    return await self._read_limited(resp, str(current), max_bytes)
            raise FetchHTTPError(300, "too many redirects", url=url)

        return await self._budgeted(self._media_origins, u, url, lambda: self._guard(url, run, deadline),
                                    deadline=deadline)

    async def _read_limited(self, resp: aiohttp.ClientResponse, url: str, limit: int) -> bytes:
        length = resp.content_length
        if length is not None and length > limit:
            raise FetchInvalid(f"Content-Length {length} exceeds {limit}", url=url)
        chunks: list[bytes] = []
        size = 0
        # Whatever has arrived, in one piece per wake-up (a 2 MB picture is a few dozen, not 32 of 64 KB).
        async for chunk in resp.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise FetchInvalid(f"body exceeds {limit} bytes", url=url)
            chunks.append(chunk)
        return b"".join(chunks)

    async def get_json(self, url: str, accept: str = "application/json") -> dict[str, Any]:
        """GET a plain JSON object (WebFinger JRD, NodeInfo); unsigned.

        Follows up to ``max_redirects`` redirects, re-checking every hop against the
        network policy (https->http downgrades included).  Content type is not checked:
        peers serve JRD as application/json, application/jrd+json or worse.
        """
        return _parse_json_object(await self.get_body(url, accept), url)

    async def get_body(self, url: str, accept: str) -> bytes:
        """GET any document (a web page for rel=me verification), unsigned, as get_json does:
        redirects re-checked against the policy, at most ``max_body`` bytes, within the timeout."""
        first = self._checked(url)
        session = self._get_session()

        async def run() -> bytes:
            current = first
            status = 0
            for _hop in range(self.max_redirects + 1):
                async with session.get(
                    current, headers={"Accept": accept}, allow_redirects=False
                ) as resp:
                    status = resp.status
                    if status in _REDIRECT_STATUSES:
                        current = self._checked(_redirect_target(resp, url))
                        continue
                    self._raise_for_status(resp, str(current))
                    return await self._read_capped(resp, str(current))
            raise FetchHTTPError(status, "too many redirects", url=url)

        # WebFinger, NodeInfo and rel=me pages go to the same origins as actor fetches: the same
        # slots and pause, so addresses on a server that never answers (an import of blocked
        # accounts, say) cost a few timeouts, not one each. An answer (404, 410) is not remembered
        # for the URL: an account looked up before it exists must be found once it does.
        return await self._budgeted(self._origins, first, url, lambda: self._guard(url, run),
                                    deadline=self.timeout, remember=False)

    async def post(self, url: str, body: bytes, *, headers: Mapping[str, str]) -> int:
        """POST ``body`` (already signed by the caller via ``headers``); return the status.

        Redirects are not followed (the signature covers the request target).  At most
        ``max_body`` bytes of the response are read and discarded.
        """
        u = self._checked(url, encoded=True)  # send the path the caller signed, unchanged
        session = self._get_session()

        async def run() -> int:
            async with session.post(
                u, data=body, headers=dict(headers), allow_redirects=False
            ) as resp:
                await self._drain(resp)
                return resp.status

        status = await self._guard(url, run)
        log.debug("POST %s -> %s", u.with_query(None), status)
        return status
