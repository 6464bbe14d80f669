"""Uploaded pictures cannot burn the server's CPU: the real `fedserver serve`, pictures sent through
the real forms (the avatar in settings, a picture in a post). A tiny GIF declaring 60 frames of
3000x3000 (540 million pixels to decode, half a minute of CPU) is refused from its header while
sign-in stays quick; a picture that gets past the bounds is cut off by the image worker's CPU,
wall-clock or memory limit, and the next upload works; ordinary photos and small animations are
still published, without their metadata."""
from __future__ import annotations

import asyncio
import io
import struct
import time
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from tests.e2e.processes import ServerProcess, set_config_keys
from tests.web.browser import PASSWORD, Browser

# Old code: 25 s of CPU per hostile GIF, run in the default thread pool that sign-in also needs.
UPLOAD_BOUND_SECONDS = 5.0
PROBE_BOUND_SECONDS = 2.0
PROBE_TIMEOUT_SECONDS = 15.0


def hostile_gif(side: int = 3000, frames: int = 60) -> bytes:
    """Pillow writes 60 one-pixel frames; the logical screen is then widened to side x side, as an
    attacker would: about 2 KB that Pillow decodes as 60 full 3000x3000 canvases."""
    images = []
    for number in range(frames):
        image = Image.new("P", (1, 1), number % 2)
        image.putpalette([0, 0, 0, 255, 255, 255])
        images.append(image)
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=50, loop=0)
    data = bytearray(out.getvalue())
    data[6:10] = struct.pack("<HH", side, side)
    return bytes(data)


def phone_photo() -> bytes:
    """Taken holding the phone sideways, with its maker and GPS position in EXIF and a comment."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 1.0)}
    out = io.BytesIO()
    Image.new("RGB", (60, 30), (200, 30, 30)).save(out, format="JPEG", exif=exif.tobytes(), comment=b"home address")
    return out.getvalue()


def small_animation() -> bytes:
    frames = [Image.new("RGB", (40, 40), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=[100, 200, 300], loop=0,
                   comment=b"made at home")
    return out.getvalue()


async def serving(server: ServerProcess, **uploads) -> Browser:
    """Start the server with these [uploads] settings; alice, signed in through the form."""
    if uploads:
        set_config_keys(server.config, **uploads)
    secret = server.directory / "password"
    secret.write_text(PASSWORD)
    server.run("user", "create", "alice", "--password-file", str(secret), check=True)
    await server.astart()
    alice = Browser(server.base)
    await alice.sign_in("alice")
    return alice


async def upload_avatar(browser: Browser, data: bytes, filename: str = "me.gif") -> tuple[int, str]:
    page = await browser.get("/settings/profile")
    form = aiohttp.FormData()
    form.add_field("csrf_token", page.csrf)
    form.add_field("avatar", data, filename=filename, content_type="image/gif")
    async with browser.http.post(browser.base + "/settings/avatar", data=form) as resp:
        return resp.status, await resp.text()


async def post_picture(browser: Browser, data: bytes, text: str, filename: str = "p.gif") -> tuple[int, str]:
    page = await browser.get("/home")
    form = aiohttp.FormData()
    for name, value in (("csrf_token", page.csrf), ("back", "/home"), ("text", text), ("visibility", "public")):
        form.add_field(name, value)
    form.add_field("picture1", data, filename=filename, content_type="image/gif")
    form.add_field("picture1_description", "a picture")
    async with browser.http.post(browser.base + "/posts", data=form) as resp:
        return resp.status, await resp.text()


async def timed(call) -> tuple[float, tuple[int, str]]:
    started = time.monotonic()
    result = await call
    return time.monotonic() - started, result


class Probe:
    """While uploads run: someone signing in (Argon2, in the server's thread pool) and an anonymous
    page (the event loop), again and again; keeps the worst latency."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.worst = 0.0
        self.count = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT_SECONDS)) as http:
            while not self._stop.is_set():
                for path in ("/.well-known/nodeinfo", None):
                    started = time.monotonic()
                    try:
                        if path:
                            async with http.get(self.base + path) as resp:
                                assert resp.status == 200
                        else:
                            visitor = Browser(self.base)
                            try:
                                await asyncio.wait_for(visitor.sign_in("alice"), PROBE_TIMEOUT_SECONDS)
                            finally:
                                await visitor.close()
                    except asyncio.TimeoutError:
                        pass  # counted as the full timeout below
                    self.worst = max(self.worst, time.monotonic() - started)
                    self.count += 1
                await asyncio.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()


