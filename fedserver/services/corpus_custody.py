"""Custody of corpus records: which researchers were sent whose records (through the API or an
offline release), their confirmations that they applied removals, and the deadline the data-use
terms set for that. A researcher with an owed removal older than the deadline and not confirmed
gets no new data; the person sees, for each removal of theirs, who confirmed and who is late."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from fedserver.clock import iso_from_epoch, parse_time
from fedserver.context import Context
from fedserver.corpus import sync
from fedserver.store import corpus as corpus_store
from fedserver.store import custody as custody_store
from fedserver.store import researchers as researcher_store
from fedserver.store.researchers import Researcher

log = logging.getLogger(__name__)

DAY = 86_400
REMOVALS_SHOWN = 1000  # the person's page lists (at most) their latest removals
REMOVALS_DEFAULT_LIMIT = 1000
CHANNEL_NAMES = {custody_store.API: "the API", custody_store.RELEASE: "an offline release"}


class CustodyError(Exception):
    """An acknowledgement or a release hand-over cannot be done as asked (clear message)."""


class RemovalsOverdue(Exception):
    """The researcher owes a removal past its deadline: no new data until they confirm (403)."""

    def __init__(self, researcher: Researcher, removal: dict[str, Any], due_at: str) -> None:
        super().__init__(f"removal {removal['record_id']} (feed position {removal['seq']}, {removal['reason']},"
                         f" {removal['created_at']}) was due to be applied and confirmed by {due_at}; apply every"
                         f" removal and confirm with POST /api/corpus/v1/removals/ack")
        self.researcher, self.removal, self.due_at = researcher, removal, due_at

    def document(self) -> dict[str, Any]:
        return {"error": str(self), "reason": "removals_overdue",
                "oldest_overdue_removal": {"seq": self.removal["seq"], "record_id": self.removal["record_id"],
                                           "reason": self.removal["reason"],
                                           "removed_at": self.removal["created_at"], "due_at": self.due_at},
                "acknowledged_cursor": self.researcher.removals_acked_seq,
                "removals": f"/api/corpus/v1/removals?cursor={self.researcher.removals_acked_seq}",
                "acknowledge": 'POST /api/corpus/v1/removals/ack with {"cursor": N} or {"release": VERSION}'}


def deadline_days(ctx: Context) -> int:
    return ctx.settings.corpus.removal_deadline_days


def due_at(ctx: Context, removed_at: str) -> str:
    """When a removal made at removed_at must be applied and confirmed."""
    return iso_from_epoch((parse_time(removed_at) or 0.0) + deadline_days(ctx) * DAY)


def _cutoff(ctx: Context) -> str:
    """Removals made at or before this time are past their deadline now."""
    return iso_from_epoch(ctx.clock.now() - deadline_days(ctx) * DAY)


async def oldest_overdue(ctx: Context, researcher: Researcher) -> dict[str, Any] | None:
    """The researcher's oldest owed removal past its deadline and not confirmed, or None."""
    return await custody_store.oldest_owed_removal(ctx.db.reader, researcher_id=researcher.id,
                                                   after_seq=researcher.removals_acked_seq,
                                                   removed_by=_cutoff(ctx))


async def require_removals_applied(ctx: Context, researcher: Researcher) -> None:
    """Refuse new data to a researcher past a removal deadline (RemovalsOverdue)."""
    removal = await oldest_overdue(ctx, researcher)
    if removal is not None:
        log.info("researcher %s refused new data: removal at %d overdue", researcher.name, removal["seq"])
        raise RemovalsOverdue(researcher, removal, due_at(ctx, removal["created_at"]))


# --- receipts ---------------------------------------------------------------------------------

async def record_receipts(tx: aiosqlite.Connection, researcher: Researcher, channel: str, counts: dict[int, int], seq: int,
                          now: str) -> None:
    """Inside the caller's transaction (the pull log's or the release's)."""
    if counts:
        await custody_store.add_receipts(tx, researcher_id=researcher.id, channel=channel, counts=counts,
                                         seq=seq, now=now)


# --- acknowledgements ---------------------------------------------------------------------------

@dataclass
class AckState:
    cursor: int
    acknowledged_at: str | None
    overdue: dict[str, Any] | None


async def _state(ctx: Context, researcher_id: int) -> AckState:
    researcher = await researcher_store.get_researcher(ctx.db.reader, researcher_id)
    assert researcher is not None
    removal = await oldest_overdue(ctx, researcher)
    overdue = None if removal is None else {**removal, "due_at": due_at(ctx, removal["created_at"])}
    return AckState(researcher.removals_acked_seq, researcher.removals_acked_at, overdue)


