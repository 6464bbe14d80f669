"""Inbound activities that must fetch something before they can be applied (a Create whose object is
a bare id, an Announce of a post we do not have, a Move to a remote account, anything by a signer we
have not stored) run outside the inbox worker's claimed batch, in one lane per signer: a remote
that answers slowly or never then delays only its own signers' activities, never the other items
of the batch nor the claiming of the next one (issue 12: 14 such Creates held up an unrelated post
for 83 s).

Order: a signer's activities are applied in arrival order. While a signer has a lane, every later
activity of that signer the worker claims joins the end of the lane (even one that needs no fetch),
and the worker routes all of a signer's claimed items to its lane as soon as one of them needs a
fetch; a lane applies its items one at a time and ends only when empty. Items put off (see below)
take the signer's later items with them: they are given back to the queue due at the same time, and
what the worker claims of that signer until then is put off too, so they come back in order. (As
before, an item that fails transiently is retried later, after the signer's newer items.)

Budgets, so one slow host or one signer cannot take the worker: at most LANES lanes apply at once,
a signer holds at most SIGNER_ITEMS items in lanes and a host at most HOST_ITEMS (counting the
items it signs and the items that fetch from it); an item beyond a cap, or one that would fetch
from a host the fetcher has paused (it failed several fetches in a row), goes back to the queue
without counting an attempt, due again later (the pause's end) and without holding a lane. The
fetcher itself bounds fetches per host and remembers failed ones (activitypub/fetch.py)."""
from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fedserver.activitypub.fetch import fetch_origin
from fedserver.context import Context
from fedserver.store import inbox as inbox_store
from fedserver.store.inbox import InboxItem

log = logging.getLogger(__name__)

# Lanes applying at once (each applies one item at a time: one signer never fetches two things at once).
LANES = 32
# Items one signer may hold in its lane.
SIGNER_ITEMS = 16
# Items held in lanes per host, signed by it or fetching from it.
HOST_ITEMS = 16
# How long an item over a cap waits before it is claimed again.
DEFER_MS = 2_000
# Signers remembered as put off at most (expired entries are dropped when this many are reached).
PUT_OFF_SIGNERS = 10_000


@dataclass
class Routed:
    """A claimed item and the URL it will fetch first (None: it only follows its signer's order)."""
    item: InboxItem
    fetches: str | None


@dataclass
class _Held:
    item: InboxItem
    fetches: str | None
    hosts: tuple[str, ...]


