"""Video and audio in posts, with the real `fedserver serve`: uploaded with the compose form, probed
(not trusted by name or type), stored without metadata, shown with the browser's own controls and a
poster from this server, served with Range; remote ones through the media cache, hostile ones refused;
the server stays responsive while files are probed."""
from __future__ import annotations

import asyncio
import html
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.e2e.fake_remote import FakeRemote
from tests.e2e.processes import ServerProcess, await_for
from tests.e2e.web_client import Visitor

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg (.ci/run installs it)")

PASSWORD = "correct horse battery staple"
SECRETS = ("Secret holiday title", "GPS 52.5200,13.4050", "+52.5200+013.4050/")


def make_media(folder: Path, name: str, *args: str) -> bytes:
    """A real file made by ffmpeg, with metadata a phone would leave in it."""
    target = folder / name
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args, "-metadata", f"title={SECRETS[0]}",
                    "-metadata", f"comment={SECRETS[1]}", "-metadata", f"location={SECRETS[2]}", str(target)],
                   check=True, timeout=60)
    return target.read_bytes()


def video(folder: Path, seconds: int = 1, name: str = "clip.mp4") -> bytes:
    return make_media(folder, name, "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size=160x120:rate=10",
                      "-f", "lavfi", "-i", f"sine=duration={seconds}", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                      "-c:a", "aac", "-shortest")


def audio(folder: Path) -> bytes:
    return make_media(folder, "sound.mp3", "-f", "lavfi", "-i", "sine=duration=1")


def probe(data: bytes, folder: Path) -> dict[str, Any]:
    path = folder / "probed"
    path.write_bytes(data)
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                          str(path)], check=True, capture_output=True, timeout=30).stdout
    return json.loads(out)


HTML_PAGE = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


async def compose(visitor: Visitor, text: str, data: bytes, filename: str, content_type: str,
                  description: str = "") -> tuple[int, str]:
    page = await visitor.get("/home")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    form = aiohttp.FormData()
    for name, value in (("csrf_token", html.unescape(token)), ("back", "/home"), ("text", text),
                        ("visibility", "public"), ("media_file_description", description)):
        form.add_field(name, value)
    form.add_field("media_file", data, filename=filename, content_type=content_type)
    async with visitor.http.post(visitor.base + "/posts", data=form) as resp:
        return resp.status, await resp.text()


async def serving(fedserver_processes, name: str = "a") -> ServerProcess:
    server = fedserver_processes(name, media_fetch_timeout_seconds=5.0)
    password = server.directory / "password"
    password.write_text(PASSWORD)
    server.run("user", "create", "alice", "--password-file", str(password), check=True)
    await server.astart()
    return server


async def test_an_uploaded_video_is_stored_without_metadata_and_played_from_this_server(fedserver_processes, tmp_path):
    server = await serving(fedserver_processes)
    original = video(tmp_path)
    assert SECRETS[0] in json.dumps(probe(original, tmp_path))
    async with Visitor(server.base) as alice:
        assert (await alice.sign_in("alice", PASSWORD)).status == 303
        status, text = await compose(alice, "Our test pattern", original, "clip.mp4", "video/mp4", "Colour bars")
        assert status == 200 and "Your post is published." in text, text[:2000]
        [(post_id, uri)] = server.query("SELECT id, uri FROM posts")
        [(url, media_type, width, height, duration, thumb)] = server.query(
            "SELECT url, media_type, width, height, duration, thumb_url FROM post_attachments WHERE post_id = ?",
            (post_id,))
        assert media_type == "video/mp4" and (width, height) == (160, 120) and 0.9 <= duration <= 1.1
        assert url.startswith(f"{server.base}/media/") and url.endswith(".mp4") and thumb.endswith(".webp")

        # The stored file: the same streams, none of the metadata.
        async with alice.http.get(url) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "video/mp4"
            assert resp.headers["X-Content-Type-Options"] == "nosniff" and "sandbox" in resp.headers[
                "Content-Security-Policy"]
            stored = await resp.read()
        info = probe(stored, tmp_path)
        assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
        assert not [s for s in SECRETS if s in json.dumps(info)] and not [s for s in SECRETS if s.encode() in stored]
        # Players seek with Range requests.
        async with alice.http.get(url, headers={"Range": "bytes=0-99"}) as resp:
            assert resp.status == 206 and len(await resp.read()) == 100

        # The page plays it with the browser's own controls, its poster from this server.
        page = await alice.get(f"/@alice/{post_id}")
        tag = re.search(r"<video [^>]*>", page.text).group(0)
        path, poster = url[len(server.base):], thumb[len(server.base):]
        assert f'src="{path}"' in tag and f'poster="{poster}"' in tag and "controls" in tag
        assert 'preload="metadata"' in tag and 'width="160" height="120"' in tag
        async with alice.http.get(server.base + poster) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "image/webp"

        # Federated as Mastodon sends media, with its duration and the poster's blurhash.
        async with alice.http.get(uri, headers={"Accept": "application/activity+json"}) as resp:
            [attachment] = (await resp.json(content_type=None))["attachment"]
        assert {k: attachment[k] for k in ("type", "mediaType", "url", "name", "width", "height")} == {
            "type": "Document", "mediaType": "video/mp4", "url": url, "name": "Colour bars", "width": 160,
            "height": 120}
        assert re.fullmatch(r"PT(0\.9\d*|1(\.0\d*)?)S", attachment["duration"]) and len(attachment["blurhash"]) >= 6


