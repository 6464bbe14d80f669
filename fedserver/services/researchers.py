"""What the admin does with researchers (register, list, revoke) and what a researcher may do with
the corpus: authenticate, accept the data-use terms, and pull snapshots, changes, compliance
answers and statistics. Every pull is logged and rate-limited here; the HTTP edge only maps the
exceptions below to statuses."""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any, AsyncIterator

from fedserver.context import Context
from fedserver.corpus import records as corpus_records
from fedserver.corpus import sync
from fedserver.corpus.terms import Terms, researcher_terms
from fedserver.store import corpus as corpus_store
from fedserver.store import custody as custody_store
from fedserver.store import locks
from fedserver.store import researchers as researcher_store
from fedserver.store.researchers import Researcher, ResearcherSummary

log = logging.getLogger(__name__)

# Requests per researcher per sliding minute, counted in the database so that several server
# processes share one budget.
RATE_WINDOW_MS = 60_000
TOKEN_PREFIX = "fsr_"  # recognisable by secret scanners and in logs that must redact it
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
SNAPSHOT_BATCH = 500
CHANGES_DEFAULT_LIMIT = 500
CHANGES_MAX_LIMIT = 1000
COMPLIANCE_MAX_IDS = 1000


class ResearcherError(Exception):
    """An admin command about researchers cannot be done as asked (clear message, exit 1)."""


class AccessDenied(Exception):
    """A researcher's request is refused; the subclass says why (the edge picks the status)."""


class InvalidToken(AccessDenied):
    """No researcher has this token, or none was sent."""


class RevokedToken(AccessDenied):
    """The token belonged to a researcher whose access was revoked."""

    def __init__(self, researcher: Researcher) -> None:
        super().__init__("this token's access was revoked")
        self.researcher = researcher


class TermsNotAccepted(AccessDenied):
    """The researcher has not accepted the current data-use terms."""


class RateLimited(AccessDenied):
    def __init__(self, retry_after: int, limit: int) -> None:
        super().__init__(f"rate limit of {limit} requests per minute exceeded; retry after {retry_after} s")
        self.retry_after = retry_after


class InvalidRequest(Exception):
    """The request's parameters or body are malformed (400)."""


class TooManyIds(InvalidRequest):
    """A compliance batch larger than COMPLIANCE_MAX_IDS (413)."""


class TermsMismatch(Exception):
    """The researcher accepted a version or text of the terms that is not the current one (409)."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# --- the admin's commands ---------------------------------------------------------------------

async def add_researcher(ctx: Context, name: str, *, contact: str = "", organisation: str = "", purpose: str = "",
                         scrub: bool = False) -> tuple[Researcher, str]:
    """Register a researcher; returns the bearer token, which is never stored (only its hash).
    organisation, contact and purpose are shown to each person whose records they receive; scrub:
    their API records come scrubbed (the terms they accept say which form they get)."""
    name = name.strip()
    if not NAME_RE.match(name):
        raise ResearcherError("a researcher name is 1-64 letters, digits, '.', '_', '@' or '-',"
                              " starting with a letter or digit")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with ctx.db.transaction() as tx:
        existing = await researcher_store.get_researcher_by_name(tx, name)
        if existing is not None:
            state = f" (revoked {existing.revoked_at})" if existing.revoked_at else ""
            raise ResearcherError(f"researcher {name} already exists{state}")
        researcher_id = await researcher_store.insert_researcher(tx, name=name, token_hash=token_hash(token),
                                                                 contact=contact.strip(), now=ctx.clock.now_iso(),
                                                                 organisation=organisation.strip(),
                                                                 purpose=purpose.strip(), scrub=scrub)
        researcher = await researcher_store.get_researcher(tx, researcher_id)
    assert researcher is not None
    log.info("researcher %s registered", name)
    return researcher, token


async def list_researchers(ctx: Context) -> list[ResearcherSummary]:
    return await researcher_store.list_researchers(ctx.db.reader)


async def revoke_researcher(ctx: Context, name: str) -> tuple[Researcher, bool]:
    """Revoke a researcher's access; returns the researcher and whether this call revoked it (False
    when it already was)."""
    async with ctx.db.transaction() as tx:
        researcher = await researcher_store.get_researcher_by_name(tx, name)
        if researcher is None:
            raise ResearcherError(f"no researcher named {name}")
        if researcher.revoked_at is not None:
            return researcher, False
        await researcher_store.revoke_researcher(tx, researcher.id, ctx.clock.now_iso())
        revoked = await researcher_store.get_researcher(tx, researcher.id)
    assert revoked is not None
    log.info("researcher %s revoked", name)
    return revoked, True


async def rotate_token(ctx: Context, name: str) -> tuple[Researcher, str]:
    """Give a researcher a new token (a leaked or lost one): the old token stops working at once,
    and everything else stays theirs (accepted terms, pull log, where their sync had got to).
    Returns the new token, which is never stored (only its hash)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with ctx.db.transaction() as tx:
        researcher = await researcher_store.get_researcher_by_name(tx, name)
        if researcher is None:
            raise ResearcherError(f"no researcher named {name}")
        if researcher.revoked_at is not None:
            raise ResearcherError(f"researcher {name} was revoked ({researcher.revoked_at}); a revoked"
                                  " researcher gets no new token")
        await researcher_store.set_token_hash(tx, researcher.id, token_hash(token))
        rotated = await researcher_store.get_researcher(tx, researcher.id)
    assert rotated is not None
    log.info("researcher %s: new token issued, the old one no longer works", name)
    return rotated, token


