"""Reading remote ActivityStreams shapes: values may be a string, an object or a list of either."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def id_of(value: Any) -> str | None:
    """The id of a reference given as a string or an embedded object."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        ident = value.get("id")
        return ident if isinstance(ident, str) else None
    if isinstance(value, list) and value:
        return id_of(value[0])
    return None


def ids_of(value: Any) -> list[str]:
    return [i for i in (id_of(v) for v in as_list(value)) if i]


def types_of(value: Any) -> list[str]:
    if isinstance(value, dict):
        value = value.get("type")
    return [t for t in as_list(value) if isinstance(t, str)]


def first_type(value: Any) -> str | None:
    types = types_of(value)
    return types[0] if types else None


def host_of(uri: str | None) -> str | None:
    """host[:port] of an http(s) URL, lower-cased; None for anything else."""
    if not uri or not isinstance(uri, str):
        return None
    # The inbox asks this several times per activity and urlsplit costs ~4 us a call: a plain
    # "http(s)://netloc/..." is cut directly; anything unusual (upper-case scheme, whitespace or
    # control characters that urlsplit strips, IPv6 brackets it validates) goes through urlsplit.
    if uri.startswith("https://"):
        start = 8
    elif uri.startswith("http://"):
        start = 7
    else:
        return _host_of_slow(uri)
    end = len(uri)
    for stop in "/?#":
        found = uri.find(stop, start, end)
        if found != -1:
            end = found
    netloc = uri[start:end]
    if not netloc or not _PLAIN_NETLOC.issuperset(netloc) or _has_unsafe(uri):
        return _host_of_slow(uri)
    return netloc.lower()


# Characters a netloc may hold that need no special handling by urlsplit.
_PLAIN_NETLOC = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:@!$&'()*+,;=%")


def _has_unsafe(uri: str) -> bool:
    """Whether urlsplit would strip or remove characters from uri (C0 controls and space)."""
    return not uri.isprintable() or uri[0] == " " or uri[-1] == " "


def _host_of_slow(uri: str) -> str | None:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts.netloc.lower()


def same_origin(a: str | None, b: str | None) -> bool:
    ha, hb = host_of(a), host_of(b)
    return ha is not None and ha == hb


def string_or_none(value: Any, limit: int = 100_000) -> str | None:
    if isinstance(value, str):
        return value[:limit]
    return None


def content_of(obj: dict) -> str:
    """HTML content: `content`, else the first value of `contentMap`."""
    content = obj.get("content")
    if isinstance(content, str):
        return content
    content_map = obj.get("contentMap")
    if isinstance(content_map, dict):
        for value in content_map.values():
            if isinstance(value, str):
                return value
    return ""


def language_of(obj: dict) -> str | None:
    content_map = obj.get("contentMap")
    if isinstance(content_map, dict):
        for key in content_map:
            if isinstance(key, str) and 1 < len(key) <= 16:
                return key
    return None
