"""Lists, keyword filters, followed hashtags, profile fields with rel=me verification and the
compose language picker, against two real `fedserver serve` processes over HTTP (and a real aiohttp
page on loopback for rel=me), as a person signed in through the web forms sees them."""
from __future__ import annotations

import asyncio
import html
import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import bound_socket
from tests.e2e.fake_remote import FakeRemote
from tests.e2e.processes import ProcessGroup, ServerProcess, await_for, set_config_keys
from tests.e2e.web_client import CSRF_RE, Visitor

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two serving instances shared by this module's tests (each test uses its own account names).
    a's instance default language is French, to tell it from the built-in English."""
    group = ProcessGroup(tmp_path_factory.mktemp("social"))
    try:
        a, b = group("a"), group("b")
        set_config_keys(a.config, default_post_language="fr")
        secret = a.directory / "password"
        secret.write_text(PASSWORD)
        a.start()
        b.start()
        yield a, b
    finally:
        group.close()


def create_users(server: ServerProcess, *names: str) -> None:
    secret = server.directory / "password"
    secret.write_text(PASSWORD)
    for name in names:
        server.run("user", "create", name, "--password-file", str(secret), check=True)


def post(server: ServerProcess, username: str, text: str, *args: str) -> str:
    return server.run("post", username, text, *args, check=True).stdout.strip().splitlines()[-1]


def follow(server: ServerProcess, follower: str, handle: str) -> None:
    server.run("follow", follower, handle, check=True)


def actor_id(server: ServerProcess, uri: str) -> int:
    return server.value("SELECT id FROM actors WHERE uri = ?", (uri,))


async def signed_in(server: ServerProcess, username: str) -> Visitor:
    visitor = Visitor(server.base)
    answer = await visitor.sign_in(username, PASSWORD)
    assert answer.status == 303, answer.text[:300]
    return visitor


async def post_form(visitor: Visitor, page: str, action: str, pairs: list[tuple[str, str]]) -> tuple[int, str, str]:
    """Post a form with repeated fields (checkbox groups): the CSRF token from page; returns
    (status, Location, body)."""
    form = await visitor.get(page)
    match = CSRF_RE.search(form.text)
    assert match, f"no CSRF token on {page}: {form.status}"
    data = aiohttp.FormData([("csrf_token", html.unescape(match.group(1))), *pairs])
    async with visitor.http.post(visitor.base + action, data=data, allow_redirects=False) as resp:
        return resp.status, resp.headers.get("Location", ""), await resp.text()


def texts(page: str) -> str:
    return html.unescape(page)


# --- lists -------------------------------------------------------------------------------------------

