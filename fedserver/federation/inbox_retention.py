"""Pruning the inbox queue: a done or failed item is kept only while a copy of its activity could
still arrive and must be recognised as a duplicate ([federation] inbox_replay_window_seconds, at
least twice the signature date window), then deleted, a small batch per transaction so that the
inbox writer's commits never wait long behind it."""
from __future__ import annotations

import asyncio
import logging

from fedserver.cancellation import raise_if_cancelled
from fedserver.clock import iso_from_epoch
from fedserver.context import Context
from fedserver.store import inbox as inbox_store

log = logging.getLogger(__name__)

# Rows per transaction. Most finished rows are small (a done item's body is emptied), but a failed
# one keeps its body (up to max_inbox_body_bytes) for diagnosis: deleting 200 done rows holds the
# write lock for a few milliseconds.
PRUNE_BATCH = 200
# Between two batches the lock is free for the inbox writer (whose commits go first anyway).
BATCH_PAUSE_SECONDS = 0.02
# How often to look: a twentieth of the window, between 1 s and 10 minutes (so a row outlives the
# window by at most that much).
MIN_INTERVAL_SECONDS = 1.0
MAX_INTERVAL_SECONDS = 600.0


def prune_interval(window_seconds: float) -> float:
    return min(MAX_INTERVAL_SECONDS, max(MIN_INTERVAL_SECONDS, window_seconds / 20))


async def prune_finished_items(ctx: Context) -> int:
    """Delete every finished item processed longer ago than the replay window; how many went."""
    cutoff = iso_from_epoch(ctx.clock.now() - ctx.settings.federation.inbox_replay_window_seconds)
    total = 0
    while True:
        deleted = await ctx.db.write_batch(
            lambda conn: inbox_store.prune_finished_items(conn, processed_before=cutoff, limit=PRUNE_BATCH))
        total += deleted
        if deleted < PRUNE_BATCH:
            return total
        await asyncio.sleep(BATCH_PAUSE_SECONDS)


async def prune_periodically(ctx: Context) -> None:
    """Run in the server (the process that runs the workers) until cancelled."""
    interval = prune_interval(ctx.settings.federation.inbox_replay_window_seconds)
    while True:
        raise_if_cancelled()
        try:
            pruned = await prune_finished_items(ctx)
            if pruned:
                log.info("inbox: pruned %d finished items older than the replay window", pruned)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the next round tries again
            log.exception("inbox: pruning finished items failed")
        await asyncio.sleep(interval)
