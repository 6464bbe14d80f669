"""What a peer or a browser reads from a running fedserver over real HTTP: WebFinger, host-meta,
NodeInfo, actor, post and collection documents, and authorized-fetch mode (federation.md §1, §2,
§3.4, §6)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from urllib.parse import quote, urljoin

import aiohttp
import jsonschema
import pytest
import yarl
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from fedserver.activitypub.httpsig import sign_request
from fedserver.federation.routes import PAGE_SIZE
from fedserver.services import accounts, follows, posting
from fedserver.services.posting import Draft
from tests.e2e.nodeinfo_schema import nodeinfo_schema

AS2 = "application/activity+json"
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
LD_AS2 = f'application/ld+json; profile="{AS_CONTEXT}"'
# What Mastodon's fetcher sends: before and after mastodon PR #30354 (federation.md §2.1).
MASTODON_ACCEPT_OLD = "application/activity+json, application/ld+json"
MASTODON_ACCEPT = f'application/ld+json; profile="{AS_CONTEXT}", application/activity+json, application/ld+json'
JRD_ACCEPT = "application/jrd+json, application/json"
FIREFOX_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
NODEINFO_REL = "http://nodeinfo.diaspora.software/ns/schema/{}"




pytestmark = pytest.mark.usefixtures("fast_accounts")


def media_type(resp: aiohttp.ClientResponse) -> str:
    return resp.headers.get("Content-Type", "").split(";")[0].strip()


def vary(resp: aiohttp.ClientResponse) -> set[str]:
    return {v.strip().lower() for v in resp.headers.get("Vary", "").split(",") if v.strip()}


async def get_json(http: aiohttp.ClientSession, url: str, *, accept: str = AS2, status: int = 200) -> dict:
    async with http.get(url, headers={"Accept": accept}, allow_redirects=False) as resp:
        assert resp.status == status, f"GET {url}: {resp.status} {await resp.text()}"
        return await resp.json(content_type=None)


async def account_key(instance, username: str) -> tuple[str, str]:
    """(key_id, private key PEM) of a local account, as stored in the instance's database."""
    rows = await instance.query(
        "SELECT a.key_id, l.private_key_pem FROM actors a JOIN local_accounts l ON l.actor_id = a.id"
        " WHERE l.username = ?", (username,))
    return rows[0]


async def signed_get(http: aiohttp.ClientSession, url: str, key: tuple[str, str], *,
                     accept: str = AS2) -> aiohttp.ClientResponse:
    headers = sign_request("GET", url, body=None, key_id=key[0], private_key_pem=key[1], accept=accept)
    # encoded=True: send exactly the path that was signed.
    return await http.get(yarl.URL(url, encoded=True), headers=headers, allow_redirects=False)


def webfinger_url(instance, resource: str) -> str:
    return f"{instance.base}/.well-known/webfinger?resource={quote(resource, safe='')}"


# --- WebFinger ----------------------------------------------------------------------------

async def test_webfinger_acct_resource_returns_jrd_with_one_self_link_to_the_actor(instances):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    resource = f"acct:alice@{a.domain}"
    async with aiohttp.ClientSession() as http:
        async with http.get(webfinger_url(a, resource), headers={"Accept": JRD_ACCEPT}) as resp:
            assert resp.status == 200
            assert media_type(resp) == "application/jrd+json"
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            jrd = await resp.json(content_type=None)
        assert jrd["subject"] == resource
        selves = [link for link in jrd["links"] if link.get("rel") == "self"]
        assert len(selves) == 1
        assert selves[0]["type"] == AS2
        assert selves[0]["href"] == a.actor_uri("alice")
        # Round trip (federation.md §0 rule 3): the actor the link names has this username and id.
        actor = await get_json(http, selves[0]["href"])
        assert actor["id"] == selves[0]["href"]
        assert f"acct:{actor['preferredUsername']}@{a.domain}" == resource


@pytest.mark.parametrize("resource_of", [lambda a: a.actor_uri("alice"), lambda a: f"{a.base}/@alice",
                                         lambda a: f"alice@{a.domain}"],
                         ids=["actor-url", "profile-url", "bare-handle"])