async def test_a_list_timeline_shows_only_its_accounts_with_its_replies_policy(pair):
    a, _ = pair
    create_users(a, "lia", "lcarol", "ldave", "lerin", "lmallory")
    for name in ("lcarol", "ldave", "lerin"):
        follow(a, "lia", a.handle(name))
    carol_post = post(a, "lcarol", "Carol writes on the list")
    post(a, "lerin", "Erin is not on the list")
    erin_post = post(a, "lerin", "Erin asks something")
    post(a, "ldave", "Dave answers Carol", "--reply-to", carol_post)
    post(a, "ldave", "Dave answers Erin", "--reply-to", erin_post)
    post(a, "lcarol", "Carol continues her thread", "--reply-to", carol_post)
    lia = await signed_in(a, "lia")
    try:
        status, location, _ = await post_form(lia, "/lists", "/lists", [("title", "Close friends"),
                                                                       ("replies_policy", "list")])
        assert status == 303 and re.fullmatch(r"/lists/\d+/edit", location), (status, location)
        list_path = location.removesuffix("/edit")
        for name in ("lcarol", "ldave"):
            status, _, _ = await post_form(lia, location, f"{list_path}/members",
                                           [("actor_id", str(actor_id(a, a.actor_uri(name)))), ("action", "add")])
            assert status == 303
        # Only accounts one follows can be added.
        status, _, body = await post_form(lia, location, f"{list_path}/members",
                                          [("actor_id", str(actor_id(a, a.actor_uri("lmallory")))),
                                           ("action", "add")])
        assert status == 400 and "you can only add accounts you follow" in texts(body)

        page = texts((await lia.get(list_path)).text)
        assert "Close friends" in page
        assert "Carol writes on the list" in page and "Carol continues her thread" in page
        assert "Dave answers Carol" in page  # a reply to another member: shown under "list"
        assert "Dave answers Erin" not in page  # erin is not on the list
        assert "Erin is not on the list" not in page and "Erin asks something" not in page

        # "followed": replies to anyone lia follows; "none": no replies to others.
        await post_form(lia, location, location, [("title", "Close friends"), ("replies_policy", "followed")])
        page = texts((await lia.get(list_path)).text)
        assert "Dave answers Erin" in page and "Dave answers Carol" in page and "Erin asks something" not in page
        await post_form(lia, location, location, [("title", "Renamed"), ("replies_policy", "none")])
        page = texts((await lia.get(list_path)).text)
        assert "Renamed" in page and "Carol continues her thread" in page
        assert "Dave answers Erin" not in page and "Dave answers Carol" not in page

        # Nobody else sees lia's list.
        create_users(a, "lother")
        other = await signed_in(a, "lother")
        try:
            assert (await other.get(list_path)).status == 404
            status, _, _ = await post_form(other, "/lists", f"{list_path}/delete", [])
            assert status == 404
        finally:
            await other.close()

        # An exclusive list keeps its accounts off home; its own timeline still shows them.
        assert "Carol writes on the list" in texts((await lia.get("/home")).text)
        await post_form(lia, location, location, [("title", "Renamed"), ("replies_policy", "list"),
                                                  ("exclusive", "on")])
        home = texts((await lia.get("/home")).text)
        assert "Carol writes on the list" not in home and "Erin asks something" in home
        assert "Carol writes on the list" in texts((await lia.get(list_path)).text)

        # Unfollowing takes an account off one's lists; deleting the list removes it.
        a.run("unfollow", "lia", a.handle("lcarol"), check=True)
        assert "Carol writes on the list" not in texts((await lia.get(list_path)).text)
        status, location, _ = await post_form(lia, "/lists", f"{list_path}/delete", [])
        assert status == 303 and location == "/lists"
        assert (await lia.get(list_path)).status == 404
    finally:
        await lia.close()


# --- keyword filters ------------------------------------------------------------------------------

