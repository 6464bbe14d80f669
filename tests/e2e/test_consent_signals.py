"""What crawlers and peers read from a running fedserver about AI training, over real HTTP: the
aipref, noai and TDMRep signals on pages and ActivityStreams documents, robots.txt, tdmrep.json,
its policy and the JSON-LD context (docs/fep-consent.md)."""
from __future__ import annotations

import json
import re
import urllib.robotparser

import aiohttp
import pytest

from fedserver.corpus import signals
from fedserver.corpus.signals import read_signal
from fedserver.corpus.terms import LICENSE_URLS
from fedserver.services import accounts, consent, posting
from fedserver.services.posting import Draft

pytestmark = pytest.mark.usefixtures("fast_accounts")

AS2 = "application/activity+json"
NOAI = {"noai", "noimageai"}


async def fetch(url: str, *, accept: str = "text/html", method: str = "GET") -> tuple[int, dict, str]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, url, headers={"Accept": accept}, allow_redirects=False) as resp:
            return resp.status, dict(resp.headers), await resp.text()


def robots_meta(html: str) -> set[str]:
    found = re.findall(r'<meta name="robots" content="([^"]*)">', html)
    return {t.strip() for value in found for t in value.split(",")}


def meta(html: str, name: str) -> str | None:
    found = re.search(rf'<meta name="{name}" content="([^"]*)">', html)
    return found.group(1) if found else None


def robots_tags(headers: dict) -> set[str]:
    return {t.strip() for t in headers.get("X-Robots-Tag", "").split(",") if t.strip()}


def assert_tdmrep(instance, headers: dict) -> None:
    assert headers["tdm-reservation"] == "1"
    assert headers["tdm-policy"] == f"{instance.base}/.well-known/tdm-policy.json"


def assert_says_yes(instance, headers: dict, html: str | None = None) -> None:
    assert headers["Content-Usage"] == "train-ai=y"
    assert "X-Robots-Tag" not in headers
    # TDMRep agrees with the author's yes: rights not reserved (the author's rule in tdmrep.json too).
    assert headers["tdm-reservation"] == "0" and "tdm-policy" not in headers
    if html is not None:
        assert robots_meta(html) == set()
        assert meta(html, "tdm-reservation") == "0"


def assert_says_no(instance, headers: dict, html: str | None = None) -> None:
    assert headers["Content-Usage"] == "train-ai=n"
    assert robots_tags(headers) == NOAI
    assert_tdmrep(instance, headers)
    if html is not None:
        assert robots_meta(html) == NOAI
        assert meta(html, "tdm-reservation") == "1"
        assert meta(html, "tdm-policy") == f"{instance.base}/.well-known/tdm-policy.json"


async def consent_to_training(instance, username: str, *, scope: str = "future", license: str = "CC-BY-4.0") -> None:
    await consent.set_training_consent(instance.ctx, username, "allow", license=license, scope=scope)


@pytest.fixture
async def site(instances):
    """alice consented and wrote one post since; carol never chose."""
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    await accounts.create_account(a.ctx, "carol")
    await consent_to_training(a, "alice")
    alice_post = await posting.create_post(a.ctx, "alice", Draft(text="Happy to be in the corpus"))
    carol_post = await posting.create_post(a.ctx, "carol", Draft(text="Not for training"))
    return a, alice_post, carol_post


async def test_consenting_authors_pages_and_documents_say_train_ai_yes(site):
    a, post, _ = site
    for url in (f"{a.base}/@alice", post.url):
        status, headers, html = await fetch(url)
        assert status == 200, url
        assert_says_yes(a, headers, html)
    for url in (a.actor_uri("alice"), post.uri, post.uri + "/activity"):
        status, headers, _ = await fetch(url, accept=AS2)
        assert status == 200, url
        assert_says_yes(a, headers)


async def test_non_consenting_authors_pages_and_documents_say_no_with_noai(site):
    a, _, post = site
    for url in (f"{a.base}/@carol", post.url):
        status, headers, html = await fetch(url)
        assert status == 200, url
        assert_says_no(a, headers, html)
    for url in (a.actor_uri("carol"), post.uri):
        status, headers, _ = await fetch(url, accept=AS2)
        assert status == 200, url
        assert_says_no(a, headers)


async def test_head_requests_carry_the_same_signals(site):
    a, alice_post, carol_post = site
    _, headers, _ = await fetch(alice_post.url, method="HEAD")
    assert_says_yes(a, headers)
    _, headers, _ = await fetch(carol_post.url, method="HEAD")
    assert_says_no(a, headers)


