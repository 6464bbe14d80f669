"""Reading remote ActivityStreams shapes: values may be a string, an object or a list of either."""
from __future__ import annotations

from typing import Any

from fedserver.activitypub.domains import authority_of


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
    """The canonical host[:port] of an http(s) URL (lower-case, IDNA, no trailing dot, no default
    port); None for anything else, including a URL with user info. See activitypub/domains.py."""
    return authority_of(uri)


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
