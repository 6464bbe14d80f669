"""Search against real `fedserver serve` processes: a post's or profile's URL on another server is
fetched, stored and opened here; full text finds the posts of authors who opted in (indexable,
local or remote) and the searcher's own, never others' or followers-only ones; blocks and mutes
apply; hashtags and account names are found; query syntax typed into the box is just text."""
from __future__ import annotations

import html
import json
import re
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.fake_remote import AS_PUBLIC, FakeRemote
from tests.e2e.processes import ServerProcess, wait_for
from tests.e2e.web_client import Visitor

PASSWORD = "a long enough password"


def _users(server: ServerProcess, tmp_path: Path, *names: str) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD)
    for name in names:
        server.run("user", "create", name, "--password-file", str(secret), check=True)


async def _signed_in(server: ServerProcess, username: str) -> Visitor:
    visitor = Visitor(server.base)
    assert (await visitor.sign_in(username, PASSWORD)).status == 303
    return visitor


async def _set_indexable(server: ServerProcess, username: str, on: bool) -> None:
    async with await _signed_in(server, username) as visitor:
        saved = await visitor.submit("/settings/profile", "/settings/search", {"indexable": "on"} if on else {})
        assert saved.status == 303


def _search(q: str, **extra: str) -> str:
    return "/search?q=" + quote(q, safe="") + "".join(f"&{k}={quote(v)}" for k, v in extra.items())


