"""Finding remote actors: by id, by signing key id, by @user@host; cached in the actors table and
refreshed when stale. Every fetch goes through the one RemoteFetcher (signed, SSRF-checked)."""
from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from urllib.parse import urldefrag

from fedserver.activitypub import webfinger
from fedserver.activitypub.actors import InvalidActor, actor_profile, also_known_as, is_actor_document, key_document
from fedserver.activitypub.fetch import FetchError, FetchGone
from fedserver.activitypub.normalize import host_of
from fedserver.activitypub.sanitizing import clean_html
from fedserver.clock import parse_time
from fedserver.activitypub.keys import PublicKey
from fedserver.context import Context
from fedserver.corpus.signals import read_signal
from fedserver.db import Database
from fedserver.services import consent, profile_fields
from fedserver.services.actor_writer import ActorWriter
from fedserver.store import actors as actor_store
from fedserver.store import hosts as host_store
from fedserver.store.actors import Actor

log = logging.getLogger(__name__)


class ActorNotFound(Exception):
    """The actor does not exist, is gone, or its server could not give a usable document."""


# In-memory caches for the inbox's accept path, one set per open database (several instances may
# share a process in tests). They may be lost at any time and are bounded in size and age.
KEY_CACHE_SECONDS = 300.0
KEY_CACHE_SIZE = 5_000
# An admin's domain block (CLI, web) reaches a running server's inbox within this many seconds.
DOMAIN_BLOCK_CACHE_SECONDS = 5.0
DOMAIN_BLOCK_CACHE_SIZE = 10_000
# A fetch that just finished answers the same question for this long (see _single_flight).
JUST_FETCHED_SECONDS = 5.0
JUST_FETCHED_SIZE = 1_000


class _Caches:
    def __init__(self) -> None:
        # key id -> (expiry, signer, parsed key)
        self.keys: OrderedDict[str, tuple[float, Actor, PublicKey]] = OrderedDict()
        # host -> (expiry, blocked)
        self.blocks: dict[str, tuple[float, bool]] = {}
        # What is being fetched now -> its outcome when known (see _single_flight).
        self.inflight: dict[tuple[str, str, bool], asyncio.Future[Actor]] = {}
        # What was fetched and stored a moment ago -> (expiry, its stored actor).
        self.just_fetched: OrderedDict[tuple[str, str, bool], tuple[float, Actor]] = OrderedDict()
        self.writer = ActorWriter()


_caches: weakref.WeakKeyDictionary[Database, _Caches] = weakref.WeakKeyDictionary()


def _caches_of(ctx: Context) -> _Caches:
    caches = _caches.get(ctx.db)
    if caches is None:
        caches = _caches[ctx.db] = _Caches()
    return caches


def cached_signer(ctx: Context, key_id: str) -> tuple[Actor, PublicKey] | None:
    """The signer and parsed key last verified for key_id, if remembered. Callers must check the
    actor row is unchanged before relying on it (the inbox writer does, in its transaction)."""
    keys = _caches_of(ctx).keys
    entry = keys.get(key_id)
    if entry is None:
        return None
    if entry[0] < time.monotonic():
        del keys[key_id]
        return None
    keys.move_to_end(key_id)
    return entry[1], entry[2]


def remember_signer(ctx: Context, key_id: str, actor: Actor, key: PublicKey) -> None:
    keys = _caches_of(ctx).keys
    # Only what verification and the inbox need: the document and bio can be large.
    keys[key_id] = (time.monotonic() + KEY_CACHE_SECONDS, replace(actor, raw_json=None, summary_html=""), key)
    keys.move_to_end(key_id)
    while len(keys) > KEY_CACHE_SIZE:
        keys.popitem(last=False)


def forget_signer(ctx: Context, key_id: str) -> None:
    _caches_of(ctx).keys.pop(key_id, None)


def _is_stale(ctx: Context, actor: Actor) -> bool:
    fetched = parse_time(actor.fetched_at)
    return fetched is None or ctx.clock.now() - fetched > ctx.settings.federation.actor_refresh_seconds


async def store_document(ctx: Context, doc: dict, *, key_id: str | None = None) -> Actor:
    """Store a remote actor document (fetched, or embedded in its own signed Update) and the
    training-consent signal it carries."""
    try:
        profile = actor_profile(doc, key_id=key_id)
    except InvalidActor as exc:
        raise ActorNotFound(str(exc)) from exc
    uri = doc["id"]
    profile["summary_html"] = await clean_html(profile["summary_html"], what=f"the profile of {uri}")
    profile["fields_json"] = await profile_fields.clean_remote_fields(profile["fields_json"], uri)
    if ctx.urls.is_local(uri):
        raise ActorNotFound("refusing to overwrite a local actor from a fetched document")
    if read_signal(doc).choice == "unset":
        # A first contact with nothing to record beside its row: stored with the other first contacts
        # of the moment in one transaction (ActorWriter); None means the actor had a row already.
        stored = await _caches_of(ctx).writer.store_new(ctx, uri, profile)
        if stored is not None:
            return stored
    async with ctx.db.transaction() as tx:
        actor_id = await actor_store.upsert_remote_actor(tx, uri=uri, now=ctx.clock.now_iso(), **profile)
        actor = await actor_store.get_actor(tx, actor_id)
        assert actor is not None
        await consent.apply_remote_signal(ctx, tx, actor, doc)
    return actor