async def test_webfinger_also_accepts_the_actor_url_profile_url_and_bare_handle(instances, resource_of):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    async with aiohttp.ClientSession() as http:
        jrd = await get_json(http, webfinger_url(a, resource_of(a)), accept=JRD_ACCEPT)
    assert jrd["subject"] == f"acct:alice@{a.domain}"
    assert [link["href"] for link in jrd["links"] if link.get("rel") == "self"] == [a.actor_uri("alice")]


async def test_webfinger_without_resource_is_400(instances):
    a = await instances("a")
    async with aiohttp.ClientSession() as http:
        for url in (f"{a.base}/.well-known/webfinger", f"{a.base}/.well-known/webfinger?resource="):
            async with http.get(url) as resp:
                assert resp.status == 400, url


@pytest.mark.parametrize("resource_of", [
    lambda a: f"acct:nobody@{a.domain}",
    lambda a: "acct:alice@elsewhere.example",
    lambda a: f"{a.base}/users/nobody",
    # A profile URL on another host names someone else, even with the same username.
    lambda a: "https://elsewhere.example/@alice",
    lambda a: f"acct:instance.actor@{a.domain}",
], ids=["unknown-user", "other-domain", "unknown-actor-url", "foreign-profile-url", "internal-instance-name"])
async def test_webfinger_for_an_account_we_do_not_have_is_404(instances, resource_of):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    async with aiohttp.ClientSession() as http:
        async with http.get(webfinger_url(a, resource_of(a)), headers={"Accept": JRD_ACCEPT}) as resp:
            assert resp.status == 404


async def test_webfinger_answers_head_like_get_without_a_body(instances):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    async with aiohttp.ClientSession() as http:
        async with http.head(webfinger_url(a, f"acct:alice@{a.domain}")) as resp:
            assert resp.status == 200
            assert media_type(resp) == "application/jrd+json"
            assert await resp.read() == b""
        async with http.head(webfinger_url(a, f"acct:nobody@{a.domain}")) as resp:
            assert resp.status == 404


async def test_instance_actor_is_an_application_at_slash_actor_found_by_webfinger(instances):
    a = await instances("a")
    host = a.domain.split(":")[0]
    async with aiohttp.ClientSession() as http:
        jrd = await get_json(http, webfinger_url(a, f"acct:{host}@{a.domain}"), accept=JRD_ACCEPT)
        assert jrd["subject"] == f"acct:{host}@{a.domain}"
        [href] = [link["href"] for link in jrd["links"] if link.get("rel") == "self"]
        assert href == f"{a.base}/actor"
        by_url = await get_json(http, webfinger_url(a, href), accept=JRD_ACCEPT)
        assert by_url["subject"] == jrd["subject"]
        async with http.get(href, headers={"Accept": MASTODON_ACCEPT}) as resp:
            assert resp.status == 200
            assert media_type(resp) == AS2
            actor = await resp.json(content_type=None)
        assert actor["id"] == href
        assert actor["type"] == "Application"
        assert actor["preferredUsername"] == host
        assert actor["publicKey"]["owner"] == href
        assert AS_CONTEXT in actor["@context"]
        # Every collection it advertises can be read.
        outbox = await get_json(http, actor["outbox"])
        assert outbox["id"] == actor["outbox"] and outbox["type"] == "OrderedCollection"
        assert outbox["totalItems"] == 0


# --- host-meta and NodeInfo ---------------------------------------------------------------

async def test_host_meta_is_xrd_whose_lrdd_template_finds_accounts(instances):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{a.base}/.well-known/host-meta") as resp:
            assert resp.status == 200
            assert media_type(resp) == "application/xrd+xml"
            root = ET.fromstring(await resp.read())
        ns = "{http://docs.oasis-open.org/ns/xri/xrd-1.0}"
        assert root.tag == f"{ns}XRD"
        [template] = [link.get("template") for link in root.findall(f"{ns}Link") if link.get("rel") == "lrdd"]
        assert template == f"{a.base}/.well-known/webfinger?resource={{uri}}"
        url = template.replace("{uri}", quote(f"acct:alice@{a.domain}", safe=""))
        jrd = await get_json(http, url, accept=JRD_ACCEPT)
    assert jrd["subject"] == f"acct:alice@{a.domain}"


