"""Settings (profile, picture, consent, password, deletion), sign-up modes and the admin page,
through real HTTP against a running instance."""
from __future__ import annotations

import io
import re

import struct
import zlib

import aiohttp
from PIL import Image

from fedserver.services import accounts, auth, follows
from tests.conftest import wait_until
from tests.web.browser import PASSWORD, Browser, person


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
            + chunk(b"IEND", b""))


async def upload(browser: Browser, data: bytes, filename: str, content_type: str):
    page = await browser.get("/settings/profile")
    form = aiohttp.FormData()
    form.add_field("csrf_token", page.csrf)
    form.add_field("avatar", data, filename=filename, content_type=content_type)
    async with browser.http.post(browser.base + "/settings/avatar", data=form) as resp:
        return resp.status, await resp.text()


async def test_profile_changes_show_on_the_profile_and_in_the_actor_document(instances):
    a = await instances("a")
    ann = await person(a, "ann")
    page = await ann.submit("/settings/profile", "/settings/profile",
                            {"display_name": "Ann <Example>", "bio": "I write at https://ann.example", "locked": "on"})
    assert page.status == 200 and "Your profile was saved" in page.text
    profile = await ann.get("/@ann")
    assert "Ann &lt;Example&gt;" in profile.text and 'href="https://ann.example"' in profile.text
    async with ann.http.get(a.actor_uri("ann"), headers={"Accept": "application/activity+json"}) as resp:
        actor = await resp.json(content_type=None)
    assert actor["name"] == "Ann <Example>" and actor["manuallyApprovesFollowers"] is True
    assert "https://ann.example" in actor["summary"]
    await ann.close()


async def test_a_picture_upload_is_served_as_an_image_and_other_files_are_refused(instances):
    a = await instances("a")
    ann = await person(a, "ann")
    status, text = await upload(ann, b"<script>alert(1)</script>", "evil.png", "image/png")
    assert status == 400 and "must be a PNG" in text
    status, text = await upload(ann, b"\x89PNG\r\n\x1a\n" + b"0" * (3 * 1024 * 1024), "big.png", "image/png")
    assert status == 400 and "at most" in text
    status, _ = await upload(ann, tiny_png(), "me.png", "image/png")
    assert status == 200
    actor = (await a.query("SELECT icon_url, icon_media_type FROM actors WHERE username = 'ann'"))[0]
    assert actor[1] == "image/png"
    async with ann.http.get(actor[0]) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/png"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        served = Image.open(io.BytesIO(await resp.read()))
        original = Image.open(io.BytesIO(tiny_png()))
        assert served.format == "PNG" and served.size == original.size
        assert served.convert("RGB").tobytes() == original.convert("RGB").tobytes()  # the same picture
    async with ann.http.get(a.base + "/media/../fedserver.sqlite3") as resp:
        assert resp.status == 404
    await ann.close()


async def test_a_phone_photo_is_published_without_its_location_or_other_metadata_and_the_right_way_up(instances):
    a = await instances("a")
    ann = await person(a, "ann")
    photo = Image.new("RGB", (60, 30), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # taken holding the phone sideways: shown turned by 90 degrees
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 1.0)}  # where it was taken
    taken = io.BytesIO()
    photo.save(taken, format="JPEG", exif=exif.tobytes(), comment=b"home address")
    try:
        status, _ = await upload(ann, taken.getvalue() + b"APPENDED-PAYLOAD", "photo.jpg", "image/jpeg")
        assert status == 200
        [(icon_url, media_type)] = await a.query("SELECT icon_url, icon_media_type FROM actors WHERE username = 'ann'")
        assert media_type == "image/jpeg"
        async with ann.http.get(icon_url) as resp:
            published = await resp.read()
        for secret in (b"PhoneMaker", b"home address", b"APPENDED-PAYLOAD"):
            assert secret not in published
        served = Image.open(io.BytesIO(published))
        assert dict(served.getexif()) == {} and "comment" not in served.info
        assert served.size == (30, 60)  # turned upright, as the phone meant it
    finally:
        await ann.close()


