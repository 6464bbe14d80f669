"""Training consent: the person's tri-state choice per purpose, its append-only history, per-post
exclusion, and consent signalled by remote authors. The corpus only ever reads what this records."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import aiosqlite

from fedserver.context import Context
from fedserver.corpus.signals import read_signal
from fedserver.corpus.terms import CONSENT_TERMS, LICENSES, PURPOSES, SCOPES, TRAIN_AI
from fedserver.services.accounts import require_local_actor
from fedserver.store import consent as consent_store
from fedserver.store.actors import Actor
from fedserver.store.consent import ConsentChoice, ConsentEvent, event_hash

log = logging.getLogger(__name__)


class ConsentError(Exception):
    """The consent change is not valid (clear message for the person)."""


@dataclass
class ConsentState:
    purpose: str
    choice: str  # allow | deny | unset
    license: str | None
    scope: str | None
    include_unlisted: bool
    effective_from: str | None
    updated_at: str | None
    event_id: int | None


def _state(purpose: str, row: ConsentChoice | None) -> ConsentState:
    if row is None:
        return ConsentState(purpose, "unset", None, None, False, None, None, None)
    return ConsentState(purpose, row.choice, row.license, row.scope, bool(row.include_unlisted),
                        row.effective_from, row.updated_at, row.event_id)


async def get_state(ctx: Context, actor_id: int, purpose: str = TRAIN_AI, *,
                    conn: aiosqlite.Connection | None = None) -> ConsentState:
    return _state(purpose, await consent_store.get_choice(conn or ctx.db.reader, actor_id, purpose))


async def record_choice(ctx: Context, tx: aiosqlite.Connection, actor: Actor, *, choice: str,
                        purpose: str = TRAIN_AI, license: str | None = None, scope: str | None = None,
                        include_unlisted: bool = False, source: str, note: str = "",
                        terms_version: str | None = None, terms_hash: str | None = None) -> ConsentEvent:
    """Append the event and make it the current choice, inside the caller's transaction."""
    if purpose not in PURPOSES:
        raise ConsentError(f"unknown purpose {purpose!r}")
    if choice not in ("allow", "deny", "unset"):
        raise ConsentError("choice must be allow, deny or unset")
    if choice == "allow":
        if license not in LICENSES:
            raise ConsentError(f"choose a licence: {', '.join(LICENSES)}")
        if scope not in SCOPES:
            raise ConsentError("choose a scope: future (posts from now on) or all (earlier public posts too)")
    else:
        license, scope, include_unlisted = None, None, False
    now = ctx.clock.now_iso()
    event = await consent_store.append_event(
        tx, actor_id=actor.id, actor_uri=actor.uri, purpose=purpose, choice=choice, license=license, scope=scope,
        include_unlisted=include_unlisted, terms_version=terms_version, terms_hash=terms_hash, source=source,
        note=note, created_at=now)
    effective_from = now if (choice == "allow" and scope == "future") else None
    if effective_from is not None and source == "remote-signal":
        # Remote `published` times have whole-second precision: start remote consent at the whole
        # second it was seen, so a post written in that same second is not taken as older.
        effective_from = now[:19] + ".000000Z"
    previous = await consent_store.get_choice(tx, actor.id, purpose)
    if (choice == "allow" and scope == "future" and previous is not None and previous.choice == "allow"
            and previous.scope == "future"):
        # Changing only the licence keeps the original start of consent.
        effective_from = previous.effective_from
    await consent_store.set_choice(tx, actor_id=actor.id, purpose=purpose, choice=choice, license=license,
                                   scope=scope, include_unlisted=include_unlisted, effective_from=effective_from,
                                   event_id=event.id, now=now)
    return event


async def set_training_consent(ctx: Context, username: str, choice: str, *, license: str | None = None,
                               scope: str | None = None, include_unlisted: bool = False, source: str = "self",
                               note: str = "") -> ConsentEvent:
    """A local person's explicit choice (source 'self'), or an admin acting for them ('admin'). The
    new choice is federated as Update(Person) so other servers learn of it."""
    # Imported here: it brings the federation services, which the corpus export (verify_log) does not need.
    from fedserver.services import profile

    actor = await require_local_actor(ctx, username)
    async with ctx.db.transaction() as tx:
        event = await record_choice(ctx, tx, actor, choice=choice, license=license, scope=scope,
                                    include_unlisted=include_unlisted, source=source, note=note,
                                    terms_version=CONSENT_TERMS.version, terms_hash=CONSENT_TERMS.sha256)
        await profile.federate_profile(ctx, tx, actor)
    log.info("training consent of %s set to %s by %s", actor.username, choice, source)
    return event


async def history(ctx: Context, username: str) -> list[ConsentEvent]:
    actor = await require_local_actor(ctx, username)
    return await consent_store.list_events_of_actor(ctx.db.reader, actor.id)


@dataclass
class LogVerification:
    ok: bool
    events: int
    head: str
    first_bad_id: int | None = None
    problem: str | None = None


async def verify_log(ctx: Context) -> LogVerification:
    """Recompute the whole hash chain; the first event whose stored hash or link disagrees is named."""
    return await verify_events(ctx.db.reader)


async def verify_events(conn: aiosqlite.Connection) -> LogVerification:
    """verify_log on a given connection (db copy checks the copy's log as well as the original's)."""
    prev = consent_store.GENESIS_HASH
    count = 0
    async for event in consent_store.iter_all_events(conn):
        count += 1
        if event.prev_hash != prev:
            return LogVerification(False, count, prev, event.id, "chain broken: prev_hash does not match")
        fields = {k: getattr(event, k) for k in ("actor_id", "actor_uri", "purpose", "choice", "license", "scope",
                                                 "include_unlisted", "terms_version", "terms_hash", "source",
                                                 "note", "created_at")}
        if event_hash(prev, fields) != event.hash:
            return LogVerification(False, count, prev, event.id, "event altered: its hash does not match")
        prev = event.hash
    return LogVerification(True, count, prev)


async def apply_remote_signal(ctx: Context, tx: aiosqlite.Connection, actor: Actor, document: dict) -> None:
    """Record the training choice a remote actor's document signals, when it differs from what we
    hold. Consent seen this way counts for posts published from the moment we first saw it."""
    signal = read_signal(document)

    def unchanged(current: ConsentChoice | None) -> bool:
        if current is None:
            return signal.choice == "unset"
        return current.choice == signal.choice and current.license == signal.license

    if unchanged(await consent_store.get_choice(tx, actor.id, TRAIN_AI)):
        return
    # A change: read again holding the log, so that the same document stored by two processes at
    # once records its choice once, not once each (the usual unchanged case takes no lock).
    await consent_store.lock_log(tx)
    if unchanged(await consent_store.get_choice(tx, actor.id, TRAIN_AI)):
        return
    await record_choice(ctx, tx, actor, choice=signal.choice, license=signal.license,
                        scope="future" if signal.choice == "allow" else None, source="remote-signal",
                        note="from the actor document")