async def test_nodeinfo_discovery_links_schema_2_0_and_2_1_documents(instances):
    a = await instances("a")
    async with aiohttp.ClientSession() as http:
        discovery = await get_json(http, f"{a.base}/.well-known/nodeinfo", accept="application/json")
        hrefs = {link["rel"]: link["href"] for link in discovery["links"]}
        assert set(hrefs) == {NODEINFO_REL.format("2.0"), NODEINFO_REL.format("2.1")}
        for version in ("2.0", "2.1"):
            doc = await get_json(http, hrefs[NODEINFO_REL.format(version)], accept="application/json")
            assert doc["version"] == version


@pytest.mark.parametrize("version", ["2.0", "2.1"])
async def test_nodeinfo_validates_against_its_schema_and_counts_users_and_live_local_posts(instances, version):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    await accounts.create_account(a.ctx, "bob")
    await posting.create_post(a.ctx, "alice", Draft(text="one"))
    doomed = await posting.create_post(a.ctx, "alice", Draft(text="two"))
    await posting.create_post(a.ctx, "bob", Draft(text="three", visibility="followers"))
    await posting.delete_post(a.ctx, "alice", doomed.uri)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{a.base}/nodeinfo/{version}") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == (
                f'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/{version}#"')
            doc = await resp.json(content_type=None)
    jsonschema.Draft4Validator(nodeinfo_schema(version)).validate(doc)
    assert doc["usage"]["users"]["total"] == 2  # the instance actor is not a user
    assert doc["usage"]["users"]["activeMonth"] == 2
    assert doc["usage"]["localPosts"] == 2
    assert doc["protocols"] == ["activitypub"]


def test_nodeinfo_schema_rejects_what_the_spec_forbids():
    """The schema file is strict enough to catch the mistakes it is there for."""
    good = {"version": "2.1", "software": {"name": "fedserver", "version": "1"}, "protocols": ["activitypub"],
            "services": {"inbound": [], "outbound": []}, "openRegistrations": False,
            "usage": {"users": {"total": 1}}, "metadata": {}}
    validator = jsonschema.Draft4Validator(nodeinfo_schema("2.1"))
    assert validator.is_valid(good)
    for bad in ({**good, "extra": 1}, {**good, "software": {"name": "FedServer", "version": "1"}},
                {**good, "protocols": []}, {k: v for k, v in good.items() if k != "metadata"},
                {**good, "version": "2.0"}):
        assert not validator.is_valid(bad), bad


# --- actor documents ----------------------------------------------------------------------

@pytest.mark.parametrize("accept", [AS2, LD_AS2, MASTODON_ACCEPT, MASTODON_ACCEPT_OLD],
                         ids=["activity+json", "ld+json-profile", "mastodon", "mastodon-before-4.3"])
async def test_actor_url_serves_as2_json_to_activitypub_clients(instances, accept):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    async with aiohttp.ClientSession() as http:
        async with http.get(a.actor_uri("alice"), headers={"Accept": accept}, allow_redirects=False) as resp:
            assert resp.status == 200
            assert media_type(resp) == AS2
            assert "accept" in vary(resp)
            doc = await resp.json(content_type=None)
    assert doc["id"] == a.actor_uri("alice")
    assert AS_CONTEXT in doc["@context"]


async def test_actor_url_redirects_a_browser_to_the_html_profile(instances):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    async with aiohttp.ClientSession() as http:
        async with http.get(a.actor_uri("alice"), headers={"Accept": FIREFOX_ACCEPT}, allow_redirects=False) as resp:
            assert resp.status == 302
            # A cache must not hand this redirect to an ActivityPub client asking the same URL.
            assert "accept" in vary(resp)
            location = urljoin(a.actor_uri("alice"), resp.headers["Location"])
        assert location == f"{a.base}/@alice"
        async with http.get(location, headers={"Accept": FIREFOX_ACCEPT}) as resp:
            assert resp.status == 200
            assert media_type(resp) == "text/html"
            assert "alice" in await resp.text()