async def acknowledge_cursor(ctx: Context, researcher: Researcher, cursor: Any) -> AckState:
    """The researcher confirms every removal up to cursor applied (a cursor before one confirmed
    already changes nothing)."""
    if not isinstance(cursor, int) or isinstance(cursor, bool):
        raise CustodyError('"cursor" must be an integer position of the change feed')
    head = await corpus_store.next_seq(ctx.db.reader)
    if cursor < 0 or cursor > head:
        raise CustodyError(f"cursor {cursor} is not a position in this corpus's change feed (0-{head})")
    async with ctx.db.transaction() as tx:
        moved = await custody_store.set_removals_acked(tx, researcher.id, cursor, ctx.clock.now_iso())
    if moved:
        log.info("researcher %s confirmed removals up to %d", researcher.name, cursor)
    return await _state(ctx, researcher.id)


async def acknowledge_release(ctx: Context, researcher: Researcher | str, version: Any) -> AckState:
    """The researcher applied release `version` (its removals.jsonl and records): every removal up
    to the release's cursor is confirmed."""
    if not isinstance(version, str) or not version:
        raise CustodyError('"release" must be the version of a release of this corpus')
    async with ctx.db.transaction() as tx:
        if isinstance(researcher, str):
            found = await researcher_store.get_researcher_by_name(tx, researcher)
            if found is None:
                raise CustodyError(f"no researcher named {researcher}")
            researcher = found
        release = await custody_store.release_by_version(tx, version)
        if release is None:
            raise CustodyError(f"no release {version} was made of this corpus")
        now = ctx.clock.now_iso()
        await custody_store.set_release_acked(tx, researcher_id=researcher.id, version=version,
                                              seq=release["seq"], now=now)
        await custody_store.set_removals_acked(tx, researcher.id, release["seq"], now)
    log.info("researcher %s confirmed the removals of release %s", researcher.name, version)
    return await _state(ctx, researcher.id)


async def removals_after(ctx: Context, cursor: int, limit: int = REMOVALS_DEFAULT_LIMIT) -> dict[str, Any]:
    """The removals only (never records): what an overdue researcher still may read."""
    if limit < 1:
        raise CustodyError("limit must be at least 1")
    limit = min(limit, REMOVALS_DEFAULT_LIMIT)
    await sync.reconcile(ctx)  # a withdrawal of a moment ago is listed already
    head = await corpus_store.next_seq(ctx.db.reader)
    if cursor < 0 or cursor > head:
        raise CustodyError(f"cursor {cursor} is not a position in this corpus's change feed (0-{head})")
    rows = await custody_store.removals_after(ctx.db.reader, cursor, limit + 1)
    has_more = len(rows) > limit
    rows = rows[:limit]
    removals = [{"seq": r["seq"], "record_id": r["record_id"], "reason": r["reason"], "removed_at": r["created_at"],
                 "due_at": due_at(ctx, r["created_at"])} for r in rows]
    # Without more removals, the cursor may move to the head: nothing else needs applying there.
    return {"removals": removals, "next_cursor": rows[-1]["seq"] if has_more else head, "has_more": has_more}


# --- releases handed to researchers ------------------------------------------------------------

async def release_recipients(ctx: Context, names: list[str]) -> list[Researcher]:
    """The researchers a release is written for: each registered, not revoked and not past a
    removal deadline (a late researcher gets no new data, offline neither)."""
    recipients = []
    for name in names:
        researcher = await researcher_store.get_researcher_by_name(ctx.db.reader, name)
        if researcher is None:
            raise CustodyError(f"no researcher named {name}")
        if researcher.revoked_at is not None:
            raise CustodyError(f"researcher {name} was revoked ({researcher.revoked_at})")
        removal = await oldest_overdue(ctx, researcher)
        if removal is not None:
            raise CustodyError(f"researcher {name} has not confirmed removal {removal['record_id']} (feed position"
                               f" {removal['seq']}, due {due_at(ctx, removal['created_at'])}); record their"
                               " confirmation first (`fedserver researcher ack-release NAME VERSION`)")
        recipients.append(researcher)
    return recipients


async def record_release_receipts(ctx: Context, recipients: list[Researcher], *, version: str, seq: int,
                                  counts: dict[int, int]) -> None:
    async with ctx.db.transaction() as tx:
        now = ctx.clock.now_iso()
        for researcher in recipients:
            await custody_store.add_release_receipt(tx, researcher_id=researcher.id, version=version, seq=seq, now=now)
            await record_receipts(tx, researcher, custody_store.RELEASE, counts, seq, now)
    for researcher in recipients:
        log.info("release %s given to researcher %s", version, researcher.name)


