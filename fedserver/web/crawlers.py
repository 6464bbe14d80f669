"""What we tell crawlers about AI training: robots.txt, TDMRep (/.well-known/tdmrep.json and its
ODRL policy), the JSON-LD context of our consent terms, and the per-response headers derived from
each author's real choice (aipref `Content-Usage`, `X-Robots-Tag: noai`, `tdm-reservation`).

Only what an author opted into may say `train-ai=y`; everything else, including pages that belong
to no single author, says no (docs/fep-consent.md, "Signals for crawlers")."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from aiohttp import web

from fedserver.context import CTX_KEY, Context
from fedserver.corpus import signals
from fedserver.corpus.eligibility import AuthorFacts, ConsentFacts, PostFacts
from fedserver.corpus.terms import TRAIN_AI
from fedserver.services.timelines import TrainingChoices
from fedserver.store import actors as actor_store
from fedserver.store import posts as post_store
from fedserver.store.actors import Actor
from fedserver.store.posts import Post

log = logging.getLogger(__name__)

TDMREP_PATH = "/.well-known/tdmrep.json"
POLICY_PATH = "/.well-known/tdm-policy.json"
CORPUS_API_PATH = "/api/corpus/v1/"
# Set by a page handler that already knows whether its page may be used for training.
ALLOWS_TRAINING = web.RequestKey("allows_training", bool)

# Crawlers that gather training data (ai-robots-txt/ai.robots.txt, robots.json; shared/consent.md
# §4.2). Search and assistant fetchers (OAI-SearchBot, ChatGPT-User, PerplexityBot ...) are not
# listed: blocking them hides posts from AI answers, which is not what the training choice is about.
TRAINING_CRAWLERS = ("GPTBot", "ClaudeBot", "anthropic-ai", "CCBot", "Google-Extended", "Applebot-Extended",
                     "Meta-ExternalAgent", "FacebookBot", "Bytespider", "AI2Bot", "Ai2Bot-Dolma", "cohere-ai",
                     "Diffbot", "omgili")
# robots.txt must stay well under RFC 9309's 500 KiB: an account whose consent needs more
# per-post exceptions than this gets no `train-ai=y` rule there (its pages' headers still say y).
MAX_EXCEPTIONS_PER_ACCOUNT = 100
MAX_POSTS_SCANNED_PER_ACCOUNT = 2000
MAX_EXCEPTIONS_TOTAL = 5000


def _ctx(request: web.Request) -> Context:
    return request.app[CTX_KEY]


def policy_url(ctx: Context) -> str:
    return ctx.urls.base + POLICY_PATH


def response_headers(ctx: Context, allows_training: bool) -> dict[str, str]:
    """aipref and noai per the author's choice; TDMRep likewise: rights reserved (with the policy
    naming the consensual route, the researcher API) unless the page is the work of an author who
    allowed training, whose own rule in tdmrep.json says not reserved as well."""
    headers = signals.http_headers("allow" if allows_training else "deny")
    headers["tdm-reservation"] = "0" if allows_training else "1"
    if not allows_training:
        headers["tdm-policy"] = policy_url(ctx)
    return headers


def page_meta(ctx: Context, allows_training: bool) -> dict[str, str | None]:
    """Values for templates/public/crawler_meta.html (the HTML twin of response_headers)."""
    return {"robots": None if allows_training else signals.NOAI,
            "tdm_reservation": "0" if allows_training else "1",
            "tdm_policy": None if allows_training else policy_url(ctx)}


# --- the author's real choice -----------------------------------------------------------

async def _consent_facts(ctx: Context, actor: Actor, choices: TrainingChoices | None = None) -> ConsentFacts | None:
    state = await (choices or TrainingChoices(ctx)).state(actor.id)
    if state.choice == "unset":
        return None
    return ConsentFacts(choice=state.choice, include_unlisted=state.include_unlisted,
                        effective_from=state.effective_from)


def _author_facts(actor: Actor) -> AuthorFacts:
    return AuthorFacts(deleted=actor.deleted_at is not None, suspended=actor.suspended_at is not None)


def _post_facts(post: Post) -> PostFacts:
    return PostFacts(visibility=post.visibility, published_at=post.published_at, deleted=post.is_deleted,
                     excluded=bool(post.corpus_excluded))


async def actor_allows(ctx: Context, actor: Actor) -> bool:
    """The actor document and other author-level pages: the author's own choice."""
    facts = await _consent_facts(ctx, actor)
    return facts is not None and facts.choice == "allow" and not actor.is_gone


