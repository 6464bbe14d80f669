"""Outbound network policy: keep remote fetches and deliveries off private networks (SSRF).

Any URL we fetch (actor ids, keyIds, inboxes, attachment URLs, redirects) is attacker
chosen, so a naive client can be steered at cloud metadata (169.254.169.254), the
database on 10/8, or our own admin port on loopback.  Real incidents: Fedify
CVE-2024-39687 (document loader fetched private addresses), Mastodon CVE-2026-46348
(``::`` missing from the block list), Mastodon FASP SSRF CVE-2026-27477 (federation.md §7.4).

Two layers are needed because aiohttp's ``TCPConnector`` only consults the resolver for
*names*; IP literals (anything containing ``:`` or made of digits and dots) skip it
entirely (verified against aiohttp 3.14.5 ``TCPConnector._resolve_host``; a test pins it):

* :func:`check_url` -- scheme allowlist, literal addresses, ``localhost`` names;
  call it for the initial URL and for every redirect target.
* :class:`SafeResolver` -- filters resolved A/AAAA records, so the connection goes to an
  address that was checked (no check-then-resolve-again DNS-rebinding window).

The policy uses explicit network tables rather than ``ipaddress.is_private``/``is_global``
because those changed between CPython patch releases (gh-113171).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

__all__ = [
    "BlockedAddressError",
    "SafeResolver",
    "check_url",
    "is_address_allowed",
    "parse_networks",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedAddressError(OSError):
    """The target is not allowed by the network policy.

    An ``OSError`` on purpose: when raised from a resolver, aiohttp wraps OSErrors in
    ``ClientConnectorDNSError`` (``.os_error`` is this exception) instead of letting an
    arbitrary exception escape the connector half-way through connection setup.
    """


def _nets(*cidrs: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Never sensible TCP destinations, even in tests: ``0.0.0.0``/``::`` silently mean
# "this host" on Linux (CVE-2026-46348), multicast/broadcast/class E cannot be unicast.
_ALWAYS_BLOCKED = _nets(
    "0.0.0.0/32", "224.0.0.0/4", "240.0.0.0/4", "::/128", "ff00::/8",
)

# Blocked unless allow_private (Mastodon PrivateAddressCheck's list plus RFC 6890 extras).
_PRIVATE_V4 = _nets(
    "0.0.0.0/8",        # "this network"
    "10.0.0.0/8",       # RFC 1918
    "100.64.0.0/10",    # CGNAT, RFC 6598
    "127.0.0.0/8",      # loopback
    "169.254.0.0/16",   # link-local incl. cloud metadata
    "172.16.0.0/12",    # RFC 1918
    "192.0.0.0/24",     # IETF protocol assignments
    "192.0.2.0/24",     # TEST-NET-1
    "192.88.99.0/24",   # deprecated 6to4 relay anycast
    "192.168.0.0/16",   # RFC 1918
    "198.18.0.0/15",    # benchmarking
    "198.51.100.0/24",  # TEST-NET-2
    "203.0.113.0/24",   # TEST-NET-3
)
_PRIVATE_V6 = _nets(
    "::/8",             # loopback, IPv4-compatible, SIIT and other reserved space
    "64:ff9b:1::/48",   # local-use NAT64 (RFC 8215)
    "100::/64",         # discard-only
    "2001::/32",        # Teredo: tunnels to arbitrary IPv4, no fediverse host lives here
    "2001:db8::/32",    # documentation
    "3fff::/20",        # documentation (RFC 9637)
    "fc00::/7",         # unique local
    "fe80::/10",        # link-local
    "fec0::/10",        # deprecated site-local
)
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
_NAT64_WKP = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


def parse_networks(networks: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """Normalise an allow-list like Mastodon's ``ALLOWED_PRIVATE_ADDRESSES``."""
    return tuple(
        n if isinstance(n, (ipaddress.IPv4Network, ipaddress.IPv6Network))
        else ipaddress.ip_network(n.strip(), strict=False)
        for n in networks
    )


def _parse_ip(ip: str) -> IPAddress | None:
    try:
        # Scope ids (fe80::1%eth0) are accepted by ipaddress; the address part decides.
        return ipaddress.ip_address(ip.strip().strip("[]"))
    except ValueError:
        return None