# --- what the admin and the person see -----------------------------------------------------------

@dataclass
class OverdueResearcher:
    researcher: Researcher
    removal: dict[str, Any]
    due_at: str


async def overdue_researchers(ctx: Context) -> list[OverdueResearcher]:
    out = []
    for summary in await researcher_store.list_researchers(ctx.db.reader):
        r = summary.researcher
        if r.revoked_at is not None:
            continue
        removal = await oldest_overdue(ctx, r)
        if removal is not None:
            out.append(OverdueResearcher(r, removal, due_at(ctx, removal["created_at"])))
    return out


async def set_scrub(ctx: Context, name: str, scrub: bool) -> Researcher:
    async with ctx.db.transaction() as tx:
        researcher = await researcher_store.get_researcher_by_name(tx, name)
        if researcher is None:
            raise CustodyError(f"no researcher named {name}")
        await custody_store.set_scrub(tx, researcher.id, scrub)
        updated = await researcher_store.get_researcher(tx, researcher.id)
    assert updated is not None
    log.info("researcher %s now receives %s records", name, "scrubbed" if scrub else "unscrubbed")
    return updated


@dataclass
class Recipient:
    """One researcher who was sent records of the person: who they are and what they received."""
    researcher_id: int
    name: str
    organisation: str
    contact: str
    purpose: str
    scrubbed: bool
    revoked_at: str | None
    acked_seq: int
    acked_at: str | None
    channels: list[str] = field(default_factory=list)
    records: int = 0
    first_at: str = ""
    last_at: str = ""
    receipts: list[tuple[int, int]] = field(default_factory=list)  # (first_seq, last_seq) per channel

    def owes(self, removal: dict[str, Any]) -> bool:
        """The rule of store.custody, for one removal of this person's."""
        added = removal["added_seq"]
        return added is not None and any(first < removal["seq"] and added <= last for first, last in self.receipts)


@dataclass
class RemovalGroup:
    """Removals of the person's records made together (one withdrawal, deletion or exclusion)."""
    reason: str
    at: str
    records: int
    due_at: str
    seqs: list[int] = field(default_factory=list)  # feed positions of its removals
    confirmed: list[str] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


@dataclass
class Custody:
    recipients: list[Recipient]
    removals: list[RemovalGroup]
    deadline_days: int


async def where_my_posts_went(ctx: Context, actor_id: int) -> Custody:
    """The person's view: who was sent their records, and for each removal of theirs who confirmed
    it, who is late and who still has time. Nothing about other people's records."""
    recipients: dict[int, Recipient] = {}
    for row in await custody_store.receipts_of_author(ctx.db.reader, actor_id):
        r = recipients.get(row["researcher_id"])
        if r is None:
            r = recipients[row["researcher_id"]] = Recipient(
                row["researcher_id"], row["name"], row["organisation"], row["contact"], row["purpose"],
                bool(row["scrub"]), row["revoked_at"], row["removals_acked_seq"], row["removals_acked_at"],
                first_at=row["first_at"], last_at=row["last_at"])
        r.channels.append(CHANNEL_NAMES[row["channel"]])
        r.records += row["records"]
        r.first_at, r.last_at = min(r.first_at, row["first_at"]), max(r.last_at, row["last_at"])
        r.receipts.append((row["first_seq"], row["last_seq"]))
    groups = _group_removals(await custody_store.removals_of_author(ctx.db.reader, actor_id, REMOVALS_SHOWN))
    cutoff = _cutoff(ctx)
    out = []
    for rows in groups:
        at = min(row["created_at"] for row in rows)
        group = RemovalGroup(rows[0]["reason"], at, len(rows), due_at(ctx, at), [row["seq"] for row in rows])
        for r in recipients.values():
            owed = [row for row in rows if r.owes(row)]
            if not owed:
                continue
            late = [row for row in owed if row["seq"] > r.acked_seq]
            if not late:
                group.confirmed.append(r.name)
            elif min(row["created_at"] for row in late) <= cutoff:
                group.overdue.append(r.name)
            else:
                group.pending.append(r.name)
        out.append(group)
    return Custody(list(recipients.values()), out, deadline_days(ctx))


def _group_removals(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Newest first, removals with the same reason made in the same minute together: one withdrawal
    removes every post of the person at once, and is one thing to them."""
    groups: list[list[dict[str, Any]]] = []
    for row in rows:
        if groups and groups[-1][0]["reason"] == row["reason"] and groups[-1][0]["created_at"][:16] == row["created_at"][:16]:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups
