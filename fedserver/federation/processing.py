"""The inbox worker: applies stored inbound activities in arrival order. A transient failure (a
remote server down) is retried with back-off; a bug in one activity never stops the others.
Creates with their object embedded, most of what arrives, are applied a claimed batch at a time in
one transaction with their mark-done (federation/creates.py); other activities one by one. What
must fetch from the network first runs outside the batch, in per-signer lanes with fetch budgets
(federation/fetch_lanes.py), so that a slow remote cannot hold up the others."""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from typing import Any, Callable, Protocol

from fedserver.activitypub.normalize import first_type, host_of, id_of
from fedserver.cancellation import raise_if_cancelled
from fedserver.context import Context
from fedserver.federation.creates import DeliveredCreate, apply_creates
from fedserver.federation.fetch_lanes import FetchLanes, Routed
from fedserver.federation.handlers import RetryLater, dispatch
from fedserver.store import actors as actor_store
from fedserver.store import claims
from fedserver.store import inbox as inbox_store
from fedserver.store import posts as post_store
from fedserver.store.actors import Actor
from fedserver.store.inbox import InboxItem
from fedserver.federation.idle import wait_for_work
from fedserver.federation.lease_renewal import renew_leases_forever
from fedserver.queue_wakeups import INBOX
from fedserver.transaction_retry import ConflictPersisted, retry_conflicts

log = logging.getLogger(__name__)

# Numbers the inbox workers of one process (`fedserver worker --concurrency N`): each holds its
# leases under its own owner name.
_WORKER_NUMBERS = itertools.count(1)

MAX_ATTEMPTS = 8
# Items claimed at once. The Creates among them are applied in one transaction, which holds the
# write lock (and so keeps the inbox writer's next group commit waiting) for ~0.06 ms per Create
# plus the commit (~11 ms for 128); in-process, 64 -> 128 drained 3,800 -> 4,200 Creates/s.
BATCH = 128
# While inbox requests arrive, a smaller batch: its transaction (which the writer's
# next group commit waits behind) and its parsing on the loop are a quarter as long.
BATCH_WHILE_INBOUND = 32
# Signers whose other activities are applied concurrently within one claimed batch.
LANES = 8
IDLE_POLL_SECONDS = 1.0
# How soon an activity stored by an acceptor process is applied when this worker is idle.
ACCEPTOR_WATCH_SECONDS = 0.05
# Acknowledge first: while inbox requests keep arriving (GIVE_WAY_ARRIVALS or more since the last
# look) and the event loop's thread is busy (GIVE_WAY_BUSY of the time or more, by its CPU time over
# a 10 ms wait), senders push harder than one process answers, and applying a batch (~30 ms of CPU
# for 128 Creates) would make each of them wait longer. The worker then gives way, but for at most
# GIVE_WAY_SECONDS per batch, so it still applies a batch that often and never starves; what is
# stored meanwhile is durable and applied once the burst passes. While the loop has room, even
# under load, the two interleave.
GIVE_WAY_ARRIVALS = 8
GIVE_WAY_BUSY = 0.8
GIVE_WAY_SECONDS = 0.25
GIVE_WAY_POLL_SECONDS = 0.01


def _inbox_leases_renewed(ids: list[int], kept: set[int], until_ms: int) -> None:
    # What was not renewed was finished or put off meanwhile (or, after a stall past the lease,
    # taken over by another worker: applying twice is tolerated by the handlers).
    log.debug("inbox: renewed %d of %d leases", len(kept), len(ids))


class InboundPressure(Protocol):
    @property
    def received(self) -> int: ...


