"""The inbox endpoints: check size (inflated), type, JSON, the sending host's limits, signature, id
lengths and origin, then store the activity for the inbox worker and answer 202. Nothing is
processed before it is durably stored, and nothing is stored when any check fails."""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import orjson
from aiohttp import hdrs, web

from fedserver.activitypub.normalize import first_type, host_of, id_of
from fedserver.activitypub.vocab import MAX_ID_LENGTH
from fedserver.context import CTX_KEY, Context
from fedserver.federation.inbound_limits import INBOUND_LIMITS_KEY
from fedserver.federation.inbox_writer import DUPLICATE, FRESH, INBOX_WRITER_KEY
from fedserver.federation.signatures import SignatureRejected, SignerBlocked, signer_state, verify_request
from fedserver.services import remote_actors
from fedserver.store import actors as actor_store
from fedserver.store.actors import Actor
from fedserver.store.inbox import NewInboxItem

log = logging.getLogger(__name__)

ACCEPTED_TYPES = ("application/activity+json", "application/ld+json", "application/json")
# Types whose embedded object must come from the actor's own server (Mastodon's invalid_origin?).
SAME_ORIGIN_OBJECT_TYPES = frozenset({"Create", "Update", "Delete"})


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class BodyTooLarge(Exception):
    """The body, as the handler reads it (decompressed), is larger than the inbox accepts."""


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The body, at most `limit` bytes of it as the handler sees it, or BodyTooLarge. aiohttp
    inflates a Content-Encoding it knows (gzip, deflate; br and zstd when their libraries are
    installed) while the body is read, a bounded chunk at a time, so counting what request.content
    yields caps the inflated size whatever the encoding: 7 KB of gzip inflating to 7 MB stops after
    `limit` bytes. Content-Length counts the bytes on the wire: it can refuse early, never accept."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge()
    if request.content_length is not None and hdrs.CONTENT_ENCODING not in request.headers:
        return await request.read()  # identity: aiohttp stops at Content-Length
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


