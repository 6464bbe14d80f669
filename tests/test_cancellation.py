"""Loops that run for a process's life stop when cancelled, even if a library below them lost the
cancellation (fedserver/cancellation.py says where Python 3.11 does that)."""
from __future__ import annotations

import asyncio

import pytest

from fedserver.cancellation import raise_if_cancelled


async def test_a_loop_whose_cancellation_was_swallowed_below_it_still_stops():
    turns = 0

    async def a_wait_that_loses_cancellations() -> None:
        # What Python 3.11's wait_for does when a result and a cancellation arrive together.
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            pass

    async def worker_loop() -> None:
        nonlocal turns
        while True:
            raise_if_cancelled()
            turns += 1
            await a_wait_that_loses_cancellations()

    task = asyncio.create_task(worker_loop())
    await asyncio.sleep(0.05)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5)
    assert done, "the loop kept running after it was cancelled"
    with pytest.raises(asyncio.CancelledError):
        task.result()
    assert turns > 1
