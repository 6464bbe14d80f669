"""The delivery worker: sends queued activities to remote inboxes, signed by their author, with a
global and per-host concurrency cap, retries with exponential back-off over about two days, and
per-host failure tracking. State lives in the database, so a killed server resumes where it was.

The worker claims rows ahead of its free slots (so a slot that frees starts the next POST at once),
starts a claimed row as soon as a slot is free, and hands every outcome to the outcome writer,
which records a batch of them in one transaction (delivery_outcomes.py)."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections import Counter, deque
from typing import Any

from fedserver.cancellation import raise_if_cancelled
from fedserver.activitypub.fetch import FetchBlocked, FetchError, FetchTimeout
from fedserver.context import Context
from fedserver.federation.delivery_outcomes import UNAVAILABLE_HOLD_MS, Outcome, OutcomeWriter, State
from fedserver.federation.delivery_signing import DeliverySigner, OutgoingActivity, SignedDelivery
from fedserver.federation.blocked_hosts import BlockedHosts
from fedserver.federation.host_availability import HeldHosts
from fedserver.federation.lease_renewal import renew_leases_forever
from fedserver.store import claims
from fedserver.store import deliveries as delivery_store
from fedserver.store.deliveries import ClaimedDelivery
from fedserver.federation.idle import wait_for_work
from fedserver.queue_wakeups import DELIVERY

__all__ = ["UNAVAILABLE_HOLD_MS", "DeliveryWorker", "is_retryable", "retry_delay_seconds"]

log = logging.getLogger(__name__)

# Numbers the delivery workers of one process (`fedserver worker --concurrency N` runs N): each
# holds its leases under its own owner name.
_WORKER_NUMBERS = itertools.count(1)

IDLE_POLL_SECONDS = 1.0
# While idle, how often to ask SQLite whether another connection committed (PRAGMA data_version):
# `fedserver post` queues deliveries from another process, which cannot set this process's wake-up.
# Every 50 ms within BUSY_SECONDS of the last claim, every 250 ms after (each look costs a thread
# hop: ~0.9% of a core at 50 ms when idle for good).
WATCH_SECONDS = 0.05
QUIET_WATCH_SECONDS = 0.25
BUSY_SECONDS = 300.0
# Claimed batches being prepared (bodies read, signed) at once: one signing, the next one queued.
MAX_PREPARING = 2


def retry_delay_seconds(attempt: int, scale: float) -> float:
    """Mastodon's DeliveryWorker schedule: attempt^4 + 15 s plus jitter; ~16 attempts span ~2 days."""
    base = attempt ** 4 + 15
    return (base + random.uniform(0, 0.5 * attempt ** 4) + random.uniform(0, 10) * (attempt + 1)) * scale


def is_retryable(status: int) -> bool:
    # 4xx means the receiver will never take it, except auth hiccups, timeouts and rate limits.
    return status >= 500 or status in (401, 408, 429)


