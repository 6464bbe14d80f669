"""What an admin asks about the server's federation health, and domain blocks."""
from __future__ import annotations

from typing import Any

from fedserver.context import Context
from fedserver.store import deliveries as delivery_store
from fedserver.store import hosts as host_store
from fedserver.store import inbox as inbox_store


async def queue_status(ctx: Context) -> dict[str, Any]:
    reader = ctx.db.reader
    return {
        "deliveries": await delivery_store.queue_stats(reader),
        "inbox_pending": await inbox_store.pending_count(reader),
        "failing_hosts": await host_store.list_failing_hosts(reader),
    }


async def block_domain(ctx: Context, domain: str, reason: str) -> None:
    async with ctx.db.transaction() as tx:
        await host_store.add_domain_block(tx, domain.strip(), reason, ctx.clock.now_iso())


async def unblock_domain(ctx: Context, domain: str) -> None:
    async with ctx.db.transaction() as tx:
        await host_store.remove_domain_block(tx, domain.strip())


async def list_domain_blocks(ctx: Context) -> list[dict]:
    return await host_store.list_domain_blocks(ctx.db.reader)
