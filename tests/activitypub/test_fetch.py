"""RemoteFetcher against real aiohttp servers on 127.0.0.1 (no other network)."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from fedserver.activitypub.fetch import (
    FetchBlocked,
    FetchConnectionError,
    FetchGone,
    FetchHTTPError,
    FetchInvalid,
    FetchNotFound,
    FetchTimeout,
    RemoteFetcher,
)
from fedserver.activitypub.mediatypes import AS2_ACCEPT

AS = "https://www.w3.org/ns/activitystreams"
AP_JSON = "application/activity+json"
MAX_BODY = 4096


@dataclass
class Server:
    base: str
    port: int
    seen: dict[str, Any] = field(default_factory=dict)


def _doc(id_: str, **extra: Any) -> dict[str, Any]:
    return {"@context": [AS, "https://w3id.org/security/v1"], "id": id_, "type": "Person", **extra}


def _ap(data: Any, content_type: str = AP_JSON, status: int = 200) -> web.Response:
    body = data if isinstance(data, (bytes, str)) else json.dumps(data)
    return web.Response(body=body, status=status, headers={"Content-Type": content_type})


def build_app(srv: Server, release: asyncio.Event) -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        base = srv.base
        srv.seen[name] = dict(request.headers)
        if name == "alice":
            return _ap(_doc(f"{base}/obj/alice"))
        if name == "ld":
            return _ap(_doc(f"{base}/obj/ld"),
                       f'application/ld+json; profile="{AS}"; charset=utf-8')
        if name == "mismatch":
            return _ap(_doc("https://victim.example/users/admin"))
        if name == "alias":  # a non-canonical URL serving a document with another id
            return _ap(_doc(f"{base}/obj/alice"))
        if name == "alias2":
            return _ap(_doc(f"{base}/obj/mismatch"))
        if name == "json":
            return _ap(_doc(f"{base}/obj/json"), "application/json")
        if name == "html":
            return _ap("<html></html>", "text/html")
        if name == "nocontext":
            return _ap({"id": f"{base}/obj/nocontext", "type": "Note"})
        if name == "badcontext":
            return _ap({"@context": "https://www.w3.org/ns/activitystreams#", "id": f"{base}/obj/badcontext"})
        if name == "array":
            return _ap([1, 2])
        if name == "badjson":
            return _ap(b"{not json")
        if name == "nan":
            return _ap(b'{"@context": "' + AS.encode() + b'", "id": "x", "n": NaN}')
        if name == "empty":
            return _ap(b"")
        if name == "big":  # honest Content-Length over the cap
            return _ap(json.dumps(_doc(f"{base}/obj/big", pad="x" * MAX_BODY * 2)))
        if name == "chunked":  # no Content-Length at all
            resp = web.StreamResponse(headers={"Content-Type": AP_JSON})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            await resp.write(b'{"@context": "' + AS.encode() + b'", "pad": "')
            for _ in range(10):
                await resp.write(b"x" * 1000)
            await resp.write(b'"}')
            await resp.write_eof()
            return resp
        if name == "gzipbomb":  # 16 KiB on the wire, 8 MiB inflated
            payload = gzip.compress(b"[" + b" " * (8 << 20) + b"]")
            return web.Response(body=payload, headers={
                "Content-Type": AP_JSON, "Content-Encoding": "gzip"})
        if name == "gone":
            return _ap({}, status=410)
        if name == "missing":
            return _ap({}, status=404)
        if name == "boom":
            return _ap({}, status=500)
        if name == "redirect":
            raise web.HTTPFound(f"{base}/obj/alice")
        if name == "slow":
            await asyncio.wait_for(release.wait(), 10)
            return _ap(_doc(f"{base}/obj/slow"))
        if name == "slowbody":
            resp = web.StreamResponse(headers={"Content-Type": AP_JSON})
            await resp.prepare(request)
            await resp.write(b"{")
            await asyncio.wait_for(release.wait(), 10)
            return resp
        raise web.HTTPNotFound()

    async def jrd(request: web.Request) -> web.Response:
        return web.json_response({"subject": "acct:a@b", "links": []})

    async def redir(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def inbox(request: web.Request) -> web.Response:
        srv.seen["inbox"] = (dict(request.headers), await request.read())
        return web.Response(status=202, text="accepted")

    async def flood(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(status=200)
        await resp.prepare(request)
        for _ in range(200):  # 200 KiB, well over MAX_BODY
            await resp.write(b"z" * 1024)
        return resp

    app = web.Application()
    app.router.add_get("/obj/{name}", handler)
    app.router.add_get("/jrd", jrd)
    app.router.add_get("/redir", redir)
    app.router.add_get("/loop", loop)
    app.router.add_post("/inbox", inbox)
    app.router.add_post("/flood", flood)
    return app


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    release = asyncio.Event()
    srv = Server(base="", port=0)
    runner = web.AppRunner(build_app(srv, release), shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    srv.port = runner.addresses[0][1]
    srv.base = f"http://127.0.0.1:{srv.port}"
    yield srv
    release.set()
    await runner.cleanup()


@pytest_asyncio.fixture
async def fetcher() -> AsyncIterator[RemoteFetcher]:
    f = RemoteFetcher(allow_private=True, allow_http=True, timeout=2.0, max_body=MAX_BODY,
                      user_agent="fedserver-test/1 (+http://127.0.0.1/)")
    yield f
    await f.close()


@pytest.mark.asyncio
async def test_fetch_object_ok(server: Server, fetcher: RemoteFetcher) -> None:
    doc = await fetcher.fetch_object(f"{server.base}/obj/alice")
    assert doc["id"] == f"{server.base}/obj/alice"
    seen = server.seen["alice"]
    assert seen["Accept"] == AS2_ACCEPT
    assert seen["User-Agent"] == "fedserver-test/1 (+http://127.0.0.1/)"
    doc = await fetcher.fetch_object(f"{server.base}/obj/ld")
    assert doc["id"].endswith("/obj/ld")


@pytest.mark.asyncio
async def test_fragment_is_stripped(server: Server, fetcher: RemoteFetcher) -> None:
    doc = await fetcher.fetch_object(f"{server.base}/obj/alice#main-key")
    assert doc["id"] == f"{server.base}/obj/alice"


@pytest.mark.asyncio
async def test_id_mismatch_rejected(server: Server, fetcher: RemoteFetcher) -> None:
    with pytest.raises(FetchInvalid, match="does not match"):
        await fetcher.fetch_object(f"{server.base}/obj/mismatch")
    with pytest.raises(FetchInvalid):
        await fetcher.fetch_object(f"{server.base}/obj/alias")


@pytest.mark.asyncio
async def test_follow_id_and_expected_id(server: Server, fetcher: RemoteFetcher) -> None:
    doc = await fetcher.fetch_object(f"{server.base}/obj/alias", follow_id=True)
    assert doc["id"] == f"{server.base}/obj/alice"
    # The refetch from the claimed id must itself be self-consistent: /obj/alias2 claims
    # to be /obj/mismatch, which in turn claims a foreign id -> rejected, no third hop.
    with pytest.raises(FetchInvalid, match="its own id"):
        await fetcher.fetch_object(f"{server.base}/obj/alias2", follow_id=True)
    assert "mismatch" in server.seen
    with pytest.raises(FetchInvalid, match="expected"):
        await fetcher.fetch_object(f"{server.base}/obj/alice",
                                   expected_id=f"{server.base}/obj/bob")
    await fetcher.fetch_object(f"{server.base}/obj/alice",
                               expected_id=f"{server.base}/obj/alice#main-key")


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["json", "html"])
async def test_wrong_content_type_rejected(server: Server, fetcher: RemoteFetcher, name: str) -> None:
    with pytest.raises(FetchInvalid, match="content type"):
        await fetcher.fetch_object(f"{server.base}/obj/{name}")


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["nocontext", "badcontext", "array", "badjson", "nan", "empty"])
async def test_malformed_documents(server: Server, fetcher: RemoteFetcher, name: str) -> None:
    with pytest.raises(FetchInvalid):
        await fetcher.fetch_object(f"{server.base}/obj/{name}")


@pytest.mark.asyncio
@pytest.mark.parametrize("name,why", [("big", "Content-Length"), ("chunked", "body exceeds")])
async def test_body_cap(server: Server, fetcher: RemoteFetcher, name: str, why: str) -> None:
    with pytest.raises(FetchInvalid, match=why):
        await fetcher.fetch_object(f"{server.base}/obj/{name}")


@pytest.mark.asyncio
async def test_body_cap_applies_after_decompression(server: Server) -> None:
    # Content-Length (~8 KiB compressed) passes the pre-check; the streaming cap stops
    # the 8 MiB inflation.
    async with RemoteFetcher(allow_private=True, allow_http=True, max_body=64 * 1024) as f:
        with pytest.raises(FetchInvalid, match="body exceeds"):
            await f.fetch_object(f"{server.base}/obj/gzipbomb")


@pytest.mark.asyncio
async def test_status_mapping(server: Server, fetcher: RemoteFetcher) -> None:
    with pytest.raises(FetchGone) as gone:
        await fetcher.fetch_object(f"{server.base}/obj/gone")
    assert gone.value.status == 410
    with pytest.raises(FetchNotFound):
        await fetcher.fetch_object(f"{server.base}/obj/missing")
    with pytest.raises(FetchHTTPError) as err:
        await fetcher.fetch_object(f"{server.base}/obj/boom")
    assert err.value.status == 500
    with pytest.raises(FetchHTTPError) as err:  # no redirects for AP objects
        await fetcher.fetch_object(f"{server.base}/obj/redirect")
    assert err.value.status == 302


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["slow", "slowbody"])
async def test_timeout(server: Server, name: str) -> None:
    async with RemoteFetcher(allow_private=True, allow_http=True, timeout=0.3) as f:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(FetchTimeout):
            await f.fetch_object(f"{server.base}/obj/{name}")
        assert loop.time() - start < 1.5


@pytest.mark.asyncio
async def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: refused
        async with RemoteFetcher(allow_private=True, allow_http=True, timeout=2) as f:
            with pytest.raises(FetchConnectionError):
                await f.fetch_object(f"http://127.0.0.1:{port}/x")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:{port}", "[::1]:{port}", "169.254.169.254", "[::]:{port}",
     "0.0.0.0:{port}", "localhost:{port}", "[::ffff:127.0.0.1]:{port}", "2130706433"],
)
async def test_private_refused(server: Server, host: str) -> None:
    url = f"http://{host.format(port=server.port)}/obj/alice"
    async with RemoteFetcher(allow_private=False, allow_http=True, timeout=2) as f:
        with pytest.raises(FetchBlocked):
            await f.fetch_object(url)
        with pytest.raises(FetchBlocked):
            await f.get_json(url)
        with pytest.raises(FetchBlocked):
            await f.post(url, b"{}", headers={"Content-Type": AP_JSON})
    assert "alice" not in server.seen


@pytest.mark.asyncio
async def test_http_refused_unless_allowed(server: Server) -> None:
    async with RemoteFetcher(allow_private=True, timeout=2) as f:
        with pytest.raises(FetchBlocked, match="scheme"):
            await f.fetch_object(f"{server.base}/obj/alice")
        with pytest.raises(FetchBlocked, match="scheme"):
            await f.get_json("file:///etc/passwd")


class FakeResolver(AbstractResolver):
    def __init__(self, table: dict[str, str]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.table:
            raise OSError(f"no such host {host}")
        return [{"hostname": host, "host": self.table[host], "port": port,
                 "family": socket.AF_INET, "proto": 0, "flags": socket.AI_NUMERICHOST}]

    async def close(self) -> None:
        pass


@pytest.mark.asyncio
async def test_hostname_resolving_private_refused(server: Server) -> None:
    resolver = FakeResolver({"evil.test": "127.0.0.1"})
    async with RemoteFetcher(allow_private=False, allow_http=True, timeout=2,
                             resolver=FakeResolver({"evil.test": "127.0.0.1"})) as f:
        with pytest.raises(FetchBlocked):
            await f.get_json(f"http://evil.test:{server.port}/jrd")
    # Same name with the private policy lifted connects to the checked address.
    async with RemoteFetcher(allow_private=True, allow_http=True, timeout=2,
                             resolver=resolver) as f:
        assert (await f.get_json(f"http://evil.test:{server.port}/jrd"))["subject"] == "acct:a@b"


@pytest_asyncio.fixture
async def pinned() -> AsyncIterator[RemoteFetcher]:
    """Private space blocked except a hole for exactly 127.0.0.1 (where the server is)."""
    f = RemoteFetcher(allow_private=False, allow_http=True, timeout=2, max_body=MAX_BODY,
                      allowed_private_networks=["127.0.0.1/32"],
                      resolver=FakeResolver({"internal.test": "10.0.0.1",
                                             "ok.test": "127.0.0.1"}))
    yield f
    await f.close()


@pytest.mark.asyncio
async def test_get_json_redirects(server: Server, pinned: RemoteFetcher) -> None:
    assert (await pinned.get_json(f"{server.base}/redir?to=/jrd"))["subject"] == "acct:a@b"
    to = f"http://ok.test:{server.port}/jrd"
    assert (await pinned.get_json(f"{server.base}/redir?to={to}"))["subject"] == "acct:a@b"
    with pytest.raises(FetchHTTPError, match="too many redirects"):
        await pinned.get_json(f"{server.base}/loop")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "target",
    ["http://10.0.0.1/jrd", "http://169.254.169.254/latest/meta-data/",
     "http://127.0.0.2:{port}/jrd", "http://[::1]:{port}/jrd", "http://localhost:{port}/jrd",
     "http://internal.test:{port}/jrd", "file:///etc/passwd", "gopher://127.0.0.1:{port}/"],
)
async def test_redirect_into_private_space_refused(
    server: Server, pinned: RemoteFetcher, target: str
) -> None:
    with pytest.raises(FetchBlocked):
        await pinned.get_json(f"{server.base}/redir?to={target.format(port=server.port)}")


@pytest.mark.asyncio
async def test_get_json_errors(server: Server, fetcher: RemoteFetcher) -> None:
    with pytest.raises(FetchNotFound):
        await fetcher.get_json(f"{server.base}/obj/missing")
    with pytest.raises(FetchInvalid):
        await fetcher.get_json(f"{server.base}/obj/array")
    with pytest.raises(FetchInvalid, match="body exceeds"):  # streaming cap, no Content-Length
        await fetcher.get_json(f"{server.base}/obj/chunked")
    # get_json does not insist on an AS2 content type
    assert (await fetcher.get_json(f"{server.base}/obj/json"))["id"].endswith("/obj/json")


@pytest.mark.asyncio
async def test_signer_used_for_gets(server: Server) -> None:
    calls: list[tuple[str, str, bytes | None, str | None]] = []

    async def signer(method: str, url: str, body: bytes | None, accept: str | None) -> dict[str, str]:
        calls.append((method, url, body, accept))
        return {"Signature": 'keyId="k",signature="s"', "Date": "Tue, 01 Jan 2030 00:00:00 GMT",
                "Accept": accept or ""}

    async with RemoteFetcher(allow_private=True, allow_http=True, signer=signer) as f:
        await f.fetch_object(f"{server.base}/obj/alice")
        await f.get_json(f"{server.base}/jrd")
    assert calls == [("GET", f"{server.base}/obj/alice", None, AS2_ACCEPT)]
    assert server.seen["alice"]["Signature"] == 'keyId="k",signature="s"'
    assert server.seen["alice"]["Date"] == "Tue, 01 Jan 2030 00:00:00 GMT"


@pytest.mark.asyncio
async def test_post(server: Server, fetcher: RemoteFetcher) -> None:
    body = b'{"type": "Follow"}'
    url = f"{server.base}/inbox"
    status = await fetcher.post(url, body, headers={"Content-Type": AP_JSON, "X-Sig": "1"})
    assert status == 202
    headers, received = server.seen["inbox"]
    assert received == body and headers["X-Sig"] == "1"
    assert await fetcher.post(f"{server.base}/flood", body, headers={}) == 200
    assert await fetcher.post(f"{server.base}/obj/gone", body, headers={}) == 405


@pytest.mark.asyncio
async def test_closed_fetcher(fetcher: RemoteFetcher) -> None:
    await fetcher.close()
    with pytest.raises(RuntimeError):
        await fetcher.get_json("http://127.0.0.1:1/")


# -- fetch_media: the media cache's fetch (services/media_cache.py) --------------------------------

@pytest.mark.asyncio
async def test_fetch_media_ignores_the_content_type_and_follows_checked_redirects(
        server: Server, pinned: RemoteFetcher) -> None:
    # Whatever the server calls it, the bytes come back: their type is decided from the content.
    assert await pinned.fetch_media(f"{server.base}/obj/html", max_bytes=MAX_BODY) == b"<html></html>"
    assert await pinned.fetch_media(f"{server.base}/redir?to=/obj/html", max_bytes=MAX_BODY) == b"<html></html>"


@pytest.mark.asyncio
@pytest.mark.parametrize("target", ["http://10.0.0.1/a.png", "http://169.254.169.254/latest/meta-data/",
                                    "http://127.0.0.2:{port}/obj/html", "http://internal.test:{port}/obj/html",
                                    "file:///etc/passwd"])
async def test_fetch_media_redirect_into_private_space_is_refused(
        server: Server, pinned: RemoteFetcher, target: str) -> None:
    with pytest.raises(FetchBlocked):
        await pinned.fetch_media(f"{server.base}/redir?to={target.format(port=server.port)}", max_bytes=MAX_BODY)


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["big", "chunked", "gzipbomb"])
async def test_fetch_media_body_is_capped(server: Server, fetcher: RemoteFetcher, name: str) -> None:
    with pytest.raises(FetchInvalid):
        await fetcher.fetch_media(f"{server.base}/obj/{name}", max_bytes=1000)


@pytest.mark.asyncio
async def test_fetch_media_gives_up_a_slow_body_at_its_own_deadline(server: Server, fetcher: RemoteFetcher) -> None:
    started = asyncio.get_running_loop().time()
    with pytest.raises(FetchTimeout):
        await fetcher.fetch_media(f"{server.base}/obj/slowbody", max_bytes=MAX_BODY, timeout=0.5)
    assert asyncio.get_running_loop().time() - started < 1.5
