"""How an idle queue worker (inbox, delivery) waits for work: its own process's wake-up, a timeout
(the next retry falling due, or a poll for expired leases), and, when other processes may queue
work, a look every so often at whether another connection committed (PRAGMA data_version; with
PostgreSQL this would be LISTEN/NOTIFY)."""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

import aiosqlite

from fedserver.context import Context
from fedserver.store.rows import data_version

NextDue = Callable[[aiosqlite.Connection, int], Awaitable[int | None]]


async def wait_for_work(ctx: Context, wakeup: asyncio.Event, *, timeout: float, watch: float | None,
                        next_due_ms: NextDue) -> None:
    """Return when wakeup is set, after timeout seconds, or, with watch (seconds between looks),
    once another connection committed and next_due_ms says something is due now. Clears wakeup."""
    loop = asyncio.get_running_loop()
    reader = ctx.db.reader
    deadline = loop.time() + timeout
    version = await data_version(reader) if watch is not None else 0
    while not wakeup.is_set() and (remaining := deadline - loop.time()) > 0:
        try:
            async with asyncio.timeout(min(remaining, watch or remaining)):
                await wakeup.wait()
            break
        except TimeoutError:
            pass
        if watch is None:
            continue
        current = await data_version(reader)
        if current != version:
            version = current
            now_ms = ctx.clock.now_ms()
            due = await next_due_ms(reader, now_ms)
            if due is not None and due <= now_ms:
                break
    wakeup.clear()
