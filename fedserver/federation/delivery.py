"""The delivery worker: sends queued activities to remote inboxes, signed by their author, with a
global and per-host concurrency cap, retries with exponential back-off over about two days, and
per-host failure tracking. State lives in the database, so a killed server resumes where it was."""
from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter

from fedserver.activitypub.fetch import FetchBlocked, FetchError, FetchTimeout
from fedserver.activitypub.httpsig import sign_request
from fedserver.context import Context
from fedserver.store import deliveries as delivery_store
from fedserver.store import hosts as host_store
from fedserver.store.deliveries import ClaimedDelivery

log = logging.getLogger(__name__)

UNAVAILABLE_HOLD_MS = 24 * 3600 * 1000
IDLE_POLL_SECONDS = 1.0


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
        self._slots = asyncio.Semaphore(fed.delivery_concurrency)
        self._per_host: dict[str, asyncio.Semaphore] = {}
        self._in_flight: set[int] = set()
        # Running deliveries per host: the claim takes only rows whose host has a free slot.
        self._host_load: Counter[str] = Counter()
        self._tasks: set[asyncio.Task] = set()
        self._lease_ms = int((fed.delivery_timeout_seconds * 3 + 5) * 1000)

    def _host_slot(self, host: str) -> asyncio.Semaphore:
        slot = self._per_host.get(host)
        if slot is None:
            slot = self._per_host[host] = asyncio.Semaphore(self.ctx.settings.federation.delivery_per_host_concurrency)
        return slot

    async def run(self) -> None:
        while True:
            try:
                started = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the worker must outlive any single failure
                log.exception("delivery worker iteration failed")
                started = 0
            if started == 0:
                await self._sleep_until_due()

    async def _sleep_until_due(self) -> None:
        wakeup = self.ctx.delivery_wakeup
        due = await delivery_store.next_due_ms(self.ctx.db.reader, self.ctx.clock.now_ms())
        timeout = IDLE_POLL_SECONDS
        if due is not None:
            timeout = min(timeout, max(0.0, (due - self.ctx.clock.now_ms()) / 1000))
        try:
            await asyncio.wait_for(wakeup.wait(), timeout=timeout if timeout > 0 else 0.05)
        except asyncio.TimeoutError:
            pass
        wakeup.clear()

    async def run_once(self) -> int:
        """Claim what is due and start sending it; returns how many deliveries were started."""
        free = self.ctx.settings.federation.delivery_concurrency - len(self._in_flight)
        if free <= 0:
            await asyncio.sleep(0.05)
            return 0
        async with self.ctx.db.transaction() as tx:
            claimed = await delivery_store.claim_due_deliveries(
                tx, now_ms=self.ctx.clock.now_ms(), lease_ms=self._lease_ms, limit=free,
                per_host=self.ctx.settings.federation.delivery_per_host_concurrency, in_flight=self._host_load)
        started = 0
        for delivery in claimed:
            if delivery.id in self._in_flight:
                continue
            self._in_flight.add(delivery.id)
            self._host_load[delivery.host] += 1
            task = asyncio.create_task(self._deliver(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def drain(self) -> None:
        """Wait for in-flight deliveries (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Shutdown: give in-flight deliveries a moment to finish, then cancel them. A cancelled
        one keeps its lease and is retried after it expires; the receiver dedupes by id."""
        try:
            await asyncio.wait_for(self.drain(), timeout=grace_seconds)
        except asyncio.TimeoutError:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _deliver(self, delivery: ClaimedDelivery) -> None:
        try:
            async with self._slots, self._host_slot(delivery.host):
                await self._attempt(delivery)
        except Exception:  # noqa: BLE001
            log.exception("delivery %s to %s crashed", delivery.activity_uri, delivery.inbox_url)
        finally:
            self._in_flight.discard(delivery.id)
            self._host_load[delivery.host] -= 1
            if self._host_load[delivery.host] <= 0:
                del self._host_load[delivery.host]
            # A slot is free and a retry may now be due: let the loop look again.
            self.ctx.delivery_wakeup.set()

    async def _attempt(self, delivery: ClaimedDelivery) -> None:
        ctx = self.ctx
        held_until = await host_store.unavailable_until(ctx.db.reader, delivery.host)
        if held_until is not None and held_until > ctx.clock.now_ms():
            async with ctx.db.transaction() as tx:
                await delivery_store.postpone_host(tx, delivery.host, held_until)
                await delivery_store.hold(tx, delivery.id, until_ms=held_until, reason="host marked unavailable")
            return
        body = delivery.body.encode("utf-8")
        headers = sign_request("POST", delivery.inbox_url, body=body, key_id=delivery.key_id,
                               private_key_pem=delivery.private_key_pem)
        status: int | None = None
        error = ""
        timeout = ctx.settings.federation.delivery_timeout_seconds
        try:
            # The shared fetcher's deadline is fetch_timeout_seconds; a delivery has its own (the claim
            # lease is computed from it), so bound the POST by it too.
            async with asyncio.timeout(timeout):
                status = await ctx.fetcher.post(delivery.inbox_url, body, headers=headers)
        except FetchBlocked as exc:
            await self._finish_failed(delivery, None, f"refused: {exc}")
            return
        except TimeoutError:
            error = f"timeout: no answer in {timeout}s"
        except FetchTimeout as exc:
            error = f"timeout: {exc}"
        except FetchError as exc:
            error = f"connection failed: {exc}"
        if status is not None and 200 <= status < 300:
            async with ctx.db.transaction() as tx:
                await delivery_store.mark_delivered(tx, delivery.id, status=status, now=ctx.clock.now_iso())
                await host_store.record_success(tx, delivery.host, ctx.clock.now_iso())
            log.debug("delivered %s to %s (%s)", delivery.activity_uri, delivery.inbox_url, status)
            return
        if status is not None and not is_retryable(status):
            await self._finish_failed(delivery, status, f"HTTP {status}")
            return
        await self._retry(delivery, status, error or f"HTTP {status}")

    async def _finish_failed(self, delivery: ClaimedDelivery, status: int | None, error: str) -> None:
        log.info("delivery of %s to %s failed for good: %s", delivery.activity_uri, delivery.inbox_url, error)
        async with self.ctx.db.transaction() as tx:
            await delivery_store.mark_failed(tx, delivery.id, status=status, error=error, now=self.ctx.clock.now_iso())

    async def _retry(self, delivery: ClaimedDelivery, status: int | None, error: str) -> None:
        ctx = self.ctx
        fed = ctx.settings.federation
        now = ctx.clock.now_iso()
        async with ctx.db.transaction() as tx:
            failure_days = await host_store.record_failure(tx, delivery.host, now)
            if failure_days >= fed.host_failure_days:
                until = ctx.clock.now_ms() + UNAVAILABLE_HOLD_MS
                await host_store.mark_unavailable(tx, delivery.host, now=now, until_ms=until)
                log.warning("host %s failed on %d days: holding its deliveries", delivery.host, failure_days)
            if delivery.attempts + 1 >= fed.delivery_max_attempts:
                await delivery_store.mark_failed(tx, delivery.id, status=status, error=f"gave up: {error}", now=now)
                log.info("gave up delivering %s to %s: %s", delivery.activity_uri, delivery.inbox_url, error)
                return
            delay = retry_delay_seconds(delivery.attempts, fed.delivery_retry_scale)
            await delivery_store.schedule_retry(tx, delivery.id, status=status, error=error,
                                                next_attempt_ms=ctx.clock.now_ms() + int(delay * 1000))
        log.info("delivery of %s to %s will be retried in %.1fs: %s", delivery.activity_uri,
                 delivery.inbox_url, delay, error)