async def _refuse_and_close(request: web.Request, response: web.Response) -> web.Response:
    """Send response and close the connection: the rest of the body is never read. Without this,
    aiohttp would read (and inflate) what is left for up to 10 s to keep the connection alive,
    which for a compressed body is the work the size cap is there to prevent."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.protocol is not None:
        request.protocol.force_close()
    return response


def _parse_json(body: bytes) -> Any:
    """The body as JSON, or ValueError. UTF-8 only (RFC 8259 8.1): json.loads(bytes) would also
    take UTF-16/32, which the queue (UTF-8 text) cannot store; deep nesting is refused, not a 500.

    orjson first (a third of json's cost on the hot path); whatever it refuses goes to json, which
    decides and words the error, so what is accepted is unchanged (json also takes NaN and nesting
    deeper than orjson's 1024). Only the checks before storing read this parse: the stored body is
    the bytes received (orjson turns integers beyond 64 bits into floats)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _origin_problem(activity: dict[str, Any], actor_uri: str) -> str | None:
    """Why the activity claims something its actor may not, or None (CVE-2024-23832 class)."""
    activity_type = first_type(activity)
    activity_id = activity.get("id")
    if isinstance(activity_id, str) and host_of(activity_id) != host_of(actor_uri):
        return "activity id is not on the actor's host"
    obj = activity.get("object")
    if activity_type in SAME_ORIGIN_OBJECT_TYPES:
        object_id = id_of(obj)
        if object_id is None:
            return "activity has no object id"
        if host_of(object_id) != host_of(actor_uri):
            return "object id is not on the actor's host"
        if isinstance(obj, dict) and activity_type != "Delete":
            attributed = id_of(obj.get("attributedTo"))
            if first_type(obj) not in ("Person", "Service", "Application", "Group", "Organization") \
                    and attributed is not None and attributed != actor_uri:
                return "object is attributed to someone else"
    if activity_type == "Undo" and isinstance(obj, dict):
        inner_actor = id_of(obj.get("actor"))
        if inner_actor is not None and inner_actor != actor_uri:
            return "undone activity belongs to another actor"
    return None


async def handle_inbox(request: web.Request) -> web.Response:
    ctx: Context = request.app[CTX_KEY]
    writer = request.app[INBOX_WRITER_KEY]
    writer.count_arrival()
    username = request.match_info.get("username")
    if username is not None:
        owner = await actor_store.get_local_actor(ctx.db.reader, username)
        if owner is None or owner.deleted_at:
            return json_error(404, "no such inbox")
    content_type = request.content_type.lower()
    if content_type not in ACCEPTED_TYPES:
        return json_error(415, f"inbox accepts application/activity+json, not {content_type or 'no content type'}")
    limit = ctx.settings.federation.max_inbox_body_bytes
    try:
        body = await _read_body(request, limit)
    except BodyTooLarge:
        return await _refuse_and_close(request, json_error(413, f"body larger than {limit} bytes"))
    except web.RequestPayloadError as exc:
        # A body that does not inflate (corrupt gzip or deflate): the sender's fault, not a 500.
        encoding = request.headers.get(hdrs.CONTENT_ENCODING, "identity")[:32]
        log.info("inbox: unreadable body (Content-Encoding %s) from %s: %s", encoding, request.remote, exc)
        return await _refuse_and_close(request, json_error(400, f"body does not decode as Content-Encoding {encoding}"))
    try:
        activity = _parse_json(body)
    except ValueError as exc:
        return json_error(400, f"body is not valid JSON: {exc}")
    shaped = isinstance(activity, dict) and bool(first_type(activity)) and bool(id_of(activity.get("actor")))
    actor_uri = id_of(activity.get("actor")) if shaped else None
    activity_type = (first_type(activity) if shaped else None) or "Unknown"

    if shaped and activity_type == "Delete" and id_of(activity.get("object")) == actor_uri:
        # Mastodon: an account deleting itself that we never knew needs no key fetch (it would 410).
        if await actor_store.get_actor_by_uri(ctx.db.reader, actor_uri or "") is None:
            return web.Response(status=202)
    limits = request.app[INBOUND_LIMITS_KEY]
    # Before the signature's cost: the host the activity claims is over a limit. Only verified
    # requests count towards a host's limits, so claiming someone else's host cannot throttle it.
    claimed_host = host_of(actor_uri) if shaped else None
    retry_after = limits.retry_after(claimed_host)
    if retry_after is not None:
        response = json_error(429, "your server is over its inbound limit here"
                                   " (request rate or queued activities); retry later")
        response.headers["Retry-After"] = str(retry_after)
        return response
    # The signature is checked before the shape, as Mastodon does: an unsigned request learns
    # nothing but 401.
    try:
        # Keys may verify from memory: the writer re-checks the signer's row when it stores.
        signer = await verify_request(ctx, request, body, use_cache=True)
        # (The signer is the actor, or the request is refused below: its host is then the claimed one.)
        signer_host = claimed_host if signer.uri == actor_uri else host_of(signer.uri)
        limits.count_request(signer_host)
        refused = _refusal(activity, activity_type, actor_uri if shaped else None, signer, len(body))
        if refused is not None:
            return refused
        assert actor_uri is not None
        activity_uri = activity.get("id") if isinstance(activity.get("id"), str) else \
            "urn:sha256:" + hashlib.sha256(body).hexdigest()
        item = NewInboxItem(activity_uri=activity_uri, activity_type=activity_type[:64], signer_uri=signer.uri,
                            body=body.decode("utf-8"), signer_host=signer_host)
        outcome = await writer.store(item, signer_state(signer))
        if outcome not in (FRESH, DUPLICATE):
            # The signer's row changed after its key was remembered (rotated, deleted, refetched):
            # verify again from the database, exactly as without the cache.
            remote_actors.forget_signer(ctx, signer.key_id or "")
            signer = await verify_request(ctx, request, body)
            refused = _refusal(activity, activity_type, actor_uri, signer, len(body))
            if refused is not None:
                return refused
            outcome = await writer.store(item)
        fresh = outcome == FRESH
        if fresh:
            limits.count_stored(item.signer_host)
    except SignerBlocked as exc:
        log.info("inbox: refused %s from %s: %s", activity_type, actor_uri, exc)
        return json_error(403, str(exc))
    except SignatureRejected as exc:
        log.info("inbox: bad signature on %s from %s: %s", activity_type, actor_uri, exc)
        return json_error(401, str(exc))
    if not fresh:
        log.debug("inbox: duplicate %s", activity_uri)
    return web.Response(status=202)


def _refusal(activity: Any, activity_type: str, actor_uri: str | None, signer: Actor,
             body_size: int) -> web.Response | None:
    """The answer for a verified request that may not be stored, or None."""
    if actor_uri is None:
        return json_error(400, "body is not an activity (needs type and actor)")
    if host_of(actor_uri) is None:
        # e.g. http://x@blocked.example/...: its host must not be read two ways (domain blocks).
        return json_error(400, "actor id is not an http(s) URL with a valid host and no user info")
    if signer.uri != actor_uri:
        log.info("inbox: signer %s is not actor %s of %s", signer.uri, actor_uri, activity.get("id"))
        return json_error(401, "the request is not signed by the activity's actor")
    if signer.suspended_at and activity_type != "Delete":
        # An admin suspended the account: nothing it sends is taken (its own Delete still is, so
        # that a departing account's traces go).
        log.info("inbox: refused %s %s from suspended %s", activity_type, activity.get("id"), actor_uri)
        return json_error(403, "the account is suspended on this server")
    # No string in a body is longer than the body: most activities need no look at their ids.
    overlong = _overlong_id(activity) if body_size > MAX_ID_LENGTH else None
    if overlong:
        log.info("inbox: refused %s from %s: %s longer than %d characters", activity_type, actor_uri, overlong,
                 MAX_ID_LENGTH)
        return json_error(400, f"{overlong} is longer than {MAX_ID_LENGTH} characters")
    problem = _origin_problem(activity, actor_uri)
    if problem:
        log.info("inbox: refused %s %s from %s: %s", activity_type, activity.get("id"), actor_uri, problem)
        return json_error(403, problem)
    return None


# Ids that processing stores (the activity's own, its actor's and object's, and those of an embedded
# object: a post's id, author and reply target): bounded before anything is stored or fetched.
_ID_FIELDS = ("actor", "object", "target")
_OBJECT_ID_FIELDS = ("id", "actor", "object", "attributedTo", "inReplyTo", "target")


def _overlong_id(activity: dict[str, Any]) -> str | None:
    """The name of the first id longer than MAX_ID_LENGTH, or None."""
    activity_id = activity.get("id")
    if isinstance(activity_id, str) and len(activity_id) > MAX_ID_LENGTH:
        return "activity id"
    for name in _ID_FIELDS:
        ident = id_of(activity.get(name))
        if ident is not None and len(ident) > MAX_ID_LENGTH:
            return f"{name} id"
    obj = activity.get("object")
    if isinstance(obj, dict):
        for name in _OBJECT_ID_FIELDS:
            ident = id_of(obj.get(name))
            if ident is not None and len(ident) > MAX_ID_LENGTH:
                return f"object's {name}" if name != "id" else "object id"
    return None
