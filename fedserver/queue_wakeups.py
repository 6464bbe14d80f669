"""Wake-ups of idle queue workers. Whatever enqueues work (an inbox request, a post's deliveries, a
poll that will close) calls notify(queue); a worker waiting for that queue's work calls wait().

LocalWakeups, for SQLite: an asyncio.Event per queue wakes a worker in the same process at once;
a worker in another process (`fedserver worker`, an acceptor's inbox) cannot be signalled that way,
so wait() also looks every `look_every` seconds whether someone else committed something due (the
caller's `look`: PRAGMA data_version, then the queue's next due time), and returns after `timeout`
in any case (retries falling due, leases running out).

ListenWakeups, for PostgreSQL: the same events, set also by LISTEN/NOTIFY. A row queued in any
table of a queue sends NOTIFY fedserver_<queue> from its own transaction (triggers of migration
0190), delivered when that commits to every process that listens, on any machine: the waiting
worker wakes at once and finds the row committed. So there are no looks; `timeout` stays, and
idle_seconds() stretches the caller's idle poll to [database] listen_poll_seconds, a safety poll
for what no insert announces (leases running out). While its connection is down (the database
restarting) it falls back to LocalWakeups' looks and polls, and on reconnecting wakes every
waiter once (a notification sent meanwhile was lost)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Protocol

from fedserver.cancellation import raise_if_cancelled

log = logging.getLogger(__name__)

# The queues workers wait on (fedserver/background.py runs their workers).
INBOX = "inbox"
DELIVERY = "delivery"
POLLS = "polls"
MEDIA = "media"
PUSH = "push"
# Not a queue: the streaming API's hubs (services/events.py) wait here for new stream_events rows.
STREAM = "stream"
# The NOTIFY channels of migration 0190, one per name above.
LISTENED = (INBOX, DELIVERY, POLLS, MEDIA, PUSH, STREAM)
CHANNEL_PREFIX = "fedserver_"

Look = Callable[[], Awaitable[bool]]


class QueueWakeups(Protocol):
    def notify(self, queue: str) -> None: ...

    async def wait(self, queue: str, *, timeout: float, look_every: float | None = None,
                   look: Look | None = None) -> bool: ...


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

    @property
    def listening(self) -> bool:
        """Whether other processes' work wakes this process's waiters by itself (no looks needed)."""
        return False

    def idle_seconds(self, default: float) -> float:
        """How long an idle worker waits without a wake-up: its own poll interval here."""
        return default

    async def close(self) -> None:
        pass

    async def wait(self, queue: str, *, timeout: float, look_every: float | None = None,
                   look: Look | None = None) -> bool:
        """Return when notify(queue) was called (since the last wait returned), after timeout
        seconds, or, with look_every and look, once look() says work queued elsewhere is due;
        whether notify(queue) was called."""
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
        notified = event.is_set()
        event.clear()
        return notified


class ListenWakeups(LocalWakeups):
    """PostgreSQL: LocalWakeups' events, also set by LISTEN/NOTIFY on one connection of its own,
    opened when something first waits (a CLI command that only enqueues never opens it)."""

    def __init__(self, url: str, *, connect_kwargs: dict[str, Any] | None = None,
                 idle_poll_seconds: float = 5.0) -> None:
        super().__init__()
        self._url = url
        self._connect_kwargs = connect_kwargs or {}
        self._idle_poll_seconds = idle_poll_seconds
        self._task: asyncio.Task | None = None
        self._listening = False
        self._ready: asyncio.Event | None = None

    @property
    def listening(self) -> bool:
        return self._listening

    def idle_seconds(self, default: float) -> float:
        return max(default, self._idle_poll_seconds) if self._listening else default

    async def wait(self, queue: str, *, timeout: float, look_every: float | None = None,
                   look: Look | None = None) -> bool:
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._listen(), name="queue-wakeups")
        if not self._listening and self._ready is not None and not self._ready.is_set():
            try:  # the first wait: the LISTEN is usually a few ms away
                async with asyncio.timeout(min(timeout, 2.0)):
                    await self._ready.wait()
            except TimeoutError:
                pass
        if self._listening:
            return await super().wait(queue, timeout=timeout)
        return await super().wait(queue, timeout=timeout, look_every=look_every, look=look)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _listen(self) -> None:
        import psycopg

        pause = 0.5
        while True:
            raise_if_cancelled()
            try:
                conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True, **self._connect_kwargs)
                async with conn:
                    for name in LISTENED:
                        await conn.execute(f"LISTEN {CHANNEL_PREFIX}{name}")
                    self._listening = True
                    pause = 0.5
                    # What was queued before the LISTEN took effect (or while the connection was
                    # down) sent its notification to no one: every waiter looks once.
                    for name in LISTENED:
                        self.notify(name)
                    if self._ready is not None:
                        self._ready.set()
                    async for note in conn.notifies():
                        if note.channel.startswith(CHANNEL_PREFIX):
                            self.notify(note.channel[len(CHANNEL_PREFIX):])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database went away: poll until it is back
                log.warning("queue wake-ups: listening connection lost (%s); polling, reconnecting in %.1f s",
                            exc, pause)
            finally:
                self._listening = False
            if self._ready is not None:
                self._ready.set()  # a first wait stops waiting for the LISTEN: it polls meanwhile
            await asyncio.sleep(pause)
            pause = min(pause * 2, 30.0)
