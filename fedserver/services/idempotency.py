"""Idempotency-Key of the client API's status create: a retried request (a phone losing its
connection mid-request) answers with the post the first attempt made, for an hour, as Mastodon
does. Stored as rows, so that it holds whichever web process the retry reaches (docs/scaling.md)."""
from __future__ import annotations

from fedserver.context import Context
from fedserver.store import idempotency as idempotency_store

IDEMPOTENCY_SECONDS = 3600
# Longer keys are cut to this (a client's key is a UUID or similar).
MAX_KEY_LENGTH = 200


async def earlier_post_id(ctx: Context, account_id: int, key: str) -> int | None:
    """The post an earlier request with this key made within the hour, if any."""
    since_ms = ctx.clock.now_ms() - IDEMPOTENCY_SECONDS * 1000
    return await idempotency_store.post_for_key(ctx.db.reader, account_id, key[:MAX_KEY_LENGTH], since_ms=since_ms)


async def remember_post(ctx: Context, account_id: int, key: str, post_id: int) -> None:
    now_ms = ctx.clock.now_ms()
    async with ctx.db.transaction() as tx:
        await idempotency_store.remember(tx, account_id, key[:MAX_KEY_LENGTH], post_id, now_ms=now_ms,
                                         forget_before_ms=now_ms - IDEMPOTENCY_SECONDS * 1000)
