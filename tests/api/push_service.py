"""A real push service on loopback, as a phone's (FCM, Mozilla's autopush, an app's relay) would
be: an aiohttp server in its own thread that checks each push's VAPID JWT against the instance's
public key (RFC 8292) and decrypts the body with the subscriber's private key (RFC 8291 aes128gcm,
or Mastodon's legacy aesgcm), so that a test reads the JSON the phone would show.

Each subscriber is a path /push/<name> with its own key pair and auth secret (made here with the
libraries, as an app makes them) and a behaviour: "ok" answers 201, "gone" 410, "fail" 500,
"slow" never answers."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid01, Vapid02

from tests.conftest import bound_socket


def _b64url_decode(text: str) -> bytes:
    text = text.strip().rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _params(header: str) -> dict[str, str]:
    """`a=1;b=2` or `t=..., k=...` into a dict."""
    out = {}
    for part in header.replace(",", ";").split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            out[name] = value
    return out


@dataclass
class Subscriber:
    name: str
    behaviour: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    received: list[dict[str, Any]] = field(default_factory=list)   # decrypted payloads
    requests: list[dict[str, str]] = field(default_factory=list)   # headers of every request
    rejected: list[str] = field(default_factory=list)              # why a request failed a check

    @property
    def public_key_b64(self) -> str:
        """Standard base64, as Mastodon.py sends subscription[keys][p256dh]."""
        raw = self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                         serialization.PublicFormat.UncompressedPoint)
        return base64.b64encode(raw).decode()

    @property
    def public_key_raw(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                          serialization.PublicFormat.UncompressedPoint)

    @property
    def auth_b64url(self) -> str:
        return base64.urlsafe_b64encode(self.auth).rstrip(b"=").decode()


class PushService:
    def __init__(self) -> None:
        # Bound now and served from this socket: a port looked up and closed again could be taken
        # by a test running beside this one before the site binds it.
        self._sock = bound_socket()
        self.port = self._sock.getsockname()[1]
        self.vapid_key = ""  # the instance's public key, set by the test from /api/v2/instance
        self.subscribers: dict[str, Subscriber] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint(self, name: str) -> str:
        return f"{self.origin}/push/{name}"

    def subscriber(self, name: str, behaviour: str = "ok") -> Subscriber:
        sub = Subscriber(name, behaviour, ec.generate_private_key(ec.SECP256R1()), os.urandom(16))
        with self._lock:
            self.subscribers[name] = sub
        return sub

    def received(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.subscribers[name].received)

    def requests_to(self, name: str) -> list[dict[str, str]]:
        with self._lock:
            return list(self.subscribers[name].requests)

    # -- the server ----------------------------------------------------------------------

    def start(self) -> "PushService":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/push/{name}", self._push)
        # A hanging subscriber's handler ends when the caller gives up, and closing waits for none.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    def close(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._sock.close()

    async def _push(self, request: web.Request) -> web.Response:
        sub = self.subscribers.get(request.match_info["name"])
        if sub is None:
            return web.Response(status=404)
        body = await request.read()
        with self._lock:
            sub.requests.append(dict(request.headers))
        if sub.behaviour == "slow":
            await asyncio.sleep(120)
            return web.Response(status=201)
        if sub.behaviour == "gone":
            return web.Response(status=410)
        if sub.behaviour == "fail":
            return web.Response(status=500)
        problem = self._check_vapid(request)
        if problem is None:
            try:
                payload = json.loads(self._decrypt(sub, request, body))
            except Exception as exc:  # noqa: BLE001 - recorded for the test to show
                problem = f"cannot decrypt: {exc!r}"
        if problem is not None:
            with self._lock:
                sub.rejected.append(problem)
            return web.Response(status=401 if "VAPID" in problem else 400, text=problem)
        with self._lock:
            sub.received.append({**payload, "_headers": dict(request.headers)})
        return web.Response(status=201)

    def _check_vapid(self, request: web.Request) -> str | None:
        """RFC 8292: the JWT must be signed by the instance's key, for this origin, not expired."""
        auth = request.headers.get("Authorization", "")
        scheme, _, rest = auth.partition(" ")
        if scheme.lower() == "vapid":
            parts = _params(rest)
            key, token = parts.get("k", ""), parts.get("t", "")
            ok = Vapid02.verify(auth)
        elif scheme == "WebPush":
            key, token = _params(request.headers.get("Crypto-Key", "")).get("p256ecdsa", ""), rest
            ok = Vapid01.verify(key, auth)
        else:
            return f"VAPID: no vapid Authorization ({auth!r})"
        if _b64url_decode(key) != _b64url_decode(self.vapid_key):
            return "VAPID: signed with a key other than the instance's"
        if not ok:
            return "VAPID: bad signature"
        claims = json.loads(_b64url_decode(token.split(".")[1]))
        if claims.get("aud") != self.origin:
            return f"VAPID: aud {claims.get('aud')!r} is not {self.origin}"
        if not (time.time() < claims.get("exp", 0) <= time.time() + 86400):
            return "VAPID: exp not within 24 h"
        return None

    @staticmethod
    def _decrypt(sub: Subscriber, request: web.Request, body: bytes) -> bytes:
        encoding = request.headers.get("Content-Encoding")
        if encoding == "aes128gcm":
            return http_ece.decrypt(body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm")
        if encoding == "aesgcm":
            salt = _b64url_decode(_params(request.headers["Encryption"])["salt"])
            dh = _b64url_decode(_params(request.headers["Crypto-Key"])["dh"])
            return http_ece.decrypt(body, salt=salt, private_key=sub.private_key, dh=dh, auth_secret=sub.auth,
                                    version="aesgcm")
        raise ValueError(f"unknown Content-Encoding {encoding!r}")
