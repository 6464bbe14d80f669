"""The inbox writer: one task that stores verified inbound activities in group commits. Requests
queue their row and wait; the writer inserts everything queued in one transaction, commits, and
only then tells each request whether its row was new, so a 202 still means "durably stored"
(perf-targets.md: one transaction per activity caps inbound near 5k/s)."""
from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass, field

from aiohttp import web

from fedserver.context import Context
from fedserver.store import inbox as inbox_store
from fedserver.store.inbox import NewInboxItem, SignerState
from fedserver.queue_wakeups import INBOX

log = logging.getLogger(__name__)

# Rows per transaction; 6 parameters each stays far below SQLite's variable limit.
MAX_BATCH = 256

FRESH = "fresh"
DUPLICATE = "duplicate"
# The signer's row changed since its key was verified from memory: verify again from the database.
SIGNER_CHANGED = "signer-changed"


@dataclass
class _Pending:
    item: NewInboxItem
    expected_signer: SignerState | None
    future: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class InboxWriter:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._received = 0

    @property
    def received(self) -> int:
        """Inbox requests received since start: how hard senders are pushing, as arrivals between
        two looks (the inbox worker gives way to them while the loop is busy, processing.InboxWorker)."""
        return self._received

    def count_arrival(self) -> None:
        """Count an inbox request as received."""
        self._received += 1

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbox-writer")

    async def stop(self) -> None:
        """Store what is queued, then end the task."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
        self._task = None

    async def store(self, item: NewInboxItem, expected_signer: SignerState | None = None) -> str:
        """FRESH, DUPLICATE or SIGNER_CHANGED once the batch holding the item is committed.
        With expected_signer, the row is stored only if the signer's row still matches it."""
        if self._task is None or self._task.done():
            raise RuntimeError("inbox writer is not running")
        pending = _Pending(item, expected_signer)
        self._queue.put_nowait(pending)
        # Not shielded: if the request is cancelled (client gone), its future is cancelled and the
        # writer, which skips done futures, still stores the row it already took.
        return await pending.future

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            batch: list[_Pending] = []
            if first is None:
                stopping = True
            else:
                batch.append(first)
            while len(batch) < MAX_BATCH and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    stopping = True
                else:
                    batch.append(nxt)
            if batch:
                await self._write(batch)

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            outcomes = await self._write_batch(batch)
        except asyncio.CancelledError:
            for pending in batch:
                if not pending.future.done():
                    pending.future.cancel()
            raise
        except Exception:  # noqa: BLE001 - isolate the row that broke the batch
            log.exception("inbox writer: batch of %d failed; storing its rows one by one", len(batch))
            for pending in batch:
                try:
                    outcome = (await self._write_batch([pending]))[0]
                except Exception as exc:  # noqa: BLE001 - the request answers 500 for its own row only
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                else:
                    if not pending.future.done():
                        pending.future.set_result(outcome)
            return
        for pending, outcome in zip(batch, outcomes):
            if not pending.future.done():
                pending.future.set_result(outcome)

    async def _write_batch(self, batch: list[_Pending]) -> list[str]:
        ctx = self.ctx
        now, now_ms = ctx.clock.now_iso(), ctx.clock.now_ms()
        # The whole batch in one transaction on the loop's thread (Database.write_now): under load
        # every await per statement would add a loop turn to each request's latency, and a hop to the
        # batch thread costs more CPU than this small transaction. Urgent: requests are waiting for
        # this commit, workers are not.
        outcomes = await ctx.db.write_now(lambda conn: _store_batch(conn, batch, now, now_ms), urgent=True)
        if any(outcome == FRESH for outcome in outcomes):
            ctx.wakeups.notify(INBOX)
        return outcomes


def _store_batch(conn: sqlite3.Connection, batch: list[_Pending], now: str, now_ms: int) -> list[str]:
    """Inside the batch's transaction (database thread): each row's outcome."""
    expected = {p.expected_signer.actor_id for p in batch if p.expected_signer is not None}
    current = inbox_store.signer_states(conn, sorted(expected)) if expected else {}
    outcomes: list[str] = []
    to_insert: list[NewInboxItem] = []
    for pending in batch:
        want = pending.expected_signer
        if want is not None and current.get(want.actor_id) != want:
            outcomes.append(SIGNER_CHANGED)
        else:
            outcomes.append(FRESH)
            to_insert.append(pending.item)
    inserted = inbox_store.insert_inbox_items(conn, to_insert, now=now, now_ms=now_ms) if to_insert else set()
    fresh_hosts: set[str] = set()
    for index, pending in enumerate(batch):
        if outcomes[index] != FRESH:
            continue
        uri = pending.item.activity_uri
        if uri in inserted:
            inserted.discard(uri)  # a second copy in the same batch is a duplicate
            if pending.item.signer_host:
                fresh_hosts.add(pending.item.signer_host)
        else:
            outcomes[index] = DUPLICATE
    if fresh_hosts:
        inbox_store.clear_unavailable_hosts(conn, sorted(fresh_hosts))
    return outcomes


# How the inbox handler finds the writer: request.app[INBOX_WRITER_KEY].
INBOX_WRITER_KEY = web.AppKey("inbox_writer", InboxWriter)
