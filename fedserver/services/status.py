"""What an admin asks about the server's federation health, and domain blocks."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiosqlite

from fedserver.activitypub.domains import InvalidDomain, covered_by, parse_domain, stored_authority
from fedserver.activitypub.normalize import host_of
from fedserver.context import Context
from fedserver.store import deliveries as delivery_store
from fedserver.store import follows as follow_store
from fedserver.store import hosts as host_store
from fedserver.store import inbox as inbox_store

__all__ = ["DomainBlock", "DomainNotBlocked", "InvalidDomain", "block_domain", "canonicalize_domain_blocks",
           "list_domain_blocks", "queue_status", "unblock_domain"]

log = logging.getLogger(__name__)


async def queue_status(ctx: Context) -> dict[str, Any]:
    reader = ctx.db.reader
    return {
        "deliveries": await delivery_store.queue_stats(reader),
        "inbox_pending": await inbox_store.pending_count(reader),
        "failing_hosts": await host_store.list_failing_hosts(reader),
    }


@dataclass
class DomainBlock:
    """What blocking a domain did."""
    domain: str
    follows_ended: int
    deliveries_cancelled: int


async def block_domain(ctx: Context, text: str, reason: str) -> DomainBlock:
    """Block a domain and all its subdomains: store it in canonical form, end every follow either
    way with its accounts and give up every pending delivery to it, in one transaction. From then
    on nothing is queued for it (services/outbox.py), the delivery worker sends nothing there
    (federation/delivery.py) and its requests are refused. InvalidDomain if text is not a domain."""
    domain = parse_domain(text)
    now = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        await host_store.add_domain_block(tx, domain, reason.strip(), now)
        ended, cancelled = await _cut_off(tx, domain, now)
    _forget_cached_blocks(ctx)
    log.info("blocked domain %s: %d follows ended, %d deliveries cancelled", domain, ended, cancelled)
    return DomainBlock(domain=domain, follows_ended=ended, deliveries_cancelled=cancelled)


async def _cut_off(tx: aiosqlite.Connection, domain: str, now: str) -> tuple[int, int]:
    """Inside the transaction that stores the block: end the follows with the domain's accounts
    and cancel its pending deliveries; returns how many of each."""
    hosts = [host for host in await delivery_store.pending_hosts(tx) if _covers(domain, host)]
    cancelled = await delivery_store.cancel_pending_to(tx, hosts, error=f"domain {domain} is blocked", now=now)
    domains = [d for d in await follow_store.remote_domains_in_follows(tx) if _covers(domain, d)]
    return await follow_store.delete_follows_with_domains(tx, domains), cancelled


def _forget_cached_blocks(ctx: Context) -> None:
    """This process's inbox answers from the database again at once (another process's within
    remote_actors.DOMAIN_BLOCK_CACHE_SECONDS)."""
    # Imported here: remote_actors pulls in the HTTP client, and every CLI command imports this
    # module (open_context) without needing it.
    from fedserver.services import remote_actors

    remote_actors.forget_domain_blocks(ctx)


def _covers(domain: str, stored_host: str) -> bool:
    host = stored_authority(stored_host)
    return host is not None and covered_by(host, domain)


async def unblock_domain(ctx: Context, text: str) -> str:
    """Lift the block of a domain; returns its canonical form. InvalidDomain if text is not a
    domain; DomainNotBlocked if it was not blocked."""
    typed = text.strip() if isinstance(text, str) else ""
    try:
        domain = parse_domain(typed)
    except InvalidDomain:
        domain = None
    async with ctx.db.transaction() as tx:
        # Also the spelling typed, for a block stored before domains were stored canonically.
        removed = await host_store.remove_domain_block(tx, [typed, typed.lower(), *([domain] if domain else [])])
    _forget_cached_blocks(ctx)
    if removed:
        return domain or typed
    if domain is None:
        parse_domain(typed)  # raises InvalidDomain with the reason
    raise DomainNotBlocked(f"{domain} is not blocked")


class DomainNotBlocked(Exception):
    """unblock_domain of a domain that has no block."""


async def list_domain_blocks(ctx: Context) -> list[dict]:
    return await host_store.list_domain_blocks(ctx.db.reader)


async def canonicalize_domain_blocks(ctx: Context) -> None:
    """Rewrite blocks stored before domains were stored canonically (upper case, a trailing dot,
    Unicode names, a default port) in their canonical form, so that they keep covering their
    hosts. One that is not a domain at all (a URL typed before the CLI refused them) is kept as
    its host when it has one, else left as it is and logged."""
    blocks = await host_store.list_domain_blocks(ctx.db.reader)
    changes: list[tuple[dict, str]] = []
    for block in blocks:
        stored = block["domain"]
        try:
            canonical = parse_domain(stored)
        except InvalidDomain:
            canonical = host_of(stored) or stored_authority(stored) or ""
            if not canonical:
                log.warning("domain block %r is not a domain and blocks nothing; remove it", stored)
                continue
        if canonical != stored:
            changes.append((block, canonical))
    if not changes:
        return
    async with ctx.db.transaction() as tx:
        for block, canonical in changes:
            await host_store.remove_domain_block(tx, [block["domain"]])
            await host_store.add_domain_block(tx, canonical, block["reason"], block["created_at"])
            # It may never have matched before: what it should have stopped, it stops now.
            ended, cancelled = await _cut_off(tx, canonical, ctx.clock.now_iso())
            log.info("domain block %r is now stored as %s: %d follows ended, %d deliveries cancelled",
                     block["domain"], canonical, ended, cancelled)
