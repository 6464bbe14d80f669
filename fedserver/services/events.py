"""Live events for the streaming API. What happened (a post created, edited, deleted or boosted, a
notification, a change of keyword filters) is written as a compact stream_events row in the
transaction that made it, by the publish functions below (notifications by the store function that
writes every notification, store/interactions.py). Every serving process runs one EventHub, which
tails the table by id and offers each event to the streams it holds open; each stream then decides
and renders for its own person (services/streams.py). So an event written in one process (or, with
web and worker processes on different machines, on another machine) reaches a stream held by any
process; in the process that wrote it, it is read at once.

The hub waits on the queue wake-ups' "stream" event (fedserver/queue_wakeups.py): set at once by
this process's publishers, and on PostgreSQL by NOTIFY from any process's (a trigger on
stream_events, migration 0190), so there it polls only as a safety net ([database]
listen_poll_seconds); on SQLite it polls every POLL_SECONDS for other processes' events. Tailing by
id relies on ids becoming visible in id order: SQLite's single writer guarantees it, and on
PostgreSQL every writer takes its turn from insert to commit (store/commit_order.py)."""
from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Protocol

import aiosqlite

from fedserver.cancellation import raise_if_cancelled
from fedserver.clock import iso_from_epoch
from fedserver.context import Context
from fedserver.queue_wakeups import STREAM
from fedserver.store import stream_events as event_store
from fedserver.store.stream_events import StreamEvent

log = logging.getLogger(__name__)

# How often a process with open streams looks for events written by other processes.
POLL_SECONDS = 0.25
# After a wake-up from this process's own writes, quick looks until the writing transaction has
# committed (the wake-up is given inside it).
FAST_LOOKS = (0.0, 0.01, 0.03, 0.06, 0.1, 0.2)
# Events read at once; a burst larger than this is read over several looks.
BATCH = 500
# Streams only show what happens while they are open: rows older than this are pruned.
KEEP_SECONDS = 300
PRUNE_EVERY_SECONDS = 60


# --- publishing (inside the writing transaction) ----------------------------------------------

async def _publish(ctx: Context, conn: aiosqlite.Connection, kind: str, subject_id: int | None,
                   sort_id: int | None, actor_id: int | None) -> None:
    await event_store.add(conn, kind=kind, subject_id=subject_id, sort_id=sort_id, actor_id=actor_id,
                          now=ctx.clock.now_iso())
    ctx.stream_wakeup.set()


async def status_created(ctx: Context, conn: aiosqlite.Connection, post_id: int) -> None:
    await _publish(ctx, conn, "post", post_id, post_id, None)


async def status_edited(ctx: Context, conn: aiosqlite.Connection, post_id: int) -> None:
    await _publish(ctx, conn, "edit", post_id, post_id, None)


async def status_deleted(ctx: Context, conn: aiosqlite.Connection, post_id: int) -> None:
    await _publish(ctx, conn, "delete", post_id, post_id, None)


async def status_boosted(ctx: Context, conn: aiosqlite.Connection, announce_id: int, post_id: int) -> None:
    """A boost: the post shows again on home timelines at the boost's place (announce_id)."""
    await _publish(ctx, conn, "boost", post_id, announce_id, None)


async def filters_changed(ctx: Context, conn: aiosqlite.Connection, actor_id: int) -> None:
    await _publish(ctx, conn, "filters", None, None, actor_id)


async def tokens_revoked(ctx: Context, conn: aiosqlite.Connection, actor_id: int | None) -> None:
    """Some of the person's tokens (an app-only token: actor_id None) stopped working: their open
    streams end now, not at their next check."""
    await _publish(ctx, conn, "tokens", None, None, actor_id)


# For Database.write_batch work (runs on the database thread): the caller wakes the hub after the
# batch, with wake().

def status_created_sync(conn: sqlite3.Connection, post_id: int, now: str) -> None:
    event_store.add_sync(conn, kind="post", subject_id=post_id, sort_id=post_id, actor_id=None, now=now)


def status_edited_sync(conn: sqlite3.Connection, post_id: int, now: str) -> None:
    event_store.add_sync(conn, kind="edit", subject_id=post_id, sort_id=post_id, actor_id=None, now=now)


def wake(ctx: Context) -> None:
    """Tell this process's hub that events were just written (after a write_batch)."""
    ctx.stream_wakeup.set()


# --- tailing (one hub per serving process) ----------------------------------------------------

class Listener(Protocol):
    def offer(self, event: StreamEvent) -> None:
        """Take one event without waiting (a listener that cannot keep up drops itself)."""


class EventHub:
    """Tails stream_events for the listeners (open streams) of this process. It reads only while
    someone listens, starting from the newest event at that moment: streams show what happens
    while they are open, never a backlog."""

    def __init__(self, ctx: Context, *, poll_seconds: float = POLL_SECONDS) -> None:
        self._ctx = ctx
        self._poll_seconds = poll_seconds
        self._listeners: set[Listener] = set()
        self._last_id = 0
        self._task: asyncio.Task | None = None
        self._someone = asyncio.Event()

    @property
    def listening(self) -> int:
        return len(self._listeners)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stream-events")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def add(self, listener: Listener) -> None:
        if not self._listeners:
            self._last_id = await event_store.latest_id(self._ctx.db.reader)
            self._someone.set()
        self._listeners.add(listener)

    def remove(self, listener: Listener) -> None:
        self._listeners.discard(listener)
        if not self._listeners:
            self._someone.clear()

    async def _run(self) -> None:
        wakeups = self._ctx.wakeups
        while True:
            raise_if_cancelled()
            await self._someone.wait()
            try:
                woken = await wakeups.wait(STREAM, timeout=wakeups.idle_seconds(self._poll_seconds))
                looks = FAST_LOOKS if woken else (0.0,)
                for pause in looks:
                    if pause:
                        await asyncio.sleep(pause)
                    if await self._read_new() and woken:
                        break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading stream events after id %d failed", self._last_id)
                await asyncio.sleep(self._poll_seconds)

    async def _read_new(self) -> int:
        """Offer every event written since the last look to every listener; how many there were."""
        total = 0
        while self._listeners:
            events = await event_store.after(self._ctx.db.reader, self._last_id, BATCH)
            if not events:
                break
            self._last_id = events[-1].id
            total += len(events)
            for event in events:
                for listener in list(self._listeners):
                    try:
                        listener.offer(event)
                    except Exception:
                        # One listener's failure must not keep the event from the others.
                        log.exception("a stream could not take event %d", event.id)
                        self.remove(listener)
            if len(events) < BATCH:
                break
        return total


async def prune_periodically(ctx: Context) -> None:
    """Delete events older than KEEP_SECONDS (run by the process that runs the background workers)."""
    while True:
        raise_if_cancelled()
        try:
            async with ctx.db.transaction() as tx:
                removed = await event_store.prune(tx, iso_from_epoch(ctx.clock.now() - KEEP_SECONDS))
            if removed:
                log.debug("pruned %d stream events", removed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pruning stream events failed")
        await asyncio.sleep(PRUNE_EVERY_SECONDS)