async def test_fake_or_truncated_video_and_audio_are_refused_with_a_clear_message(fedserver_processes, tmp_path):
    server = await serving(fedserver_processes)
    good_audio = audio(tmp_path)
    async with Visitor(server.base) as alice:
        assert (await alice.sign_in("alice", PASSWORD)).status == 303
        refused = [(HTML_PAGE, "clip.mp4", "video/mp4"), (video(tmp_path)[:3000], "cut.mp4", "video/mp4"),
                   (HTML_PAGE, "song.mp3", "audio/mpeg"), (b"ID3\x04\x00" + b"\0" * 200, "empty.mp3", "audio/mpeg")]
        for data, filename, content_type in refused:
            status, text = await compose(alice, "Should not appear", data, filename, content_type)
            assert status == 400, filename
            assert "video or audio file: " in text and ("is not a video" in text or "could not be read" in text), (
                filename, re.findall(r'class="error[^"]*"[^>]*>[^<]*', text))
        assert server.value("SELECT count(*) FROM posts") == 0
        assert not [p for p in (server.directory / "media").glob("*") if p.is_file()]

        # A real audio file goes in clean, played with <audio controls>.
        status, text = await compose(alice, "A tone", good_audio, "tone.bin", "application/octet-stream")
        assert status == 200 and "Your post is published." in text
        [(post_id, url, media_type, duration)] = server.query(
            "SELECT post_id, url, media_type, duration FROM post_attachments")
        assert media_type == "audio/mpeg" and url.endswith(".mp3") and 0.9 <= duration <= 1.2
        async with alice.http.get(url) as resp:
            stored = await resp.read()
        assert not [s for s in SECRETS if s.encode() in stored]
        page = await alice.get(f"/@alice/{post_id}")
        assert re.search(rf'<audio controls preload="metadata" src="{re.escape(url[len(server.base):])}"', page.text)


async def test_files_over_the_size_or_time_limits_are_refused_with_a_clear_message(fedserver_processes, tmp_path):
    server = fedserver_processes("a", media_video_max_bytes=30_000, media_audio_max_bytes=30_000,
                                 media_av_timeout_seconds=0.001)
    password = server.directory / "password"
    password.write_text(PASSWORD)
    server.run("user", "create", "alice", "--password-file", str(password), check=True)
    await server.astart()
    big = video(tmp_path, seconds=8)
    assert len(big) > 30_000
    async with Visitor(server.base) as alice:
        assert (await alice.sign_in("alice", PASSWORD)).status == 303
        status, text = await compose(alice, "Too big", big, "big.mp4", "video/mp4")
        assert status == 400 and "video or audio file: the file is larger than 29 KB" in text
        # ffprobe/ffmpeg still running at the deadline are stopped and the file refused.
        status, text = await compose(alice, "Too slow", audio(tmp_path), "tone.mp3", "audio/mpeg")
        assert status == 400 and "video or audio file: the file takes too long to process" in text
        assert server.value("SELECT count(*) FROM posts") == 0


async def test_the_server_stays_responsive_while_videos_are_probed(fedserver_processes, tmp_path):
    server = await serving(fedserver_processes)
    clips = [video(tmp_path, seconds=8, name=f"long{n}.mp4") for n in range(3)]
    async with Visitor(server.base) as alice, aiohttp.ClientSession() as http:
        assert (await alice.sign_in("alice", PASSWORD)).status == 303
        uploads = asyncio.gather(*(compose(alice, f"clip {n}", clip, "c.mp4", "video/mp4")
                                   for n, clip in enumerate(clips)))
        task = asyncio.ensure_future(uploads)
        worst, probes = 0.0, 0
        while not task.done() or probes < 5:
            started = time.monotonic()
            async with http.get(f"{server.base}/about/consent") as resp:
                assert resp.status == 200
            worst = max(worst, time.monotonic() - started)
            probes += 1
            await asyncio.sleep(0.02)
        assert [status for status, _ in await task] == [200, 200, 200]
        assert server.value("SELECT count(*) FROM post_attachments WHERE media_type = 'video/mp4'") == 3
        print(f"worst page latency while 3 videos were probed and cleaned: {worst * 1000:.0f} ms over {probes} probes")
        assert worst < 2.0, f"a page took {worst:.2f} s while videos were probed"


class VideoRemote(FakeRemote):
    """A FakeRemote that serves a real video, and an HTML page that claims to be one."""
    files: dict[str, tuple[bytes, str]]
    hits: list[str]

    async def _document(self, request: web.Request) -> web.StreamResponse:
        if not request.path.startswith("/media/"):
            return await super()._document(request)
        self.hits.append(request.path)
        found = self.files.get(request.path.removeprefix("/media/"))
        if found is None:
            return web.Response(status=404)
        return web.Response(body=found[0], content_type=found[1])