async def test_a_post_excluded_by_a_consenting_author_says_no_everywhere(site):
    a, kept, _ = site
    excluded = await posting.create_post(a.ctx, "alice", Draft(text="Keep this one out"))
    await posting.set_post_excluded(a.ctx, "alice", excluded.uri, True)

    _, headers, html = await fetch(excluded.url)
    assert_says_no(a, headers, html)
    _, headers, body = await fetch(excluded.uri, accept=AS2)
    assert_says_no(a, headers)
    note = json.loads(body)
    assert note["contentUsage"] == "train-ai=n" and set(note["xRobotsTag"].split(", ")) == NOAI
    assert "contentLicense" not in note
    assert read_signal(note).choice == "deny"
    # The profile page shows the excluded post, so it no longer says yes; the other post still does.
    _, headers, html = await fetch(f"{a.base}/@alice")
    assert_says_no(a, headers, html)
    _, headers, html = await fetch(kept.url)
    assert_says_yes(a, headers, html)
    # Letting it back in restores the yes.
    await posting.set_post_excluded(a.ctx, "alice", excluded.uri, False)
    _, headers, html = await fetch(excluded.url)
    assert_says_yes(a, headers, html)


async def test_posts_outside_the_consents_scope_or_audience_say_no(instances):
    a = await instances("a")
    await accounts.create_account(a.ctx, "dora")
    before = await posting.create_post(a.ctx, "dora", Draft(text="Written before saying yes"))
    await consent_to_training(a, "dora", scope="future")
    unlisted = await posting.create_post(a.ctx, "dora", Draft(text="Quiet post", visibility="unlisted"))
    after = await posting.create_post(a.ctx, "dora", Draft(text="Written after saying yes"))

    for post in (before, unlisted):
        _, headers, html = await fetch(post.url)
        assert_says_no(a, headers, html)
        _, headers, _ = await fetch(post.uri, accept=AS2)
        assert_says_no(a, headers)
    _, headers, html = await fetch(after.url)
    assert_says_yes(a, headers, html)
    # The actor says yes (her choice); robots.txt names the posts her choice does not cover.
    _, headers, _ = await fetch(a.actor_uri("dora"), accept=AS2)
    assert_says_yes(a, headers)
    _, _, robots = await fetch(f"{a.base}/robots.txt", accept="text/plain")
    for post in (before, unlisted):
        assert f"Content-Usage: /@dora/{post.id}$ train-ai=n" in robots
        assert f"Content-Usage: /users/dora/statuses/{post.id}$ train-ai=n" in robots
    assert f"/@dora/{after.id}$" not in robots

    # With scope "all" the earlier public post is covered too; the unlisted one still is not.
    await consent_to_training(a, "dora", scope="all")
    _, headers, _ = await fetch(before.url)
    assert_says_yes(a, headers)
    _, headers, _ = await fetch(unlisted.url)
    assert_says_no(a, headers)


async def test_pages_of_no_single_author_and_errors_get_the_restrictive_default(site):
    a, _, _ = site
    status, headers, html = await fetch(f"{a.base}/")
    assert status == 200
    assert_says_no(a, headers, html)
    status, headers, html = await fetch(f"{a.base}/@nobody")
    assert status == 404
    assert headers["Content-Usage"] == "train-ai=n" and robots_tags(headers) == NOAI
    assert robots_meta(html) == NOAI
    for path in ("/users/alice/outbox?page=true", "/users/alice/followers", "/.well-known/nodeinfo"):
        status, headers, _ = await fetch(a.base + path, accept=AS2)
        assert status == 200, path
        assert_says_no(a, headers)


async def test_a_withdrawal_turns_every_signal_back_to_no(site):
    a, post, _ = site
    await consent.set_training_consent(a.ctx, "alice", "deny")
    _, headers, html = await fetch(post.url)
    assert_says_no(a, headers, html)
    _, headers, body = await fetch(a.actor_uri("alice"), accept=AS2)
    assert_says_no(a, headers)
    actor = json.loads(body)
    assert actor["contentUsage"] == "train-ai=n" and "contentLicense" not in actor
    assert read_signal(actor).choice == "deny"