# --- authentication, terms and the pull log -----------------------------------------------------

async def authenticate(ctx: Context, token: str | None) -> Researcher:
    if not token:
        raise InvalidToken("a bearer token is required")
    researcher = await researcher_store.get_researcher_by_token_hash(ctx.db.reader, token_hash(token))
    if researcher is None:
        raise InvalidToken("unknown token")
    if researcher.revoked_at is not None:
        raise RevokedToken(researcher)
    return researcher


def current_terms(ctx: Context, researcher: Researcher | None = None) -> Terms:
    """The terms this researcher must accept: they state the server's removal deadline and the form
    (scrubbed or not) of the records the researcher receives; None: the general text."""
    return researcher_terms(ctx.settings.corpus.removal_deadline_days,
                            None if researcher is None else bool(researcher.scrub))


def has_accepted_current_terms(ctx: Context, researcher: Researcher) -> bool:
    terms = current_terms(ctx, researcher)
    return researcher.terms_version == terms.version and researcher.terms_hash == terms.sha256


def require_terms(ctx: Context, researcher: Researcher) -> None:
    if not has_accepted_current_terms(ctx, researcher):
        terms = current_terms(ctx, researcher)
        raise TermsNotAccepted(f"accept the data-use terms {terms.version} first (GET, then POST terms)")


async def accept_terms(ctx: Context, researcher: Researcher, *, version: Any, sha256: Any,
                       accept: Any) -> Researcher:
    """Record that the researcher accepted the current terms, naming exactly the version and hash
    they were shown (accepting an older text is refused). Accepting again changes nothing."""
    if accept is not True:
        raise InvalidRequest('accepting the terms needs "accept": true')
    if not isinstance(version, str) or not isinstance(sha256, str):
        raise InvalidRequest('"version" and "sha256" of the terms are required strings')
    terms = current_terms(ctx, researcher)
    if version != terms.version or sha256.lower() != terms.sha256:
        raise TermsMismatch(f"the current terms are {terms.version} (sha256 {terms.sha256}); read and accept those")
    if has_accepted_current_terms(ctx, researcher):
        return researcher
    async with ctx.db.transaction() as tx:
        await researcher_store.set_terms_accepted(tx, researcher.id, version=terms.version, sha256=terms.sha256,
                                                  now=ctx.clock.now_iso())
        updated = await researcher_store.get_researcher(tx, researcher.id)
    assert updated is not None
    log.info("researcher %s accepted terms %s", researcher.name, terms.version)
    return updated


