"""Ids and dates as apps read them. Ids are decimal strings of our integer ids: posts already carry
Mastodon's snowflake layout ((unix ms << 16) | seq, clock.time_ordered_id), so they sort by time,
which Tusky (by length, then text), Ivory and Mastodon.py's datetime paging rely on (client-api.md
§1.2). Dates have exactly three fractional digits and a Z (§1.3)."""
from __future__ import annotations

from datetime import datetime, timezone

from fedserver.api.errors import ApiError
from fedserver.clock import parse_time

MAX_ID = 2**63 - 1


def encode(value: int) -> str:
    return str(value)


def decode(text: str | None) -> int | None:
    """A numeric id from a path or parameter; None when absent or not an id we could have made."""
    if text is None or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def require(text: str | None) -> int:
    """An id that names a record: anything that cannot be one is a 404, as Mastodon answers."""
    value = decode(text)
    if value is None:
        raise ApiError(404, "Record not found")
    return value


def datetime_text(iso: str | None) -> str | None:
    """Stored ISO-8601 (ours or a peer's) as YYYY-MM-DDTHH:MM:SS.mmmZ."""
    epoch = parse_time(iso) if iso else None
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def date_text(iso: str | None) -> str | None:
    """The day only (YYYY-MM-DD), as in Account.last_status_at."""
    full = datetime_text(iso)
    return full[:10] if full else None
