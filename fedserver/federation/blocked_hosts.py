"""The domain blocks as the delivery worker sees them: kept in memory and read again at most
REFRESH_SECONDS after the last read, so that a delivery claimed before an admin blocked its
domain (in this process or with the CLI in another) is dropped before it is sent, without a
database read per POST. Blocking a domain also cancels its pending rows in the same transaction
(services/status.py), and nothing new is queued for it (services/outbox.py): this is the last
line, for the rows already claimed when the block was committed."""
from __future__ import annotations

import asyncio
import time

import aiosqlite

from fedserver.activitypub.domains import block_keys, stored_authority
from fedserver.activitypub.normalize import host_of
from fedserver.store import hosts as host_store

# How long a block committed elsewhere may go unseen by a running worker (a claimed delivery
# waits at most this long behind a block before being dropped instead of sent).
REFRESH_SECONDS = 1.0


class BlockedHosts:
    def __init__(self) -> None:
        self._domains: frozenset[str] = frozenset()
        self._refreshed_at: float | None = None
        self._lock = asyncio.Lock()

    def stale(self) -> bool:
        return self._refreshed_at is None or time.monotonic() - self._refreshed_at > REFRESH_SECONDS

    async def refresh(self, conn: aiosqlite.Connection) -> None:
        async with self._lock:  # concurrent deliveries share one read
            if self.stale():
                self._domains = frozenset(await host_store.blocked_domains(conn))
                self._refreshed_at = time.monotonic()

    def blocked(self, inbox_url: str, stored_host: str) -> str | None:
        """Why this delivery must not be sent, or None: its inbox's domain is blocked, or the URL
        has no canonical host (user info) and so no domain that a block could be checked against."""
        host = host_of(inbox_url)
        if host is None:
            return "the inbox URL has no valid host or has user info"
        if not self._domains:
            return None
        # The stored host differs from the URL's only for rows queued before hosts were canonical.
        stored = host if stored_host == host else (stored_authority(stored_host) or host)
        for key in block_keys(host) if stored == host else block_keys(host) + block_keys(stored):
            if key in self._domains:
                return f"domain {key} is blocked"
        return None