async def post_allows(ctx: Context, actor: Actor, post: Post, *, choices: TrainingChoices | None = None) -> bool:
    """One post: yes only when the corpus would take it (in scope, public, not excluded)."""
    facts = await _consent_facts(ctx, actor, choices)
    return signals.post_choice(facts, _post_facts(post), _author_facts(actor)) == "allow"


async def posts_allow(ctx: Context, actor: Actor, posts: list[Post], *,
                      choices: TrainingChoices | None = None) -> bool:
    """A page showing several posts of one author (the profile): yes only if every one may be used."""
    facts = await _consent_facts(ctx, actor, choices)
    if facts is None or facts.choice != "allow" or actor.is_gone:
        return False
    author = _author_facts(actor)
    return all(signals.post_choice(facts, _post_facts(p), author) == "allow" for p in posts)


async def _allows_for_route(request: web.Request) -> bool:
    """Objects served by federation routes, recognised by their route pattern (pages say it
    themselves through ALLOWS_TRAINING)."""
    route = request.match_info.route.resource
    pattern = route.canonical if route is not None else ""
    ctx = _ctx(request)
    if pattern not in ("/users/{username}", "/users/{username}/statuses/{post_id}",
                       "/users/{username}/statuses/{post_id}/activity"):
        return False  # collections, discovery documents, the home page: not one author's work
    actor = await actor_store.get_local_actor(ctx.db.reader, request.match_info["username"])
    if actor is None:
        return False
    if "post_id" not in request.match_info:
        return await actor_allows(ctx, actor)
    try:
        post = await post_store.get_post(ctx.db.reader, int(request.match_info["post_id"]))
    except (ValueError, OverflowError):  # not an id SQLite can hold
        return False
    return post is not None and post.actor_id == actor.id and await post_allows(ctx, actor, post)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def crawler_signals(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Put the crawler headers on every GET answer. Errors and redirects carry no one's work and
    get the restrictive default. The researcher API is governed by its data-use agreement instead."""
    if request.method not in ("GET", "HEAD") or request.path.startswith(CORPUS_API_PATH):
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(response_headers(_ctx(request), False))
        raise
    if response.prepared:
        return response  # streamed: its headers are already sent
    allows = False
    if response.status == 200:
        allows = request[ALLOWS_TRAINING] if ALLOWS_TRAINING in request else await _allows_for_route(request)
    response.headers.update(response_headers(_ctx(request), allows))
    return response


# --- robots.txt -------------------------------------------------------------------------

@dataclass(frozen=True)
class ConsentingAccount:
    """A local account whose posts may be used for training, less what its consent does not cover:
    exceptions (posts outside the consent: no everywhere) and conversations (covered posts whose
    page also shows other posts, replies or what they reply to: no on that HTML page)."""
    username: str
    exceptions: tuple[int, ...]
    conversations: tuple[int, ...] = ()


@dataclass(frozen=True)
class PathRule:
    """One path pattern (RFC 9309 syntax: prefix, `$` anchors the end) and whether it may be used."""
    path: str
    allows: bool


def account_rules(account: ConsentingAccount) -> list[PathRule]:
    """The paths of one consenting account, most specific first, exactly as the page headers decide
    them (never more permissive): robots.txt takes them all (the longest match wins there) and
    tdmrep.json in this order (the first match wins there)."""
    user = account.username
    rules: list[PathRule] = []
    for post_id in sorted({*account.exceptions, *account.conversations}):
        rules += [PathRule(f"/@{user}/{post_id}$", False), PathRule(f"/@{user}/{post_id}?", False)]
    for post_id in account.exceptions:
        rules += [PathRule(f"/users/{user}/statuses/{post_id}$", False),
                  PathRule(f"/users/{user}/statuses/{post_id}/", False)]
    rules.append(PathRule(f"/@{user}/", True))
    if not account.exceptions:
        # The profile shows the latest posts: yes only when every post is covered.
        rules += [PathRule(f"/@{user}$", True), PathRule(f"/@{user}?", True)]
    rules += [PathRule(f"/users/{user}$", True), PathRule(f"/users/{user}/statuses/", True)]
    return rules


def robots_txt_text(base: str, accounts: list[ConsentingAccount]) -> str:
    lines = [
        "# AI training on this server is opt-in: nothing here may be used to train AI models unless",
        "# its author said yes (see " + base + "/.well-known/tdmrep.json and " + base + POLICY_PATH + ").",
        "# The Content-Usage rules below (draft-ietf-aipref-attach) follow each author's own choice.",
        "# Posts of people who consented are available, together with every later removal that",
        "# researchers must apply, through the researcher API: " + base + CORPUS_API_PATH,
        "# Crawlers that gather training data are turned away from everything here, even from the",
        "# posts of people who said yes: a crawled copy never learns of a withdrawal or deletion,",
        "# which the researcher API reports and its data-use agreement obliges researchers to apply.",
        "",
    ]
    for agent in TRAINING_CRAWLERS:
        lines.append(f"User-agent: {agent}")
    # Disallow before Allow: RFC 9309 picks the longest match, older parsers the first one.
    # This group may fetch nothing, so no Content-Usage rule applies to it (aipref-attach §4.1).
    lines += ["Disallow: /", "", "User-agent: *", "Disallow: /api/", "Allow: /",
              # draft-ietf-aipref-attach §4: the longest matching path decides; this is the default.
              f"Content-Usage: / {TRAIN_AI}=n"]
    for account in accounts:
        lines += [f"Content-Usage: {rule.path} {TRAIN_AI}={'y' if rule.allows else 'n'}"
                  for rule in account_rules(account)]
    return "\n".join(lines) + "\n"


async def _consenting_account(ctx: Context, actor: Actor, budget: int) -> ConsentingAccount | None:
    """The account with the ids of its publicly reachable posts that its consent does not cover
    and of those whose page shows a conversation, or None when it did not consent or needs too
    many exceptions to list."""
    facts = await _consent_facts(ctx, actor)
    if facts is None or facts.choice != "allow" or actor.is_gone:
        return None
    author = _author_facts(actor)
    exceptions: list[int] = []
    conversations: list[int] = []
    scanned = 0
    max_id = None
    while True:
        page = await post_store.list_actor_posts(ctx.db.reader, actor.id, visibilities=("public", "unlisted"),
                                                 max_id=max_id, limit=200)
        covered = []
        for post in page:
            if signals.post_choice(facts, _post_facts(post), author) != "allow":
                exceptions.append(post.id)
            else:
                covered.append(post)
        replied = await post_store.replied_uris(ctx.db.reader, [p.uri for p in covered])
        conversations += [p.id for p in covered if p.in_reply_to_uri or p.uri in replied]
        scanned += len(page)
        if (len(exceptions) + len(conversations) > min(MAX_EXCEPTIONS_PER_ACCOUNT, budget)
                or scanned > MAX_POSTS_SCANNED_PER_ACCOUNT):
            log.info("robots.txt: no train-ai=y rule for %s (%d exceptions, %d conversations in %d posts)",
                     actor.username, len(exceptions), len(conversations), scanned)
            return None
        if len(page) < 200:
            return ConsentingAccount(actor.username, tuple(sorted(exceptions)), tuple(sorted(conversations)))
        max_id = page[-1].id


async def consenting_accounts(ctx: Context) -> list[ConsentingAccount]:
    accounts: list[ConsentingAccount] = []
    budget = MAX_EXCEPTIONS_TOTAL
    for actor, _ in await actor_store.list_local_actors(ctx.db.reader):
        account = await _consenting_account(ctx, actor, budget)
        if account is not None:
            accounts.append(account)
            budget -= len(account.exceptions) + len(account.conversations)
    return accounts


async def robots_txt(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    accounts = await consenting_accounts(ctx)
    # Short cache: a withdrawal must reach crawlers soon (aipref-attach allows them 24 h anyway).
    return web.Response(text=robots_txt_text(ctx.urls.base, accounts), content_type="text/plain",
                        headers={"Cache-Control": "public, max-age=300"})


# --- TDMRep, the ODRL policy, the JSON-LD context ---------------------------------------------

def tdmrep_rules(ctx: Context, accounts: list[ConsentingAccount]) -> list[dict[str, Any]]:
    """W3C TDMRep §"TDM File on the Origin Server": the rules of each consenting author first (the
    first match wins: their uncovered posts reserved, the rest not), then rights reserved
    everywhere else, with our policy."""
    reserved = {"tdm-reservation": 1, "tdm-policy": policy_url(ctx)}
    rules: list[dict[str, Any]] = []
    for account in accounts:
        rules += [{"location": rule.path, **({"tdm-reservation": 0} if rule.allows else reserved)}
                  for rule in account_rules(account)]
    return [*rules, {"location": "/", **reserved}]


def tdm_policy(ctx: Context) -> dict[str, Any]:
    """An ODRL 2.2 Offer in the TDMRep profile: mining is permitted only through the researcher
    API, after accepting its terms, and only for the posts whose authors consented."""
    base = ctx.urls.base
    api = base + CORPUS_API_PATH
    return {
        "@context": ["http://www.w3.org/ns/odrl.jsonld",
                     {"tdm": "http://www.w3.org/ns/tdmrep#", "vcard": "http://www.w3.org/2006/vcard/ns#"}],
        "@type": "Offer",
        "profile": "http://www.w3.org/ns/tdmrep",
        "uid": policy_url(ctx),
        "assigner": {"uid": base, "vcard:fn": ctx.settings.instance.name, "vcard:hasURL": api + "terms"},
        "permission": [{
            "target": api + "records",
            "action": "tdm:mine",
            # Access is granted by the administrator to registered researchers who accept the
            # data-use agreement (GET/POST terms); the records are exactly what authors opted into.
            "duty": [{"action": "obtainConsent"}],
        }],
    }


def _json(doc: Any, content_type: str, **headers: str) -> web.Response:
    return web.Response(body=json.dumps(doc, indent=2).encode("utf-8"), content_type=content_type,
                        headers={"Access-Control-Allow-Origin": "*", **headers})


async def tdmrep_json(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    # As short a cache as robots.txt: the per-author rules follow consent changes.
    return _json(tdmrep_rules(ctx, await consenting_accounts(ctx)), "application/json",
                 **{"Cache-Control": "public, max-age=300"})


async def tdm_policy_json(request: web.Request) -> web.Response:
    # TDMRep: a policy is machine-readable when served as JSON-LD.
    return _json(tdm_policy(_ctx(request)), "application/ld+json", **{"Cache-Control": "public, max-age=3600"})


async def consent_context(request: web.Request) -> web.Response:
    """The context document of our terms; identical on every instance (peers never need to fetch it)."""
    return _json(signals.context_document(), "application/ld+json", **{"Cache-Control": "public, max-age=86400"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/robots.txt", robots_txt)
    app.router.add_get(TDMREP_PATH, tdmrep_json)
    app.router.add_get(POLICY_PATH, tdm_policy_json)
    app.router.add_get(signals.CONTEXT_PATH, consent_context)