@pytest.fixture
async def remote(tmp_path) -> AsyncIterator[VideoRemote]:
    server = await VideoRemote.start("mallory")
    server.hits = []
    # The real video is sent as text/plain: the type comes from probing, never from the sender.
    server.files = {"real.mp4": (video(tmp_path), "text/plain"), "page.mp4": (HTML_PAGE, "video/mp4")}
    yield server
    await server.stop()


async def test_remote_video_is_played_from_the_media_cache_and_a_fake_one_stays_a_link(fedserver_processes, remote,
                                                                                       tmp_path):
    server = await serving(fedserver_processes)
    note = remote.note("mallory", "two videos", mention=server.actor_uri("alice"))
    note["attachment"] = [{"type": "Document", "mediaType": "video/mp4", "url": f"{remote.base}/media/{name}",
                           "name": f"video {name}", "width": 160, "height": 120, "duration": "PT1S"}
                          for name in ("real.mp4", "page.mp4")]
    status, body = await remote.post(f"{server.base}/inbox", remote.activity("mallory", "Create", note),
                                     as_user="mallory")
    assert status == 202, body

    def states() -> dict[str, str]:
        rows = server.query("SELECT url, state FROM remote_media WHERE purpose = 'video'")
        return {url.rsplit("/", 1)[1]: state for url, state in rows}

    await await_for(lambda: states() == {"real.mp4": "cached", "page.mp4": "failed"}, timeout=60,
                    what=f"videos settled: {states()}")
    post_id = server.value("SELECT id FROM posts WHERE uri = ?", (note["id"],))
    async with Visitor(server.base) as alice:
        assert (await alice.sign_in("alice", PASSWORD)).status == 303
        page = await alice.get(f"/posts/{post_id}")
        [tag] = re.findall(r"<video [^>]*>", page.text)
        src = re.search(r'src="(/media/cache/[0-9a-f]{64}\.mp4)"', tag).group(1)
        poster = re.search(r'poster="(/media/cache/[0-9a-f]{64}\.webp)"', tag).group(1)
        async with alice.http.get(server.base + src, headers={"Range": "bytes=0-"}) as resp:
            assert resp.status == 206 and resp.headers["Content-Type"] == "video/mp4"
            stored = await resp.read()
        assert not [s for s in SECRETS if s in json.dumps(probe(stored, tmp_path))]
        async with alice.http.get(server.base + poster) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "image/webp"
        # The HTML page is never served from here: it stays a link to where it came from.
        assert f'href="{remote.base}/media/page.mp4"' in page.text
        assert not [p for p in (server.directory / "media" / "cache").iterdir() if p.suffix in (".mp4", ".html")
                    and p.stat().st_size == len(HTML_PAGE)]


async def test_a_pruned_video_keeps_its_player_and_comes_back_when_played(fedserver_processes, remote, tmp_path):
    server = await serving(fedserver_processes)
    note = remote.note("mallory", "a video", mention=server.actor_uri("alice"))
    note["attachment"] = [{"type": "Document", "mediaType": "video/mp4", "url": f"{remote.base}/media/real.mp4",
                           "name": "colour bars", "width": 160, "height": 120}]
    status, body = await remote.post(f"{server.base}/inbox", remote.activity("mallory", "Create", note),
                                     as_user="mallory")
    assert status == 202, body
    await await_for(lambda: server.value("SELECT state FROM remote_media WHERE purpose = 'video'") == "cached",
                    timeout=60, what="the video cached")
    post_id = server.value("SELECT id FROM posts WHERE uri = ?", (note["id"],))
    cache = server.directory / "media" / "cache"
    assert {p.suffix for p in cache.iterdir()} == {".mp4", ".webp", ".png"}  # the video, its poster, its blurhash
    pruned = await server.arun("media", "prune", "--older-than-days", "0", check=True)
    assert "pruned 1 cached pictures (3 files removed)" in pruned.stdout and list(cache.iterdir()) == []

    async with Visitor(server.base) as alice:
        assert (await alice.sign_in("alice", PASSWORD)).status == 303
        page = await alice.get(f"/posts/{post_id}")
        assert page.status == 200
        [tag] = re.findall(r"<video [^>]*>", page.text)  # still a player, not a link to the other server
        src = re.search(r'src="(/media/cache/[0-9a-f]{64}\.mp4)"', tag).group(1)
        poster = re.search(r'poster="(/media/cache/[0-9a-f]{64}\.webp)"', tag).group(1)
        hits = len(remote.hits)
        # What a browser's player asks first: a range of the file; fetched again from its origin.
        async with alice.http.get(server.base + src, headers={"Range": "bytes=0-99"}) as resp:
            assert resp.status == 206 and resp.headers["Content-Type"] == "video/mp4"
            assert len(await resp.read()) == 100
        async with alice.http.get(server.base + poster) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "image/webp"
        assert len(remote.hits) == hits + 1  # one fetch brought back the file and its poster
        assert server.value("SELECT state FROM remote_media WHERE purpose = 'video'") == "cached"
