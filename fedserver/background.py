"""The background work of a server, as named queues that any process may run: plain `fedserver
serve` runs them all beside HTTP; `fedserver serve --no-workers` none; `fedserver worker --queues
...` the ones named, without HTTP (docs/scaling.md). Queue rows are leased (store/claims.py), so any
number of processes on any number of machines may run the same queue; periodic jobs that must run
once at a time hold a named lease instead (store/worker_leases.py), and a process that dies hands
both over to the others when its leases run out."""
from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fedserver.cancellation import raise_if_cancelled
from fedserver.api import push_delivery
from fedserver.config import Settings
from fedserver.context import Context
from fedserver.corpus import sync as corpus_sync
from fedserver.federation.delivery import DeliveryWorker
from fedserver.federation.inbox_retention import prune_periodically as prune_inbox
from fedserver.federation.processing import InboundPressure, InboxWorker
from fedserver.services import events, media_cache, polls, uploads
from fedserver.store import claims

log = logging.getLogger(__name__)

# Claimed queues: each worker loop leases rows, so several loops (--concurrency) and processes share
# one queue. Periodic jobs: one process at a time runs each, whoever holds its lease.
CLAIMED_QUEUES = ("inbox", "delivery", "media", "push")
PERIODIC_QUEUES = ("corpus", "polls", "prune")
QUEUES = CLAIMED_QUEUES + PERIODIC_QUEUES
QUEUE_HELP = {
    "inbox": "apply stored inbound activities, one signer's in order",
    "delivery": "send outbound activities to remote inboxes",
    "media": "fetch and clean remote pictures",
    "push": "send Web Push notifications to apps' push services",
    "corpus": "reconcile the research corpus change feed",
    "polls": "close polls as they fall due",
    "prune": "prune finished inbox items, cached remote media, unused uploads and old stream events",
}
# A periodic job that fails is started again after this pause (it never stops the worker).
JOB_RESTART_SECONDS = 5.0


class UnknownQueue(ValueError):
    pass


def parse_queues(text: str | None) -> tuple[str, ...]:
    """`inbox,delivery` -> ("inbox", "delivery"); None or "all" -> every queue."""
    if text is None or text.strip() in ("", "all"):
        return QUEUES
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in QUEUES]
    if unknown or not names:
        named = ", ".join(unknown) if unknown else repr(text)
        raise UnknownQueue(f"unknown queue {named}: choose from {', '.join(QUEUES)}")
    return names


@dataclass
class Background:
    """The workers running in this process; stop() ends them gracefully."""
    ctx: Context
    tasks: list[asyncio.Task] = field(default_factory=list)
    delivery_workers: list[DeliveryWorker] = field(default_factory=list)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        # Delivery workers finish or hand back what they hold and write their last outcomes.
        for worker in self.delivery_workers:
            await worker.stop()
        self.tasks.clear()
        self.delivery_workers.clear()


def start(ctx: Context, queues: tuple[str, ...] = QUEUES, *, concurrency: int = 1,
          inbound: InboundPressure | None = None) -> Background:
    """Start the workers of these queues in this process: `concurrency` loops per claimed queue,
    one lease-holding runner per periodic job."""
    background = Background(ctx)

    def run(name: str, work: Awaitable[None]) -> None:
        background.tasks.append(asyncio.create_task(work, name=name))

    for n in range(concurrency if "inbox" in queues else 0):
        run(f"inbox-worker-{n + 1}", InboxWorker(ctx, inbound).run())
    for n in range(concurrency if "delivery" in queues else 0):
        worker = DeliveryWorker(ctx)
        background.delivery_workers.append(worker)
        run(f"delivery-worker-{n + 1}", worker.run())
    for n in range(concurrency if "media" in queues else 0):
        run(f"media-cache-{n + 1}", media_cache.run_worker(ctx))
    for n in range(concurrency if "push" in queues else 0):
        run(f"push-worker-{n + 1}", push_delivery.run(ctx))
    jobs: dict[str, list[tuple[str, Callable[[Context], Awaitable[None]]]]] = {
        "corpus": [("corpus-reconciler", corpus_sync.run_periodically)],
        "polls": [("poll-closer", polls.run_closer)],
        "prune": [("inbox-pruner", prune_inbox), ("media-pruner", media_cache.prune_periodically),
                  ("upload-pruner", uploads.prune_periodically),
                  ("stream-event-pruner", events.prune_periodically)],
    }
    for queue in PERIODIC_QUEUES:
        if queue in queues:
            for name, job in jobs[queue]:
                run(name, run_as_leaseholder(ctx, name, job))
    log.info("background work in this process: %s (x%d)", ", ".join(queues) or "none", concurrency)
    return background


async def run_as_leaseholder(ctx: Context, name: str, job: Callable[[Context], Awaitable[None]]) -> None:
    """Run the periodic job while this process holds its lease, renewed every third of the lease;
    otherwise try to take the lease every third of it (its holder died, or gave it up on stopping)."""
    lease_ms = int(ctx.settings.server.worker_lease_seconds * 1000)
    every = lease_ms / 3000
    owner = ctx.worker_id

    async def hold() -> bool:
        now_ms = ctx.clock.now_ms()
        return await ctx.db.write_batch(lambda conn: claims.claim_job(conn, name, owner=owner, now_ms=now_ms,
                                                                     lease_ms=lease_ms))

    running: asyncio.Task | None = None
    try:
        while True:
            raise_if_cancelled()
            try:
                held = await hold()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the database was busy: the next round tries again
                log.exception("%s: could not renew its lease", name)
                held = running is not None  # it still holds the lease until it runs out
            if held and running is None:
                log.info("%s runs in this process (worker %s)", name, owner)
                running = asyncio.create_task(job(ctx), name=name)
            elif not held and running is not None:
                log.warning("%s: another worker took its lease over; stopping it here", name)
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
                running = None
            if running is not None and running.done():
                if not running.cancelled() and running.exception() is not None:
                    log.error("%s stopped: %r; starting it again", name, running.exception())
                running = None
                await asyncio.sleep(JOB_RESTART_SECONDS)
                continue
            await asyncio.sleep(every)
    finally:
        if running is not None:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            try:
                await asyncio.shield(ctx.db.write_batch(lambda conn: claims.release_job(conn, name, owner=owner)))
            except Exception:  # noqa: BLE001 - it runs out instead
                log.warning("%s: could not give its lease up; it runs out in %.0f s", name, lease_ms / 1000)


def run_worker_process(settings: Settings, queues: tuple[str, ...], *, concurrency: int,
                       on_started: Callable[[], None]) -> None:
    """`fedserver worker`: run these queues' workers, without HTTP, until SIGINT or SIGTERM; then stop
    gracefully (deliveries in flight get a moment to finish, the rest is handed back)."""
    asyncio.run(_work(settings, queues, concurrency, on_started))


async def _work(settings: Settings, queues: tuple[str, ...], concurrency: int, on_started: Callable[[], None]) -> None:
    from fedserver.context import close_context, open_context

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    ctx = await open_context(settings)
    # What this process works on is queued by other processes (web processes, the CLI): its idle
    # workers look for their commits (fedserver/queue_wakeups.py).
    ctx.others_enqueue = True
    try:
        running = start(ctx, queues, concurrency=concurrency)
        on_started()
        try:
            await stopping.wait()
            log.info("worker %s stopping", ctx.worker_id)
        finally:
            await running.stop()
    finally:
        await close_context(ctx)