def _actor_document(server: ServerProcess, username: str) -> dict:
    request = urllib.request.Request(server.actor_uri(username), headers={"Accept": "application/activity+json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@pytest.fixture
async def pair(fedserver_processes, tmp_path: Path) -> tuple[ServerProcess, ServerProcess]:
    here, there = fedserver_processes("here"), fedserver_processes("there")
    _users(here, tmp_path, "alice", "carol", "dave")
    _users(there, tmp_path, "bob", "eve")
    await here.astart()
    await there.astart()
    return here, there


async def test_a_post_url_from_another_server_is_fetched_stored_and_opened_here(pair):
    here, there = pair
    post_uri = there.run("post", "bob", "A post from the other server about otters", check=True).stdout.strip()
    post_number = post_uri.rsplit("/", 1)[1]
    async with await _signed_in(here, "alice") as alice:
        # Its page address (which sends ActivityPub clients on to the id) and its id both open it.
        for url in (f"{there.base}/@bob/{post_number}", post_uri):
            opened = await alice.get(_search(url))
            assert opened.status == 303 and opened.location and opened.location.startswith("/posts/"), opened
            local_id = here.value("SELECT id FROM posts WHERE uri = ?", (post_uri,))
            assert opened.location == f"/posts/{local_id}"
            page = await alice.get(opened.location)
            assert page.status == 200 and "A post from the other server about otters" in page.text
        assert here.value("SELECT count(*) FROM posts WHERE uri = ?", (post_uri,)) == 1
        # A profile's address opens the account here.
        profile = await alice.get(_search(f"{there.base}/@bob"))
        bob_id = here.value("SELECT id FROM actors WHERE uri = ?", (there.actor_uri("bob"),))
        assert profile.status == 303 and profile.location == f"/remote/{bob_id}"
        # Nothing there, or nobody listening: a plain sentence, not an error page.
        missing = await alice.get(_search(f"{there.base}/@bob/12345"))
        assert missing.status == 404 and "has nothing at that address" in html.unescape(missing.text)
        unreachable = await alice.get(_search("http://127.0.0.1:9/@x/1"))
        assert unreachable.status == 404 and "We could not reach 127.0.0.1:9" in unreachable.text
        # One of our own posts, by its page address.
        own_uri = here.run("post", "alice", "My own otter notes", check=True).stdout.strip()
        own = await alice.get(_search(f"{here.base}/@alice/{own_uri.rsplit('/', 1)[1]}"))
        assert own.status == 303 and own.location == f"/posts/{own_uri.rsplit('/', 1)[1]}"


async def test_a_hostile_server_cannot_pass_off_a_post_as_another_servers_through_search(pair):
    here, there = pair
    real_uri = there.run("post", "bob", "The real words of bob", check=True).stdout.strip()
    mallory = await FakeRemote.start("mallory")
    try:
        # A page that claims to be bob's post (on another server) with words bob never wrote: the
        # claimed id is fetched from its own server, so what is stored is bob's real post.
        mallory.documents["/fake/1"] = {"id": real_uri, "type": "Note", "attributedTo": there.actor_uri("bob"),
                                        "content": "<p>Forged words</p>", "to": [AS_PUBLIC]}
        # A post on mallory's server attributed to bob: refused (its author must be on its own host).
        forged = mallory.note("mallory", "Forged words again")
        forged["attributedTo"] = there.actor_uri("bob")
        mallory.serve(forged)
        async with await _signed_in(here, "alice") as alice:
            opened = await alice.get(_search(f"{mallory.base}/fake/1"))
            assert opened.status == 303
            assert "The real words of bob" in (await alice.get(opened.location)).text
            refused = await alice.get(_search(forged["id"]))
            assert refused.status == 404 and "not a post or a profile we can show" in refused.text
        assert here.value("SELECT count(*) FROM posts WHERE content_text LIKE '%Forged%'") == 0
        assert here.value("SELECT count(*) FROM posts WHERE uri = ?", (forged["id"],)) == 0
    finally:
        await mallory.stop()


async def test_full_text_finds_indexable_authors_posts_and_not_the_others(pair):
    here, there = pair
    there.run("follow", "eve", here.handle("carol"), check=True)
    wait_for(lambda: there.value("SELECT count(*) FROM follows WHERE state = 'accepted'") == 1,
             what="eve's follow of carol accepted")
    assert there.value("SELECT indexable FROM actors WHERE uri = ?", (here.actor_uri("carol"),)) == 0
    await _set_indexable(here, "carol", True)
    await _set_indexable(there, "bob", True)
    # The choice is federated as Mastodon's `indexable` on the actor (off by default), and sent to
    # the servers of the person's followers in an Update.
    assert _actor_document(here, "carol")["indexable"] is True
    assert _actor_document(here, "dave")["indexable"] is False
    wait_for(lambda: there.value("SELECT indexable FROM actors WHERE uri = ?", (here.actor_uri("carol"),)) == 1,
             what="the Update of carol's actor at the follower's server")
    here.run("post", "carol", "A zebra crossing by carol #zebras", check=True)
    here.run("post", "dave", "A zebra crossing by dave #zebras", check=True)
    bob_post = there.run("post", "bob", "A zebra crossing by bob", check=True).stdout.strip()
    eve_post = there.run("post", "eve", "A zebra crossing by eve", check=True).stdout.strip()
    async with await _signed_in(here, "alice") as alice:
        for uri in (bob_post, eve_post):  # known here once someone opened them
            assert (await alice.get(_search(uri))).status == 303
        found = await alice.get(_search("zebra crossing"))
        assert found.status == 200
        for name in ("carol", "bob"):
            assert f"A zebra crossing by {name}" in found.text
        for name in ("dave", "eve"):
            assert f"A zebra crossing by {name}" not in found.text
        # Diacritics and case do not matter.
        assert "by carol" in (await alice.get(_search("ZÉBRA"))).text

        # Hashtags, with how many public posts carry them, linking to the tag page.
        tags = await alice.get(_search("#zeb"))
        assert '<a href="/tags/zebras">#zebras</a>' in tags.text and "2 public posts" in tags.text

        # Account names: local and known remote ones, by username or display name.
        people = await alice.get(_search("bo"))
        bob_id = here.value("SELECT id FROM actors WHERE uri = ?", (there.actor_uri("bob"),))
        assert f'href="/remote/{bob_id}"' in people.text
        assert 'href="/@carol"' in (await alice.get(_search("car"))).text

        # A muted author drops out of the results; a blocked one too.
        carol_id = here.value("SELECT id FROM actors WHERE username = 'carol' AND is_local = 1")
        await alice.submit("/search?q=carol", "/mute", {"actor_id": str(carol_id), "back": "/search"})
        assert "by carol" not in (await alice.get(_search("zebra"))).text
        await alice.submit("/search?q=bob", "/block", {"actor_id": str(bob_id), "back": "/search", "confirm": "yes"})
        assert "by bob" not in (await alice.get(_search("zebra"))).text

    # Turning the setting off takes the posts out of others' results at once.
    await _set_indexable(here, "carol", False)
    async with await _signed_in(here, "dave") as dave:
        after = await dave.get(_search("zebra"))
        assert "by carol" not in after.text and "by dave" in after.text  # dave still finds his own
        assert "by bob" in after.text and 'href="/remote/' in (await dave.get(_search("bob"))).text
        # An admin's domain block takes the domain's posts and accounts out of search.
        here.run("domain-block", "add", there.domain, check=True)
        assert "by bob" not in (await dave.get(_search("zebra"))).text
        assert 'href="/remote/' not in (await dave.get(_search("bob"))).text


async def test_followers_only_posts_are_found_by_their_author_only(pair):
    here, _ = pair
    await _set_indexable(here, "alice", True)
    here.run("follow", "carol", "@alice@" + here.domain, check=True)
    wait_for(lambda: here.value("SELECT count(*) FROM follows WHERE state = 'accepted'") == 1, what="the follow")
    here.run("post", "alice", "Walrus secrets for followers", "--visibility", "followers", check=True)
    here.run("post", "alice", "Walrus facts for everyone", check=True)
    async with await _signed_in(here, "alice") as alice:
        own = await alice.get(_search("walrus"))
        assert "Walrus secrets for followers" in own.text and "Walrus facts for everyone" in own.text
    async with await _signed_in(here, "carol") as carol:
        other = await carol.get(_search("walrus"))
        assert "Walrus facts for everyone" in other.text and "Walrus secrets" not in other.text
        assert 'href="/@alice"' in (await carol.get(_search("alice"))).text
        # A suspended account's posts and name are not found any more.
        here.run("user", "suspend", "alice", check=True)
        assert "Walrus facts" not in (await carol.get(_search("walrus"))).text
        assert 'href="/@alice"' not in (await carol.get(_search("alice"))).text


async def test_query_syntax_typed_into_the_box_gives_a_normal_result_page(pair):
    here, _ = pair
    here.run("post", "alice", 'She said "near" the harbour (twice)', check=True)
    async with await _signed_in(here, "alice") as alice:
        for q in ['"', 'NEAR(', 'NEAR(harbour', 'harbour"', '"harbour', 'harbour AND', 'OR NOT', '*', 'x*',
                  'content_text:harbour', '^harbour', '(harbour', 'harbour)', '{content_text}: x', '-harbour',
                  "harbour'", "\\", "%", "_", "#", "#(", "@", "a" * 5000, "harbour " * 100, "nul\x00byte"]:
            page = await alice.get(_search(q))
            assert page.status in (200, 400), (q, page.status, page.text[:300])
            assert "<h1>Search</h1>" in page.text, q
            if page.status == 400:
                assert "Type an address like" in page.text and 'role="alert"' in page.text
        for q in ('NEAR(the harbour', 'harbour"', '"harbour', '(harbour', "harbour)", '"near" (twice)'):
            page = await alice.get(_search(q))
            assert page.status == 200 and "the harbour (twice)" in html.unescape(page.text), q


async def test_results_are_paged_newest_first(pair):
    here, _ = pair
    async with await _signed_in(here, "alice") as alice:
        # Posted through the compose form, one after another: 25 `fedserver post` processes took
        # most of this test's time (each starts Python and imports the server).
        token = await alice.csrf_token("/home")
        for number in range(25):
            posted = await alice.post_form("/posts", token, {"back": "/home", "text": f"Puffin note number {number}"})
            assert posted.status == 303, posted.text[:300]
        first = await alice.get(_search("puffin"))
        shown = re.findall(r"Puffin note number (\d+)", first.text)
        assert shown[:2] == ["24", "23"] and len(set(shown)) == 20
        older = re.search(r'href="(/search\?[^"]*max_id=\d+)" rel="next"', first.text)
        assert older, "no link to older results"
        second = await alice.get(html.unescape(older.group(1)))
        assert sorted(set(re.findall(r"Puffin note number (\d+)", second.text)), key=int) == ["0", "1", "2", "3", "4"]


async def test_hashtag_counts_on_search_are_exact_and_follow_posts_edits_and_deletions(fedserver_processes,
                                                                                     tmp_path: Path):
    """The number beside each hashtag is its live public posts, read from counts kept with every
    write (no cap: a tag with 1,001 posts says 1001, not "1000+"), and it follows what is posted,
    edited and deleted here and what another server sends and takes back."""
    from tests.e2e.serve_support import delivered

    here = fedserver_processes("here")
    _users(here, tmp_path, "alice")
    await here.astart()
    remote = await FakeRemote.start("eve")
    try:
        async with await _signed_in(here, "alice") as alice:
            token = await alice.csrf_token("/home")
            for number in range(1001):
                posted = await alice.post_form("/posts", token, {"back": "/home", "text": f"Walrus {number} #Walrus"})
                assert posted.status == 303, posted.text[:300]
            for visibility in ("followers", "unlisted"):  # not public: not counted
                posted = await alice.post_form("/posts", token, {"visibility": visibility,
                                                                 "text": f"Walrus {visibility} #walrus"})
                assert posted.status == 303

            async def count_shown() -> str:
                found = (await alice.get(_search("#walr"))).text
                assert '<a href="/tags/walrus">#walrus</a>' in found
                return re.search(r'#walrus</a> <span class="muted">([^<]*)</span>', found).group(1)

            assert await count_shown() == "1001 public posts"
            edited, deleted = [here.value("SELECT id FROM posts WHERE content_text = ?", (f"Walrus {n} #Walrus",))
                               for n in (7, 8)]
            saved = await alice.submit(f"/posts/{edited}/edit", f"/posts/{edited}/edit",
                                       {"text": "No more tag here", "content_warning": ""})
            assert saved.status == 303
            assert await count_shown() == "1000 public posts"
            assert (await alice.submit(f"/posts/{deleted}/delete", f"/posts/{deleted}/delete", {})).status == 303
            assert await count_shown() == "999 public posts"
            assert (await alice.submit(f"/posts/{deleted}/delete", f"/posts/{deleted}/delete", {})).status in (
                303, 404, 410)  # deleting twice counts once
            assert await count_shown() == "999 public posts"

            # Another server's public post with the tag counts; its Delete takes it back.
            create = remote.create_note("eve", "a walrus from afar #walrus", mention=here.actor_uri("alice"))
            create["object"]["tag"].append({"type": "Hashtag", "name": "#walrus"})
            await delivered(here, remote, create, as_user="eve")
            assert here.value("SELECT count(*) FROM posts WHERE uri = ?", (create["object"]["id"],)) == 1
            assert await count_shown() == "1000 public posts"
            delete = remote.activity("eve", "Delete", {"id": create["object"]["id"], "type": "Tombstone"})
            await delivered(here, remote, delete, as_user="eve")
            assert await count_shown() == "999 public posts"
            # A tag whose posts are all gone is not offered.
            here.run("post", "alice", "Once #seal", check=True)
            seal = here.value("SELECT id FROM posts WHERE content_text = 'Once #seal'")
            assert "#seal</a>" in (await alice.get(_search("#sea"))).text
            assert (await alice.submit(f"/posts/{seal}/delete", f"/posts/{seal}/delete", {})).status == 303
            assert "#seal</a>" not in (await alice.get(_search("#sea"))).text
    finally:
        await remote.stop()
