"""Wake-ups of idle queue workers. Whatever enqueues work (an inbox request, a post's deliveries, a
poll that will close) calls notify(queue); a worker waiting for that queue's work calls wait().

LocalWakeups, for SQLite: an asyncio.Event per queue wakes a worker in the same process at once;
a worker in another process (`fedserver worker`, an acceptor's inbox) cannot be signalled that way,
so wait() also looks every `look_every` seconds whether someone else committed something due (the
caller's `look`: PRAGMA data_version, then the queue's next due time), and returns after `timeout`
in any case (retries falling due, leases running out). A PostgreSQL implementation keeps the same
two methods with LISTEN/NOTIFY in place of the looks."""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Protocol

# The queues workers wait on (fedserver/background.py runs their workers).
INBOX = "inbox"
DELIVERY = "delivery"
POLLS = "polls"
MEDIA = "media"

Look = Callable[[], Awaitable[bool]]


class QueueWakeups(Protocol):
    def notify(self, queue: str) -> None: ...

    async def wait(self, queue: str, *, timeout: float, look_every: float | None = None,
                   look: Look | None = None) -> None: ...


class LocalWakeups:
    """In-process events plus a bounded poll for what other processes enqueue."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def event(self, queue: str) -> asyncio.Event:
        event = self._events.get(queue)
        if event is None:
            event = self._events[queue] = asyncio.Event()
        return event

    def notify(self, queue: str) -> None:
        self.event(queue).set()

    async def wait(self, queue: str, *, timeout: float, look_every: float | None = None,
                   look: Look | None = None) -> None:
        """Return when notify(queue) was called (since the last wait returned), after timeout
        seconds, or, with look_every and look, once look() says work queued elsewhere is due."""
        event = self.event(queue)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        step = look_every if look is not None else None
        while not event.is_set() and (remaining := deadline - loop.time()) > 0:
            try:
                # asyncio.timeout, not wait_for: wait_for makes a task per call, and a busy worker
                # waits here often.
                async with asyncio.timeout(min(remaining, step or remaining)):
                    await event.wait()
                break
            except TimeoutError:
                pass
            if look is not None and step is not None and await look():
                break
        event.clear()
