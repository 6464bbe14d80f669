"""A person's data, in and out, on the real `fedserver serve` over HTTP: the archive zip (outbox.json
of Create activities, the pictures they point to, actor.json, likes.json), limited per day; the
accounts one follows, blocks and mutes as Mastodon's CSV files; and blocks and mutes imported from
such files, resolving accounts on another server (a FakeRemote), with oversize files refused."""
from __future__ import annotations

import pytest

import asyncio
import html
import io
import json
import time
import zipfile

import aiohttp
from PIL import Image

from tests.e2e.archive_support import rss_kib, seed_posts
from tests.e2e.fake_remote import FakeRemote
from tests.e2e.processes import ServerProcess, await_for, set_config_keys
from tests.web.browser import PASSWORD, Browser


async def serving(server: ServerProcess, *names: str, **config) -> Browser:
    """Start the server with these settings and these local accounts; the first signed in."""
    if config:
        set_config_keys(server.config, **config)
    secret = server.directory / "password"
    secret.write_text(PASSWORD)
    for name in names:
        server.run("user", "create", name, "--password-file", str(secret), check=True)
    await server.astart()
    browser = Browser(server.base)
    await browser.sign_in(names[0])
    return browser


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (24, 16), colour).save(out, format="PNG")
    return out.getvalue()


async def post_picture(browser: Browser, text: str, data: bytes) -> int:
    page = await browser.get("/home")
    form = aiohttp.FormData()
    for name, value in (("csrf_token", page.csrf), ("back", "/home"), ("text", text), ("visibility", "public")):
        form.add_field(name, value)
    form.add_field("picture1", data, filename="p.png", content_type="image/png")
    form.add_field("picture1_description", "a red square")
    async with browser.http.post(browser.base + "/posts", data=form) as resp:
        return resp.status


async def upload_profile_picture(browser: Browser, which: str, data: bytes) -> int:
    """Upload the avatar or the header (which) from Settings → Profile."""
    page = await browser.get("/settings/profile")
    form = aiohttp.FormData()
    form.add_field("csrf_token", page.csrf)
    form.add_field(which, data, filename=f"{which}.png", content_type="image/png")
    async with browser.http.post(f"{browser.base}/settings/{which}", data=form, allow_redirects=False) as resp:
        return resp.status


async def download(browser: Browser, path: str) -> tuple[int, dict[str, str], bytes]:
    async with browser.http.get(browser.base + path, allow_redirects=False) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def import_file(browser: Browser, kind: str, data: bytes) -> tuple[int, str]:
    page = await browser.get("/settings/data")
    form = aiohttp.FormData()
    form.add_field("csrf_token", page.csrf)
    form.add_field("kind", kind)
    form.add_field("file", data, filename=f"{kind}.csv", content_type="text/csv")
    async with browser.http.post(browser.base + "/settings/data/import", data=form, allow_redirects=False) as resp:
        return resp.status, html.unescape(await resp.text())