async def test_actor_and_note_documents_carry_the_authors_choice(site):
    a, alice_post, carol_post = site
    async with aiohttp.ClientSession() as http:
        async def doc(url):
            async with http.get(url, headers={"Accept": AS2}) as resp:
                return await resp.json(content_type=None)
        alice, alice_note = await doc(a.actor_uri("alice")), await doc(alice_post.uri)
        carol, carol_note = await doc(a.actor_uri("carol")), await doc(carol_post.uri)
        create = await doc(alice_post.uri + "/activity")

    for document in (alice, alice_note):
        assert document["contentUsage"] == "train-ai=y"
        assert document["contentLicense"] == LICENSE_URLS["CC-BY-4.0"]
        assert "xRobotsTag" not in document
        assert read_signal(document) == signals.RemoteSignal("allow", "CC-BY-4.0")
    # The embedded Note of the Create reads the same with the activity's context.
    assert read_signal(create["object"], context=create["@context"]).choice == "allow"
    for document in (carol, carol_note):
        assert "contentUsage" not in document  # unset: aipref has no statement to make
        assert set(document["xRobotsTag"].split(", ")) == NOAI  # FEP-5e53 hint
        assert read_signal(document).choice == "deny"
    # The terms are defined inline with their full IRIs: nobody needs to fetch a context.
    inline = [entry for entry in alice["@context"] if isinstance(entry, dict)][0]
    assert signals.context_document()["@context"].items() <= inline.items()


async def test_robots_txt_blocks_training_crawlers_and_follows_consent_changes(site):
    a, post, carol_post = site
    url = f"{a.base}/robots.txt"
    status, headers, text = await fetch(url, accept="text/plain")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert "Content-Usage: / train-ai=n" in text
    assert "Content-Usage: /@alice/ train-ai=y" in text
    assert "Content-Usage: /users/alice$ train-ai=y" in text
    assert "Content-Usage: /users/alice/statuses/ train-ai=y" in text
    assert "/@carol" not in text
    assert f"{a.base}/api/corpus/v1/" in text  # the comment naming the consensual route

    parser = urllib.robotparser.RobotFileParser()
    parser.parse(text.splitlines())
    for bot in ("GPTBot", "ClaudeBot", "anthropic-ai", "CCBot", "Google-Extended", "Applebot-Extended",
                "Meta-ExternalAgent", "FacebookBot", "Bytespider", "AI2Bot", "Ai2Bot-Dolma", "cohere-ai", "Diffbot",
                "omgili"):
        assert not parser.can_fetch(bot, post.url), bot
    assert parser.can_fetch("Googlebot", post.url)
    assert parser.can_fetch("Googlebot", carol_post.url)
    assert not parser.can_fetch("Googlebot", f"{a.base}/api/corpus/v1/records")

    await consent.set_training_consent(a.ctx, "carol", "allow", license="CC0-1.0", scope="all")
    await consent.set_training_consent(a.ctx, "alice", "deny")
    _, _, text = await fetch(url, accept="text/plain")
    assert "Content-Usage: /@carol/ train-ai=y" in text
    assert "/@alice" not in text and "/users/alice" not in text


async def test_tdmrep_file_points_to_a_policy_naming_the_researcher_api(site):
    a, _, _ = site
    status, headers, body = await fetch(f"{a.base}/.well-known/tdmrep.json", accept="application/json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    rules = json.loads(body)
    assert isinstance(rules, list) and rules
    assert rules[-1] == {"location": "/", "tdm-reservation": 1, "tdm-policy": f"{a.base}/.well-known/tdm-policy.json"}

    status, headers, body = await fetch(rules[-1]["tdm-policy"], accept="application/ld+json")
    assert status == 200 and headers["Content-Type"].startswith("application/ld+json")
    policy = json.loads(body)
    assert policy["@context"][0] == "http://www.w3.org/ns/odrl.jsonld"
    assert {"tdm": "http://www.w3.org/ns/tdmrep#"}.items() <= policy["@context"][1].items()
    assert policy["@type"] == "Offer" and policy["profile"] == "http://www.w3.org/ns/tdmrep"
    assert policy["uid"] == rules[-1]["tdm-policy"]
    assert policy["assigner"]["vcard:hasURL"] == f"{a.base}/api/corpus/v1/terms"
    (permission,) = policy["permission"]
    assert permission["action"] == "tdm:mine"
    assert permission["target"].startswith(f"{a.base}/api/corpus/v1/")
    assert permission["duty"] == [{"action": "obtainConsent"}]


async def test_the_context_document_is_served_as_json_ld_and_is_the_same_everywhere(instances):
    a = await instances("a")
    b = await instances("b")
    bodies = []
    for instance in (a, b):
        status, headers, body = await fetch(instance.base + signals.CONTEXT_PATH, accept="application/ld+json")
        assert status == 200 and headers["Content-Type"].startswith("application/ld+json")
        bodies.append(body)
    assert bodies[0] == bodies[1]
    context = json.loads(bodies[0])["@context"]
    assert context["fedserver"] == signals.NAMESPACE
    assert context["contentUsage"] == "fedserver:contentUsage"
    assert context["contentLicense"] == {"@id": "fedserver:contentLicense", "@type": "@id"}
    assert context["xRobotsTag"] == signals.X_ROBOTS_TAG_IRI
