"""Time in one place: UTC ISO-8601 text for stored events, epoch milliseconds for queues, and
time-ordered ids. Tests move time by replacing `Clock.now`."""
from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone


class Clock:
    """Injectable source of the current time (epoch seconds)."""

    def now(self) -> float:
        return time.time()

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def now_iso(self) -> str:
        return iso_from_epoch(self.now())


SYSTEM_CLOCK = Clock()


def iso_from_epoch(seconds: float) -> str:
    """Fixed-width UTC text, so that text order is time order (stored timestamps)."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def wire_time(iso: str) -> str:
    """ActivityPub `published`/`updated` form: second precision with a Z, as Mastodon emits."""
    return iso[:19] + "Z"


def parse_time(value: str | None) -> float | None:
    """Parse an ISO-8601 time from a remote document; None when missing or unparsable."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


_last_id = 0


def time_ordered_id(seconds: float) -> int:
    """Mastodon-style snowflake: milliseconds << 16 with 16 random bits; fits a signed 64-bit int.
    Within one millisecond of this process, ids keep their creation order (random low bits alone
    would shuffle posts written in the same millisecond)."""
    global _last_id
    millis = int(seconds * 1000)
    candidate = (millis << 16) | secrets.randbits(16)
    if millis == _last_id >> 16 and candidate <= _last_id and (_last_id & 0xFFFF) < 0xFFFF:
        candidate = _last_id + 1
    _last_id = max(_last_id, candidate)
    return candidate