async def test_keyword_filters_hide_or_warn_in_their_contexts_until_they_expire(pair):
    a, _ = pair
    create_users(a, "fia", "fcarol")
    follow(a, "fia", a.handle("fcarol"))
    post(a, "fcarol", "I really love durian for breakfast")
    post(a, "fcarol", "Cats are the best")
    post(a, "fcarol", "Nothing to filter here")
    post(a, "fcarol", f"Hey {a.handle('fia')}, have some durian")
    fia = await signed_in(a, "fia")
    try:
        status, location, _ = await post_form(fia, "/filters/new", "/filters/new", [
            ("title", "Fruit"), ("keyword_0", "DURIAN"), ("whole_word_0", "on"),
            ("context", "home"), ("context", "notifications"), ("action", "hide"), ("expires_in", "")])
        assert status == 303 and location == "/filters", status
        home = texts((await fia.get("/home")).text)
        assert "durian" not in home.lower() and "Nothing to filter here" in home
        assert "have some durian" not in texts((await fia.get("/notifications")).text)
        # Not chosen for public timelines: the local timeline still shows it.
        assert "I really love durian" in texts((await fia.get("/local")).text)

        # A whole-word keyword does not match inside a word; otherwise it does.
        await post_form(fia, "/filters/new", "/filters/new", [
            ("title", "Pets"), ("keyword_0", "cat"), ("whole_word_0", "on"), ("context", "home"),
            ("action", "warn"), ("expires_in", "")])
        home = texts((await fia.get("/home")).text)
        assert "Filtered: Pets" not in home and "Cats are the best" in home
        filter_id = a.value("SELECT id FROM keyword_filters WHERE title = 'Pets'")
        await post_form(fia, f"/filters/{filter_id}", f"/filters/{filter_id}", [
            ("title", "Pets"), ("keyword_0", "cat"), ("context", "home"), ("action", "warn"), ("expires_in", "keep")])
        home = (await fia.get("/home")).text
        # Folded behind its filter's title, in a <details> that opens without JavaScript.
        folded = re.search(r'<details class="filtered"><summary>Filtered: Pets .*?</summary>(.*?)</details>\s*</article>',
                           home, re.S)
        assert folded and "Cats are the best" in folded.group(1)

        # In threads: a hidden reply goes from the conversation, and shows folded when opened itself.
        start = post(a, "fcarol", "A thread about films")
        reply = post(a, "fcarol", "Spoiler: the butler did it", "--reply-to", start)
        start_id, reply_id = (a.value("SELECT id FROM posts WHERE uri = ?", (uri,)) for uri in (start, reply))
        await post_form(fia, "/filters/new", "/filters/new", [
            ("title", "Films"), ("keyword_0", "spoiler"), ("context", "thread"), ("action", "hide"),
            ("expires_in", "")])
        thread = texts((await fia.get(f"/@fcarol/{start_id}")).text)
        assert "A thread about films" in thread and "the butler did it" not in thread
        opened = (await fia.get(f"/@fcarol/{reply_id}")).text
        assert "Filtered: Films" in opened and "the butler did it" in texts(opened)

        # Bad input gets a clear error and keeps nothing.
        status, _, body = await post_form(fia, "/filters/new", "/filters/new", [
            ("title", "No words"), ("context", "home"), ("action", "hide"), ("expires_in", "")])
        assert status == 400 and "at least one keyword" in texts(body)
        status, _, body = await post_form(fia, "/filters/new", "/filters/new", [
            ("title", "Nowhere"), ("keyword_0", "x"), ("context", "elsewhere"), ("action", "hide")])
        assert status == 400 and "choose where the filter applies" in texts(body)
        assert a.value("SELECT count(*) FROM keyword_filters WHERE title IN ('No words', 'Nowhere')") == 0

        # An expiring filter stops applying at its end.
        await post_form(fia, "/filters/new", "/filters/new", [
            ("title", "Briefly"), ("keyword_0", "Nothing"), ("context", "home"), ("action", "hide"),
            ("expires_in", "2")])
        assert "Nothing to filter here" not in texts((await fia.get("/home")).text)
        await asyncio.sleep(2.5)
        assert "Nothing to filter here" in texts((await fia.get("/home")).text)
        listing = texts((await fia.get("/filters")).text)
        assert "Briefly" in listing and "expired" in listing
    finally:
        await fia.close()


# --- followed hashtags ----------------------------------------------------------------------------

