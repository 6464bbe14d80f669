"""The training signals a running fedserver sends, checked against the syntax of the current IETF
aipref drafts with an RFC 9651 parser from PyPI (http_sf), never our own: every Content-Usage header
and every robots.txt Content-Usage rule is a dictionary whose train-ai member is the Token y or n;
robots.txt, tdmrep.json and the response headers agree for each author's real choice, for every
robots.txt group that may fetch the path; noai only for authors who did not opt in."""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import aiohttp
import http_sf
import pytest

from fedserver.services import accounts, consent, posting
from fedserver.services.posting import Draft
from fedserver.web.crawlers import TRAINING_CRAWLERS

pytestmark = pytest.mark.usefixtures("fast_accounts")

AS2 = "application/activity+json"


async def fetch(url: str, accept: str = "text/html") -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Accept": accept}, allow_redirects=False) as resp:
            return resp.status, dict(resp.headers), await resp.text()


def train_ai(value: str) -> str:
    """The train-ai member of an aipref statement, parsed as an RFC 9651 dictionary by http_sf:
    it must be there and be the Token y or n (a quoted "y" would be a String, i.e. unknown)."""
    members = http_sf.parse(value.encode("ascii"), tltype="dictionary")
    token, _parameters = members["train-ai"]
    assert isinstance(token, http_sf.Token), f"{value!r}: train-ai is not a Token"
    assert str(token) in ("y", "n"), value
    return str(token)


# --- robots.txt as a crawler reads it (RFC 9309 groups and longest match) --------------------

def groups(text: str) -> dict[str, list[tuple[str, str]]]:
    """User-agent (lower case) -> its rules as (field, value), RFC 9309 §2.1 grouping."""
    found: dict[str, list[tuple[str, str]]] = {}
    agents: list[str] = []
    in_rules = False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or ":" not in line:
            continue
        field, value = (part.strip() for part in line.split(":", 1))
        if field.lower() == "user-agent":
            if in_rules:
                agents, in_rules = [], False
            agents.append(value.lower())
            found.setdefault(value.lower(), [])
        else:
            in_rules = True
            for agent in agents:
                found[agent].append((field.lower(), value))
    return found


def matches(pattern: str, path: str) -> bool:
    regex = "".join(".*" if c == "*" else re.escape(c) for c in pattern.rstrip("$"))
    return re.match(regex + ("$" if pattern.endswith("$") else ""), path) is not None


def longest(rules: list[tuple[str, str]], path: str) -> tuple[str, str] | None:
    best = None
    for field, pattern in rules:
        if matches(pattern, path) and (best is None or len(pattern) > len(best[1])):
            best = (field, pattern)
    return best


def robots_preference(text: str, agent: str, path: str) -> str | None:
    """The train-ai preference robots.txt gives this agent for this path, or None when the agent
    may not fetch it (aipref-attach §4.1: no preference applies then)."""
    all_groups = groups(text)
    rules = all_groups.get(agent.lower(), all_groups["*"])
    access = longest([r for r in rules if r[0] in ("allow", "disallow")], path)
    if access is not None and access[0] == "disallow":
        return None
    usage = [(f, v.split(None, 1)) for f, v in rules if f == "content-usage"]
    for _, (pattern, statement) in usage:
        train_ai(statement)  # every rule is valid RFC 9651
    best = longest([("content-usage", pattern) for _, (pattern, _) in usage], path)
    assert best is not None, f"no Content-Usage rule covers {path}"
    # Identical paths combine most restrictively (aipref-attach §4.1).
    values = {train_ai(statement) for _, (pattern, statement) in usage if pattern == best[1]}
    return "n" if "n" in values else "y"


def tdmrep_reservation(rules: list[dict], path: str) -> int:
    """TDMRep: the first rule whose location matches decides."""
    for rule in rules:
        if matches(rule["location"], path):
            return rule["tdm-reservation"]
    raise AssertionError(f"no TDMRep rule for {path}")


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture
async def site(instances):
    """alice said yes (from now on) and wrote: a plain post, one she excluded, one carol replied to
    and a reply of her own to carol; carol never chose; dora said no."""
    a = await instances("a")
    for name in ("alice", "carol", "dora"):
        await accounts.create_account(a.ctx, name)
    carol_post = await posting.create_post(a.ctx, "carol", Draft(text="Not for training"))
    await consent.set_training_consent(a.ctx, "alice", "allow", license="CC-BY-4.0", scope="future")
    await consent.set_training_consent(a.ctx, "dora", "deny")
    plain = await posting.create_post(a.ctx, "alice", Draft(text="Happy to be in the corpus"))
    excluded = await posting.create_post(a.ctx, "alice", Draft(text="Not this one", exclude_from_corpus=True))
    answered = await posting.create_post(a.ctx, "alice", Draft(text="Ask me anything"))
    await posting.create_post(a.ctx, "carol", Draft(text="A question, in my own words", reply_to=answered.uri))
    reply = await posting.create_post(a.ctx, "alice", Draft(text="I agree", reply_to=carol_post.uri))
    dora_post = await posting.create_post(a.ctx, "dora", Draft(text="No thanks"))
    return a, {"plain": plain, "excluded": excluded, "answered": answered, "reply": reply,
               "carol": carol_post, "dora": dora_post}