async def _single_flight(ctx: Context, key: tuple[str, str, bool], work: Callable[[], Awaitable[Actor]]) -> Actor:
    """One fetch per document at a time: a request needing a document that another request is
    already fetching (an actor's first activities arriving together) waits for that fetch and its
    stored row instead of fetching and storing the same document again. The first caller does the
    work itself (no task: a hop through the event loop is a few ms under load); if it is cancelled
    (its client went away), the callers waiting for it start over.

    A first contact whose database read missed the row just before the key fetch stored it, and
    that comes here just after the fetch finished, would fetch again: for JUST_FETCHED_SECONDS the
    finished fetch's stored actor answers instead (it is what that read would now find). Only for
    plain key look-ups: a refresh, or a fetch meant to see the document as it is now (a Move's
    target, a profile), always fetches."""
    caches = _caches_of(ctx)
    inflight = caches.inflight
    remember = key[0] == "key" and not key[2]
    recent = caches.just_fetched.get(key) if remember else None
    if recent is not None:
        if recent[0] >= time.monotonic():
            return recent[1]
        del caches.just_fetched[key]
    while (running := inflight.get(key)) is not None:
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            if not running.cancelled():
                raise  # this caller was cancelled, not the one doing the work
    done: asyncio.Future[Actor] = asyncio.get_running_loop().create_future()
    inflight[key] = done
    try:
        actor = await work()
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError):
            done.cancel()
        else:
            done.set_exception(exc)
            done.exception()  # retrieved: nobody else may be waiting
        raise
    else:
        done.set_result(actor)
        if remember:
            caches.just_fetched[key] = (time.monotonic() + JUST_FETCHED_SECONDS, actor)
            while len(caches.just_fetched) > JUST_FETCHED_SIZE:
                caches.just_fetched.popitem(last=False)
        return actor
    finally:
        if inflight.get(key) is done:
            del inflight[key]


def aliases_of(actor: Actor) -> list[str]:
    """The other ids an account says are also its own (alsoKnownAs): a local account's own list, a
    remote one's from its stored document. A move to an account is believed only when it lists the
    account moving."""
    if actor.is_local:
        return actor.aliases
    try:
        document = json.loads(actor.raw_json or "{}")
    except ValueError:
        return []
    return also_known_as(document) if isinstance(document, dict) else []


def forget_domain_blocks(ctx: Context) -> None:
    """A domain block was added or lifted in this process: answer from the database again."""
    _caches_of(ctx).blocks.clear()


async def domain_blocked(ctx: Context, uri: str, *, cached: bool = False) -> bool:
    """Whether a domain block covers uri's host (canonical: host_of), a subdomain's included;
    cached=True may answer from a few seconds ago (DOMAIN_BLOCK_CACHE_SECONDS). A uri without a
    canonical host (not http(s), user info) has no domain to block: callers refuse it
    (refuse_unusable_id)."""
    host = host_of(uri)
    if host is None:
        return False
    if not cached:
        return await host_store.is_domain_blocked(ctx.db.reader, host)
    blocks = _caches_of(ctx).blocks
    now = time.monotonic()
    entry = blocks.get(host)
    if entry is not None and entry[0] >= now:
        return entry[1]
    blocked = await host_store.is_domain_blocked(ctx.db.reader, host)
    if len(blocks) >= DOMAIN_BLOCK_CACHE_SIZE:
        blocks.clear()
    blocks[host] = (now + DOMAIN_BLOCK_CACHE_SECONDS, blocked)
    return blocked


def refuse_unusable_id(uri: str, what: str = "id") -> None:
    """ActorNotFound unless uri is an http(s) URL with a valid host and no user info: the fetcher
    refuses the others too, but saying so here is clearer, and no block can be checked for them."""
    if host_of(uri) is None:
        raise ActorNotFound(f"{what} {uri} is not an http(s) URL with a valid host and no user info")


async def fetch_actor(ctx: Context, uri: str) -> Actor:
    """Fetch and store the actor document at uri (its id must equal uri)."""
    refuse_unusable_id(uri, "actor id")
    if await domain_blocked(ctx, uri):
        raise ActorNotFound(f"domain of {uri} is blocked")
    return await _single_flight(ctx, ("actor", uri, True), lambda: _fetch_and_store_actor(ctx, uri))


