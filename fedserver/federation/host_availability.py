"""Which remote hosts the delivery worker holds back (marked unavailable after failing on enough
distinct days), kept in memory so that a delivery does not read the hosts table before every POST.
A cache that may be lost: the hosts table stays the truth. This process updates it when it marks or
clears a host; a host held by another process is picked up by the periodic refresh; and a "held"
answer is confirmed against the table before a delivery is held back (an inbound request from the
host may have cleared it meanwhile)."""
from __future__ import annotations

import time

import aiosqlite

from fedserver.store import hosts as host_store

# How stale the cache may get about hosts that another process (a second worker) marked.
REFRESH_SECONDS = 30.0


class HeldHosts:
    def __init__(self) -> None:
        self._until: dict[str, int] = {}
        self._refreshed_at: float | None = None

    def held_until(self, host: str, now_ms: int) -> int | None:
        """When the host's hold ends, if the cache knows of one still running at now_ms."""
        until = self._until.get(host)
        if until is None:
            return None
        if until <= now_ms:
            del self._until[host]
            return None
        return until

    def mark(self, host: str, until_ms: int) -> None:
        self._until[host] = until_ms

    def clear(self, host: str) -> None:
        self._until.pop(host, None)

    def stale(self) -> bool:
        return self._refreshed_at is None or time.monotonic() - self._refreshed_at > REFRESH_SECONDS

    async def refresh(self, conn: aiosqlite.Connection, now_ms: int) -> None:
        """Reload from the hosts table (few rows: only hosts held right now)."""
        self._until = await host_store.held_hosts(conn, now_ms)
        self._refreshed_at = time.monotonic()

    async def confirm(self, conn: aiosqlite.Connection, host: str, now_ms: int) -> int | None:
        """The hold as the database has it now (the cache said the host is held); the cache follows."""
        until = await host_store.unavailable_until(conn, host)
        if until is None or until <= now_ms:
            self.clear(host)
            return None
        self.mark(host, until)
        return until
