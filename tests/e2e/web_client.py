"""A visitor's HTTP client for the sign-in, sign-up and report forms of a real `fedserver serve`:
its own cookie jar, an optional X-Forwarded-For (as a reverse proxy would add it) and an optional
loopback source address (127.0.0.2 is another peer than 127.0.0.1 on Linux)."""
from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Answer:
    status: int
    location: str | None
    headers: dict[str, str]
    text: str
    seconds: float


class Visitor:
    def __init__(self, base: str, *, forwarded_for: str | None = None, source: str | None = None) -> None:
        self.base = base
        self.forwarded_for = forwarded_for
        connector = aiohttp.TCPConnector(local_addr=(source, 0) if source else None)
        # unsafe=True: aiohttp's default jar ignores cookies from IP-address hosts.
        self.http = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.http.close()

    async def __aenter__(self) -> "Visitor":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _headers(self) -> dict[str, str]:
        return {"X-Forwarded-For": self.forwarded_for} if self.forwarded_for else {}

    async def get(self, path: str) -> Answer:
        return await self._send("GET", path)

    async def _send(self, method: str, path: str, data: dict[str, Any] | None = None) -> Answer:
        started = time.monotonic()
        async with self.http.request(method, self.base + path, data=data, headers=self._headers(),
                                     allow_redirects=False) as resp:
            text = await resp.text()
            return Answer(resp.status, resp.headers.get("Location"), dict(resp.headers), text,
                          time.monotonic() - started)

    async def submit(self, page: str, action: str, data: dict[str, Any]) -> Answer:
        """Open page, take its CSRF token, post data to action (redirects are not followed)."""
        return await self.post_form(action, await self.csrf_token(page), data)

    async def csrf_token(self, page: str) -> str:
        """The CSRF token of the form on page (one token serves many posts of a session's forms)."""
        form = await self.get(page)
        match = CSRF_RE.search(form.text)
        assert match, f"no CSRF token on {page}: {form.status} {form.text[:300]}"
        return html.unescape(match.group(1))

    async def post_form(self, action: str, token: str, data: dict[str, Any]) -> Answer:
        """Post data with this CSRF token to action (redirects are not followed)."""
        return await self._send("POST", action, {"csrf_token": token, **data})

    async def sign_in(self, username: str, password: str, *, next_path: str = "/home") -> Answer:
        return await self.submit("/auth/sign_in", "/auth/sign_in",
                                 {"username": username, "password": password, "next": next_path})

    async def sign_up(self, username: str, password: str) -> Answer:
        return await self.submit("/auth/sign_up", "/auth/sign_up",
                                 {"username": username, "password": password, "password_confirm": password})
