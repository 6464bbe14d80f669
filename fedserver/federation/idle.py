"""How an idle queue worker (inbox, delivery) waits for work: its queue's wake-up
(fedserver/queue_wakeups.py), a timeout (the next retry falling due, or a poll for expired leases),
and, when other processes may queue work, a look every so often at whether another connection
committed (PRAGMA data_version) and something is due now."""
from __future__ import annotations

from typing import Awaitable, Callable

import aiosqlite

from fedserver.context import Context
from fedserver.store.rows import data_version

NextDue = Callable[[aiosqlite.Connection, int], Awaitable[int | None]]


async def wait_for_work(ctx: Context, queue: str, *, timeout: float, watch: float | None,
                        next_due_ms: NextDue) -> None:
    """Return when the queue is notified, after timeout seconds, or, with watch (seconds between
    looks), once another connection committed and next_due_ms says something is due now. No looks
    while the wake-ups come from the database itself (LISTEN/NOTIFY on PostgreSQL)."""
    if ctx.wakeups.listening:
        watch = None
    reader = ctx.db.reader
    version = await data_version(reader) if watch is not None else 0

    async def committed_and_due() -> bool:
        nonlocal version
        current = await data_version(reader)
        if current == version:
            return False
        version = current
        now_ms = ctx.clock.now_ms()
        due = await next_due_ms(reader, now_ms)
        return due is not None and due <= now_ms

    await ctx.wakeups.wait(queue, timeout=timeout, look_every=watch,
                           look=committed_and_due if watch is not None else None)
