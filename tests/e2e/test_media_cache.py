"""The media cache against a hostile media server (a real aiohttp server that signs its posts): what
it sends is judged by its bytes, bounded in size and time, and nothing our origin serves is anything
a browser would run. Then retention: pruning removes cached copies, the page keeps working, local
media stays. The real `fedserver serve`."""
from __future__ import annotations

import asyncio
import hashlib
import html
import io
import re
import struct
import time
import zlib
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from tests.e2e.fake_remote import FakeRemote
from tests.e2e.processes import ServerProcess, await_for
from tests.e2e.web_client import Visitor

MEDIA_TIMEOUT = 3.0


def png(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def png_bomb(side: int = 30_000) -> bytes:
    """A PNG whose header claims side x side pixels (900 million: ~2.7 GB decoded) in a few KB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = zlib.compress(b"\0" * (side * 3 + 1) * 64, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(document.cookie)</script>'
       b'<rect width="10" height="10"/></svg>')
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


class MediaRemote(FakeRemote):
    """A FakeRemote that also serves pictures, some of them hostile, under /media/."""
    media_hits: list[str]
    gone: set[str]  # names it answers 404 for now (deleted at the origin)
    pictures: dict[str, str]  # the actors' avatar (icon) and header (image): name under /media/

    def actor_document(self, name: str) -> dict[str, Any]:
        document = super().actor_document(name)
        for field, picture in self.pictures.items():
            document[field] = {"type": "Image", "mediaType": "image/png", "url": f"{self.base}/media/{picture}"}
        return document

    async def _document(self, request: web.Request) -> web.StreamResponse:
        if not request.path.startswith("/media/"):
            return await super()._document(request)
        self.media_hits.append(request.path)
        name = request.path.removeprefix("/media/")
        if name in self.gone:
            return web.Response(status=404)
        if name == "good.png":  # a real picture, mislabelled
            return web.Response(body=png((640, 480), (10, 90, 200)), content_type="text/plain")
        if name == "page.png":  # an HTML page claiming to be a picture
            return web.Response(body=HTML, content_type="image/png")
        if name == "drawing.svg":
            return web.Response(body=SVG, content_type="image/svg+xml")
        if name == "bomb.png":
            return web.Response(body=png_bomb(), content_type="image/png")
        if name == "huge.png":  # 100 MB, streamed without a length
            response = web.StreamResponse(headers={"Content-Type": "image/png"})
            await response.prepare(request)
            block = b"\0" * (1024 * 1024)
            for _ in range(100):
                await response.write(block)
            return response
        if name == "slow.png":  # a byte a second, forever
            response = web.StreamResponse(headers={"Content-Type": "image/png"})
            await response.prepare(request)
            for byte in png((8, 8), (0, 0, 0)) * 1000:
                await response.write(bytes([byte]))
                await asyncio.sleep(1)
            return response
        return web.Response(status=404)


@pytest.fixture
async def remote() -> AsyncIterator[MediaRemote]:
    server = await MediaRemote.start("mallory")
    server.media_hits = []
    server.gone = set()
    server.pictures = {}
    yield server
    await server.stop()


PASSWORD = "correct horse battery staple"


async def serving(fedserver_processes, **settings: Any) -> ServerProcess:
    """An instance with alice (an admin, password PASSWORD) and a short media timeout."""
    server = fedserver_processes("a", media_fetch_timeout_seconds=MEDIA_TIMEOUT, **settings)
    password = server.directory / "password"
    password.write_text(PASSWORD)
    server.run("user", "create", "alice", "--admin", "--password-file", str(password), check=True)
    await server.astart()
    return server


def key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


async def post_pictures(remote: MediaRemote, server: ServerProcess, names: list[str], *,
                        sensitive: bool = False) -> dict[str, Any]:
    note = remote.note("mallory", "pictures", mention=server.actor_uri("alice"))
    note["sensitive"] = sensitive
    note["attachment"] = [{"type": "Document", "mediaType": "image/png", "url": f"{remote.base}/media/{name}",
                           "name": f"picture {name}", "width": 640, "height": 480} for name in names]
    status, body = await remote.post(f"{server.base}/inbox", remote.activity("mallory", "Create", note),
                                     as_user="mallory")
    assert status == 202, body
    return note


def states(server: ServerProcess, remote: MediaRemote) -> dict[str, str]:
    rows = server.query("SELECT url, state FROM remote_media WHERE purpose = 'attachment'")
    return {url.removeprefix(f"{remote.base}/media/"): state for url, state in rows}


async def test_hostile_media_is_refused_or_capped_and_the_server_never_stalls(fedserver_processes, remote):
    server = await serving(fedserver_processes)
    hostile = ["page.png", "drawing.svg", "bomb.png", "huge.png", "slow.png"]
    worst = 0.0
    async with aiohttp.ClientSession() as http:
        await post_pictures(remote, server, ["good.png", *hostile])

        async def settled() -> bool:
            found = states(server, remote)
            return len(found) == 6 and "queued" not in found.values()

        deadline = time.monotonic() + 60
        while not await settled():
            assert time.monotonic() < deadline, f"media not settled: {states(server, remote)}"
            started = time.monotonic()
            async with http.get(f"{server.base}/about/consent") as resp:
                assert resp.status == 200
            worst = max(worst, time.monotonic() - started)
            await asyncio.sleep(0.1)
        # The slow server was given up after the media timeout, not waited on forever.
        assert states(server, remote) == {"good.png": "cached", **{name: "failed" for name in hostile}}
        assert worst < 1.5, f"a page took {worst:.2f} s while hostile media was fetched"

        # The good picture: served from here, as the picture it is, with safe headers.
        async with http.get(f"{server.base}/media/remote/{key(remote.base + '/media/good.png')}") as resp:
            assert resp.status == 200 and resp.url.path.startswith("/media/cache/")
            assert resp.headers["Content-Type"] == "image/png"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert "sandbox" in resp.headers["Content-Security-Policy"]
            assert "immutable" in resp.headers["Cache-Control"]
            assert Image.open(io.BytesIO(await resp.read())).size == (640, 480)

        # The hostile ones: nothing served, quickly, and not fetched again on every view.
        hits = len(remote.media_hits)
        for name in hostile:
            started = time.monotonic()
            async with http.get(f"{server.base}/media/remote/{key(remote.base + '/media/' + name)}") as resp:
                assert resp.status == 404
            assert time.monotonic() - started < 1.0
        assert len(remote.media_hits) == hits

    # Everything in the cache is a picture Pillow wrote (no HTML, no SVG, no script anywhere).
    files = list((server.directory / "media" / "cache").iterdir())
    assert files and all(f.suffix in (".png", ".webp", ".jpg", ".gif") for f in files)
    for f in files:
        data = f.read_bytes()
        assert b"<script" not in data and b"<svg" not in data and b"<html" not in data.lower()
        Image.open(io.BytesIO(data)).verify()


async def test_a_hostile_avatar_and_header_are_refused_and_never_served_from_here(fedserver_processes, remote):
    server = await serving(fedserver_processes)
    remote.pictures = {"icon": "page.png", "image": "drawing.svg"}  # an HTML page and an SVG with a script
    note = await post_pictures(remote, server, [])
    post_id = await await_for(lambda: server.value("SELECT id FROM posts WHERE uri = ?", (note["id"],)),
                              timeout=30, what="the post stored")
    author_id = server.value("SELECT actor_id FROM posts WHERE id = ?", (post_id,))
    async with Visitor(server.base) as alice:
        assert (await alice.sign_in("alice", PASSWORD)).status == 303
        for path in (f"/posts/{post_id}", f"/remote/{author_id}"):
            page = await alice.get(path)
            assert page.status == 200 and f"{remote.base}/media/" not in page.text, path
            # Pages name these pictures only by their address here; asking for them fetches them
            # (once), and the answer is a 404: nothing of theirs is served from this origin.
            sources = re.findall(r'<img[^>]* src="(/media/remote/[0-9a-f]{64}[^"]*)"', page.text)
            assert sources, path  # the avatar at least
            for src in sources:
                async with alice.http.get(server.base + html.unescape(src)) as resp:
                    assert resp.status == 404, src
                    assert b"alert(document.cookie)" not in await resp.read()  # the hostile bytes
        profile = await alice.get(f"/remote/{author_id}")
        assert 'class="profile-header"' in profile.text  # the header was asked for from here too
    assert server.query("SELECT purpose, state FROM remote_media WHERE purpose IN ('avatar', 'header')"
                        " ORDER BY purpose") == [("avatar", "failed"), ("header", "failed")]
    assert sorted(remote.media_hits) == ["/media/drawing.svg", "/media/page.png"]
    cache = server.directory / "media" / "cache"
    assert not cache.exists() or list(cache.iterdir()) == []


async def upload_avatar(visitor, data: bytes) -> int:
    page = await visitor.get("/settings/profile")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    form = aiohttp.FormData()
    form.add_field("csrf_token", html.unescape(token))
    form.add_field("avatar", data, filename="me.png", content_type="image/png")
    async with visitor.http.post(visitor.base + "/settings/avatar", data=form, allow_redirects=False) as resp:
        return resp.status


async def test_pruning_removes_cached_copies_pages_still_work_and_local_media_stays(fedserver_processes, remote):
    server = await serving(fedserver_processes)
    note = await post_pictures(remote, server, ["good.png"], sensitive=True)
    await await_for(lambda: states(server, remote) == {"good.png": "cached"}, timeout=30, what="the picture cached")
    post_id = server.value("SELECT id FROM posts WHERE uri = ?", (note["id"],))
    cache = server.directory / "media" / "cache"
    assert len(list(cache.iterdir())) == 3  # the picture, its thumbnail and its blurhash picture

    async with Visitor(server.base) as alice:
        assert (await alice.sign_in("alice", PASSWORD)).status == 303
        assert await upload_avatar(alice, png((64, 64), (0, 200, 0))) == 303
        [local] = [p for p in (server.directory / "media").iterdir() if p.is_file()]
        before = await alice.get(f"/posts/{post_id}")
        assert 'alt="picture good.png"' in before.text and 'class="blur"' in before.text
        admin = await alice.get("/admin")
        assert "Cached remote pictures: 1," in admin.text and "Local media: 1 files" in admin.text

        # Within the retention: nothing goes.
        assert "pruned 0 cached pictures" in (await server.arun("media", "prune", check=True)).stdout
        assert len(list(cache.iterdir())) == 3
        status = (await server.arun("status", check=True)).stdout
        assert "media: 1 local files" in status and "1 cached remote pictures" in status

        # Past it (here: everything): the cached files go, the local picture stays.
        assert "pruned 1 cached pictures (3 files removed)" in (
            await server.arun("media", "prune", "--older-than-days", "0", check=True)).stdout
        assert list(cache.iterdir()) == []
        async with alice.http.get(f"{server.base}/media/{local.name}") as resp:
            assert local.is_file() and resp.status == 200
        assert states(server, remote) == {"good.png": "absent"}

        # The page still shows the picture, sized as before; asking for it fetches it again.
        page = await alice.get(f"/posts/{post_id}")
        assert page.status == 200 and 'alt="picture good.png" width="400" height="300"' in page.text
        src = re.search(r'<img src="(/media/cache/[0-9a-f]{64}\.webp)" alt="picture good.png"', page.text).group(1)
        hits = len(remote.media_hits)
        async with alice.http.get(server.base + src) as again:
            assert again.status == 200 and again.headers["Content-Type"] == "image/webp"
        assert len(remote.media_hits) == hits + 1
        assert states(server, remote) == {"good.png": "cached"}


async def test_a_pruned_picture_gone_from_its_origin_leaves_the_page_working_and_is_not_asked_for_each_view(
        fedserver_processes, remote):
    server = await serving(fedserver_processes)
    note = await post_pictures(remote, server, ["good.png"], sensitive=True)
    await await_for(lambda: states(server, remote) == {"good.png": "cached"}, timeout=30, what="the picture cached")
    post_id = server.value("SELECT id FROM posts WHERE uri = ?", (note["id"],))
    await server.arun("media", "prune", "--older-than-days", "0", check=True)
    assert list((server.directory / "media" / "cache").iterdir()) == []
    remote.gone.add("good.png")  # deleted at its origin meanwhile

    async with Visitor(server.base) as alice:
        assert (await alice.sign_in("alice", PASSWORD)).status == 303
        hits = len(remote.media_hits)
        for _ in range(3):
            # The page keeps its layout: the picture's place, its size and its description.
            page = await alice.get(f"/posts/{post_id}")
            assert page.status == 200 and 'alt="picture good.png" width="400" height="300"' in page.text
            sources = re.findall(r'src="(/media/cache/[0-9a-f]{64}\.(?:webp|png))"', page.text)
            assert len(sources) == 2  # the thumbnail, and the blurhash picture of the sensitive media
            for src in sources:
                started = time.monotonic()
                async with alice.http.get(server.base + src) as resp:
                    assert resp.status == 404  # a missing picture, never an error page or a 500
                assert time.monotonic() - started < MEDIA_TIMEOUT
        # Asked for once, then remembered as failed: views do not hammer the origin.
        assert len(remote.media_hits) == hits + 1
        assert states(server, remote) == {"good.png": "failed"}


async def test_custom_emoji_show_as_small_pictures_from_the_cache(fedserver_processes, remote):
    server = await serving(fedserver_processes)
    note = remote.note("mallory", "hello :blobcat: and :unknown:", mention=server.actor_uri("alice"))
    note["content"] += '<p><a href="https://example.com/:blobcat:">:blobcat: link</a></p>'
    note["tag"] += [{"type": "Emoji", "name": ":blobcat:", "icon": {"type": "Image", "mediaType": "image/png",
                                                                      "url": f"{remote.base}/media/good.png"}},
                    {"type": "Emoji", "name": ":bad\"code:", "icon": {"url": f"{remote.base}/media/good.png"}}]
    status, body = await remote.post(f"{server.base}/inbox", remote.activity("mallory", "Create", note),
                                     as_user="mallory")
    assert status == 202, body
    await await_for(lambda: server.value("SELECT state FROM remote_media WHERE purpose = 'emoji'") == "cached",
                    timeout=30, what="the emoji cached")
    post_id = server.value("SELECT id FROM posts WHERE uri = ?", (note["id"],))
    async with Visitor(server.base) as alice:
        assert (await alice.sign_in("alice", PASSWORD)).status == 303
        page = await alice.get(f"/posts/{post_id}")
    emoji = re.findall(r'<img class="emoji" src="(/media/cache/[0-9a-f]{64}\.webp)" alt=":blobcat:"', page.text)
    assert len(emoji) == 2, page.text  # in the text and in the link's text, never in its href
    assert 'href="https://example.com/:blobcat:"' in page.text and ":unknown:" in page.text