async def begin_pull(ctx: Context, researcher: Researcher, endpoint: str, params: str) -> int:
    """Log the start of a request, or refuse it over the rate limit (logged too). Counting and
    logging share one write transaction, holding the researcher's lock (store/locks.py: needed on
    PostgreSQL, where writers in other processes run at once), so concurrent requests, in this
    process or another, cannot both take the last free slot."""
    now_ms = ctx.clock.now_ms()
    since_ms = now_ms - RATE_WINDOW_MS
    async with ctx.db.transaction() as tx:
        await locks.lock_name(tx, f"researcher-pulls:{researcher.id}")
        recent = await researcher_store.count_recent_pulls(tx, researcher.id, since_ms)
        limit = ctx.settings.corpus.rate_limit_per_minute
        limited = recent >= limit
        retry_after = 1
        if limited:
            oldest = await researcher_store.oldest_recent_pull_ms(tx, researcher.id, since_ms) or now_ms
            retry_after = max(1, math.ceil((oldest + RATE_WINDOW_MS - now_ms) / 1000))
        pull_id = await researcher_store.insert_pull(
            tx, researcher_id=researcher.id, endpoint=endpoint, params=params,
            status=researcher_store.PULL_RATE_LIMITED if limited else researcher_store.PULL_IN_PROGRESS,
            records=0, now=ctx.clock.now_iso(), now_ms=now_ms)
    if limited:
        log.info("researcher %s over the rate limit on %s", researcher.name, endpoint)
        raise RateLimited(retry_after, limit)
    return pull_id


async def finish_pull(ctx: Context, pull_id: int, *, status: int, records: int, researcher: Researcher | None = None,
                      receipts: dict[int, int] | None = None, receipt_seq: int = 0) -> None:
    """Close the pull's log entry and, in the same transaction, count the records it sent per
    author (the receipts each person's page shows)."""
    async with ctx.db.transaction() as tx:
        await researcher_store.finish_pull(tx, pull_id, status=status, records=records)
        if researcher is not None and receipts:
            await custody_store.add_receipts(tx, researcher_id=researcher.id, channel=custody_store.API,
                                             counts=receipts, seq=receipt_seq, now=ctx.clock.now_iso())


async def log_refused_pull(ctx: Context, researcher: Researcher, endpoint: str, params: str, status: int) -> None:
    """A request refused before it began (a revoked token): logged, not counted against a limit."""
    async with ctx.db.transaction() as tx:
        await researcher_store.insert_pull(tx, researcher_id=researcher.id, endpoint=endpoint, params=params,
                                           status=status, records=0, now=ctx.clock.now_iso(),
                                           now_ms=ctx.clock.now_ms())


# --- what a researcher pulls --------------------------------------------------------------------

@dataclass
class Snapshot:
    """The corpus at one cursor: every record present whose last change is at or before it. The
    changes feed from the same cursor brings a holder of the snapshot up to date."""
    cursor: int
    batches: AsyncIterator[list[dict[str, Any]]]
    # Records streamed so far per author id (the pull's receipts).
    tally: corpus_records.CorpusTally


async def _scrub_handles(ctx: Context, researcher: Researcher | None) -> set[str] | None:
    """The handles scrubbing keeps, when this researcher receives scrubbed records (else None)."""
    if researcher is None or not researcher.scrub:
        return None
    return await corpus_records.consenting_handles(ctx.db.reader)


async def open_snapshot(ctx: Context, researcher: Researcher | None = None) -> Snapshot:
    await sync.reconcile(ctx)
    cursor = await corpus_store.next_seq(ctx.db.reader)
    secret = await sync.corpus_secret(ctx)
    tally = corpus_records.CorpusTally(per_author=True)
    handles = await _scrub_handles(ctx, researcher)
    return Snapshot(cursor, corpus_records.iter_records(ctx.db.reader, secret, max_seq=cursor, batch=SNAPSHOT_BATCH,
                                                        scrub_handles=handles, tally=tally), tally)


@dataclass
class ChangesPage:
    changes: list[dict[str, Any]]
    next_cursor: int
    has_more: bool
    # Records the page carries per author id (the pull's receipts).
    per_author: dict[int, int]


