"""A loopback load balancer for tests: a small aiohttp reverse proxy that forwards each request,
round-robin, to one of several web processes of one instance, as the reverse proxy of
docs/scaling.md does in front of two web machines. It passes the method, path, body and headers
through unchanged (Host and the signature headers included: a signature over Host must verify at
the web process), adds X-Forwarded-For and X-Forwarded-Proto, and counts what each web process
answered. The turns are kept per kind of request (inbox POSTs, API and OAuth calls, pages...), so
that every kind a test sends at least twice reaches each of two web processes whatever else
interleaves, and a form and its submission land on different ones."""
from __future__ import annotations

import itertools
import socket
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

# Per-connection headers (RFC 9110 7.6.1) and framing the proxy recomputes for its own connections.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
                         "upgrade", "content-length"})


@dataclass
class Balancer:
    """Start with `await Balancer.start(sock)` (sock bound already, so the instance's domain can
    name its port before anything serves); `upstreams` are the web processes' ports."""
    sock: socket.socket
    upstreams: list[int] = field(default_factory=list)
    # (upstream port, method, path kind) -> answers by status class, e.g. (port, "POST", "inbox", 2)
    served: Counter = field(default_factory=Counter)
    runner: web.AppRunner | None = None
    http: aiohttp.ClientSession | None = None
    _turns: dict[str, itertools.count] = field(default_factory=dict)

    @classmethod
    async def start(cls, sock: socket.socket) -> "Balancer":
        balancer = cls(sock=sock)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", balancer._forward)
        balancer.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await balancer.runner.setup()
        await web.SockSite(balancer.runner, sock).start()
        # auto_decompress=False: a compressed answer goes back to the client as the web process sent it.
        balancer.http = aiohttp.ClientSession(auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                                              timeout=aiohttp.ClientTimeout(total=60))
        return balancer

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
            self.http = None
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def answered_by(self, port: int, method: str | None = None, kind: str | None = None,
                    classes: tuple[int, ...] = (2, 3)) -> int:
        """Requests that web process answered with a status of these classes (2xx and 3xx: served,
        a redirect after a form included)."""
        return sum(count for (up, m, k, s), count in self.served.items()
                   if up == port and (method is None or m == method) and (kind is None or k == kind) and s in classes)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self.http is not None and self.upstreams, "no web process to forward to"
        kind = _kind(request.path)
        turn = self._turns.setdefault(kind, itertools.count())
        port = self.upstreams[next(turn) % len(self.upstreams)]
        headers = CIMultiDict((name, value) for name, value in request.headers.items()
                              if name.lower() not in _HOP_BY_HOP)
        forwarded = [value for value in (request.headers.get("X-Forwarded-For"), request.remote) if value]
        headers["X-Forwarded-For"] = ", ".join(forwarded)
        headers["X-Forwarded-Proto"] = request.scheme
        body = await request.read()
        target = URL(f"http://127.0.0.1:{port}{request.raw_path}", encoded=True)
        try:
            async with self.http.request(request.method, target, headers=headers, data=body or None,
                                         allow_redirects=False) as upstream:
                payload = await upstream.read()
                answer_headers = CIMultiDict((name, value) for name, value in upstream.headers.items()
                                             if name.lower() not in _HOP_BY_HOP)
                status = upstream.status
        except aiohttp.ClientError as exc:
            # What nginx answers when the upstream is gone: the client sees a 502, not a hang.
            self.served[(port, request.method, kind, 5)] += 1
            return web.Response(status=502, text=f"upstream 127.0.0.1:{port} failed: {exc}")
        self.served[(port, request.method, kind, status // 100)] += 1
        return web.Response(status=status, body=payload, headers=answer_headers)


def _kind(path: str) -> str:
    """A coarse name for what a request was for: inbox POSTs, actor documents, API calls, pages."""
    if path.endswith("/inbox"):
        return "inbox"
    if path.startswith("/api/") or path.startswith("/oauth/"):
        return "api"
    if path.startswith("/.well-known/"):
        return "well-known"
    if path.startswith("/users/"):
        return "activitypub"
    return "page"