async def test_consent_page_records_the_choice_with_the_terms_version_and_shows_the_history(instances):
    a = await instances("a")
    ann = await person(a, "ann")
    page = await ann.get("/settings/consent")
    assert "you have not decided, and that means no" in page.text
    stale = await ann.post("/settings/consent", {"csrf_token": page.csrf, "train_ai": "allow", "license": "CC0-1.0",
                                                  "scope": "all", "terms_version": "an-older-version"})
    assert stale.status == 409
    done = await ann.post("/settings/consent", {"csrf_token": page.csrf, "train_ai": "allow", "license": "CC0-1.0",
                                                 "scope": "future", "terms_version": "consent-2026-11-v1"})
    assert done.status == 200 and "<strong>Yes</strong>" in done.text and "CC0-1.0" in done.text
    rows = await a.query("SELECT choice, license, scope, source, terms_version FROM consent_events")
    assert rows == [("allow", "CC0-1.0", "future", "self", "consent-2026-11-v1")]
    await ann.close()


async def test_password_change_signs_out_other_sessions(instances):
    a = await instances("a")
    laptop = await person(a, "ann")
    phone = Browser(a.base)
    await phone.sign_in("ann")
    page = await laptop.submit("/settings/password", "/settings/password", {
        "current_password": PASSWORD, "new_password": "a brand new one", "new_password_confirm": "a brand new one"})
    assert "Your password was changed" in page.text
    assert (await phone.get("/home")).url.endswith("/auth/sign_in?next=/home")
    assert (await laptop.get("/home")).status == 200
    await phone.sign_in("ann", "a brand new one")
    await laptop.close()
    await phone.close()


async def test_deleting_an_account_on_the_web_federates_a_delete(instances):
    a = await instances("a")
    b = await instances("b")
    ann = await person(a, "ann")
    await accounts.create_account(b.ctx, "bob")
    await follows.follow(b.ctx, "bob", a.handle("ann"))
    await wait_until(lambda: a.count("SELECT count(*) FROM follows WHERE state = 'accepted'"), what="follow")
    wrong = await ann.submit("/settings/delete", "/settings/delete", {"confirm": "ann", "password": "nope"})
    assert wrong.status == 400
    page = await ann.submit("/settings/delete", "/settings/delete", {"confirm": "ann", "password": PASSWORD})
    assert "Your account was deleted" in page.text
    await wait_until(lambda: b.count("SELECT count(*) FROM actors WHERE uri = ? AND deleted_at IS NOT NULL",
                                     (a.actor_uri("ann"),)), what="Delete(Person) processed at b")
    async with ann.http.get(a.actor_uri("ann"), headers={"Accept": "application/activity+json"}) as resp:
        assert resp.status == 410
    await ann.close()


async def test_sign_up_follows_the_registration_mode_and_invites_are_single_use(instances):
    a = await instances("a")
    visitor = Browser(a.base)
    closed = await visitor.get("/auth/sign_up")
    assert "Sign-up is closed" in closed.text
    await auth.set_registration_mode(a.ctx, "invite")
    code = await auth.create_invite(a.ctx)
    form = {"username": "newbie", "password": PASSWORD, "password_confirm": PASSWORD}
    refused = await visitor.submit("/auth/sign_up", "/auth/sign_up", {**form, "invite": "not-a-code"})
    assert refused.status == 400 and "not valid" in refused.text
    joined = await visitor.submit("/auth/sign_up", "/auth/sign_up", {**form, "invite": code})
    assert joined.url.endswith("/home")
    second = Browser(a.base)
    again = await second.submit("/auth/sign_up", "/auth/sign_up",
                                {"username": "other", "password": PASSWORD, "password_confirm": PASSWORD,
                                 "invite": code})
    assert again.status == 400
    await visitor.close()
    await second.close()


async def test_repeated_wrong_passwords_are_throttled(instances):
    a = await instances("a")
    await accounts.create_account(a.ctx, "ann", password=PASSWORD)
    visitor = Browser(a.base)
    statuses = []
    for _ in range(6):
        page = await visitor.submit("/auth/sign_in", "/auth/sign_in", {"username": "ann", "password": "wrong"})
        statuses.append(page.status)
    assert statuses == [401] * 5 + [429]
    # Even the right password waits until the window has passed.
    right = await visitor.submit("/auth/sign_in", "/auth/sign_in", {"username": "ann", "password": PASSWORD})
    assert right.status == 429
    await visitor.close()


