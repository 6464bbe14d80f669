"""SSRF policy: address classification, URL checks, and the resolver inside aiohttp."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from fedserver.activitypub.netpolicy import (
    BlockedAddressError,
    SafeResolver,
    check_url,
    is_address_allowed,
    parse_networks,
)

BLOCKED_PRIVATE = [
    "127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255",
    "192.168.1.1", "169.254.169.254", "100.64.0.1", "100.127.255.255", "0.1.2.3",
    "192.0.0.8", "192.0.2.1", "198.18.0.1", "198.51.100.7", "203.0.113.9",
    "::1", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "fec0::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "::127.0.0.1",            # IPv4-compatible (deprecated)
    "2002:7f00:1::1",         # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::",       # 6to4 of 169.254.169.254
    "64:ff9b::a00:1",         # NAT64 of 10.0.0.1
    "64:ff9b::7f00:1",        # NAT64 of 127.0.0.1
    "64:ff9b:1::1",           # local-use NAT64
    "2001:db8::1", "2001:0:4136:e378::1", "100::1", "3fff::1",
]
BLOCKED_ALWAYS = [
    "0.0.0.0", "::", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "255.255.255.255", "ff02::1", "ff05::2",
]
ALLOWED = [
    "93.184.215.14", "1.1.1.1", "8.8.8.8", "172.32.0.1", "100.128.0.1",
    "2606:4700:4700::1111", "2a01:4f8::1", "::ffff:93.184.215.14",
    "2002:5db8:d70e::1",      # 6to4 of a public address
    "64:ff9b::808:808",       # NAT64 of 8.8.8.8
]

@pytest.mark.parametrize("ip", BLOCKED_PRIVATE + BLOCKED_ALWAYS)
def test_blocked_by_default(ip: str) -> None:
    assert not is_address_allowed(ip, allow_private=False)


@pytest.mark.parametrize("ip", ALLOWED)
def test_public_allowed(ip: str) -> None:
    assert is_address_allowed(ip, allow_private=False)
    assert is_address_allowed(ip, allow_private=True)


@pytest.mark.parametrize("ip", BLOCKED_PRIVATE)
def test_allow_private_opens_private_ranges(ip: str) -> None:
    assert is_address_allowed(ip, allow_private=True)


@pytest.mark.parametrize("ip", BLOCKED_ALWAYS)
def test_never_allowed(ip: str) -> None:
    assert not is_address_allowed(ip, allow_private=True)


@pytest.mark.parametrize("junk", ["", "localhost", "1.2.3", "::g", "300.1.1.1", "01.2.3.4"])
def test_unparseable_refused(junk: str) -> None:
    assert not is_address_allowed(junk, allow_private=True)


def test_allowed_networks_hole() -> None:
    nets = parse_networks(["127.0.0.1/32", "fd00::/8"])
    assert is_address_allowed("127.0.0.1", False, nets)
    assert is_address_allowed("::ffff:127.0.0.1", False, nets)
    assert is_address_allowed("fd00::5", False, nets)
    assert not is_address_allowed("127.0.0.2", False, nets)
    assert not is_address_allowed("::", False, parse_networks(["::/0"]))


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",                      # http not in default schemes
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "https:///nohost",
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://[::]/",
        "https://0.0.0.0/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:169.254.169.254]/",
        "https://[fe80::1%25eth0]/",
        "https://localhost/",
        "https://LOCALHOST./",
        "https://api.localhost/",
        "https://ⓛocalhost/",                        # IDNA-maps to localhost
        "https://2130706433/",                      # 127.0.0.1 as a number
        "https://0x7f.1/",
        "https://127.1/",
        "https://017700000001/",
        "not a url",
    ],
)
def test_check_url_blocks(url: str) -> None:
    with pytest.raises(BlockedAddressError):
        check_url(url, allow_private=False)


def test_check_url_allows() -> None:
    check_url("https://example.com/users/a", allow_private=False)
    check_url("https://93.184.215.14/", allow_private=False)
    check_url("http://example.com/", False, ("http", "https"))
    check_url("http://127.0.0.1:8080/", True, ("http", "https"))
    check_url("http://localhost:8080/", True, ("http", "https"))
    check_url("http://[::1]:8080/", True, ("http", "https"))
    with pytest.raises(BlockedAddressError):
        check_url("http://[::]:8080/", True, ("http", "https"))
    with pytest.raises(BlockedAddressError):
        check_url("https://0x7f.1/", True)  # never a real host name


class FakeResolver(AbstractResolver):
    """Maps names to fixed addresses and records lookups."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        if host not in self.table:
            raise OSError(f"no such host {host}")
        return [
            {"hostname": host, "host": ip, "port": port,
             "family": socket.AF_INET6 if ":" in ip else socket.AF_INET,
             "proto": 0, "flags": socket.AI_NUMERICHOST}
            for ip in self.table[host]
        ]

    async def close(self) -> None:
        pass


@pytest.mark.asyncio
async def test_safe_resolver_filters() -> None:
    inner = FakeResolver({
        "evil.test": ["127.0.0.1", "10.0.0.1"],
        "mixed.test": ["10.0.0.1", "93.184.215.14", "::1"],
        "meta.test": ["169.254.169.254"],
    })
    r = SafeResolver(False, inner=inner)
    with pytest.raises(BlockedAddressError):
        await r.resolve("evil.test", 443)
    with pytest.raises(BlockedAddressError):
        await r.resolve("meta.test", 443)
    assert [x["host"] for x in await r.resolve("mixed.test", 443)] == ["93.184.215.14"]
    assert len(await SafeResolver(True, inner=inner).resolve("evil.test", 443)) == 2


@pytest.mark.asyncio
async def test_safe_resolver_real_localhost() -> None:
    r = SafeResolver(False)
    with pytest.raises(BlockedAddressError):
        await r.resolve("localhost", 80)
    await r.close()


@pytest_asyncio.fixture
async def server_port() -> AsyncIterator[int]:
    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1]
    await runner.cleanup()


@pytest.mark.asyncio
async def test_aiohttp_skips_resolver_for_ip_literals(server_port: int) -> None:
    """Pins the aiohttp behaviour that makes check_url necessary."""
    inner = FakeResolver({"named.test": ["127.0.0.1"]})
    connector = aiohttp.TCPConnector(resolver=SafeResolver(False, inner=inner))
    async with aiohttp.ClientSession(connector=connector) as session:
        # The literal bypasses the resolver entirely -- and so would bypass SafeResolver.
        async with session.get(f"http://127.0.0.1:{server_port}/") as resp:
            assert resp.status == 200
        assert inner.calls == []
        # A name goes through it; the blocked error surfaces as a connector error.
        with pytest.raises(aiohttp.ClientConnectorError) as info:
            await session.get(f"http://named.test:{server_port}/")
        assert inner.calls == ["named.test"]
        assert isinstance(info.value.os_error, BlockedAddressError)