async def test_actor_document_has_every_field_mastodon_reads(instances):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice", display_name="Alice A.")
    uri = a.actor_uri("alice")
    async with aiohttp.ClientSession() as http:
        doc = await get_json(http, uri, accept=MASTODON_ACCEPT)
        assert doc["@context"][0] == AS_CONTEXT
        assert doc["type"] == "Person"
        assert doc["preferredUsername"] == "alice"
        assert doc["name"] == "Alice A."
        assert isinstance(doc["summary"], str)
        assert doc["url"] == f"{a.base}/@alice"
        assert doc["inbox"] == f"{uri}/inbox"
        assert doc["endpoints"]["sharedInbox"] == f"{a.base}/inbox"
        assert datetime.fromisoformat(doc["published"]).tzinfo is not None
        for flag in ("manuallyApprovesFollowers", "discoverable", "indexable"):
            assert isinstance(doc[flag], bool), flag
        assert doc["manuallyApprovesFollowers"] is False
        key = doc["publicKey"]
        assert key["id"].startswith(f"{uri}#") and key["owner"] == uri
        public_key = load_pem_public_key(key["publicKeyPem"].encode())
        assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size >= 2048
        # The collections it names exist, on the same host, under the ids it gives them.
        for field, kind in (("outbox", "OrderedCollection"), ("followers", "OrderedCollection"),
                            ("following", "OrderedCollection"), ("featured", "OrderedCollection")):
            assert doc[field].startswith(f"{uri}/"), field
            collection = await get_json(http, doc[field])
            assert (collection["id"], collection["type"]) == (doc[field], kind)


async def test_locked_account_says_so_in_manually_approves_followers(instances):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice", locked=True)
    async with aiohttp.ClientSession() as http:
        doc = await get_json(http, a.actor_uri("alice"))
    assert doc["manuallyApprovesFollowers"] is True


@pytest.mark.parametrize("accept", [AS2, FIREFOX_ACCEPT], ids=["activitypub", "browser"])
async def test_unknown_actor_is_404(instances, accept):
    a = await instances("a")
    async with aiohttp.ClientSession() as http:
        for url in (a.actor_uri("nobody"), a.actor_uri("instance.actor")):
            async with http.get(url, headers={"Accept": accept}, allow_redirects=False) as resp:
                assert resp.status == 404, url


# --- posts --------------------------------------------------------------------------------

ADDRESSING = {
    # visibility: (to, cc) as Mastodon's TagManager forms them (federation.md §4.2); every post here
    # mentions bob.
    "public": (lambda f, bob: [PUBLIC], lambda f, bob: [f, bob]),
    "unlisted": (lambda f, bob: [f], lambda f, bob: [PUBLIC, bob]),
    "followers": (lambda f, bob: [f], lambda f, bob: [bob]),
    "direct": (lambda f, bob: [bob], lambda f, bob: []),
}


@pytest.mark.parametrize("visibility", list(ADDRESSING))
async def test_post_id_dereferences_to_a_note_addressed_as_mastodon_does(instances, visibility):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    await accounts.create_account(a.ctx, "bob")
    post = await posting.create_post(a.ctx, "alice", Draft(text=f"hi @bob@{a.domain}", visibility=visibility))
    followers, bob = f"{a.actor_uri('alice')}/followers", a.actor_uri("bob")
    async with aiohttp.ClientSession() as http:
        # bob is addressed by every visibility, so his signed GET may read it.
        async with await signed_get(http, post.uri, await account_key(a, "bob")) as resp:
            assert resp.status == 200
            assert media_type(resp) == AS2
            note = await resp.json(content_type=None)
    assert AS_CONTEXT in note["@context"]
    assert (note["id"], note["type"], note["attributedTo"]) == (post.uri, "Note", a.actor_uri("alice"))
    to, cc = ADDRESSING[visibility]
    assert note["to"] == to(followers, bob)
    assert note["cc"] == cc(followers, bob)
    assert {"type": "Mention", "href": bob, "name": f"@bob@{a.domain}"} in note["tag"]
    assert "hi" in note["content"]


async def test_post_activity_url_serves_the_create_wrapping_the_note(instances):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    post = await posting.create_post(a.ctx, "alice", Draft(text="hello"))
    async with aiohttp.ClientSession() as http:
        note = await get_json(http, post.uri, accept=MASTODON_ACCEPT)
        create = await get_json(http, f"{post.uri}/activity", accept=MASTODON_ACCEPT)
    assert AS_CONTEXT in create["@context"]
    assert (create["id"], create["type"], create["actor"]) == (f"{post.uri}/activity", "Create", a.actor_uri("alice"))
    assert (create["to"], create["cc"]) == (note["to"], note["cc"])
    assert create["object"]["id"] == post.uri and create["object"]["type"] == "Note"
    assert "@context" not in create["object"]