async def test_the_archive_downloads_with_the_posts_their_pictures_and_likes(fedserver_processes):
    server = fedserver_processes("a")
    alice = await serving(server, "alice", "bob", archive_downloads_per_day=2)
    try:
        for text, visibility in (("First post", "public"), ("Only for followers", "followers")):
            server.run("post", "alice", text, "--visibility", visibility, check=True)
        bobs = server.run("post", "bob", "Bob writes", check=True).stdout.strip()
        server.run("like", "alice", bobs, check=True)
        picture = png((200, 30, 30))
        assert await post_picture(alice, "With a picture", picture) == 200
        server.run("post", "alice", "Gone soon", check=True)
        assert await upload_profile_picture(alice, "avatar", png((0, 0, 200))) == 303
        assert await upload_profile_picture(alice, "header", png((0, 200, 0))) == 303
        gone = server.value("SELECT uri FROM posts WHERE content_text LIKE 'Gone soon%'")
        server.run("delete", "alice", gone, check=True)

        page = await alice.get("/settings/data")
        assert page.status == 200 and "/settings/data/archive.zip" in page.text
        status, headers, body = await download(alice, "/settings/data/archive.zip")
        assert status == 200, body[:500]
        assert headers["Content-Type"] == "application/zip"
        assert headers["Content-Disposition"].startswith('attachment; filename="archive-')

        archive = zipfile.ZipFile(io.BytesIO(body))
        assert archive.testzip() is None
        outbox = json.loads(archive.read("outbox.json"))
        assert outbox["type"] == "OrderedCollection" and outbox["id"] == "outbox.json"
        items = outbox["orderedItems"]
        assert outbox["totalItems"] == len(items) == 3
        assert {item["type"] for item in items} == {"Create"}
        assert all(item["actor"] == server.actor_uri("alice") for item in items)
        contents = [item["object"]["content"] for item in items]
        assert "First post" in contents[0] and "Only for followers" in contents[1] and "With a picture" in contents[2]
        assert not any("Gone soon" in content for content in contents)
        [attachment] = items[2]["object"]["attachment"]
        assert attachment["url"].startswith("media_attachments/files/") and attachment["name"] == "a red square"
        stored = archive.read(attachment["url"])
        served = await alice.http.get(f"{server.base}/media/{attachment['url'].rsplit('/', 1)[1]}")
        assert stored == await served.read()
        assert Image.open(io.BytesIO(stored)).size == (24, 16)

        actor = json.loads(archive.read("actor.json"))
        assert actor["id"] == server.actor_uri("alice") and actor["outbox"] == "outbox.json"
        # The avatar and the header beside it, as in Mastodon's archive.
        for key, stem, colour in (("icon", "avatar", (0, 0, 200)), ("image", "header", (0, 200, 0))):
            assert actor[key]["url"].startswith(stem + "."), actor[key]
            picture = Image.open(io.BytesIO(archive.read(actor[key]["url"]))).convert("RGB")
            assert picture.getpixel((0, 0)) == colour
        likes = json.loads(archive.read("likes.json"))
        assert likes["type"] == "OrderedCollection" and likes["orderedItems"] == [bobs]

        # The second download of the day is allowed ([server] archive_downloads_per_day = 2), the third not.
        assert (await download(alice, "/settings/data/archive.zip"))[0] == 200
        status, _, body = await download(alice, "/settings/data/archive.zip")
        assert status == 429
        assert "You downloaded your archive 2 times in the last 24 hours" in html.unescape(body.decode())
    finally:
        await alice.close()


async def test_imported_blocks_and_mutes_take_effect_and_export_as_mastodons_csv_files(fedserver_processes):
    server = fedserver_processes("a")
    remote = await FakeRemote.start("eve", "mallory")
    alice = await serving(server, "alice", "bob", "carol")
    try:
        server.run("follow", "alice", server.handle("carol"), check=True)
        blocks = (f"eve@{remote.domain}\n@mallory@{remote.domain}\nnobody@{remote.domain}\n"
                  f"eve@{remote.domain}\nnot an address\n").encode()
        status, text = await import_file(alice, "blocks", blocks)
        assert status == 200, text[:2000]
        assert "Blocked 2 accounts" in text and f"nobody@{remote.domain}" in text and "not an address" in text
        blocked = server.query("SELECT t.uri FROM blocks b JOIN actors t ON t.id = b.target_id ORDER BY b.id")
        assert blocked == [(remote.actor_uri("eve"),), (remote.actor_uri("mallory"),)]
        # Each blocked account's server is told, as after blocking from its profile.
        await await_for(lambda: {r.activity["object"] for r in remote.received
                                 if r.verified and r.activity and r.activity.get("type") == "Block"}
                        == {remote.actor_uri("eve"), remote.actor_uri("mallory")}, what="the Blocks at the remote")
        # The same file again: nothing new, nothing doubled.
        status, text = await import_file(alice, "blocks", blocks)
        assert status == 200 and "Blocked 0 accounts" in text and "2 already blocked" in text
        assert server.value("SELECT count(*) FROM blocks") == 2

        mutes = f"Account address,Hide notifications\nbob@{server.domain},true\n".encode()
        status, text = await import_file(alice, "mutes", mutes)
        assert status == 200 and "Muted 1 account" in text
        assert server.value("SELECT count(*) FROM mutes") == 1

        # Mastodon's exact formats: blocked accounts without a header, the others with Mastodon's.
        status, headers, body = await download(alice, "/settings/data/blocked_accounts.csv")
        assert status == 200 and headers["Content-Type"].startswith("text/csv")
        assert body.decode() == f"eve@{remote.domain}\nmallory@{remote.domain}\n"
        body = (await download(alice, "/settings/data/muted_accounts.csv"))[2]
        assert body.decode() == f"Account address,Hide notifications\nbob@{server.domain},true\n"
        body = (await download(alice, "/settings/data/following_accounts.csv"))[2]
        assert body.decode() == (f"Account address,Show boosts,Notify on new posts,Languages\n"
                                 f"carol@{server.domain},true,false,\n")
    finally:
        await alice.close()
        await remote.stop()


