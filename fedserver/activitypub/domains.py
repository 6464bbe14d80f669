"""Hosts in one canonical form, read with the fetcher's own URL parser (yarl), so that what is
compared (domain blocks, origin checks, per-host queues) is what would be connected to.

The canonical authority of an http(s) URL is ``host[:port]``: lower-case, internationalised names
in IDNA (punycode), no trailing dot, the scheme's default port dropped, IPv6 in brackets. A URL
with user info (``http://x@blocked.example/``) has none: the fetcher would connect to
blocked.example while a naive comparison saw ``x@blocked.example``, which is how such an actor
once passed a domain block; such ids are refused everywhere instead.
"""
from __future__ import annotations

import ipaddress

from yarl import URL

__all__ = ["InvalidDomain", "authority_of", "block_keys", "covered_by", "parse_domain", "stored_authority"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
# What a canonical name is made of (underscores occur in real hostnames, so they are kept).
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
# A netloc made only of these needs no parser: no user info, IPv6, percent-escapes or non-ASCII.
_PLAIN_NETLOC = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.:")


class InvalidDomain(ValueError):
    """What an admin typed is not a domain (the message says why)."""


def authority_of(uri: object) -> str | None:
    """The canonical ``host[:port]`` of an http(s) URL; None for anything else, for a URL with user
    info and for a host that is not a valid name or address."""
    if not uri or not isinstance(uri, str):
        return None
    # The inbox asks this several times per activity and a full parse costs several us: a plain
    # "http(s)://name[:port]/..." is cut directly; anything unusual (user info, IPv6, escapes,
    # whitespace or control characters, non-ASCII, upper-case scheme) goes through yarl. Both
    # answer alike for every input (tests/activitypub/test_normalize_hosts.py).
    if uri.startswith("https://"):
        start, default = 8, 443
    elif uri.startswith("http://"):
        start, default = 7, 80
    else:
        return _authority_parsed(uri)
    end = len(uri)
    for stop in "/?#":
        found = uri.find(stop, start, end)
        if found != -1:
            end = found
    netloc = uri[start:end]
    if not netloc or not _PLAIN_NETLOC.issuperset(netloc) or not uri.isprintable() or uri[-1] == " ":
        return _authority_parsed(uri)
    host, colon, port = netloc.partition(":")
    if not colon:
        return _canonical(host.lower(), None, default)
    if not port.isdigit() or port[0] == "0" or len(port) > 5 or int(port) > 65535:
        return _authority_parsed(uri)
    return _canonical(host.lower(), int(port), default)


def _authority_parsed(uri: str) -> str | None:
    """authority_of through yarl, exactly as the fetcher reads the URL it requests."""
    try:
        url = URL(uri)
        scheme = url.scheme.lower()
        host = url.raw_host
        port = url.explicit_port
        authority = url.raw_authority
    except (ValueError, TypeError, IndexError):  # IndexError: yarl 1.25 on e.g. "http://[]@"
        return None
    if scheme not in _DEFAULT_PORTS or not host or "@" in authority:
        return None
    return _canonical(host, port, _DEFAULT_PORTS[scheme])


def _canonical(host: str, port: int | None, default: int | None) -> str | None:
    """host (already lower-case and IDNA-encoded) and port in canonical form, or None if invalid."""
    if ":" in host:  # IPv6 (yarl gives it without brackets)
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            return None
        if address.scope_id:
            return None
        name = f"[{address.compressed}]"
    else:
        name = host[:-1] if host.endswith(".") else host
        if not _valid_name(name):
            return None
    if port is None or port == default:
        return name
    if not 0 < port < 65536:
        return None
    return f"{name}:{port}"


def _valid_name(name: str) -> bool:
    if not name or len(name) > 253:
        return False
    for label in name.split("."):
        if not label or len(label) > 63 or not _NAME_CHARS.issuperset(label):
            return False
    return True


def stored_authority(value: str) -> str | None:
    """The canonical form of a host stored before hosts were normalised (``actors.domain``,
    ``deliveries.host``): it may carry user info or a default port. For matching only."""
    _, _, hostport = value.strip().rpartition("@")
    return authority_of(f"http://{hostport}/") if hostport else None


def parse_domain(text: str) -> str:
    """What an admin typed to block, as the canonical ``domain[:port]``; InvalidDomain (with the
    reason) for anything that is not one. A default port (80, 443) is dropped: the block then covers
    the domain on every port."""
    value = text.strip() if isinstance(text, str) else ""
    if not value:
        raise InvalidDomain("give a domain, like example.com")
    if "://" in value or "/" in value or "?" in value or "#" in value:
        raise InvalidDomain(f"{value!r} is a URL, not a domain: give only its domain, like example.com")
    if "@" in value:
        raise InvalidDomain(f"{value!r} has user info or is a handle: give only the domain, like example.com")
    if any(c.isspace() for c in value) or not value.isprintable():
        raise InvalidDomain(f"{value!r} contains spaces or control characters")
    if ".." in value or value.startswith("."):
        raise InvalidDomain(f"{value!r} has an empty label (two dots in a row, or a leading dot)")
    canonical = authority_of(f"http://{value}/")
    if canonical is None:
        raise InvalidDomain(f"{value!r} is not a valid domain name or address (letters, digits, hyphens;"
                            " labels separated by dots; an optional :port)")
    name, port = _split(canonical)
    return name if port == ":443" else canonical


def _split(authority: str) -> tuple[str, str]:
    """(name, ":port" or "") of a canonical authority."""
    if authority.startswith("["):
        end = authority.find("]")
        return authority[:end + 1], authority[end + 1:]
    name, colon, port = authority.partition(":")
    return name, colon + port


def block_keys(authority: str) -> list[str]:
    """The blocked domains that would cover a canonical authority: the name and every parent
    domain, each alone and with the authority's port (a block of example.com covers
    a.example.com:8443; a block of example.com:8443 covers a.example.com on that port only).
    An IP address is covered by itself only."""
    name, port = _split(authority)
    if name.startswith("[") or _is_ipv4(name):
        return [name + port, name] if port else [name]
    labels = name.split(".")
    keys: list[str] = []
    for i in range(len(labels)):
        parent = ".".join(labels[i:])
        if port:
            keys.append(parent + port)
        keys.append(parent)
    return keys


def covered_by(authority: str, domain: str) -> bool:
    """Whether a block of the canonical domain covers the canonical authority."""
    return domain in block_keys(authority)


def _is_ipv4(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True