async def test_admin_page_is_for_admins_and_manages_researchers_invites_and_domain_blocks(instances):
    a = await instances("a")
    ann = await person(a, "ann")
    assert (await ann.get("/admin")).status == 403
    boss = await person(a, "boss", admin=True)
    page = await boss.get("/admin")
    assert page.status == 200 and "Delivery queue" in page.text
    token_page = await boss.submit("/admin", "/admin/researchers", {"name": "lab", "contact": "lab@example.org"})
    assert 'id="researcher-token"' in token_page.text
    assert "fsr_" in token_page.text and "fsr_" not in (await boss.get("/admin")).text
    invite = await boss.submit("/admin", "/admin/invites", {"max_uses": "2"})
    assert "New invite code" in invite.text
    blocked = await boss.submit("/admin", "/admin/domain_blocks", {"domain": "Spam.Example", "reason": "spam"})
    assert "spam.example is blocked" in blocked.text
    assert await a.query("SELECT domain, reason FROM domain_blocks") == [("spam.example", "spam")]
    suspended = await boss.submit("/admin", "/admin/accounts/suspend", {"name": "ann", "action": "suspend"})
    assert "@ann is suspended" in suspended.text
    assert (await ann.get("/home")).url.endswith("/auth/sign_in?next=/home")
    await ann.close()
    await boss.close()


async def test_unread_notifications_are_counted_in_the_navigation_until_seen(instances):
    a = await instances("a")
    ann = await person(a, "ann")
    bob = await person(a, "bob")
    await bob.submit("/search?q=%40ann", "/follow", {"actor_id": str((await a.query(
        "SELECT id FROM actors WHERE username = 'ann'"))[0][0])})
    page = await ann.get("/home")
    assert 'Notifications <span class="badge">1<span class="visually-hidden"> new</span>' in page.text
    await ann.get("/notifications")
    assert "badge" not in (await ann.get("/home")).text
    await ann.close()
    await bob.close()


async def test_admin_renames_the_instance_and_nodeinfo_and_pages_follow(instances):
    a = await instances("a")
    boss = await person(a, "boss", admin=True)
    page = await boss.submit("/admin", "/admin/instance", {"name": "Quiet Garden", "description": "A calm place"})
    assert "Instance settings saved" in page.text and "<title>Admin · Quiet Garden</title>" in page.text
    async with boss.http.get(a.base + "/nodeinfo/2.1") as resp:
        metadata = (await resp.json(content_type=None))["metadata"]
    assert (metadata["nodeName"], metadata["nodeDescription"]) == ("Quiet Garden", "A calm place")
    await boss.close()


async def test_admin_gives_a_researcher_a_new_token_and_the_old_one_stops_working(instances):
    a = await instances("a")
    boss = await person(a, "boss", admin=True)
    api = f"{a.base}/api/corpus/v1/terms"

    async def status_with(token: str) -> int:
        async with boss.http.get(api, headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status

    try:
        first = await boss.submit("/admin", "/admin/researchers", {"name": "lab"})
        old_token = re.search(r'id="researcher-token">([^<]+)<', first.text).group(1)
        assert await status_with(old_token) == 200

        rotated = await boss.submit("/admin", "/admin/researchers/rotate", {"name": "lab"})
        assert rotated.status == 200 and "New token for researcher lab" in rotated.text
        assert rotated.headers["Cache-Control"] == "no-store"
        new_token = re.search(r'id="researcher-token">([^<]+)<', rotated.text).group(1)
        assert new_token.startswith("fsr_") and new_token != old_token
        assert await status_with(old_token) == 401
        assert await status_with(new_token) == 200
        assert new_token not in (await boss.get("/admin")).text

        await boss.submit("/admin", "/admin/researchers/revoke", {"name": "lab"})
        refused = await boss.submit("/admin", "/admin/researchers/rotate", {"name": "lab"})
        assert refused.status == 400 and "a revoked researcher gets no new token" in refused.text
    finally:
        await boss.close()