async def changes_since(ctx: Context, cursor: int, limit: int = CHANGES_DEFAULT_LIMIT,
                        researcher: Researcher | None = None) -> ChangesPage:
    """Feed entries after the cursor, oldest first. An added/updated entry carries the record only
    when it is the record's latest change; otherwise it is marked superseded, because a later entry
    (an update or a removal) carries what the researcher must hold now."""
    if limit < 1:
        raise InvalidRequest("limit must be at least 1")
    limit = min(limit, CHANGES_MAX_LIMIT)
    await sync.reconcile(ctx)
    head = await corpus_store.next_seq(ctx.db.reader)
    if cursor < 0 or cursor > head:
        raise InvalidRequest(f"cursor {cursor} is not a position in this corpus's change feed (0-{head})")
    rows = await corpus_store.changes_after(ctx.db.reader, cursor, limit + 1)
    has_more = len(rows) > limit
    rows = rows[:limit]
    wanted = [row["post_id"] for row in rows if row["action"] != "removed"]
    present = await corpus_store.records_by_post_ids(ctx.db.reader, wanted)
    listed = {(row["post_id"], row["seq"]) for row in rows}
    current = [record for record in present.values() if (record["post_id"], record["changed_seq"]) in listed]
    secret = await sync.corpus_secret(ctx)
    handles = await _scrub_handles(ctx, researcher)
    built = {record["record_id"]: record for record in await corpus_records.enrich(ctx.db.reader, current, secret,
                                                                                   scrub_handles=handles)}
    per_author: dict[int, int] = {}
    for record in current:
        per_author[record["actor_id"]] = per_author.get(record["actor_id"], 0) + 1
    changes = []
    for row in rows:
        entry: dict[str, Any] = {"seq": row["seq"], "action": row["action"], "record_id": row["record_id"],
                                 "reason": row["reason"], "changed_at": row["created_at"]}
        if row["action"] != "removed":
            record = present.get(row["post_id"])
            is_latest = record is not None and record["changed_seq"] == row["seq"]
            entry["superseded"] = not is_latest
            entry["record"] = built[row["record_id"]] if is_latest else None
        changes.append(entry)
    return ChangesPage(changes, rows[-1]["seq"] if rows else cursor, has_more, per_author)


async def compliance(ctx: Context, ids: list[Any]) -> list[dict[str, Any]]:
    """Current status of each record id (r_...) or post URL, in the order asked."""
    if len(ids) > COMPLIANCE_MAX_IDS:
        raise TooManyIds(f"at most {COMPLIANCE_MAX_IDS} ids per request (got {len(ids)})")
    if not all(isinstance(i, str) and i for i in ids):
        raise InvalidRequest('"ids" must be a list of record ids or post URLs (strings)')
    await sync.reconcile(ctx)
    record_ids = sorted({i for i in ids if i.startswith("r_")})
    post_urls = sorted({i for i in ids if i.startswith(("https://", "http://"))})
    found = {row["id"]: row for row in await corpus_store.status_of(ctx.db.reader, record_ids=record_ids,
                                                                   post_uris=post_urls)}
    unknown = {"status": "unknown", "reason": None, "record_id": None}
    return [{"id": i, **{k: found.get(i, unknown)[k] for k in ("status", "reason", "record_id")}} for i in ids]


async def corpus_stats(ctx: Context) -> dict[str, Any]:
    await sync.reconcile(ctx)
    cursor = await corpus_store.next_seq(ctx.db.reader)
    stats = await corpus_store.stats(ctx.db.reader)
    return {"posts": stats["records"], "authors": stats["authors"], "languages": stats["languages"],
            "date_range": {"first": stats["first_published"], "last": stats["last_published"]},
            "licenses": stats["licenses"], "removed": stats["removed_records"], "cursor": cursor}


CROISSANT_MODULE = "fedserver.corpus.croissant"


def croissant_available() -> bool:
    return importlib.util.find_spec(CROISSANT_MODULE) is not None


async def croissant(ctx: Context) -> tuple[dict[str, Any], str]:
    """The dataset's MLCommons Croissant description (built, after reconciling, by corpus.croissant)
    and its media type."""
    module = importlib.import_module(CROISSANT_MODULE)
    return await module.croissant_document(ctx), getattr(module, "MEDIA_TYPE", "application/ld+json")