def served_image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


async def test_a_tiny_gif_with_huge_frames_is_refused_quickly_while_sign_in_stays_responsive(fedserver_processes):
    server = fedserver_processes("a")
    alice = await serving(server)
    probe = Probe(server.base)
    probing = asyncio.create_task(probe.run())
    gif = hostile_gif()
    assert len(gif) < 4096
    try:
        await asyncio.sleep(0.3)
        # More uploads at once than the server has threads in its default pool (cores + 4).
        uploads = [asyncio.create_task(timed(upload_avatar(alice, gif))) for _ in range(4)]
        uploads += [asyncio.create_task(timed(post_picture(alice, gif, f"hostile {n}"))) for n in range(4)]
        done, pending = await asyncio.wait(uploads, timeout=30)
        await asyncio.sleep(0.5)
        probe.stop()
        await asyncio.wait_for(probing, timeout=PROBE_TIMEOUT_SECONDS + 5)
        assert probe.count >= 4 and probe.worst < PROBE_BOUND_SECONDS, \
            f"worst probe {probe.worst:.2f}s over {probe.count} probes"
        assert not pending, f"{len(pending)} of {len(uploads)} uploads still unanswered after 30 s"
        for elapsed, (status, text) in (task.result() for task in uploads):
            assert status == 400, status
            assert "the picture is too large: at most 32 million pixels are taken, " \
                   "this one has 540 million over its 60 frames" in text
            assert elapsed < UPLOAD_BOUND_SECONDS, f"refused only after {elapsed:.1f}s"
        assert server.value("SELECT icon_url FROM actors WHERE username = 'alice'") is None
        assert server.value("SELECT count(*) FROM posts") == 0

        # Ordinary pictures still go through, without their metadata: a phone photo as avatar
        # (turned upright), a small animation in a post (still animated, with its timing).
        status, _ = await upload_avatar(alice, phone_photo(), "photo.jpg")
        assert status == 200
        icon_url = server.value("SELECT icon_url FROM actors WHERE username = 'alice'")
        async with alice.http.get(icon_url) as resp:
            published = await resp.read()
        assert b"PhoneMaker" not in published and b"home address" not in published
        photo = served_image(published)
        assert photo.format == "JPEG" and dict(photo.getexif()) == {} and photo.size == (30, 60)

        status, text = await post_picture(alice, small_animation(), "moving")
        assert status == 200 and "Your post is published." in text
        url = server.value("SELECT url FROM post_attachments")
        async with alice.http.get(url) as resp:
            published = await resp.read()
        assert b"made at home" not in published
        animation = served_image(published)
        assert animation.format == "GIF" and animation.n_frames == 3 and animation.size == (40, 40)
        durations = []
        for index in range(3):
            animation.seek(index)
            durations.append(animation.info["duration"])
            assert animation.convert("RGB").getpixel((20, 20)) == ((255, 0, 0), (0, 255, 0), (0, 0, 255))[index]
        assert durations == [100, 200, 300]
    finally:
        probe.stop()
        probing.cancel()
        await alice.close()


def gif_frames(count: int, side: int = 1) -> list[Image.Image]:
    frames = []
    for number in range(count):
        frame = Image.new("P", (side, side), number % 2)
        frame.putpalette([0, 0, 0, 255, 255, 255])
        frames.append(frame)
    return frames