async def test_posts_with_a_followed_hashtag_appear_on_home_including_ones_from_another_server(pair):
    a, b = pair
    create_users(a, "tia", "tdave", "tcarol")
    b.run("user", "create", "tbob", check=True)
    # tdave follows tbob, so tbob's posts reach a; tia follows neither.
    follow(a, "tdave", b.handle("tbob"))
    await await_for(lambda: a.value("SELECT state FROM follows f JOIN actors x ON x.id = f.followee_id"
                                    " WHERE x.uri = ?", (b.actor_uri("tbob"),)) == "accepted",
                    what="tdave's follow accepted")
    remote_uri = post(b, "tbob", "Tomatoes from far away #Gardening")
    post(a, "tcarol", "Local gardening tips #gardening")
    post(a, "tcarol", "Not about plants #cooking")
    await await_for(lambda: a.value("SELECT count(*) FROM posts WHERE uri = ?", (remote_uri,)), what="tbob's post at a")
    tia = await signed_in(a, "tia")
    try:
        home = texts((await tia.get("/home")).text)
        assert "Tomatoes from far away" not in home and "Local gardening tips" not in home
        tag_page = texts((await tia.get("/tags/gardening")).text)
        assert "Follow #gardening" in tag_page
        status, location, body = await post_form(tia, "/tags/gardening", "/tags/GARDENING/follow",
                                                  [("back", "/tags/gardening")])
        assert status == 303 and location == "/tags/gardening", body[:300]
        assert "Unfollow #gardening" in texts((await tia.get("/tags/gardening")).text)
        home = texts((await tia.get("/home")).text)
        assert "Tomatoes from far away" in home and "Local gardening tips" in home
        assert "Not about plants" not in home
        assert "#gardening" in texts((await tia.get("/followed_tags")).text)
        # Hostile tag names get a clear error, not a 500.
        status, _, _ = await post_form(tia, "/tags/gardening", "/tags/no%20such%3Ctag%3E/follow", [])
        assert status == 400
        await post_form(tia, "/tags/gardening", "/tags/gardening/unfollow", [])
        assert "Tomatoes from far away" not in texts((await tia.get("/home")).text)
    finally:
        await tia.close()


# --- profile fields and rel=me ---------------------------------------------------------------------

class Pages:
    """A personal web site on loopback: pages that link back to a profile with rel="me", one that
    does not, and one that never answers."""

    def __init__(self, profile_url: str) -> None:
        self.profile_url = profile_url
        # Bound now and served from this socket, so that no test running beside this one can take the
        # port in between (a port number looked up and closed again could be).
        self.sock = bound_socket()
        self.port = self.sock.getsockname()[1]
        self.runner: web.AppRunner | None = None
        self.released = asyncio.Event()  # set on close: a stalled request ends then, not after 60 s

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> "Pages":
        app = web.Application()
        link = f'<a rel="me noopener" href="{self.profile_url}">me elsewhere</a>'
        bodies = {
            "/me": f"<!doctype html><title>Home page</title><p>{link}</p>",
            "/also-me": f'<!doctype html><link rel="ME" href="{self.profile_url}/"><title>x</title>',
            "/not-me": f'<!doctype html><a href="{self.profile_url}">no rel</a>'
                       '<a rel="me" href="https://elsewhere.example/@x">x</a>',
        }

        async def page(request: web.Request) -> web.Response:
            return web.Response(text=bodies[request.path], content_type="text/html")
        for path in bodies:
            app.router.add_get(path, page)

        async def stall(_: web.Request) -> web.Response:
            # Never answers while the test runs; the runner's cleanup waits for open handlers
            # (aiohttp's shutdown_timeout, 60 s), so close() releases it.
            try:
                await asyncio.wait_for(self.released.wait(), 60)
            except asyncio.TimeoutError:
                pass
            return web.Response(text="late")
        app.router.add_get("/stall", stall)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()
        return self

    async def close(self) -> None:
        self.released.set()
        if self.runner is not None:
            await self.runner.cleanup()
        self.sock.close()


def fields_of(server: ServerProcess, uri: str) -> list[dict]:
    return json.loads(server.value("SELECT fields_json FROM actors WHERE uri = ?", (uri,)) or "[]")


