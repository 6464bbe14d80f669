"""Search, as a person does it from one box: an @user@host address, a profile's or a post's URL
(resolved through the safe fetcher and opened, as Mastodon does), #hashtags, account names, and
the full text of posts (the searcher's own, and indexable authors' public and unlisted ones).
The web page calls it; the Mastodon client API's /api/v2/search can call it the same way."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fedserver.activitypub import fetch
from fedserver.activitypub.actors import is_actor_document
from fedserver.activitypub.normalize import host_of
from fedserver.context import Context
from fedserver.services import audience, remote_actors, remote_posts, timelines
from fedserver.services.accounts import require_local_actor
from fedserver.services.profile import federate_profile
from fedserver.store import actors as actor_store
from fedserver.store import posts as post_store
from fedserver.store import search as search_store
from fedserver.store.actors import Actor
from fedserver.store.posts import Post

log = logging.getLogger(__name__)

# What one search may ask for: longer text is cut, and only the first phrases count, so a query
# costs a bounded amount of index work whatever is pasted into the box.
MAX_QUERY = 300
# A URL is kept whole up to this length (a post's address can be longer than a query).
MAX_URL = 2048
MAX_PHRASES = 8
PAGE_SIZE = 20
# Accounts and hashtags shown beside the posts on the first page of a mixed search.
PREVIEW_SIZE = 5
MAX_OFFSET = 10_000
TYPES = ("accounts", "hashtags", "statuses")

_HANDLE = re.compile(r"^@?[^@\s/]+@[^@\s/]+$")
_TAG = re.compile(r"^#(\w{1,100})$")
_PHRASE = re.compile(r'"([^"]*)"|(\S+)')
# Paths of this server's own pages and ids that name a post or an account.
_LOCAL_POST_PATH = re.compile(r"^/(?:@[^/]+|posts)/(\d{1,19})$")
_LOCAL_POST_ID_PATH = re.compile(r"^/users/[^/]+/statuses/(\d{1,19})$")
_LOCAL_PROFILE_PATH = re.compile(r"^/(?:@|users/)([^/@]+)$")


class SearchError(Exception):
    """What was searched for cannot be found or opened (a sentence for the person)."""

    def __init__(self, message: str, *, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Opened:
    """A URL or address resolved to one thing to open: a post or an account."""
    post: Post | None = None
    actor: Actor | None = None


@dataclass
class Results:
    query: str
    accounts: list[Actor] = field(default_factory=list)
    hashtags: list[tuple[str, int]] = field(default_factory=list)
    posts: timelines.Page = field(default_factory=lambda: timelines.Page([], None))
    # More accounts or hashtags than shown (the page links to their own paged list).
    more_accounts: bool = False
    more_hashtags: bool = False
    # An @user@host address resolved to this account (shown first, with its follow button).
    resolved: Actor | None = None


def phrases_of(query: str) -> list[str]:
    """The words and "quoted phrases" of a query, at most MAX_PHRASES; ones without a letter or
    digit are dropped (they match nothing and would only confuse a query engine)."""
    phrases = []
    for quoted, word in _PHRASE.findall(query[:MAX_QUERY]):
        phrase = (quoted or word).strip()
        if re.search(r"\w", phrase):
            phrases.append(phrase)
    return phrases[:MAX_PHRASES]


def is_url(query: str) -> bool:
    return query.startswith(("https://", "http://")) and not any(c.isspace() for c in query)


def is_handle(query: str) -> bool:
    """@user@host (or user@host): an address to resolve by WebFinger."""
    return bool(_HANDLE.match(query))


def clean_query(raw: str) -> str:
    """The query as searched: cut to MAX_QUERY characters (a URL to MAX_URL), control characters
    (NUL included) out."""
    raw = raw.strip()
    raw = raw[:MAX_URL] if is_url(raw[:MAX_URL]) else raw[:MAX_QUERY]
    return "".join(c for c in raw if c.isprintable() or c == " ").strip()


async def resolve_url(ctx: Context, viewer: Actor, url: str, *, resolve: bool = True) -> Opened:
    """The post or account at url: one of ours, one we hold, or (resolve=True: the API's
    `resolve` parameter) fetched now through the safe fetcher (signed, SSRF-checked, id verified)
    and stored. Only what the viewer may see."""
    host = host_of(url)
    if host is None:
        raise SearchError("That is not a link we can open: use an http:// or https:// address.", status=400)
    if ctx.urls.is_local(url) or host == host_of(ctx.urls.base + "/"):
        opened = await _local(ctx, url)
    else:
        opened = await _known(ctx, url)
        if opened is None:
            if not resolve:
                raise SearchError("We do not know that address yet.")
            opened = await _fetched(ctx, url)
    if opened.post is not None and (opened.post.is_deleted or not await audience.may_see(ctx, opened.post, viewer)):
        raise SearchError("That post is not available to you.")
    if opened.actor is not None and opened.actor.is_gone:
        raise SearchError(f"{opened.actor.handle} is not available on this server.")
    return opened


async def _local(ctx: Context, url: str) -> Opened:
    path = urlsplit(url).path
    match = _LOCAL_POST_PATH.match(path) or _LOCAL_POST_ID_PATH.match(path)
    if match:
        post = await post_store.get_post(ctx.db.reader, int(match.group(1)))
        if post is not None:
            return Opened(post=post)
    match = _LOCAL_PROFILE_PATH.match(path)
    if match:
        actor = await timelines.local_actor(ctx, match.group(1))
        if actor is not None:
            return Opened(actor=actor)
    raise SearchError("There is no post or account at that address on this server.")


async def _known(ctx: Context, url: str) -> Opened | None:
    """What we already hold under this id (a post's or account's id, not its page)."""
    post = await post_store.get_post_by_uri(ctx.db.reader, url)
    if post is not None:
        return Opened(post=post)
    actor = await actor_store.get_actor_by_uri(ctx.db.reader, url)
    if actor is not None and not actor.deleted_at:
        return Opened(actor=actor)
    return None


async def _fetched(ctx: Context, url: str) -> Opened:
    if await remote_actors.domain_blocked(ctx, url):
        raise SearchError(f"This server does not connect to {urlsplit(url).hostname}.")
    try:
        # follow_id: a page URL (https://host/@user/123) answers with the object whose id differs,
        # or redirects to it; the object is then fetched from its own id (Mastodon's
        # FetchResourceService does the same).
        doc = await ctx.fetcher.fetch_object(url, follow_id=True)
    except fetch.FetchError as exc:
        log.info("search: fetching %s failed: %s", url, exc)
        raise SearchError(_fetch_problem(url, exc)) from exc
    uri = doc["id"]
    # The document may live elsewhere than the address typed (a redirect, or an id on another host).
    if uri != url and await remote_actors.domain_blocked(ctx, uri):
        raise SearchError(f"This server does not connect to {urlsplit(uri).hostname}.")
    known = await _known(ctx, uri)
    if known is not None:
        return known
    try:
        if is_actor_document(doc):
            return Opened(actor=await remote_actors.store_document(ctx, doc))
        return Opened(post=await remote_posts.store_fetched_post(ctx, uri, doc))
    except (remote_actors.ActorNotFound, remote_posts.PostNotFound) as exc:
        log.info("search: %s is neither a usable post nor an account: %s", url, exc)
        raise SearchError("That address is not a post or a profile we can show.") from exc


def _fetch_problem(url: str, exc: fetch.FetchError) -> str:
    host = urlsplit(url).netloc
    if isinstance(exc, (fetch.FetchConnectionError, fetch.FetchTimeout)):
        return f"We could not reach {host}: the server may be down, or the address may be misspelt."
    if isinstance(exc, (fetch.FetchNotFound, fetch.FetchGone)):
        return f"{host} has nothing at that address (any more)."
    if isinstance(exc, fetch.FetchBlocked):
        return f"This server does not connect to {host}."
    return f"{host} did not give us a post or a profile at that address."


async def resolve_account(ctx: Context, handle: str, *, resolve: bool = True) -> Actor:
    """@user@host (a bare @user: someone here) to the account, by WebFinger when not known yet
    (unless resolve=False); remote_actors.ActorNotFound says why not."""
    handle = handle.strip().removeprefix("acct:").lstrip("@")
    handle = handle if "@" in handle else f"{handle}@{ctx.urls.domain}"
    if resolve:
        actor = await remote_actors.resolve_handle(ctx, handle)
    else:
        user, _, host = handle.rpartition("@")
        known = await actor_store.get_actor_by_handle(ctx.db.reader, user, host.lower())
        if known is None:
            raise remote_actors.ActorNotFound(f"@{handle} is not known here yet")
        actor = known
    if actor.is_gone:
        raise SearchError(f"{actor.handle} is suspended on this server.")
    return actor


async def search(ctx: Context, viewer: Actor, query: str, *, kind: str | None = None, max_id: int | None = None,
                 offset: int = 0, limit: int = PAGE_SIZE,
                 choices: timelines.TrainingChoices | None = None) -> Results:
    """Accounts by name, hashtags by prefix and posts by their words, for a query that is neither
    a URL nor an @user@host address (resolve_url, resolve_account). kind narrows to one of TYPES
    (paged by offset; posts also by max_id); without it, the first few accounts and hashtags and a
    page of posts."""
    query = clean_query(query)
    offset = max(0, min(offset, MAX_OFFSET))
    limit = max(1, min(limit, 40))
    results = Results(query=query)
    tag = _TAG.match(query)
    phrases = phrases_of(query.lstrip("#@") if tag else query)
    if not phrases:
        raise SearchError("Type an address like @someone@mastodon.social, a name, a #hashtag or some words.",
                          status=400)
    reader = ctx.db.reader
    if kind in (None, "accounts") and not tag:
        size = limit if kind else PREVIEW_SIZE
        found = await search_store.search_accounts(reader, [p.lstrip("@") for p in phrases], viewer_id=viewer.id,
                                                   offset=offset, limit=size + 1)
        results.accounts, results.more_accounts = found[:size], len(found) > size
    if kind in (None, "hashtags") and (tag or len(phrases) == 1):
        size = limit if kind else PREVIEW_SIZE
        found_tags = await search_store.search_tags(reader, phrases[0].lstrip("#").lower(), offset=offset,
                                                    limit=size + 1)
        results.hashtags, results.more_hashtags = found_tags[:size], len(found_tags) > size
    if kind in (None, "statuses"):
        matches = await search_store.search_posts(reader, phrases, viewer_id=viewer.id, max_id=max_id,
                                                  offset=offset if kind else 0, limit=limit)
        cards = await timelines.cards_for(ctx, viewer, [(p.id, p, None) for p in matches.posts], choices=choices)
        results.posts = timelines.Page(cards, matches.next_max_id)
    return results


async def set_indexable(ctx: Context, username: str, indexable: bool) -> Actor:
    """A local person's "Let my public posts be found in search": stored on the actor and
    federated as `indexable` (Mastodon 4.2's flag) with an Update to their followers' servers."""
    actor = await require_local_actor(ctx, username)
    if bool(actor.indexable) == indexable:
        return actor
    async with ctx.db.transaction() as tx:
        await actor_store.update_actor_profile(tx, actor.id, now=ctx.clock.now_iso(), indexable=int(indexable))
        updated = await actor_store.get_actor(tx, actor.id)
        assert updated is not None
        await federate_profile(ctx, tx, updated)
    log.info("%s turned search indexing %s", username, "on" if indexable else "off")
    return updated
