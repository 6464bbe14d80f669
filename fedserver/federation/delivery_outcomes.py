"""The delivery outcome writer: one task that records what became of finished deliveries (delivered,
to be retried, failed for good, held back) and the per-host health bookkeeping that goes with them,
in one write transaction per batch instead of one per delivery (bench/RESULTS.md, fanout: the
per-delivery transaction capped fan-out near 600 deliveries/s).

Durability: a delivery's row stays leased (pending, locked_until in the future) until its outcome
is committed here. If the process dies between a POST and the flush, the outcome is lost and the
row is sent again once its lease runs out: at least once, as for a crash during the POST itself;
receivers deduplicate by activity id (tests/e2e/test_durability.py, tests/e2e/test_fanout.py).
Nothing is lost, and a flush that fails is treated the same way."""
from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from fedserver.db import Database
from fedserver.federation.host_availability import HeldHosts
from fedserver.store import deliveries as delivery_store
from fedserver.store import hosts as host_store

log = logging.getLogger(__name__)

# Flush at most this long after the first outcome of a batch arrives, or as soon as MAX_BATCH are
# waiting. Rows stay leased meanwhile, so the delay is invisible to other workers; it only decides
# how many outcomes share a transaction.
FLUSH_SECONDS = 0.05
MAX_BATCH = 500

UNAVAILABLE_HOLD_MS = 24 * 3600 * 1000

State = Literal["delivered", "failed", "retry", "held"]


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    host: str
    state: State
    at_ms: int
    at_iso: str
    status: int | None = None
    error: str = ""
    # retry: when to try again; held: until when.
    next_attempt_ms: int | None = None
    # Whether the attempt counts for the host's health (a request was made and answered or not).
    host_success: bool = False
    host_failure: bool = False


class OutcomeWriter:
    def __init__(self, db: Database, held_hosts: HeldHosts, *, host_failure_days: int,
                 flush_seconds: float = FLUSH_SECONDS, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.held_hosts = held_hosts
        self.host_failure_days = host_failure_days
        self._flush_seconds = flush_seconds
        self._max_batch = max_batch
        self._pending: list[Outcome] = []
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="delivery-outcome-writer")

    def add(self, outcome: Outcome) -> None:
        self._pending.append(outcome)
        self._arrived.set()
        if len(self._pending) >= self._max_batch:
            self._full.set()

    async def stop(self) -> None:
        """Write what is waiting, then end the task."""
        self._closing = True
        self._arrived.set()
        self._full.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._pending:
            await self._flush()

    async def _run(self) -> None:
        while not (self._closing and not self._pending):
            await self._arrived.wait()
            if not self._closing and len(self._pending) < self._max_batch:
                try:
                    async with asyncio.timeout(self._flush_seconds):
                        await self._full.wait()
                except TimeoutError:
                    pass
            self._arrived.clear()
            self._full.clear()
            await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            held = await self._write(batch)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the writer must outlive a failed batch
            # The rows are still leased: they are sent again when the lease runs out (see above).
            log.exception("could not record %d delivery outcomes; they will be retried after their lease",
                          len(batch))
            return
        for host, until in held.items():
            self.held_hosts.mark(host, until)
        for host in {o.host for o in batch if o.host_success}:
            if host not in held:
                self.held_hosts.clear(host)

    async def _write(self, batch: list[Outcome]) -> dict[str, int]:
        """One transaction for the batch, in one hop to the database's batch thread (a claim waits
        for the write lock meanwhile: hop by hop, a busy event loop made that tens of ms); returns
        the hosts it marked unavailable (until when)."""
        return await self.db.write_batch(lambda conn: _record(conn, batch, self.host_failure_days))


def _record(conn: sqlite3.Connection, batch: list[Outcome], host_failure_days: int) -> dict[str, int]:
    postponed: dict[str, int] = {}
    for o in batch:
        if o.state == "held":
            postponed[o.host] = max(postponed.get(o.host, 0), o.next_attempt_ms or o.at_ms)
    # Hosts in name order, here and below: two workers' batches touching the same hosts' rows then
    # lock them in the same order (one that deadlocks anyway is retried: write_batch).
    for host, until in sorted(postponed.items()):
        delivery_store.postpone_host(conn, host, until)
    delivery_store.hold(conn, [(o.delivery_id, o.next_attempt_ms or o.at_ms, o.error) for o in batch
                               if o.state == "held"])
    delivery_store.mark_delivered(conn, [(o.delivery_id, o.status or 0, o.at_iso) for o in batch
                                         if o.state == "delivered"])
    delivery_store.mark_failed(conn, [(o.delivery_id, o.status, o.error, o.at_iso) for o in batch
                                      if o.state == "failed"])
    delivery_store.schedule_retries(conn, [(o.delivery_id, o.status, o.error, o.next_attempt_ms or o.at_ms)
                                           for o in batch if o.state == "retry"])
    return _record_host_health(conn, batch, host_failure_days)


def _record_host_health(conn: sqlite3.Connection, batch: list[Outcome], host_failure_days: int) -> dict[str, int]:
    """Mastodon's DeliveryFailureTracker over the batch, with the same result as recording each
    outcome in order: per host, a run of successes is one success (the latest time) and a run of
    failures adds its distinct days; only the order of successes and failures matters. Returns the
    hosts marked unavailable, with the end of their hold."""
    runs: dict[str, list[tuple[bool, list[Outcome]]]] = defaultdict(list)
    for o in sorted(batch, key=lambda o: o.host):  # (stable: each host's outcomes stay in order)
        if not (o.host_success or o.host_failure):
            continue
        host_runs = runs[o.host]
        if host_runs and host_runs[-1][0] == o.host_success:
            host_runs[-1][1].append(o)
        else:
            host_runs.append((o.host_success, [o]))
    # The common case, one run of successes per host, in one statement for the whole batch.
    host_store.record_successes(conn, [(host, host_runs[0][1][-1].at_iso) for host, host_runs in runs.items()
                                       if len(host_runs) == 1 and host_runs[0][0]])
    marked: dict[str, int] = {}
    for host, host_runs in runs.items():
        if len(host_runs) == 1 and host_runs[0][0]:
            continue
        for success, outcomes in host_runs:
            if success:
                host_store.record_successes(conn, [(host, outcomes[-1].at_iso)])
                marked.pop(host, None)
                continue
            failure_days = 0
            for at_iso in _last_per_day(outcomes):
                failure_days = host_store.record_failure(conn, host, at_iso)
            if failure_days >= host_failure_days:
                last = outcomes[-1]
                until = last.at_ms + UNAVAILABLE_HOLD_MS
                host_store.mark_unavailable(conn, host, now=last.at_iso, until_ms=until)
                marked[host] = until
                log.warning("host %s failed on %d days: holding its deliveries", host, failure_days)
    return marked


def _last_per_day(outcomes: list[Outcome]) -> list[str]:
    """The latest failure time of each distinct day, in time order (the last one is the latest)."""
    latest: dict[str, str] = {}
    for o in outcomes:
        day = o.at_iso[:10]
        if o.at_iso >= latest.get(day, ""):
            latest[day] = o.at_iso
    return sorted(latest.values())