def urls(a, posts) -> list[tuple[str, str]]:
    html = [f"{a.base}/@{user}" for user in ("alice", "carol", "dora")]
    html += [p.url for p in posts.values()]
    as2 = [a.actor_uri(user) for user in ("alice", "carol", "dora")]
    as2 += [p.uri for p in posts.values()] + [posts["plain"].uri + "/activity", a.actor_uri("alice") + "/followers",
                                              a.actor_uri("alice") + "/outbox?page=true"]
    return [(u, "text/html") for u in html] + [(u, AS2) for u in as2]


async def test_every_content_usage_header_is_an_rfc_9651_dictionary_with_a_train_ai_token(site):
    a, posts = site
    expected_yes = {f"{a.base}/@alice": False, posts["plain"].url: True, posts["excluded"].url: False,
                    posts["answered"].url: False, posts["reply"].url: False, a.actor_uri("alice"): True,
                    posts["plain"].uri: True, posts["answered"].uri: True, posts["reply"].uri: True,
                    posts["excluded"].uri: False, posts["carol"].url: False, posts["dora"].uri: False}
    for url, accept in urls(a, posts):
        status, headers, _ = await fetch(url, accept)
        assert status == 200, url
        said = train_ai(headers["Content-Usage"])
        if url in expected_yes and accept == ("text/html" if "/@" in url else AS2):
            assert said == ("y" if expected_yes[url] else "n"), url
        assert ("X-Robots-Tag" in headers) is (said == "n"), url


async def test_robots_txt_and_tdmrep_agree_with_the_headers_for_every_group_that_may_fetch(site):
    a, posts = site
    _, _, robots = await fetch(f"{a.base}/robots.txt", "text/plain")
    _, _, tdmrep_body = await fetch(f"{a.base}/.well-known/tdmrep.json", "application/json")
    tdmrep = json.loads(tdmrep_body)
    # Per-author TDMRep rules come before the catch-all, which is last.
    assert tdmrep[-1]["location"] == "/" and tdmrep[-1]["tdm-reservation"] == 1
    assert any(rule["location"].startswith("/@alice/") for rule in tdmrep[:-1])
    assert not any("carol" in rule["location"] or "dora" in rule["location"] for rule in tdmrep)
    # Where crawlers read it: training crawlers are turned away because they cannot learn of removals.
    comments = [line for line in robots.splitlines() if line.startswith("#")]
    assert any("turned away" in line for line in comments) and any("withdrawal" in line for line in comments)

    for url, accept in urls(a, posts):
        status, headers, _ = await fetch(url, accept)
        assert status == 200, url
        header = train_ai(headers["Content-Usage"])
        path = path_of(url)
        for agent in ("*", "Googlebot", *TRAINING_CRAWLERS):
            said = robots_preference(robots, agent, path)
            if agent in TRAINING_CRAWLERS:
                assert said is None, (agent, path)  # turned away: may fetch nothing
                continue
            # robots.txt never says yes where the response says no, and says what it says for
            # the author's own documents and single posts.
            assert not (said == "y" and header == "n"), (agent, path)
            if "/users/" in path or url in (posts["plain"].url, posts["excluded"].url, f"{a.base}/@carol"):
                assert said == header, (agent, path, said, header)
        reservation = tdmrep_reservation(tdmrep, path)
        assert str(reservation) == headers["tdm-reservation"] or (reservation == 1 and header == "n"), path
        assert headers["tdm-reservation"] == ("0" if header == "y" else "1"), path
        if header == "y":
            assert reservation == 0, path


async def test_fep_5e53_xrobotstag_only_for_authors_who_did_not_opt_in(site):
    a, posts = site
    for user, opted_in in (("alice", True), ("carol", False), ("dora", False)):
        _, _, body = await fetch(a.actor_uri(user), AS2)
        actor = json.loads(body)
        assert ("xRobotsTag" in actor) is (not opted_in), user
        if "contentUsage" in actor:
            assert train_ai(actor["contentUsage"]) == ("y" if opted_in else "n"), user
    _, _, body = await fetch(posts["plain"].uri, AS2)
    assert "xRobotsTag" not in json.loads(body)


async def test_a_withdrawal_turns_robots_txt_and_tdmrep_to_no(site):
    a, posts = site
    await consent.set_training_consent(a.ctx, "alice", "deny")
    _, _, robots = await fetch(f"{a.base}/robots.txt", "text/plain")
    _, _, tdmrep_body = await fetch(f"{a.base}/.well-known/tdmrep.json", "application/json")
    for url in (posts["plain"].url, posts["plain"].uri, a.actor_uri("alice")):
        assert robots_preference(robots, "*", path_of(url)) == "n"
        assert tdmrep_reservation(json.loads(tdmrep_body), path_of(url)) == 1