def field_pairs(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    pairs = []
    for n in range(4):
        name, value = rows[n] if n < len(rows) else ("", "")
        pairs += [(f"field_name_{n}", name), (f"field_value_{n}", value)]
    return [("display_name", "Pia"), ("bio", ""), *pairs]


async def test_profile_fields_federate_and_a_link_back_with_rel_me_is_verified(pair):
    a, b = pair
    create_users(a, "pia")
    create_users(b, "pbob2")
    follow(b, "pbob2", a.handle("pia"))
    await await_for(lambda: b.value("SELECT state FROM follows f JOIN actors x ON x.id = f.followee_id"
                                    " WHERE x.uri = ?", (a.actor_uri("pia"),)) == "accepted",
                    what="pbob2 follows pia")
    profile_url = f"{a.base}/@pia"
    pages = await Pages(profile_url).start()
    pia = await signed_in(a, "pia")
    try:
        status, _, body = await post_form(pia, "/settings/profile", "/settings/profile", field_pairs([
            ("Website", f"{pages.base}/me"), ("Pronouns", "she/her <b>"), ("Other", f"{pages.base}/not-me")]))
        assert status == 303, body[:500]
        # Verified in the background: the mark appears on the profile once the page was read.
        await await_for(lambda: any(f["verified_at"] for f in fields_of(a, a.actor_uri("pia"))), what="rel=me verified")
        marks = {f["name"]: f["verified_at"] for f in fields_of(a, a.actor_uri("pia"))}
        assert marks["Website"] and not marks["Other"] and not marks["Pronouns"]
        profile = (await pia.get("/@pia")).text
        assert re.search(r'<div class="verified">\s*<dt>Website</dt>', profile)
        assert "<dt>Other</dt>" in profile and "she/her &lt;b&gt;" in profile

        # The actor document carries them as Mastodon's PropertyValue attachments ...
        with urllib.request.urlopen(urllib.request.Request(
                a.actor_uri("pia"), headers={"Accept": "application/activity+json"}), timeout=10) as resp:
            doc = json.loads(resp.read())
        attachment = {item["name"]: item for item in doc["attachment"]}
        assert set(attachment) == {"Website", "Pronouns", "Other"}
        assert all(item["type"] == "PropertyValue" for item in attachment.values())
        assert f'href="{pages.base}/me"' in attachment["Website"]["value"]
        # ... and the Update(Person) brings them to the other server, shown on the remote profile.
        await await_for(lambda: len(fields_of(b, a.actor_uri("pia"))) == 3, what="fields at b")
        remote_fields = {f["name"]: f for f in fields_of(b, a.actor_uri("pia"))}
        assert "she/her &lt;b&gt;" in remote_fields["Pronouns"]["value"]
        bob = await signed_in(b, "pbob2")
        try:
            page = texts((await bob.get(f"/remote/{actor_id(b, a.actor_uri('pia'))}")).text)
            assert "Website" in page and "she/her <b>" in page
        finally:
            await bob.close()

        # A changed value loses its mark and is checked again; a page that hangs does not hold up
        # the save (it is fetched off the request path, within the fetch timeout).
        started = time.monotonic()
        status, _, _ = await post_form(pia, "/settings/profile", "/settings/profile", field_pairs([
            ("Website", f"{pages.base}/also-me"), ("Stalls", f"{pages.base}/stall")]))
        assert status == 303 and time.monotonic() - started < 3
        assert not any(f["verified_at"] for f in fields_of(a, a.actor_uri("pia")))
        await await_for(lambda: {f["name"]: f["verified_at"] for f in fields_of(a, a.actor_uri("pia"))}.get("Website"),
                        what="the new page verified")
        assert (await pia.get("/@pia")).status == 200

        # Bad input: a fifth field, or a value without a label, is refused with a clear message.
        status, _, body = await post_form(pia, "/settings/profile", "/settings/profile", [
            ("display_name", "Pia"), ("bio", ""), ("field_name_0", ""), ("field_value_0", "orphan")])
        assert status == 400 and "give the field" in texts(body) and "a label" in texts(body)
        assert {f["name"] for f in fields_of(a, a.actor_uri("pia"))} == {"Website", "Stalls"}
    finally:
        await pia.close()
        await pages.close()


class HostileFields(FakeRemote):
    """A remote whose actor `mallory` sends forty profile fields full of markup and odd shapes."""

    def actor_document(self, name: str) -> dict[str, Any]:
        doc = super().actor_document(name)
        if name == "mallory":
            doc["attachment"] = [
                {"type": "PropertyValue", "name": "<script>alert(1)</script>Site",
                 "value": '<a href="javascript:alert(2)" onclick="x()">click</a><script>alert(3)</script>'},
                {"type": "PropertyValue", "name": "Huge", "value": "<b>" * 5000 + "x" * 50_000},
                {"type": "PropertyValue", "name": ["not", "a", "string"], "value": "dropped"},
                {"type": "Image", "url": "https://elsewhere.example/picture.png"},
                "not an object",
                *({"type": "PropertyValue", "name": f"Field {n}", "value": f"value {n}"} for n in range(40)),
            ]
        return doc


async def test_hostile_profile_fields_from_a_remote_are_bounded_and_sanitized(pair):
    a, _ = pair
    create_users(a, "hia")
    remote = await HostileFields.start("mallory")
    try:
        # Following resolves and stores the actor document.
        await a.arun("follow", "hia", f"@mallory@{remote.domain}", check=True)
        fields = fields_of(a, remote.actor_uri("mallory"))
        assert 1 < len(fields) <= 16
        # Values are HTML, sanitized when stored; names are plain text, escaped when shown.
        stored = json.dumps([f["value"] for f in fields])
        assert "javascript:" not in stored and "onclick" not in stored and "<script" not in stored
        assert "dropped" not in stored and all(len(f["value"]) < 60_000 for f in fields)
        assert not any(f["verified_at"] for f in fields)  # another server's word is not a verified mark
        hia = await signed_in(a, "hia")
        try:
            page = await hia.get(f"/remote/{actor_id(a, remote.actor_uri('mallory'))}")
            assert page.status == 200
            assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;Site" in page.text
            assert "<dt>Field 0</dt>" in page.text
        finally:
            await hia.close()
    finally:
        await remote.stop()


# --- the language picker ----------------------------------------------------------------------------

def selected_language(page: str) -> str | None:
    select = page.split('id="compose-language"', 1)[1].split("</select>", 1)[0]
    match = re.search(r'<option value="([a-z]+)" selected>', select)
    return match.group(1) if match else None


async def test_compose_picks_a_language_that_federates_as_content_map(pair):
    a, b = pair
    create_users(a, "gia")
    create_users(b, "gbob")
    follow(b, "gbob", a.handle("gia"))
    await await_for(lambda: b.value("SELECT state FROM follows f JOIN actors x ON x.id = f.followee_id"
                                    " WHERE x.uri = ?", (a.actor_uri("gia"),)) == "accepted",
                    what="gbob follows gia")
    gia = await signed_in(a, "gia")
    try:
        # A first post: the instance's default language (French here).
        assert selected_language((await gia.get("/home")).text) == "fr"
        status, _, _ = await post_form(gia, "/home", "/posts", [("text", "Guten Morgen"), ("visibility", "public"),
                                                                ("language", "de"), ("back", "/home")])
        assert status == 303
        # The next post starts with the language last used.
        assert selected_language((await gia.get("/home")).text) == "de"
        uri = a.value("SELECT uri FROM posts WHERE content_text = 'Guten Morgen'")
        with urllib.request.urlopen(urllib.request.Request(
                uri, headers={"Accept": "application/activity+json"}), timeout=10) as resp:
            note = json.loads(resp.read())
        assert list(note["contentMap"]) == ["de"]
        await await_for(lambda: b.value("SELECT language FROM posts WHERE uri = ?", (uri,)) == "de",
                        what="the post at b, in German")
        # The page marks the text's language for screen readers and translators.
        assert 'lang="de"' in (await gia.get("/home")).text

        # An unknown code is refused with a clear message; nothing is posted.
        status, _, body = await post_form(gia, "/home", "/posts", [("text", "Nope"), ("visibility", "public"),
                                                                   ("language", "xx-evil"), ("back", "/home")])
        assert status == 400 and "is not a language code we know" in texts(body)
        assert a.value("SELECT count(*) FROM posts WHERE content_text = 'Nope'") == 0
    finally:
        await gia.close()