async def _fetch_and_store_actor(ctx: Context, uri: str) -> Actor:
    try:
        doc = await ctx.fetcher.fetch_object(uri, expected_id=uri)
    except FetchGone:
        await _mark_gone(ctx, uri)
        raise ActorNotFound(f"{uri} is gone (410)") from None
    except FetchError as exc:
        raise ActorNotFound(f"could not fetch {uri}: {exc.plain}") from exc
    return await store_document(ctx, doc)


async def _mark_gone(ctx: Context, uri: str) -> None:
    async with ctx.db.transaction() as tx:
        actor = await actor_store.get_actor_by_uri(tx, uri)
        if actor is not None and not actor.is_local:
            await actor_store.mark_actor_deleted(tx, actor.id, ctx.clock.now_iso())


async def get_actor(ctx: Context, uri: str, *, refresh: bool = False) -> Actor:
    """The actor with this id, from the cache when fresh; a failed refresh falls back to the cache."""
    cached = await actor_store.get_actor_by_uri(ctx.db.reader, uri)
    if cached is not None and (cached.is_local or (not refresh and not _is_stale(ctx, cached))):
        if cached.deleted_at:
            raise ActorNotFound(f"{uri} was deleted")
        return cached
    try:
        return await fetch_actor(ctx, uri)
    except ActorNotFound:
        if cached is not None and not cached.deleted_at and not refresh:
            log.info("using cached actor %s after a failed refresh", uri)
            return cached
        raise


async def get_actor_for_key(ctx: Context, key_id: str, *, refresh: bool = False) -> Actor:
    """The actor owning key_id. Resolves `actor#main-key` and standalone key documents alike, and
    checks both ways that the owner publishes exactly this key (Mastodon's FetchRemoteKeyService)."""
    refuse_unusable_id(key_id, "keyId")
    if refresh:
        blocked = await domain_blocked(ctx, key_id)
    else:
        # Both reads at once: each is a hop to the reader's thread and back, which costs an event
        # loop turn under load, and a first contact needs both.
        cached, blocked = await asyncio.gather(actor_store.get_actor_by_key_id(ctx.db.reader, key_id),
                                               domain_blocked(ctx, key_id))
        if cached is not None and not cached.deleted_at:
            return cached
    if blocked:
        raise ActorNotFound(f"domain of {key_id} is blocked")
    return await _single_flight(ctx, ("key", key_id, refresh), lambda: _fetch_and_store_key_owner(ctx, key_id))


async def _fetch_and_store_key_owner(ctx: Context, key_id: str) -> Actor:
    document_url = urldefrag(key_id).url
    try:
        doc = await ctx.fetcher.fetch_object(document_url, expected_id=document_url)
    except FetchGone:
        await _mark_gone(ctx, document_url)
        raise ActorNotFound(f"key {key_id} is gone (410)") from None
    except FetchError as exc:
        raise ActorNotFound(f"could not fetch key {key_id}: {exc.plain}") from exc
    if is_actor_document(doc):
        return await store_document(ctx, doc, key_id=key_id)
    key = key_document(doc)
    if key is None or key.key_id != key_id or key.owner is None:
        raise ActorNotFound(f"{key_id} is neither an actor nor a key document with an owner")
    if host_of(key.owner) != host_of(key_id):
        raise ActorNotFound(f"key {key_id} claims an owner on another host")
    try:
        owner_doc = await ctx.fetcher.fetch_object(key.owner, expected_id=key.owner)
    except FetchError as exc:
        raise ActorNotFound(f"could not fetch key owner {key.owner}: {exc.plain}") from exc
    return await store_document(ctx, owner_doc, key_id=key_id)


async def resolve_handle(ctx: Context, handle: str) -> Actor:
    """@user@host (or user@host, acct:user@host) to an actor: local directly, remote via WebFinger."""
    try:
        user, host = webfinger.parse_handle(handle)
    except ValueError as exc:
        raise ActorNotFound(str(exc)) from exc
    canonical = host_of(f"{ctx.settings.instance.scheme}://{host}/")
    if canonical is None:
        raise ActorNotFound(f"{handle} is not an address like @someone@social.example")
    if canonical == host_of(ctx.urls.base + "/"):
        local = await actor_store.get_local_actor(ctx.db.reader, user)
        if local is None:
            raise ActorNotFound(f"no local account @{user}")
        return local
    if await host_store.is_domain_blocked(ctx.db.reader, canonical):
        raise ActorNotFound(f"the domain {host} is blocked")
    cached = await actor_store.get_actor_by_handle(ctx.db.reader, user, host.lower())
    if cached is not None and not _is_stale(ctx, cached):
        return cached
    try:
        actor_uri = await webfinger.resolve_handle(ctx.fetcher, f"{user}@{host}", ctx.settings.instance.scheme)
    except FetchError as exc:
        raise ActorNotFound(f"could not find @{user}@{host}: {exc.plain}") from exc
    return await get_actor(ctx, actor_uri, refresh=True)