class InboxWorker:
    def __init__(self, ctx: Context, inbound: InboundPressure | None = None) -> None:
        self.ctx = ctx
        self.inbound = inbound
        self._received_seen = 0  # inbound.received at the last look
        self._inbound_now = False  # requests arrived since the previous batch
        self.lanes = FetchLanes(ctx, self.process)
        # Claimed items are leased to this worker, renewed every third of the lease while it holds
        # them (in a batch or a fetch lane): another inbox worker skips their signer meanwhile
        # (store.inbox.claim_due_items), and takes them over only once this one died.
        self._lease_ms = int(ctx.settings.server.worker_lease_seconds * 1000)
        self._owner = f"{ctx.worker_id}/inbox-{next(_WORKER_NUMBERS)}"
        self._batch: set[int] = set()

    async def run(self) -> None:
        renewer = asyncio.create_task(self._renew_leases(), name="inbox-lease-renewer")
        try:
            while True:
                raise_if_cancelled()
                await self._give_way()
                try:
                    processed = await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001
                    log.exception("inbox worker iteration failed")
                    processed = 0
                if processed == 0:
                    await self._sleep()
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
            await self.lanes.close()

    async def _renew_leases(self) -> None:
        await renew_leases_forever(
            self.ctx, lease_ms=self._lease_ms, queue="inbox", held=lambda: self._batch | self.lanes.held_ids(),
            renew=lambda conn, ids, until_ms: claims.renew_inbox_leases(conn, ids, owner=self._owner,
                                                                        until_ms=until_ms),
            renewed=_inbox_leases_renewed)

    async def _give_way(self) -> None:
        if self.inbound is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GIVE_WAY_SECONDS
        arrived = self._arrivals()
        self._inbound_now = arrived > 0
        while arrived >= GIVE_WAY_ARRIVALS and loop.time() < deadline:
            # This thread runs the event loop: its CPU time over the wait is how busy the loop was.
            wall, cpu = loop.time(), time.thread_time()
            await asyncio.sleep(GIVE_WAY_POLL_SECONDS)
            arrived = self._arrivals()
            if time.thread_time() - cpu < GIVE_WAY_BUSY * (loop.time() - wall):
                return  # the loop had room: apply now

    def _arrivals(self) -> int:
        assert self.inbound is not None
        received = self.inbound.received
        arrived, self._received_seen = received - self._received_seen, received
        return arrived

    async def _sleep(self) -> None:
        """Idle: wait for this process's wake-up (its inbox stored something), for the next retry to
        fall due, or IDLE_POLL_SECONDS (leases). With acceptor processes (fedserver/serving.py),
        whose stored activities cannot set this process's wake-up, also look every
        ACCEPTOR_WATCH_SECONDS whether another connection committed (PRAGMA data_version)."""
        ctx = self.ctx
        due = await inbox_store.next_due_ms(ctx.db.reader, ctx.clock.now_ms())
        timeout = ctx.wakeups.idle_seconds(IDLE_POLL_SECONDS)  # longer while LISTEN/NOTIFY wakes it
        if due is not None:
            timeout = min(timeout, max(0.05, (due - ctx.clock.now_ms()) / 1000))
        watch = ACCEPTOR_WATCH_SECONDS if ctx.settings.server.processes > 1 or ctx.others_enqueue else None
        await wait_for_work(ctx, INBOX, timeout=timeout, watch=watch, next_due_ms=inbox_store.next_due_ms)

    async def run_once(self) -> int:
        ctx = self.ctx
        now_ms = ctx.clock.now_ms()
        limit = BATCH_WHILE_INBOUND if self._inbound_now else BATCH
        items = await ctx.db.write_batch(lambda conn: claims.claim_inbox_items(
            conn, owner=self._owner, now_ms=now_ms, lease_ms=self._lease_ms, limit=limit))
        # An item still in a fetch lane comes back when its lease ran out: the claim renewed the lease.
        items = [item for item in items if not self.lanes.holds(item.id)]
        if not items:
            return 0
        self._batch = {item.id for item in items}
        try:
            return await self._apply_claimed(items, now_ms)
        finally:
            self._batch = set()

    async def _apply_claimed(self, items: list[InboxItem], now_ms: int) -> int:
        ctx = self.ctx
        activities = {item.id: _decoded(item) for item in items}
        signers = {actor.uri: actor for actor in await actor_store.get_actors_by_uris(
            ctx.db.reader, sorted({item.signer_uri for item in items}))}
        claimed = len(items)
        items = await self._detach_fetching(items, activities, signers, now_ms)
        if not items:
            return claimed

        def batched(item: InboxItem) -> bool:
            # A Create with its object embedded, by a signer we know: nothing to fetch first.
            activity = activities[item.id]
            return (isinstance(activity, dict) and first_type(activity) == "Create"
                    and isinstance(activity.get("object"), dict) and item.signer_uri in signers)

        done: list[int] = []
        lanes = asyncio.Semaphore(LANES)

        async def apply_in_order(signer_items: list[InboxItem]) -> None:
            async with lanes:
                for item in signer_items:
                    if await self.process(item):
                        done.append(item.id)

        try:
            # Activities by one signer are applied in arrival order; different signers' run side by
            # side (their database waits overlap). The wire gives no order across actors either
            # (servers deliver independently and retry), so handlers already tolerate, e.g., a Like
            # before the Create it refers to.
            for creates, others in _rounds(items, batched):
                await asyncio.gather(self._apply_creates(creates, activities, signers, done),
                                     *(apply_in_order(group) for group in others))
        finally:
            # One transaction for the completions of what was applied one by one. A crash before it
            # leaves them leased and pending: they are applied again, as when a crash fell between
            # an item's effects and its mark-done (handlers tolerate a repeat).
            if done:
                now = ctx.clock.now_iso()
                await ctx.db.write_batch(lambda conn: inbox_store.mark_many_done(conn, done, now))
        return claimed

    async def _detach_fetching(self, items: list[InboxItem], activities: dict[int, Any], signers: dict[str, Actor],
                               now_ms: int) -> list[InboxItem]:
        """Hand every signer whose items need a fetch (or who has a fetch lane already) to the fetch
        lanes, all its claimed items together so that they keep their order; the rest, returned, is
        applied in this batch."""
        announced = [uri for item in items if (uri := _announced(activities[item.id]))]
        stored: set[str] = set()
        for start in range(0, len(announced), 500):
            stored |= await post_store.existing_post_uris(self.ctx.db.reader, announced[start:start + 500])
        by_signer: dict[str, list[Routed]] = {}
        for item in items:
            fetches = _fetches_first(self.ctx, activities[item.id], item.signer_uri, signers, stored)
            by_signer.setdefault(item.signer_uri, []).append(Routed(item, fetches))
        in_batch: list[InboxItem] = []
        put_off: list[tuple[int, int]] = []
        for signer_uri, routed in by_signer.items():
            if self.lanes.wants(signer_uri, now_ms) or any(entry.fetches for entry in routed):
                put_off += self.lanes.take(signer_uri, routed, now_ms)
            else:
                in_batch += [entry.item for entry in routed]
        await self.lanes.put_off(put_off)
        in_batch.sort(key=lambda item: item.id)
        return in_batch

    async def _apply_creates(self, items: list[InboxItem], activities: dict[int, Any], signers: dict[str, Actor],
                             done: list[int]) -> None:
        """Apply these Creates (by known signers, objects embedded) together and mark them done in
        the same transaction; if that fails, apply them one by one, so that one bad activity only
        fails itself."""
        if not items:
            return
        creates = [DeliveredCreate(activities[item.id], activities[item.id]["object"], signers[item.signer_uri])
                   for item in items
                   if not signers[item.signer_uri].deleted_at]  # a deleted actor's activities do nothing
        ids = [item.id for item in items]
        now = self.ctx.clock.now_iso()
        try:
            await apply_creates(self.ctx, creates, also=lambda conn: inbox_store.mark_many_done(conn, ids, now))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - isolate the activity that broke the batch
            log.exception("inbox: a batch of %d Creates failed; applying them one by one", len(items))
            for item in items:
                if await self.process(item):
                    done.append(item.id)

    async def process(self, item: InboxItem) -> bool:
        """Apply one item; True when it succeeded and is to be marked done by the caller. A
        transaction of its handler that PostgreSQL aborts for a conflict with another worker's (a
        deadlock) runs the handler again as a whole (what it committed before is seen and not
        repeated: handlers tolerate a replay); if that keeps happening, the item is put off like any
        transient failure, never marked failed for it."""
        ctx = self.ctx
        try:
            await retry_conflicts(lambda: dispatch(ctx, _decoded(item, strict=True), item.signer_uri),
                                  what=f"inbox {item.activity_type} {item.activity_uri}")
        except (RetryLater, ConflictPersisted) as exc:
            if item.attempts + 1 >= MAX_ATTEMPTS:
                await self._fail(item, f"gave up: {exc}")
                return False
            delay_ms = int(min(3600, 10 * 4 ** item.attempts) * 1000 * ctx.settings.federation.delivery_retry_scale)
            log.info("inbox %s %s: retry in %d ms: %s", item.activity_type, item.activity_uri, delay_ms, exc)
            error, due_ms = str(exc), ctx.clock.now_ms() + delay_ms
            await ctx.db.write_batch(
                lambda conn: inbox_store.mark_retry(conn, item.id, error=error, next_attempt_ms=due_ms))
            return False
        except Exception as exc:  # noqa: BLE001 - one bad activity must not stop the queue
            log.exception("inbox %s %s from %s failed", item.activity_type, item.activity_uri, item.signer_uri)
            await self._fail(item, f"{type(exc).__name__}: {exc}")
            return False
        return True

    async def _fail(self, item: InboxItem, error: str) -> None:
        now = self.ctx.clock.now_iso()
        await self.ctx.db.write_batch(lambda conn: inbox_store.mark_item_failed(conn, item.id, error=error, now=now))


