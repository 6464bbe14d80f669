"""Pictures in one's own posts, between two real instances: uploaded with the compose form, cleaned
of their metadata, served from here, described, and federated as Mastodon sends media, so the other
server lists them with their descriptions."""
from __future__ import annotations

import io

import aiohttp
from PIL import Image

from fedserver.services import accounts, follows
from tests.conftest import wait_until
from tests.web.browser import Browser, person


def phone_photo() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 1.0)}
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


async def compose(browser: Browser, text: str, pictures: list[tuple[bytes, str]]) -> tuple[int, str]:
    page = await browser.get("/home")
    form = aiohttp.FormData()
    for name, value in (("csrf_token", page.csrf), ("back", "/home"), ("text", text), ("visibility", "public")):
        form.add_field(name, value)
    for number, (data, description) in enumerate(pictures, start=1):
        form.add_field(f"picture{number}", data, filename=f"p{number}.jpg", content_type="image/jpeg")
        form.add_field(f"picture{number}_description", description)
    async with browser.http.post(browser.base + "/posts", data=form) as resp:
        return resp.status, await resp.text()


async def test_a_post_with_a_picture_is_served_clean_and_reaches_the_other_server_described(instances):
    a, b = await instances("a"), await instances("b")
    alice = await person(a, "alice")
    await accounts.create_account(b.ctx, "bob")
    try:
        await follows.follow(b.ctx, "bob", a.handle("alice"))
        await wait_until(lambda: a.count("SELECT count(*) FROM follows WHERE state = 'accepted'"), what="follow")

        status, text = await compose(alice, "Look at the sky", [(phone_photo(), "A clear blue sky")])
        assert status == 200 and "Your post is published." in text
        [(post_id, post_uri)] = await a.query("SELECT id, uri FROM posts")
        [(url, media_type, description)] = await a.query(
            "SELECT url, media_type, description FROM post_attachments WHERE post_id = ?", (post_id,))
        assert url.startswith(f"{a.base}/media/") and media_type == "image/jpeg" and description == "A clear blue sky"
        async with alice.http.get(url) as resp:
            served = await resp.read()
        assert b"PhoneMaker" not in served and dict(Image.open(io.BytesIO(served)).getexif()) == {}

        # Served as Mastodon sends media, and listed by the other server with its description.
        async with alice.http.get(post_uri, headers={"Accept": "application/activity+json"}) as resp:
            note = await resp.json(content_type=None)
        assert note["attachment"] == [{"type": "Document", "mediaType": "image/jpeg", "url": url,
                                       "name": "A clear blue sky", "width": 64, "height": 48}]
        await wait_until(lambda: b.count("SELECT count(*) FROM post_attachments WHERE url = ? AND description = ?",
                                         (url, "A clear blue sky")), what="the picture listed at b")
        page = await alice.get(f"/@alice/{post_id}")
        # Shown inline from this server as a thumbnail, described, sized without a layout jump; the
        # original a click away.
        path = url[len(a.base):]
        [(thumb, blur)] = await a.query("SELECT thumb_url, blur_url FROM post_attachments WHERE post_id = ?",
                                        (post_id,))
        assert thumb.startswith(f"{a.base}/media/") and thumb.endswith(".webp") and blur.endswith(".png")
        assert (f'<a href="{path}" title="Open the original"><img src="{thumb[len(a.base):]}" alt="A clear blue sky"'
                ' width="64" height="48"') in page.text

        # Not a picture: nothing is posted, and the form says why.
        status, text = await compose(alice, "Broken", [(b"%PDF-1.4 not a picture", "")])
        assert status == 400 and "picture 1: the picture must be a PNG, JPEG, GIF or WebP image" in text
        assert await a.count("SELECT count(*) FROM posts") == 1

        # Deleted, the post takes its picture with it, here and at b.
        deleted = await alice.submit(f"/posts/{post_id}/delete", f"/posts/{post_id}/delete", {})
        assert deleted.status == 200
        async with alice.http.get(url) as resp:
            assert resp.status == 404
        assert not [p for p in a.ctx.settings.media_dir.iterdir() if p.is_file()]  # picture, thumbnail, blur
        await wait_until(lambda: _gone_at(b, url), what="the picture gone at b")
    finally:
        await alice.close()


async def _gone_at(instance, url: str) -> bool:
    return await instance.count("SELECT count(*) FROM post_attachments WHERE url = ?", (url,)) == 0