@dataclass
class _Lane:
    items: deque[_Held] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class FetchLanes:
    """The signer lanes of one inbox worker. `apply(item)` applies one item and returns whether it
    is to be marked done (InboxWorker.process: retries and failures are recorded there)."""

    def __init__(self, ctx: Context, apply: Callable[[InboxItem], Awaitable[bool]]) -> None:
        self.ctx = ctx
        self._apply = apply
        self._lanes: dict[str, _Lane] = {}
        self._held: set[int] = set()
        self._host_load: Counter[str] = Counter()
        # signer -> when its put-off items are due (ms); forgotten once due
        self._put_off: dict[str, int] = {}
        self._running = asyncio.Semaphore(LANES)

    def holds(self, item_id: int) -> bool:
        """Whether the item is in a lane (a claim after its lease ran out returns it again)."""
        return item_id in self._held

    def held_ids(self) -> set[int]:
        """The items in lanes (their leases are renewed by the worker)."""
        return set(self._held)

    def wants(self, signer_uri: str, now_ms: int) -> bool:
        """Whether the signer's claimed items must go through take(): it has a lane, or items put off."""
        if signer_uri in self._lanes:
            return True
        due = self._put_off.get(signer_uri)
        if due is not None and due <= now_ms:
            del self._put_off[signer_uri]
            return False
        return due is not None

    def take(self, signer_uri: str, routed: list[Routed], now_ms: int) -> list[tuple[int, int]]:
        """Queue one signer's claimed items (arrival order) in its lane as far as the budgets allow;
        returns (item id, due ms) of those put off, for put_off(). Synchronous: nothing else runs
        between deciding and queueing."""
        due = self._put_off.get(signer_uri)
        if due is not None and due > now_ms:
            return [(entry.item.id, due) for entry in routed]
        self._put_off.pop(signer_uri, None)
        signer_host = fetch_origin(signer_uri)
        for index, entry in enumerate(routed):
            wait_ms = self._wait_ms(signer_uri, entry, signer_host)
            if wait_ms:
                due = now_ms + wait_ms
                if len(self._put_off) >= PUT_OFF_SIGNERS:
                    self._put_off = {uri: at for uri, at in self._put_off.items() if at > now_ms}
                self._put_off[signer_uri] = due
                return [(later.item.id, due) for later in routed[index:]]
            self._queue(signer_uri, entry, signer_host)
        return []

    async def put_off(self, due: list[tuple[int, int]]) -> None:
        if due:
            await self.ctx.db.write_batch(lambda conn: inbox_store.defer_items(conn, due))

    async def close(self) -> None:
        """Stop every lane (shutdown); what they held stays leased and is claimed again later."""
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- budgets ---------------------------------------------------------------------------------

    def _hosts(self, entry: Routed, signer_host: str | None) -> tuple[str, ...]:
        fetch_host = fetch_origin(entry.fetches) if entry.fetches else None
        return tuple(dict.fromkeys(host for host in (signer_host, fetch_host) if host))

    def _wait_ms(self, signer_uri: str, entry: Routed, signer_host: str | None) -> int:
        """0 when the item may join its signer's lane now, else how long it is to wait."""
        if entry.fetches:
            paused = self.ctx.fetcher.origin_paused_for(entry.fetches)
            if paused > 0:
                return int(paused * 1000) + 1
        lane = self._lanes.get(signer_uri)
        if lane is not None and len(lane.items) >= SIGNER_ITEMS:
            return DEFER_MS
        if any(self._host_load[host] >= HOST_ITEMS for host in self._hosts(entry, signer_host)):
            return DEFER_MS
        return 0

    def _queue(self, signer_uri: str, entry: Routed, signer_host: str | None) -> None:
        held = _Held(entry.item, entry.fetches, self._hosts(entry, signer_host))
        self._held.add(held.item.id)
        self._host_load.update(held.hosts)
        lane = self._lanes.get(signer_uri)
        if lane is None:
            lane = self._lanes[signer_uri] = _Lane()
            lane.items.append(held)
            lane.task = asyncio.create_task(self._run(signer_uri, lane), name="inbox-fetch-lane")
        else:
            lane.items.append(held)

    def _release(self, held: _Held) -> None:
        self._held.discard(held.item.id)
        self._host_load.subtract(held.hosts)
        for host in held.hosts:
            if self._host_load[host] <= 0:
                del self._host_load[host]

    # -- a lane ----------------------------------------------------------------------------------

    async def _run(self, signer_uri: str, lane: _Lane) -> None:
        try:
            async with self._running:
                while lane.items:
                    held = lane.items[0]
                    if held.fetches and (paused := self.ctx.fetcher.origin_paused_for(held.fetches)) > 0:
                        # Its host stopped answering while the item waited: give it and the signer's
                        # later items back until the pause ends, rather than fail them one by one.
                        await self._put_off_lane(signer_uri, lane, self.ctx.clock.now_ms() + int(paused * 1000) + 1)
                        continue
                    try:
                        if await self._apply(held.item):
                            now = self.ctx.clock.now_iso()
                            await self.ctx.db.write_batch(
                                lambda conn: inbox_store.mark_many_done(conn, [held.item.id], now))
                    except asyncio.CancelledError:
                        raise
                    except Exception:  # noqa: BLE001 - the item stays leased and is claimed again
                        log.exception("inbox lane of %s: applying %s failed", signer_uri, held.item.activity_uri)
                    lane.items.popleft()
                    self._release(held)
                # No await between seeing the lane empty and removing it: take() cannot slip an item in.
                if self._lanes.get(signer_uri) is lane:
                    del self._lanes[signer_uri]
        finally:
            for held in lane.items:
                self._release(held)
            lane.items.clear()
            if self._lanes.get(signer_uri) is lane:
                del self._lanes[signer_uri]

    async def _put_off_lane(self, signer_uri: str, lane: _Lane, due: int) -> None:
        taken = list(lane.items)
        lane.items.clear()
        for held in taken:
            self._release(held)
        self._put_off[signer_uri] = max(due, self._put_off.get(signer_uri, 0))
        log.info("inbox: %d activities of %s put off for %d ms: %s is paused", len(taken), signer_uri,
                 due - self.ctx.clock.now_ms(), fetch_origin(taken[0].fetches or ""))
        await self.put_off([(held.item.id, due) for held in taken])