def _announced(activity: Any) -> str | None:
    if isinstance(activity, dict) and first_type(activity) == "Announce":
        return id_of(activity.get("object"))
    return None


def _fetches_first(ctx: Context, activity: Any, signer_uri: str, signers: dict[str, Actor],
                   stored: set[str]) -> str | None:
    """The URL the activity's handler (federation/handlers.py) fetches before it can apply it, or
    None when it needs nothing from the network."""
    if signer_uri not in signers:
        return signer_uri  # dispatch fetches the signer first
    if not isinstance(activity, dict):
        return None
    kind = first_type(activity)
    if kind == "Create":
        obj = activity.get("object")  # a bare id is dereferenced only on the signer's own server
        return obj if isinstance(obj, str) and host_of(obj) == host_of(signer_uri) else None
    if kind == "Announce":
        uri = _announced(activity)
        return uri if uri and uri not in stored and not ctx.urls.is_local(uri) else None
    if kind == "Move":
        target = id_of(activity.get("target"))
        return target if target and host_of(target) and not ctx.urls.is_local(target) else None
    return None


def _decoded(item: InboxItem, *, strict: bool = False) -> Any:
    """The item's activity; None for a body that does not decode unless strict (then it raises: the
    item is applied one by one, where the error is recorded)."""
    try:
        activity = json.loads(item.body)
    except Exception:  # noqa: BLE001 - not swallowed: process() decodes it again, strictly
        if strict:
            raise
        return None
    if isinstance(activity, dict) and not isinstance(activity.get("id"), str):
        # An id-less activity was stored under urn:sha256 of its body; handlers key by that.
        activity["id"] = item.activity_uri
    return activity


def _rounds(items: list[InboxItem], batched: Callable[[InboxItem], bool]
            ) -> list[tuple[list[InboxItem], list[list[InboxItem]]]]:
    """The claimed items in rounds that keep each signer's order: each signer's items fall into
    runs of consecutive batched (or not) items, and round k holds every signer's k-th run. A round
    is (batched items of all signers in arrival order, the other runs one per signer)."""
    runs_of: dict[str, list[tuple[bool, list[InboxItem]]]] = {}
    for item in items:
        runs = runs_of.setdefault(item.signer_uri, [])
        kind = batched(item)
        if runs and runs[-1][0] == kind:
            runs[-1][1].append(item)
        else:
            runs.append((kind, [item]))
    rounds: list[tuple[list[InboxItem], list[list[InboxItem]]]] = []
    for k in range(max(len(runs) for runs in runs_of.values())):
        together: list[InboxItem] = []
        apart: list[list[InboxItem]] = []
        for runs in runs_of.values():
            if k < len(runs):
                kind, run = runs[k]
                if kind:
                    together.extend(run)
                else:
                    apart.append(run)
        together.sort(key=lambda item: item.id)
        rounds.append((together, apart))
    return rounds
