"""A person's browser, minus JavaScript: an aiohttp session with a cookie jar that reads pages, scrapes
each form's CSRF token and submits forms the way a browser would."""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from fedserver.services import accounts

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery"


@dataclass
class Page:
    status: int
    url: str
    text: str
    location: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def csrf(self) -> str:
        match = CSRF_RE.search(self.text)
        assert match, f"no CSRF token on {self.url}"
        return html.unescape(match.group(1))

    def links(self) -> list[str]:
        return [html.unescape(href) for href in re.findall(r'href="([^"]+)"', self.text)]

    def link_with_text(self, text: str) -> str:
        for href, inner in re.findall(r'<a [^>]*href="([^"]+)"[^>]*>([^<]*)</a>', self.text):
            if inner.strip() == text:
                return html.unescape(href)
        raise AssertionError(f"no link {text!r} on {self.url}")


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base
        # unsafe=True: the test servers live on 127.0.0.1, and aiohttp's default jar ignores
        # cookies set by IP-address hosts.
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.http.close()

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    async def get(self, path: str, *, follow: bool = True) -> Page:
        async with self.http.get(self._url(path), allow_redirects=follow) as resp:
            return Page(resp.status, str(resp.url), await resp.text(), resp.headers.get("Location"), dict(resp.headers))

    async def post(self, path: str, data: dict[str, Any], *, follow: bool = True) -> Page:
        async with self.http.post(self._url(path), data=data, allow_redirects=follow) as resp:
            return Page(resp.status, str(resp.url), await resp.text(), resp.headers.get("Location"), dict(resp.headers))

    async def submit(self, page_path: str, action: str, data: dict[str, Any], *, follow: bool = True) -> Page:
        """Open page_path, take its CSRF token and post data to action, like pressing a button there."""
        page = await self.get(page_path)
        return await self.post(action, {"csrf_token": page.csrf, **data}, follow=follow)

    async def sign_in(self, username: str, password: str = PASSWORD) -> Page:
        page = await self.submit("/auth/sign_in", "/auth/sign_in",
                                 {"username": username, "password": password, "next": "/home"})
        assert page.status == 200 and page.url.endswith("/home"), (page.status, page.url)
        return page


async def person(instance, username: str, **options: Any) -> Browser:
    """A local account on the instance, signed in through the real form."""
    await accounts.create_account(instance.ctx, username, password=PASSWORD, **options)
    browser = Browser(instance.base)
    await browser.sign_in(username)
    return browser