class DeliveryWorker:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        fed = ctx.settings.federation
        self._concurrency = fed.delivery_concurrency
        self._per_host = fed.delivery_per_host_concurrency
        # Rows are claimed ahead of the free slots (up to 3 x concurrency in all, topped up in claims of
        # at least concurrency / 2), so that signing and the write lock's waits never leave a slot
        # idle (bench/RESULTS.md, fanout). A queued row has at most 2 x concurrency rows ahead of it,
        # which free the slots in two rounds of attempts, each bounded by the delivery timeout.
        self._capacity = 3 * fed.delivery_concurrency
        self._refill_below = self._capacity - max(1, fed.delivery_concurrency // 2)
        # Claimed rows are leased to this worker and the lease renewed every third of it while they
        # are held here (_renew_leases), so that another worker (`fedserver worker`, docs/scaling.md)
        # never takes over a row still queued or in flight here, however slow the receiver; and a
        # row whose lease this worker could not renew in time (its process stalled) is not sent
        # (_lease_lost): another worker may have sent it meanwhile.
        self._lease_ms = int(ctx.settings.server.worker_lease_seconds * 1000)
        self._owner = f"{ctx.worker_id}/delivery-{next(_WORKER_NUMBERS)}"
        self._held_until: dict[int, int] = {}  # claimed row -> its lease's end (epoch ms), as last written
        self._ready: deque[SignedDelivery] = deque()
        self._running = 0
        self._preparing = 0
        # Claimed and unfinished (queued here or running), in total and per host: the claim takes only
        # rows whose host is below its cap, so every queued row can start once a global slot frees.
        self._claimed: set[int] = set()
        self._host_load: Counter[str] = Counter()
        self._tasks: set[asyncio.Task] = set()
        # Look (a read) before claiming, rather than claim (a write transaction) to find nothing: set
        # when the last claim found fewer rows than it asked for, and after waking from idle.
        self._look_first = True
        self._last_claim = float("-inf")
        self._stopping = False
        self.held_hosts = HeldHosts()
        self.blocked_hosts = BlockedHosts()
        self.outcomes = OutcomeWriter(ctx.db, self.held_hosts, host_failure_days=fed.host_failure_days)
        self.signer = DeliverySigner()

    async def run(self) -> None:
        self.outcomes.start()
        renewer = asyncio.create_task(self._renew_leases(), name="delivery-lease-renewer")
        try:
            await self._run()
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)

    async def _run(self) -> None:
        # A server that just started is treated as busy (its first post is often moments away): the
        # idle worker looks for deliveries queued by another process every WATCH_SECONDS, not every
        # QUIET_WATCH_SECONDS, for BUSY_SECONDS. Without this, a `fedserver post` right after start
        # waited up to 0.25 s for its first delivery (bench/RESULTS.md, fanout).
        self._last_claim = asyncio.get_running_loop().time()
        while True:
            raise_if_cancelled()
            try:
                if self.held_hosts.stale():
                    await self.held_hosts.refresh(self.ctx.db.reader, self.ctx.clock.now_ms())
                if self.blocked_hosts.stale():
                    await self.blocked_hosts.refresh(self.ctx.db.reader)
                claimed = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the worker must outlive any single failure
                raise_if_cancelled()  # an error raised while being cancelled must not keep it going
                log.exception("delivery worker iteration failed")
                claimed = 0
                await asyncio.sleep(0.05)
            if claimed:
                continue
            if self._claimed:
                await self._wait_for_wakeup(IDLE_POLL_SECONDS)
            else:
                await self._sleep_until_due()

    async def run_once(self) -> int:
        """Claim due deliveries while fewer than the refill mark are claimed here, and hand them to
        a preparing task (bodies, signatures) that queues them for the free slots; returns how many
        were claimed."""
        outstanding = len(self._claimed)
        if outstanding >= self._refill_below or self._stopping or self._preparing >= MAX_PREPARING:
            return 0
        ctx = self.ctx
        now_ms = ctx.clock.now_ms()
        if self._look_first:
            due = await delivery_store.next_due_ms(ctx.db.reader, now_ms)
            if due is None or due > now_ms:
                return 0
        limit = self._capacity - outstanding
        # The whole claim in one hop to the database's batch thread: hop by hop (four statements) it
        # took ~8 ms on average while the event loop was busy sending, and held the write lock as long.
        load = dict(self._host_load)  # read in the database's thread: a copy the loop does not change
        claimed = await ctx.db.write_batch(lambda conn: claims.claim_deliveries(
            conn, owner=self._owner, now_ms=now_ms, lease_ms=self._lease_ms, limit=limit, per_host=self._per_host,
            in_flight=load))
        self._look_first = len(claimed) < limit
        if claimed:
            self._last_claim = asyncio.get_running_loop().time()
        claimed = [d for d in claimed if d.id not in self._claimed]
        if not claimed:
            return 0
        for delivery in claimed:
            self._claimed.add(delivery.id)
            self._host_load[delivery.host] += 1
            self._held_until[delivery.id] = now_ms + self._lease_ms
        # Signing a claim takes a few ms (in the signing process): meanwhile the loop claims the next
        # batch, so the signing process never waits for the claim.
        self._preparing += 1
        task = asyncio.create_task(self._prepare(claimed))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return len(claimed)

    async def _prepare(self, claimed: list[ClaimedDelivery]) -> None:
        started: set[int] = set()
        try:
            rows = await delivery_store.outbound_for_delivery(
                self.ctx.db.reader, sorted({d.activity_id for d in claimed}))
            activities = {activity_id: OutgoingActivity.from_row(row) for activity_id, row in rows.items()}
            # An activity deleted since takes its deliveries with it; a domain blocked since, too.
            jobs = [(d, activities[d.activity_id]) for d in claimed
                    if d.activity_id in activities and not self._refused(d)]
            async for signed in self.signer.sign(jobs):
                started.update(job.delivery.id for job in signed)
                self._ready.extend(signed)
                self._start_ready()
        except Exception:  # noqa: BLE001 - the rows keep their lease and are tried again after it
            log.exception("could not prepare %d deliveries", len(claimed))
        finally:
            self._preparing -= 1
            for delivery in claimed:
                if delivery.id not in started:
                    self._finished(delivery)  # its lease stays: it is tried again when that runs out
            self.ctx.delivery_wakeup.set()

    def _start_ready(self) -> None:
        while self._ready and self._running < self._concurrency and not self._stopping:
            job = self._ready.popleft()
            self._running += 1
            task = asyncio.create_task(self._deliver(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _wait_for_wakeup(self, timeout: float) -> None:
        wakeup = self.ctx.delivery_wakeup
        try:
            # asyncio.timeout, not wait_for: wait_for makes a task per call, and this runs while a
            # fan-out is being sent.
            async with asyncio.timeout(timeout if timeout > 0 else 0.05):
                await wakeup.wait()
        except TimeoutError:
            pass
        wakeup.clear()

    async def _sleep_until_due(self) -> None:
        """Idle: wait for a wake-up from this process, for the next retry to fall due, for another
        process to queue something (seen through data_version), or IDLE_POLL_SECONDS (leases)."""
        ctx = self.ctx
        reader, loop = ctx.db.reader, asyncio.get_running_loop()
        await self.signer.close_if_idle()
        due = await delivery_store.next_due_ms(reader, ctx.clock.now_ms())
        timeout = ctx.wakeups.idle_seconds(IDLE_POLL_SECONDS)  # longer while LISTEN/NOTIFY wakes it
        if due is not None:
            timeout = min(timeout, max(0.0, (due - ctx.clock.now_ms()) / 1000))
        if timeout <= 0:
            await self._wait_for_wakeup(0)
            return
        # Look often while posts are being made, seldom when the server has been quiet for a while.
        watch = WATCH_SECONDS if loop.time() - self._last_claim < BUSY_SECONDS else QUIET_WATCH_SECONDS
        await wait_for_work(ctx, DELIVERY, timeout=timeout, watch=watch, next_due_ms=delivery_store.next_due_ms)
        self._look_first = True

    async def drain(self) -> None:
        """Wait until everything claimed here is finished (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Shutdown: start nothing new, give running deliveries a moment to finish, then cancel them
        (a cancelled one keeps its lease and is sent again after it expires; the receiver dedupes by
        id), hand back the leases of rows never started, and write the outcomes still waiting."""
        self._stopping = True
        try:
            await asyncio.wait_for(self.drain(), timeout=grace_seconds)
        except asyncio.TimeoutError:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        unstarted = [job.delivery.id for job in self._ready]
        self._ready.clear()
        if unstarted:
            try:
                await self.ctx.db.run_transaction(lambda tx: delivery_store.release(tx, unstarted),
                                                  what="deliveries: release unstarted")
            except Exception:  # noqa: BLE001 - their leases run out instead
                log.exception("could not release %d unstarted deliveries", len(unstarted))
        await self.outcomes.stop()
        await self.signer.close()

    async def _deliver(self, job: SignedDelivery) -> None:
        try:
            await self._attempt(job)
        except Exception:  # noqa: BLE001
            log.exception("delivery %s to %s crashed", job.activity.uri, job.delivery.inbox_url)
        finally:
            self._running -= 1
            self._finished(job.delivery)
            self._start_ready()

    def _finished(self, delivery: ClaimedDelivery) -> None:
        self._claimed.discard(delivery.id)
        self._held_until.pop(delivery.id, None)
        self._host_load[delivery.host] -= 1
        if self._host_load[delivery.host] <= 0:
            del self._host_load[delivery.host]
        # Room to claim more (and a retry may now be due): let the loop look again. At or above the
        # refill mark it would find no room, so it is not woken for every delivery of a fan-out.
        if len(self._claimed) < self._refill_below:
            self.ctx.delivery_wakeup.set()

    def _outcome(self, delivery: ClaimedDelivery, state: State, **fields: Any) -> None:
        clock = self.ctx.clock
        self.outcomes.add(Outcome(delivery_id=delivery.id, host=delivery.host, state=state,
                                  at_ms=clock.now_ms(), at_iso=clock.now_iso(), **fields))

    def _refused(self, delivery: ClaimedDelivery) -> bool:
        """Drop a delivery whose domain is blocked (given up, untried: no request is made)."""
        reason = self.blocked_hosts.blocked(delivery.inbox_url, delivery.host)
        if reason is None:
            return False
        log.info("not delivering to %s: %s", delivery.inbox_url, reason)
        self._outcome(delivery, "failed", error=f"refused: {reason}")
        return True

    async def _attempt(self, job: SignedDelivery) -> None:
        ctx = self.ctx
        delivery, activity = job.delivery, job.activity
        if self.blocked_hosts.stale():
            await self.blocked_hosts.refresh(ctx.db.reader)
        if self._refused(delivery):
            return
        if self._lease_lost(delivery):
            return
        now_ms = ctx.clock.now_ms()
        if self.held_hosts.held_until(delivery.host, now_ms) is not None:
            held_until = await self.held_hosts.confirm(ctx.db.reader, delivery.host, now_ms)
            if held_until is not None:
                self._outcome(delivery, "held", next_attempt_ms=held_until, error="host marked unavailable")
                return
        status: int | None = None
        error = ""
        timeout = ctx.settings.federation.delivery_timeout_seconds
        fetcher = ctx.fetcher
        try:
            # The shared fetcher's deadline is fetch_timeout_seconds; a delivery has its own (the claim
            # lease is computed from it), so bound the POST by it too, unless the fetcher's is shorter
            # (the default: 10 s against 15 s), which bounds the whole POST already.
            async with (asyncio.timeout(timeout) if fetcher.timeout > timeout else contextlib.nullcontext()):
                status = await fetcher.post(delivery.inbox_url, activity.body, headers=job.headers)
        except FetchBlocked as exc:
            self._finish_failed(job, None, f"refused: {exc}")
            return
        except TimeoutError:
            error = f"timeout: no answer in {timeout}s"
        except FetchTimeout as exc:
            error = f"timeout: {exc}"
        except FetchError as exc:
            error = f"connection failed: {exc}"
        if status is not None and 200 <= status < 300:
            self._outcome(delivery, "delivered", status=status, host_success=True)
            log.debug("delivered %s to %s (%s)", activity.uri, delivery.inbox_url, status)
            return
        if status is not None and not is_retryable(status):
            self._finish_failed(job, status, f"HTTP {status}")
            return
        self._retry(job, status, error or f"HTTP {status}")

    async def _renew_leases(self) -> None:
        """Every third of the lease, extend the leases of every row held here (queued, being signed
        or in flight). A row this worker no longer holds (its lease ran out while the process was
        stalled, and another worker claimed it) is forgotten here and never sent (_lease_lost)."""
        await renew_leases_forever(
            self.ctx, lease_ms=self._lease_ms, queue="delivery", held=lambda: self._claimed,
            renew=lambda conn, ids, until_ms: claims.renew_delivery_leases(conn, ids, owner=self._owner,
                                                                           until_ms=until_ms),
            renewed=self._leases_renewed)

    def _leases_renewed(self, ids: list[int], kept: set[int], until_ms: int) -> None:
        lost = 0
        for delivery_id in ids:
            if delivery_id in kept:
                if delivery_id in self._held_until:
                    self._held_until[delivery_id] = until_ms
            elif self._held_until.pop(delivery_id, None) is not None and delivery_id in self._claimed:
                lost += 1
        if lost:
            log.warning("%d deliveries claimed here were taken over by another worker (this one stalled"
                        " past its lease): they are not sent from here", lost)

    def _lease_lost(self, delivery: ClaimedDelivery) -> bool:
        """Whether this worker may no longer send the row: its lease is gone, or ends before the next
        renewal could extend it. Checked just before the POST; no outcome is written (the row
        belongs to whichever worker holds it now)."""
        held_until = self._held_until.get(delivery.id)
        if held_until is not None and held_until - self.ctx.clock.now_ms() > self._lease_ms // 3:
            return False
        log.warning("not sending %s to %s: this worker's lease on it ran out (another worker sends it)",
                    delivery.activity_id, delivery.inbox_url)
        return True

    def _finish_failed(self, job: SignedDelivery, status: int | None, error: str) -> None:
        log.info("delivery of %s to %s failed for good: %s", job.activity.uri, job.delivery.inbox_url, error)
        self._outcome(job.delivery, "failed", status=status, error=error)

    def _retry(self, job: SignedDelivery, status: int | None, error: str) -> None:
        delivery = job.delivery
        fed = self.ctx.settings.federation
        if delivery.attempts + 1 >= fed.delivery_max_attempts:
            self._outcome(delivery, "failed", status=status, error=f"gave up: {error}", host_failure=True)
            log.info("gave up delivering %s to %s: %s", job.activity.uri, delivery.inbox_url, error)
            return
        delay = retry_delay_seconds(delivery.attempts, fed.delivery_retry_scale)
        self._outcome(delivery, "retry", status=status, error=error, host_failure=True,
                      next_attempt_ms=self.ctx.clock.now_ms() + int(delay * 1000))
        log.info("delivery of %s to %s will be retried in %.1fs: %s", job.activity.uri,
                 delivery.inbox_url, delay, error)
