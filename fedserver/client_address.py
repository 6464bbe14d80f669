"""Who is on the other end of a request: the TCP peer, or, when that peer is one of the configured
`[server] trusted_proxies`, the address the proxies say they received the request from. Logging,
sign-in throttling and sign-up limits all use this one answer."""
from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable, Sequence, Union

if TYPE_CHECKING:
    from aiohttp import web

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

UNKNOWN = "unknown"

log = logging.getLogger(__name__)


def parse_trusted_proxies(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses ("127.0.0.1", "::1") or networks ("10.0.0.0/8"); ValueError names a bad entry."""
    networks: list[Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network (like 127.0.0.1 or 10.0.0.0/8)") from None
    return tuple(networks)


@lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_trusted_proxies(values)


def _parse_address(text: str) -> Address | None:
    """An IP address as a proxy writes it in X-Forwarded-For: bare, or with a port ("1.2.3.4:80",
    "[::1]:80"). IPv4-mapped IPv6 addresses (a dual-stack socket's view of an IPv4 peer) become IPv4."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def resolve(peer: str | None, forwarded_for: Sequence[str], trusted_proxies: tuple[str, ...]) -> str:
    """The client address of a request from `peer` carrying these X-Forwarded-For header values.

    Only a trusted peer's header counts, and only as far as trusted proxies wrote it: each proxy
    appends the address it received the request from, so the hops are read from the right and the
    first one that is not a trusted proxy is the client. Everything left of it was written by the
    client itself and may be forged (sending `X-Forwarded-For: <random>` must not evade a throttle).
    """
    peer_address = _parse_address(peer) if peer else None
    if peer_address is None:
        return peer or UNKNOWN
    networks = _networks(trusted_proxies) if trusted_proxies else ()
    if not networks or not _trusted(peer_address, networks):
        return str(peer_address)
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    client = peer_address
    for hop in reversed(hops):
        address = _parse_address(hop)
        if address is None:
            # A trusted proxy wrote something that is not an address: nothing further left can be
            # trusted either, so the last address a trusted proxy vouched for stands.
            break
        client = address
        if not _trusted(address, networks):
            break
    return str(client)


def throttle_key(address: str) -> str:
    """What per-address limits count by: the address itself for IPv4, the /64 network for IPv6
    (one subscriber usually gets a whole /64, so single IPv6 addresses cost an attacker nothing)."""
    parsed = _parse_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return address


def request_client_address(request: "web.Request") -> str:
    """resolve() for an aiohttp request, with the trusted proxies of the app's settings."""
    from fedserver.context import CTX_KEY

    trusted = request.app[CTX_KEY].settings.server.trusted_proxies if CTX_KEY in request.app else ()
    forwarded_for = request.headers.getall("X-Forwarded-For", [])
    client = resolve(request.remote, forwarded_for, trusted)
    if forwarded_for and not trusted and not _WARNED:
        address = _parse_address(client)
        if address is not None and address.is_loopback:
            # The README's set-up without its trusted_proxies line: every visitor shares the proxy's
            # address, so one person's failed sign-ins slow everyone down. Said once per process.
            _WARNED.append(True)
            log.warning("requests from %s carry X-Forwarded-For but [server] trusted_proxies is empty: "
                        "all visitors look like %s to sign-in and sign-up limits; list the reverse proxy's "
                        "address there (see README, Behind a TLS reverse proxy)", client, client)
    return client


_WARNED: list[bool] = []