async def test_post_id_redirects_a_browser_to_the_html_page(instances):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    post = await posting.create_post(a.ctx, "alice", Draft(text="look at this"))
    async with aiohttp.ClientSession() as http:
        async with http.get(post.uri, headers={"Accept": FIREFOX_ACCEPT}, allow_redirects=False) as resp:
            assert resp.status == 302
            assert "accept" in vary(resp)
            location = urljoin(post.uri, resp.headers["Location"])
        assert location == f"{a.base}/@alice/{post.id}"
        async with http.get(location, headers={"Accept": FIREFOX_ACCEPT}) as resp:
            assert resp.status == 200 and media_type(resp) == "text/html"
            assert "look at this" in await resp.text()


async def test_deleted_post_answers_410_with_a_tombstone(instances):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    post = await posting.create_post(a.ctx, "alice", Draft(text="soon gone"))
    await posting.delete_post(a.ctx, "alice", post.uri)
    async with aiohttp.ClientSession() as http:
        async with http.get(post.uri, headers={"Accept": AS2}) as resp:
            assert resp.status == 410
            assert media_type(resp) == AS2
            doc = await resp.json(content_type=None)
    assert (doc["id"], doc["type"]) == (post.uri, "Tombstone")
    assert "content" not in doc


async def test_unknown_post_is_404(instances):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    await accounts.create_account(a.ctx, "bob")
    bobs = await posting.create_post(a.ctx, "bob", Draft(text="bob's"))
    async with aiohttp.ClientSession() as http:
        for url in (f"{a.actor_uri('alice')}/statuses/12345", f"{a.actor_uri('alice')}/statuses/abc",
                    f"{a.actor_uri('alice')}/statuses/{bobs.id}", f"{a.actor_uri('nobody')}/statuses/{bobs.id}",
                    f"{a.actor_uri('alice')}/statuses/12345/activity"):
            async with http.get(url, headers={"Accept": AS2}) as resp:
                assert resp.status == 404, url


# --- collections --------------------------------------------------------------------------

async def walk(http: aiohttp.ClientSession, collection_url: str, headers_for=None) -> tuple[dict, list]:
    """Fetch an OrderedCollection and follow first -> next to the end, as Mastodon does (§6)."""
    async def fetch(url: str) -> dict:
        if headers_for is None:
            return await get_json(http, url)
        async with await headers_for(url) as resp:
            assert resp.status == 200, url
            return await resp.json(content_type=None)

    collection = await fetch(collection_url)
    assert collection["type"] == "OrderedCollection" and collection["id"] == collection_url
    items: list = []
    url, seen = collection.get("first"), set()
    while url:
        assert url not in seen, f"page loop at {url}"
        seen.add(url)
        page = await fetch(url)
        assert page["type"] == "OrderedCollectionPage" and page["partOf"] == collection_url
        assert yarl.URL(url).host == yarl.URL(collection_url).host
        items.extend(page["orderedItems"])
        url = page.get("next")
    return collection, items


@pytest.fixture
def one_key_for_all_accounts(fast_accounts, monkeypatch):
    """Dozens of throwaway accounts that never sign anything: let them share one key."""
    key = accounts.generate_rsa_private_key_pem()
    monkeypatch.setattr(accounts, "generate_rsa_private_key_pem", lambda: key)


async def test_outbox_pages_walk_to_total_items_and_never_show_private_posts(instances):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    await accounts.create_account(a.ctx, "u1")
    shown = [await posting.create_post(a.ctx, "alice", Draft(text=f"post {i}")) for i in range(45)]
    shown.append(await posting.create_post(a.ctx, "alice", Draft(text="quiet", visibility="unlisted")))
    hidden = [await posting.create_post(a.ctx, "alice", Draft(text="friends only", visibility="followers")),
              await posting.create_post(a.ctx, "alice", Draft(text=f"psst @u1@{a.domain}", visibility="direct"))]
    async with aiohttp.ClientSession() as http:
        outbox, items = await walk(http, f"{a.actor_uri('alice')}/outbox")
    assert outbox["totalItems"] == len(shown) == 46
    assert len(items) == outbox["totalItems"]
    assert all(item["type"] == "Create" and item["actor"] == a.actor_uri("alice") for item in items)
    object_ids = [item["object"]["id"] for item in items]
    assert len(set(object_ids)) == len(object_ids)
    assert set(object_ids) == {p.uri for p in shown}
    assert not {p.uri for p in hidden} & set(object_ids)
    # Newest first, like Mastodon.
    assert object_ids == [p.uri for p in sorted(shown, key=lambda p: p.id, reverse=True)]


