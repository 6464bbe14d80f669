"""Request budgets of the client API answered with 429 as Mastodon answers them (a JSON error,
Retry-After and X-RateLimit-* headers). Kept in memory per serving process: a budget guards
this process's work and storage, and several processes simply multiply it."""
from __future__ import annotations

import time
from collections import deque

from fedserver.api.errors import ApiError

# Addresses remembered at most (oldest forgotten first), so the table itself stays bounded.
MAX_KEYS = 10_000


class SlidingWindow:
    """At most `limit` events per key within `seconds`."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._events: dict[str, deque[float]] = {}

    def take(self, key: str, *, now: float | None = None) -> None:
        """Count one event for key, or raise the 429 ApiError when its budget is spent."""
        now = time.monotonic() if now is None else now
        events = self._events.pop(key, None) or deque()
        while events and events[0] <= now - self.seconds:
            events.popleft()
        self._events[key] = events  # re-inserted: the dict's order is least recently used first
        if len(events) >= self.limit:
            reset = int(events[0] + self.seconds - now) + 1
            raise ApiError(429, "Too many requests", _headers={
                "Retry-After": str(reset), "X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset)})
        events.append(now)
        while len(self._events) > MAX_KEYS:
            self._events.pop(next(iter(self._events)))