async def test_oversize_imports_are_refused_with_a_clear_message(fedserver_processes):
    server = fedserver_processes("a")
    alice = await serving(server, "alice", "bob")
    try:
        large = b"".join(f"someone{n}@{'x' * 200}.example\n".encode() for n in range(1300))
        status, text = await import_file(alice, "blocks", large)
        assert status == 413
        assert "at most 256 KB can be imported at once. Split it into smaller files." in text

        many = b"".join(f"p{n}@example.org\n".encode() for n in range(1001))
        status, text = await import_file(alice, "mutes", many)
        assert status == 413
        assert "at most 1000 can be imported at once. Split it into smaller files." in text

        status, text = await import_file(alice, "blocks", b"\x89PNG\r\n\x1a\n\x00\x00binary")
        assert status == 400 and "not a CSV text file" in text
        assert server.value("SELECT count(*) FROM blocks") == 0 and server.value("SELECT count(*) FROM mutes") == 0
        # Nothing of that broke the page: a proper file still imports.
        status, text = await import_file(alice, "blocks", f"bob@{server.domain}\n".encode())
        assert status == 200 and "Blocked 1 account" in text
    finally:
        await alice.close()


# sqlite_only: the 3,000 posts are written straight into the SQLite file (archive_support.seed_posts).
@pytest.mark.sqlite_only
async def test_a_large_archive_streams_without_the_server_holding_it_in_memory(fedserver_processes):
    """3,000 posts, 600 of them with a 60 KB picture: a 37 MB zip. The server's memory grows by a few
    MB while it sends it (measured 3 MB; holding the zip would take its whole size), and the zip's
    first bytes arrive long before its last."""
    server = fedserver_processes("a")
    secret = server.directory / "password"
    secret.write_text(PASSWORD)
    server.run("user", "create", "alice", "--password-file", str(secret), check=True)
    seed_posts(server, "alice", 3000, picture_every=5, picture_bytes=60_000)
    await server.astart()
    alice = Browser(server.base)
    try:
        await alice.sign_in("alice")
        assert server.proc is not None
        before = peak = rss_kib(server.proc.pid)
        body = bytearray()
        first_chunk_at = None
        started = time.monotonic()
        async with alice.http.get(server.base + "/settings/data/archive.zip") as resp:
            assert resp.status == 200
            async for chunk in resp.content.iter_chunked(64 * 1024):
                first_chunk_at = first_chunk_at or time.monotonic() - started
                body += chunk
                peak = max(peak, rss_kib(server.proc.pid))
                await asyncio.sleep(0.001)  # a reader slower than the loopback
        total = time.monotonic() - started
        archive = zipfile.ZipFile(io.BytesIO(bytes(body)))
        outbox = json.loads(archive.read("outbox.json"))
        assert outbox["totalItems"] == 3000 and len(outbox["orderedItems"]) == 3000
        assert len([name for name in archive.namelist() if name.startswith("media_attachments/files/")]) == 600
        assert len(body) > 35 * 2**20
        growth_mib = (peak - before) / 1024
        assert growth_mib < 16, f"the server grew by {growth_mib:.1f} MiB sending a {len(body) / 2**20:.0f} MiB zip"
        assert first_chunk_at is not None and first_chunk_at < total / 2, (first_chunk_at, total)

        # A download abandoned after its first chunk frees its thread: the next one completes.
        async with alice.http.get(server.base + "/settings/data/archive.zip") as resp:
            assert resp.status == 200
            await resp.content.readexactly(1024)
            resp.close()
        async with alice.http.get(server.base + "/settings/data/archive.zip") as resp:
            again = await resp.read()
        assert zipfile.ZipFile(io.BytesIO(again)).testzip() is None and len(again) > 35 * 2**20
        assert "not finished" in server.logs()
    finally:
        await alice.close()


