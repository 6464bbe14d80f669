"""Per-host limits on what the inbox takes in: requests per remote host per time window, and items a
host has waiting in the inbox queue. Both are answered 429 with a Retry-After (Mastodon and most
peers retry 429s later), so a busy peer is slowed down, never loses anything.

The check costs a few dictionary look-ups per request: request counts live in memory (lost with the
process, which only forgets a window), and pending counts are a snapshot of the queue refreshed in
the background at most every PENDING_REFRESH_SECONDS, plus what this process stored since. With
several processes ([server] processes) each counts its own requests."""
from __future__ import annotations

import asyncio
import logging
import math
import time

from aiohttp import web

from fedserver.activitypub.normalize import host_of
from fedserver.context import Context
from fedserver.store import inbox as inbox_store

log = logging.getLogger(__name__)

# How stale the pending snapshot may be: a host can overshoot its pending cap by what it manages to
# store in this time, and the refresh (one count, plus a GROUP BY only when the whole queue is
# longer than one host's cap) runs at most this often, and only while requests arrive.
PENDING_REFRESH_SECONDS = 2.0
# What a host over its pending cap is told to wait: the worker needs time to catch up.
PENDING_RETRY_AFTER_SECONDS = 60
# Hosts whose request counts are kept; beyond it, counts of past windows are dropped (and if every
# host is in the current window, all counts: a forgotten count only lets a host start afresh).
MAX_COUNTED_HOSTS = 10_000


class InboundLimits:
    def __init__(self, ctx: Context) -> None:
        fed = ctx.settings.federation
        self.ctx = ctx
        self.rate_limit = fed.inbox_host_rate_limit
        self.window_seconds = fed.inbox_host_rate_window_seconds
        self.max_pending = fed.inbox_max_pending_per_host
        self._requests: dict[str, tuple[int, int]] = {}  # host -> (window number, requests in it)
        self._pending: dict[str, int] = {}  # host -> pending items at the last refresh
        self._stored_since: dict[str, int] = {}  # host -> items this process stored since that refresh
        self._refreshed_at = -math.inf
        self._refresh: asyncio.Task[None] | None = None

    def retry_after(self, host: str | None) -> int | None:
        """Seconds the host should wait when it is over a limit (the Retry-After of a 429); None
        when its request may go on."""
        if host is None:
            return None
        now = time.monotonic()
        if now - self._refreshed_at >= PENDING_REFRESH_SECONDS and self._refresh is None:
            self._refreshed_at = now
            self._refresh = asyncio.create_task(self._refresh_pending(), name="inbox-pending-counts")
        counted = self._requests.get(host)
        window = int(now // self.window_seconds)
        if counted is not None and counted[0] == window and counted[1] >= self.rate_limit:
            return max(1, math.ceil((window + 1) * self.window_seconds - now))
        if self._pending.get(host, 0) + self._stored_since.get(host, 0) >= self.max_pending:
            return PENDING_RETRY_AFTER_SECONDS
        return None

    def count_request(self, host: str | None) -> None:
        """A request whose signature verified for this host."""
        if host is None:
            return
        window = int(time.monotonic() // self.window_seconds)
        counted = self._requests.get(host)
        if counted is None or counted[0] != window:
            if counted is None and len(self._requests) >= MAX_COUNTED_HOSTS:
                self._forget_past_windows(window)
            self._requests[host] = (window, 1)
            return
        self._requests[host] = (window, counted[1] + 1)
        if counted[1] + 1 == self.rate_limit:
            log.info("inbox: %s sent %d requests within %d s; answering 429 until the window ends",
                     host, self.rate_limit, self.window_seconds)

    def count_stored(self, host: str | None) -> None:
        """This process stored a new pending item from this host."""
        if host is not None:
            self._stored_since[host] = self._stored_since.get(host, 0) + 1

    async def stop(self) -> None:
        task, self._refresh = self._refresh, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def _forget_past_windows(self, window: int) -> None:
        self._requests = {host: counted for host, counted in self._requests.items() if counted[0] == window}
        if len(self._requests) >= MAX_COUNTED_HOSTS:
            self._requests.clear()

    async def _refresh_pending(self) -> None:
        try:
            # Items stored from here on are counted on top of the snapshot (a few stored while it is
            # read may count twice until the next refresh: erring towards the cap, briefly).
            stored_since: dict[str, int] = {}
            self._stored_since = stored_since
            by_signer = await inbox_store.pending_count_by_signer(self.ctx.db.reader, at_least=self.max_pending)
            pending: dict[str, int] = {}
            for signer_uri, count in by_signer.items():
                host = host_of(signer_uri)
                if host is not None:
                    pending[host] = pending.get(host, 0) + count
            over = {host for host, count in pending.items() if count >= self.max_pending}
            was_over = {host for host, count in self._pending.items() if count >= self.max_pending}
            if over - was_over:
                log.info("inbox: answering 429 to %s: %d or more of its items wait in the inbox queue",
                         ", ".join(sorted(over - was_over)[:10]), self.max_pending)
            if was_over - over:
                log.info("inbox: %s back under its pending limit", ", ".join(sorted(was_over - over)[:10]))
            self._pending = pending
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - counts stay as they were; the next request tries again
            log.exception("inbox: counting pending items per host failed")
        finally:
            self._refresh = None


# How the inbox handler finds them: request.app[INBOUND_LIMITS_KEY].
INBOUND_LIMITS_KEY = web.AppKey("inbound_limits", InboundLimits)
