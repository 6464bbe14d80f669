"""Keeping a worker's leases on the queue rows it holds (claimed, queued, in flight): every third
of the lease, one write extends them all, so that no other worker (`fedserver worker`,
docs/scaling.md) takes over a row this one still works on. Shared by the delivery and inbox
workers; what a row that was not renewed means is theirs to decide."""
from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Callable, Iterable

from fedserver.cancellation import raise_if_cancelled
from fedserver.context import Context

log = logging.getLogger(__name__)

# (connection, row ids, owner's new lease end in epoch ms) -> the ids whose lease was extended.
Renew = Callable[[sqlite3.Connection, list[int], int], set[int]]
# (the ids it tried, those renewed, the new lease end in epoch ms)
Renewed = Callable[[list[int], set[int], int], None]


async def renew_leases_forever(ctx: Context, *, lease_ms: int, queue: str, held: Callable[[], Iterable[int]],
                               renew: Renew, renewed: Renewed) -> None:
    """Run until cancelled: every lease_ms / 3, renew the leases of the rows `held()` names in one
    write transaction (store.claims) and report the outcome to `renewed`. A failed renewal is
    logged and tried again next round (the rows' leases still run for two more thirds)."""
    while True:
        raise_if_cancelled()
        await asyncio.sleep(lease_ms / 3000)
        ids = sorted(held())
        if not ids:
            continue
        until_ms = ctx.clock.now_ms() + lease_ms
        try:
            kept = await ctx.db.write_batch(lambda conn: renew(conn, ids, until_ms))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the next round tries again; the worker guards meanwhile
            log.exception("%s: could not renew the leases of %d rows", queue, len(ids))
            continue
        renewed(ids, kept, until_ms)