def _embedded_v4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """IPv4 address a v6 address really reaches: mapped, 6to4 or NAT64 well-known prefix."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr in _SIX_TO_FOUR:
        return addr.sixtofour
    if addr in _NAT64_WKP:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def _v4_allowed(addr: ipaddress.IPv4Address, allow_private: bool) -> bool:
    if any(addr in n for n in _ALWAYS_BLOCKED):
        return False
    return allow_private or not any(addr in n for n in _PRIVATE_V4)


def is_address_allowed(
    ip: str, allow_private: bool, allowed_networks: Sequence[IPNetwork] = ()
) -> bool:
    """May we open a TCP connection to ``ip``?

    With ``allow_private=False`` refuses loopback, RFC 1918, link-local, CGNAT, ULA,
    documentation/benchmark/reserved space, and IPv6 forms that embed such an IPv4
    address (``::ffff:127.0.0.1``, ``2002:7f00:1::``, ``64:ff9b::a00:1``).  IPv6 outside
    global unicast ``2000::/3`` is refused unless it embeds an allowed IPv4.

    ``allow_private=True`` (tests, loopback deployments) still refuses the unspecified
    addresses, multicast and class E.  ``allowed_networks`` punches specific holes, like
    Mastodon's ``ALLOWED_PRIVATE_ADDRESSES``.  Unparseable input is refused.
    """
    addr = _parse_ip(ip)
    if addr is None:
        return False
    if any(addr in n for n in _ALWAYS_BLOCKED):
        return False
    if any(addr in n for n in allowed_networks):
        return True
    if isinstance(addr, ipaddress.IPv4Address):
        return _v4_allowed(addr, allow_private)
    embedded = _embedded_v4(addr)
    if embedded is not None:
        if any(embedded in n for n in allowed_networks):
            return True
        return _v4_allowed(embedded, allow_private)
    if allow_private:
        return True
    if any(addr in n for n in _PRIVATE_V6):
        return False
    return addr in _GLOBAL_UNICAST_V6


def _looks_like_ip_literal(host: str) -> bool:
    # Mirrors aiohttp.helpers.is_ip_address: hosts for which the connector skips DNS.
    return ":" in host or host.replace(".", "").isdigit()


def _is_numeric_label(label: str) -> bool:
    lab = label.lower()
    if lab.startswith("0x"):
        return all(c in "0123456789abcdef" for c in lab[2:])
    return lab.isdigit()


def check_url(
    url: str | URL,
    allow_private: bool,
    allowed_schemes: Sequence[str] = ("https",),
    *,
    allowed_networks: Sequence[IPNetwork] = (),
) -> None:
    """Raise :class:`BlockedAddressError` unless ``url`` may be requested.

    Checks the scheme, that a host exists and no user info, literal IP hosts (the resolver never sees
    them), legacy numeric hosts (``2130706433``, ``0x7f.1``: getaddrinfo's inet_aton
    maps them onto 127.0.0.1) and ``localhost``/``*.localhost`` (RFC 6761).  Names are
    checked again at connect time by :class:`SafeResolver`.
    """
    try:
        u = url if isinstance(url, URL) else URL(url)
    except (ValueError, TypeError, IndexError) as exc:  # IndexError: yarl 1.25 on e.g. "http://[]@"
        raise BlockedAddressError(f"invalid URL: {exc}") from None
    scheme = (u.scheme or "").lower()
    if scheme not in allowed_schemes:
        raise BlockedAddressError(f"scheme {scheme!r} not allowed")
    # raw_host is what the connector resolves (IDNA-encoded, so "ⓛocalhost" -> "localhost").
    host = (u.raw_host or "").lower()
    if not host:
        raise BlockedAddressError("URL has no host")
    if "@" in (u.raw_authority or ""):
        # http://x@blocked.example/ connects to blocked.example while a naive host comparison sees
        # x@blocked.example: ids with user info once slipped past a domain block. No peer needs them.
        raise BlockedAddressError("URL has user info")
    if _looks_like_ip_literal(host):
        if not is_address_allowed(host, allow_private, allowed_networks):
            raise BlockedAddressError(f"address {host} not allowed")
        return
    name = host.rstrip(".")
    labels = name.split(".")
    if _is_numeric_label(labels[-1]):
        # No TLD is numeric: this is an inet_aton-style IPv4 spelling, never a real name.
        raise BlockedAddressError(f"non-canonical numeric host {host!r}")
    if not allow_private and (name == "localhost" or name.endswith(".localhost")):
        raise BlockedAddressError("localhost not allowed")


class SafeResolver(AbstractResolver):
    """aiohttp resolver that drops addresses the policy forbids.

    Wraps aiohttp's default resolver (or ``inner``).  If no address survives it raises
    :class:`BlockedAddressError`, which aiohttp surfaces as ``ClientConnectorDNSError``
    with ``os_error`` set to it.  Mixed answers keep only the allowed records, so a
    name resolving to both a public and a private address connects to the public one.
    """

    def __init__(
        self,
        allow_private: bool = False,
        *,
        allowed_networks: Sequence[IPNetwork] = (),
        inner: AbstractResolver | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._allowed_networks = tuple(allowed_networks)
        self._inner = inner
        self._owns_inner = inner is None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            # ThreadedResolver binds the running loop in __init__, so create it lazily.
            self._inner = DefaultResolver()
        results = await self._inner.resolve(host, port, family)
        allowed = [
            r for r in results
            if is_address_allowed(r["host"], self._allow_private, self._allowed_networks)
        ]
        if not allowed:
            raise BlockedAddressError(f"{host} resolves only to disallowed addresses")
        return allowed

    async def close(self) -> None:
        if self._inner is not None and self._owns_inner:
            await self._inner.close()
