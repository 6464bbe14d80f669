"""Stopping long-running loops reliably.

Python 3.11's asyncio.wait_for, and libraries that wait with it (psycopg_pool hands out a
connection through a condition waited on with wait_for), can return a result and drop a
cancellation that arrived in the same instant (CPython gh-86296, fixed in 3.12). The cancelled task
then runs on with `cancelling()` above zero and nothing left to raise: a worker's loop would keep
polling for ever, and the shutdown that cancelled it would wait for it for ever (seen on
PostgreSQL: a delivery worker polling the queue half an hour after its server was asked to stop).
Every loop that runs for the life of a process therefore calls raise_if_cancelled() at the top of
each turn."""
from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """Raise CancelledError when the current task was asked to stop, even if the request was lost."""
    task = asyncio.current_task()
    if task is not None and task.cancelling() > 0:
        raise asyncio.CancelledError
