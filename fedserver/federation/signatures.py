"""Verifying the HTTP signature of an inbound request and finding who signed it."""
from __future__ import annotations

import logging
import time

from aiohttp import web

from fedserver.activitypub.httpsig import PendingSignature, SignatureError, extract_signature, request_authority
from fedserver.activitypub.keys import PublicKey, load_public_key
from fedserver.context import Context
from fedserver.services import remote_actors
from fedserver.store.actors import Actor
from fedserver.store.inbox import SignerState

log = logging.getLogger(__name__)

# key id -> monotonic time of the last forced refetch. A cache that may be lost: it only limits
# how often a bad signature can make us refetch a key (Mastodon uses a per-source circuit breaker).
_last_refetch: dict[str, float] = {}
REFETCH_INTERVAL = 60.0


class SignatureRejected(Exception):
    """The request is unsigned or its signature does not verify (answer 401)."""


class SignerBlocked(Exception):
    """The signer's domain is blocked by the admin (answer 403)."""


async def verify_request(ctx: Context, request: web.Request, body: bytes | None, *,
                         use_cache: bool = False) -> Actor:
    """Return the verified signer of the request or raise SignatureRejected/SignerBlocked.

    use_cache=True lets a known key verify from memory (no database read) and domain blocks be a
    few seconds old; the caller must then confirm the signer's row is unchanged when it writes
    (signer_state), as the inbox writer does."""
    try:
        pending = extract_signature(
            request.method, request.raw_path, request.headers, body, now=ctx.clock.now(),
            max_skew=ctx.settings.federation.signature_max_skew_seconds, scheme=ctx.settings.instance.scheme)
    except SignatureError as exc:
        raise SignatureRejected(str(exc)) from exc
    _check_signed_host(ctx, request, pending)
    if await remote_actors.domain_blocked(ctx, pending.key_id, cached=use_cache):
        raise SignerBlocked(f"the domain of {pending.key_id} is blocked")
    if use_cache:
        remembered = remote_actors.cached_signer(ctx, pending.key_id)
        if remembered is not None:
            try:
                pending.verify(remembered[1])
                return remembered[0]
            except (SignatureError, ValueError):
                # Maybe rotated: forget it and take the database (and refetch) path below.
                remote_actors.forget_signer(ctx, pending.key_id)
    try:
        signer = await remote_actors.get_actor_for_key(ctx, pending.key_id)
    except remote_actors.ActorNotFound as exc:
        raise SignatureRejected(f"cannot get key {pending.key_id}: {exc}") from exc
    try:
        key = load_public_key(signer.public_key_pem or "")
        pending.verify(key)
        return _remembered(ctx, pending.key_id, signer, key, use_cache)
    except (SignatureError, ValueError) as first_error:
        if signer.is_local or not _may_refetch(pending.key_id):
            raise SignatureRejected(str(first_error)) from first_error
    # The key may have been rotated: fetch it once more and retry (how rotation propagates).
    try:
        signer = await remote_actors.get_actor_for_key(ctx, pending.key_id, refresh=True)
        key = load_public_key(signer.public_key_pem or "")
        pending.verify(key)
    except remote_actors.ActorNotFound as exc:
        raise SignatureRejected(f"cannot refetch key {pending.key_id}: {exc}") from exc
    except (SignatureError, ValueError) as exc:
        raise SignatureRejected(str(exc)) from exc
    return _remembered(ctx, pending.key_id, signer, key, use_cache)


def _remembered(ctx: Context, key_id: str, signer: Actor, key: PublicKey, use_cache: bool) -> Actor:
    if use_cache and signer.deleted_at is None:
        remote_actors.remember_signer(ctx, key_id, signer, key)
    return signer


def signer_state(signer: Actor) -> SignerState:
    """What verify_request relied on in the signer's row; a write checks it is still so."""
    return SignerState(actor_id=signer.id, key_id=signer.key_id, public_key_pem=signer.public_key_pem,
                       updated_at=signer.updated_at, deleted_at=signer.deleted_at,
                       suspended_at=signer.suspended_at)


# Signature components that bind a request to the Host it was sent to.
_HOST_COMPONENTS = frozenset({"host", "@authority", "@target-uri"})


def _check_signed_host(ctx: Context, request: web.Request, pending: PendingSignature) -> None:
    """A signature over Host is only meant for that server: a peer that received a signed request
    could otherwise replay it, Host header and all, to us and it would verify (Misskey's 2023
    signature bypass, federation.md 7.2). Behind a proxy the original Host must be passed through,
    which verification already requires."""
    if not _HOST_COMPONENTS.intersection(pending.covered):
        return
    scheme = ctx.settings.instance.scheme
    received = request_authority(scheme, request.headers.get("Host", ""))
    ours = request_authority(scheme, ctx.settings.instance.domain)
    if received != ours:
        raise SignatureRejected(f"the signature is for host {received}, not this server ({ours})")


def _may_refetch(key_id: str) -> bool:
    now = time.monotonic()
    last = _last_refetch.get(key_id)
    if last is not None and now - last < REFETCH_INTERVAL:
        return False
    if len(_last_refetch) > 10_000:
        _last_refetch.clear()
    _last_refetch[key_id] = now
    return True