async def test_an_import_naming_a_server_that_never_answers_finishes_in_bounded_time(fedserver_processes):
    """80 addresses on a host that accepts connections and never answers, between two real ones:
    WebFinger goes through the fetcher's per-host budget, so the silent host is paused after a few
    timeouts and the import takes about two fetch timeouts (10 s here), not one per batch of eight
    (50 s before); the real accounts are blocked, the silent ones reported."""
    server = fedserver_processes("a")
    remote = await FakeRemote.start("eve", "mallory")
    held: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read(65536)

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    silent_host = f"127.0.0.1:{silent.sockets[0].getsockname()[1]}"
    alice = await serving(server, "alice")
    try:
        addresses = [f"eve@{remote.domain}", *(f"quiet{n}@{silent_host}" for n in range(80)),
                     f"mallory@{remote.domain}"]
        started = time.monotonic()
        status, text = await import_file(alice, "blocks", "\n".join(addresses).encode())
        took = time.monotonic() - started
        assert status == 200, text[:2000]
        assert took < 25, f"the import took {took:.0f} s"
        assert "Blocked 2 accounts" in text and "Not found (80)" in text and f"quiet0@{silent_host}" in text
        assert sorted(row[0] for row in server.query("SELECT t.uri FROM blocks b JOIN actors t ON t.id = b.target_id")) \
            == sorted([remote.actor_uri("eve"), remote.actor_uri("mallory")])
        # The server stayed responsive for everyone else meanwhile (the page answered at once after).
        assert (await alice.get("/settings/data")).status == 200
    finally:
        await alice.close()
        await remote.stop()
        for writer in held:
            writer.close()
        silent.close()


async def test_imported_bookmarks_resolve_local_and_remote_posts_and_export_as_mastodons_csv(fedserver_processes):
    """A bookmarks.csv (one post URL a line) names a post here (by its page URL), a public post on
    another server (fetched through the safe fetcher), one that is not there and a cell that is no
    URL: the two posts are bookmarked, the rest reported, and bookmarks.csv lists the posts' ids."""
    server = fedserver_processes("a")
    remote = await FakeRemote.start("eve")
    alice = await serving(server, "alice", "bob")
    try:
        bobs = server.run("post", "bob", "Bob's post to keep", check=True).stdout.strip()
        bobs_page = f"{server.base}/@bob/{server.value('SELECT id FROM posts WHERE uri = ?', (bobs,))}"
        note = remote.note("eve", "Eve's post to keep")
        remote.serve(note)
        missing = f"{remote.base}/users/eve/statuses/404404"
        data = f"{bobs_page}\n{note['id']}\n{missing}\nnot a link\n{note['id']}\n".encode()
        status, text = await import_file(alice, "bookmarks", data)
        assert status == 200, text[:2000]
        assert "Bookmarked 2 posts" in text and "of the 4 in the file" in text
        assert "Not found (2)" in text and missing in text and "not a link" in text
        marked = server.query("SELECT p.uri FROM bookmarks b JOIN posts p ON p.id = b.post_id ORDER BY b.id")
        assert marked == [(bobs,), (note["id"],)]
        # They are on the bookmarks page as a person sees them.
        page = await alice.get("/bookmarks")
        assert "Bob&#39;s post to keep" in page.text or "Bob's post to keep" in html.unescape(page.text)
        assert "Eve&#39;s post to keep" in page.text or "Eve's post to keep" in html.unescape(page.text)

        status, text = await import_file(alice, "bookmarks", data)
        assert status == 200 and "Bookmarked 0 posts" in text and "2 already bookmarked" in text
        status, headers, body = await download(alice, "/settings/data/bookmarks.csv")
        assert status == 200 and headers["Content-Type"].startswith("text/csv")
        assert body.decode() == f"{bobs}\n{note['id']}\n"

        status, text = await import_file(alice, "bookmarks", b"alice@example.org\n")
        assert status == 400 and "The file lists no posts" in text
    finally:
        await alice.close()
        await remote.stop()