def gif_bytes(frames: list[Image.Image]) -> bytes:
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    return out.getvalue()


def growing_gif() -> bytes:
    """The header says 10x10; the next two frames are 4000x4000, and Pillow grows the canvas to
    them as it decodes: 32 million pixels that the header did not announce."""
    small, big = gif_bytes(gif_frames(1, 10)), gif_bytes(gif_frames(1, 4000))

    def blocks(data: bytes) -> tuple[bytes, bytes]:
        palette = 3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0
        return data[:13 + palette], data[13 + palette:-1]  # header and palette; frames without the trailer

    head, first = blocks(small)
    return head + first + blocks(big)[1] * 2 + b";"


def png(mode: str, size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, format="PNG")
    return out.getvalue()


async def test_pictures_beyond_the_side_frame_or_pixel_bounds_are_refused_with_a_clear_message(fedserver_processes):
    server = fedserver_processes("a")
    alice = await serving(server)
    try:
        for data, message in [
            (png("L", (20000, 1)), "the picture may be at most 16384 pixels wide and high, this one is 20000x1"),
            (png("1", (7000, 5000)), "the picture is too large: at most 32 million pixels are taken, "
                                     "this one has 35 million"),
            (gif_bytes(gif_frames(1200)), "an animation may have at most 1000 frames, this one has 1200"),
            (growing_gif(), "the picture is too large: at most 32 million pixels are taken, "
                            "this one has more than that over its 3 frames"),
        ]:
            elapsed, (status, text) = await timed(upload_avatar(alice, data))
            assert status == 400 and message in text, (status, message)
            assert elapsed < UPLOAD_BOUND_SECONDS, f"refused only after {elapsed:.1f}s"
        status, text = await post_picture(alice, png("L", (20000, 1)), "too wide")
        assert status == 400 and "picture 1: the picture may be at most 16384 pixels wide and high" in text
        assert server.value("SELECT icon_url FROM actors WHERE username = 'alice'") is None
        assert server.value("SELECT count(*) FROM posts") == 0
    finally:
        await alice.close()


@pytest.mark.parametrize("limit, settings, side, log_line", [
    # 60 frames of 1500x1500: about 6 s of CPU, and 600 MB (under the default 1024 MB) if decoded.
    ("cpu", {"upload_cpu_seconds": 1}, 1500, "used more than 1s of CPU"),
    ("wall clock", {"upload_cpu_seconds": 100, "upload_timeout_seconds": 2.0}, 1500, "still decoding after 2.0s"),
    # 60 decoded frames of 3000x3000 would take 1.6 GB.
    ("memory", {"upload_memory_mb": 256}, 3000, "needed more than 256 MB"),
])
async def test_a_picture_past_the_bounds_is_cut_off_by_the_worker_limit_and_the_next_upload_works(
        fedserver_processes, limit, settings, side, log_line):
    server = fedserver_processes("a")
    # The pixel bound raised out of the way, so that only the worker's limit can stop the decoding.
    alice = await serving(server, upload_max_pixels=2_000_000_000, **settings)
    try:
        expected = "the picture needs too much memory to process" if limit == "memory" \
            else "the picture takes too long to process"
        elapsed, (status, text) = await timed(upload_avatar(alice, hostile_gif(side)))
        assert status == 400 and expected in text
        assert elapsed < 12, f"cut off only after {elapsed:.1f}s"
        assert server.value("SELECT icon_url FROM actors WHERE username = 'alice'") is None
        assert log_line in Path(server.stderr_path).read_text()

        # The next picture gets a fresh worker, in the avatar form and in a post.
        status, _ = await upload_avatar(alice, phone_photo(), "photo.jpg")
        assert status == 200
        assert server.value("SELECT icon_media_type FROM actors WHERE username = 'alice'") == "image/jpeg"
        status, text = await post_picture(alice, small_animation(), "after the limit")
        assert status == 200 and "Your post is published." in text
    finally:
        await alice.close()