async def test_followers_and_following_pages_walk_to_total_items(instances, one_key_for_all_accounts):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    others = [f"u{i}" for i in range(PAGE_SIZE + 2)]
    for name in others:
        await accounts.create_account(a.ctx, name)
        await follows.follow(a.ctx, name, a.handle("alice"))
        await follows.follow(a.ctx, "alice", a.handle(name))
    expected = {a.actor_uri(name) for name in others}
    async with aiohttp.ClientSession() as http:
        followers, follower_items = await walk(http, f"{a.actor_uri('alice')}/followers")
        following, following_items = await walk(http, f"{a.actor_uri('alice')}/following")
        u0_following, u0_items = await walk(http, f"{a.actor_uri('u0')}/following")
    assert followers["totalItems"] == len(follower_items) == len(expected)
    assert set(follower_items) == expected
    assert following["totalItems"] == len(following_items) == len(expected)
    assert set(following_items) == expected
    assert u0_following["totalItems"] == 1 and u0_items == [a.actor_uri("alice")]


# --- authorized fetch ---------------------------------------------------------------------

def _protected_urls(a, post) -> list[str]:
    alice = a.actor_uri("alice")
    return [post.uri, f"{post.uri}/activity", f"{alice}/outbox", f"{alice}/outbox?page=true",
            f"{alice}/followers", f"{alice}/followers?page=1", f"{alice}/following", f"{alice}/collections/featured"]


async def test_authorized_fetch_answers_unsigned_gets_of_posts_and_collections_with_401(instances):
    a = await instances("a", authorized_fetch=True)
    await accounts.create_account(a.ctx, "alice")
    post = await posting.create_post(a.ctx, "alice", Draft(text="members only, sort of"))
    async with aiohttp.ClientSession() as http:
        for url in _protected_urls(a, post):
            async with http.get(url, headers={"Accept": AS2}) as resp:
                assert resp.status == 401, url


async def test_authorized_fetch_serves_posts_and_collections_to_a_signed_get_from_another_server(instances):
    # Both servers in authorized-fetch mode: verifying bob's key needs b's actor document, which b must
    # serve to a's (signed) fetch without asking anything back.
    a = await instances("a", authorized_fetch=True)
    b = await instances("b", authorized_fetch=True)
    await accounts.create_account(a.ctx, "alice")
    await accounts.create_account(b.ctx, "bob")
    post = await posting.create_post(a.ctx, "alice", Draft(text="signed readers welcome"))
    bob_key = await account_key(b, "bob")
    async with aiohttp.ClientSession() as http:
        for url in _protected_urls(a, post):
            async with await signed_get(http, url, bob_key) as resp:
                assert resp.status == 200, f"{url}: {await resp.text()}"
                assert media_type(resp) == AS2
                # The answer depends on the signature: shared caches must key on it.
                assert {"accept", "signature"} <= vary(resp), url
                assert (await resp.json(content_type=None))["id"].startswith(a.base)
        # A bad signature is no better than none.
        forged = (bob_key[0], (await account_key(a, "alice"))[1])
        async with await signed_get(http, post.uri, forged) as resp:
            assert resp.status == 401


async def test_authorized_fetch_keeps_discovery_and_actor_documents_readable_unsigned(instances):
    a = await instances("a", authorized_fetch=True)
    await accounts.create_account(a.ctx, "alice")
    host = a.domain.split(":")[0]
    async with aiohttp.ClientSession() as http:
        jrd = await get_json(http, webfinger_url(a, f"acct:alice@{a.domain}"), accept=JRD_ACCEPT)
        assert jrd["subject"] == f"acct:alice@{a.domain}"
        actor = await get_json(http, a.actor_uri("alice"))
        assert actor["publicKey"]["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")
        await get_json(http, webfinger_url(a, f"acct:{host}@{a.domain}"), accept=JRD_ACCEPT)
        instance_actor = await get_json(http, f"{a.base}/actor")
        assert instance_actor["publicKey"]["owner"] == f"{a.base}/actor"
        await get_json(http, f"{a.base}/.well-known/nodeinfo", accept="application/json")
        await get_json(http, f"{a.base}/nodeinfo/2.1", accept="application/json")
        async with http.get(f"{a.base}/.well-known/host-meta") as resp:
            assert resp.status == 200
