"""The inbox worker: applies stored inbound activities in arrival order. A transient failure (a
remote server down) is retried with back-off; a bug in one activity never stops the others."""
from __future__ import annotations

import asyncio
import json
import logging

from fedserver.context import Context
from fedserver.federation.handlers import RetryLater, dispatch
from fedserver.store import inbox as inbox_store
from fedserver.store.inbox import InboxItem

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LEASE_MS = 120_000
BATCH = 32
# Signers whose activities are applied concurrently within one claimed batch.
LANES = 8
IDLE_POLL_SECONDS = 1.0


class InboxWorker:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def run(self) -> None:
        while True:
            try:
                processed = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("inbox worker iteration failed")
                processed = 0
            if processed == 0:
                await self._sleep()

    async def _sleep(self) -> None:
        wakeup = self.ctx.inbox_wakeup
        due = await inbox_store.next_due_ms(self.ctx.db.reader, self.ctx.clock.now_ms())
        timeout = IDLE_POLL_SECONDS
        if due is not None:
            timeout = min(timeout, max(0.05, (due - self.ctx.clock.now_ms()) / 1000))
        try:
            await asyncio.wait_for(wakeup.wait(), timeout=timeout)
        except asyncio.TimeoutError:
            pass
        wakeup.clear()

    async def run_once(self) -> int:
        async with self.ctx.db.transaction() as tx:
            items = await inbox_store.claim_due_items(tx, now_ms=self.ctx.clock.now_ms(), lease_ms=LEASE_MS,
                                                      limit=BATCH)
        done: list[int] = []
        # Activities by one signer are applied in arrival order; different signers' run side by side
        # (their database waits overlap). The wire gives no order across actors either (servers
        # deliver independently and retry), so handlers already tolerate, e.g., a Like before the
        # Create it refers to.
        by_signer: dict[str, list[InboxItem]] = {}
        for item in items:
            by_signer.setdefault(item.signer_uri, []).append(item)
        lanes = asyncio.Semaphore(LANES)

        async def apply_in_order(signer_items: list[InboxItem]) -> None:
            async with lanes:
                for item in signer_items:
                    if await self.process(item):
                        done.append(item.id)

        try:
            await asyncio.gather(*(apply_in_order(group) for group in by_signer.values()))
        finally:
            # One transaction for the batch's completions instead of one per item. A crash before it
            # leaves them leased and pending: they are applied again, as when a crash fell between
            # an item's effects and its mark_done (handlers tolerate a repeat).
            if done:
                async with self.ctx.db.transaction() as tx:
                    await inbox_store.mark_many_done(tx, done, self.ctx.clock.now_iso())
        return len(items)

    async def process(self, item: InboxItem) -> bool:
        """Apply one item; True when it succeeded and is to be marked done by the caller."""
        ctx = self.ctx
        try:
            activity = json.loads(item.body)
            if isinstance(activity, dict) and not isinstance(activity.get("id"), str):
                # An id-less activity was stored under urn:sha256 of its body; handlers key by that.
                activity["id"] = item.activity_uri
            await dispatch(ctx, activity, item.signer_uri)
        except RetryLater as exc:
            if item.attempts + 1 >= MAX_ATTEMPTS:
                await self._fail(item, f"gave up: {exc}")
                return False
            delay_ms = int(min(3600, 10 * 4 ** item.attempts) * 1000 * ctx.settings.federation.delivery_retry_scale)
            log.info("inbox %s %s: retry in %d ms: %s", item.activity_type, item.activity_uri, delay_ms, exc)
            async with ctx.db.transaction() as tx:
                await inbox_store.mark_retry(tx, item.id, error=str(exc), next_attempt_ms=ctx.clock.now_ms() + delay_ms)
            return False
        except Exception as exc:  # noqa: BLE001 - one bad activity must not stop the queue
            log.exception("inbox %s %s from %s failed", item.activity_type, item.activity_uri, item.signer_uri)
            await self._fail(item, f"{type(exc).__name__}: {exc}")
            return False
        return True

    async def _fail(self, item: InboxItem, error: str) -> None:
        async with self.ctx.db.transaction() as tx:
            await inbox_store.mark_item_failed(tx, item.id, error=error, now=self.ctx.clock.now_iso())
