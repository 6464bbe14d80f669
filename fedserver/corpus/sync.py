"""Keeping corpus membership equal to what consent allows right now.

Reconciliation looks at every post that changed (or whose author or consent changed) since its last
run, applies the eligibility rule, and appends added/updated/removed entries to the change feed.
It runs before every researcher pull and export, and periodically in the server, so a withdrawal
takes effect on the next pull. Running it twice changes nothing; several processes take turns
batch by batch (a lock each batch holds while it reads the records' state and appends to the feed:
on PostgreSQL two reconciliations at once would both add the same post)."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets

from fedserver.cancellation import raise_if_cancelled
from fedserver.clock import iso_from_epoch, parse_time
from fedserver.context import Context
from fedserver.corpus.eligibility import AuthorFacts, ConsentFacts, PostFacts, evaluate
from fedserver.corpus.terms import TRAIN_AI
from fedserver.store import corpus as corpus_store
from fedserver.store import locks

log = logging.getLogger(__name__)

WATERMARK_KEY = "corpus_watermark"
SECRET_KEY = "corpus_hmac_key"
BATCH = 500
# Writers in other processes may commit rows stamped slightly before our watermark; looking back
# this far makes sure they are seen (reconciling a post twice is harmless).
LOOKBACK_SECONDS = 300


async def corpus_secret(ctx: Context) -> bytes:
    """The server's key for pseudonymous ids, created once and kept in the database."""
    value = await corpus_store.get_state(ctx.db.reader, SECRET_KEY)
    if value is None:
        # Two processes making it at once keep the first one's: a second key would give the
        # records the other process wrote meanwhile other ids than every later look-up.
        async with ctx.db.transaction() as tx:
            value = await corpus_store.keep_first_state(tx, SECRET_KEY, secrets.token_hex(32))
    return bytes.fromhex(value)


def pseudonym(secret: bytes, kind: str, uri: str) -> str:
    """Stable keyed hash: the same post or author always gets the same id, and nobody without the
    server's key can go back from the id to the URL."""
    digest = hmac.new(secret, f"{kind}:{uri}".encode("utf-8"), hashlib.sha256).hexdigest()[:32]
    return f"{kind[0]}_{digest}"


def _content_hash(facts: dict) -> str:
    material = "\x1f".join(str(facts.get(k) or "") for k in (
        "content_html", "summary", "edited_at", "language", "license", "event_id", "visibility", "boosts"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _evaluate(facts: dict) -> str | None:
    post = PostFacts(visibility=facts["visibility"], published_at=facts["published_at"],
                     deleted=facts["deleted_at"] is not None, excluded=bool(facts["corpus_excluded"]))
    author = AuthorFacts(deleted=facts["actor_deleted_at"] is not None,
                         suspended=facts["actor_suspended_at"] is not None)
    consent = None
    if facts["choice"] is not None:
        consent = ConsentFacts(choice=facts["choice"], include_unlisted=bool(facts["include_unlisted"]),
                               effective_from=facts["effective_from"])
    return evaluate(post, author, consent)


async def reconcile(ctx: Context, *, full: bool = False) -> int:
    """Bring corpus_records up to date; returns the number of change entries written."""
    secret = await corpus_secret(ctx)
    started = ctx.clock.now()
    watermark = None if full else await corpus_store.get_state(ctx.db.reader, WATERMARK_KEY)
    since = "" if watermark is None else iso_from_epoch(_epoch(watermark) - LOOKBACK_SECONDS)
    written = 0
    after_id = 0
    while True:
        async with ctx.db.transaction() as tx:
            await locks.lock_name(tx, "corpus-reconcile")
            post_ids = await corpus_store.changed_post_ids(tx, since, after_id, BATCH)
            if not post_ids:
                await corpus_store.set_state(tx, WATERMARK_KEY, iso_from_epoch(started))
                break
            now = ctx.clock.now_iso()
            for facts in await corpus_store.facts_for_posts(tx, post_ids, TRAIN_AI):
                written += await _apply(tx, secret, facts, now)
            after_id = post_ids[-1]
    if written:
        log.info("corpus reconciled: %d changes", written)
    return written


async def _apply(tx, secret: bytes, facts: dict, now: str) -> int:
    reason = _evaluate(facts)
    present = facts["state"] == "present"
    record_id = facts["record_id"] or pseudonym(secret, "record", facts["uri"])
    content_hash = _content_hash(facts)
    if reason is None:
        if present and facts["content_hash"] == content_hash:
            return 0
        action = "updated" if present else "added"
        await corpus_store.record_change(tx, post_id=facts["post_id"], record_id=record_id, action=action,
                                         reason=None, state="present", consent_event_id=facts["event_id"],
                                         content_hash=content_hash, now=now)
        return 1
    if present:
        await corpus_store.record_change(tx, post_id=facts["post_id"], record_id=record_id, action="removed",
                                         reason=reason, state="removed", consent_event_id=facts["event_id"],
                                         content_hash="", now=now)
        return 1
    return 0


def _epoch(iso: str) -> float:
    return parse_time(iso) or 0.0


async def run_periodically(ctx: Context, interval: float = 15.0) -> None:
    """Keep the change feed close to real time in a running server (pulls reconcile anyway)."""
    while True:
        raise_if_cancelled()
        try:
            await reconcile(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the next round tries again
            log.exception("corpus reconciliation failed")
        await asyncio.sleep(interval)
