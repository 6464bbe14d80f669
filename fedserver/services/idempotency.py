"""Idempotency-Key of the client API's status create: a retried request (a phone losing its
connection mid-request) answers with the post the first attempt made, for an hour, as Mastodon
does. Stored as rows, so that it holds whichever web process the retry reaches (docs/scaling.md)."""
from __future__ import annotations

import aiosqlite

from fedserver.context import Context
from fedserver.store import idempotency as idempotency_store
from fedserver.store import locks

IDEMPOTENCY_SECONDS = 3600
# Longer keys are cut to this (a client's key is a UUID or similar).
MAX_KEY_LENGTH = 200


async def earlier_post_id(ctx: Context, account_id: int, key: str) -> int | None:
    """The post an earlier request with this key made within the hour, if any."""
    since_ms = ctx.clock.now_ms() - IDEMPOTENCY_SECONDS * 1000
    return await idempotency_store.post_for_key(ctx.db.reader, account_id, key[:MAX_KEY_LENGTH], since_ms=since_ms)


async def claim(ctx: Context, tx: aiosqlite.Connection, account_id: int, key: str) -> int | None:
    """Inside the transaction that creates the post: hold the key until it commits, then the post
    an earlier request with it made within the hour, if any. Two requests with one key at once (a
    retry sent while the first is still being answered, reaching another process) take turns: the
    second finds the first's post instead of making another."""
    await locks.lock_name(tx, f"idempotency:{account_id}:{key[:MAX_KEY_LENGTH]}")
    since_ms = ctx.clock.now_ms() - IDEMPOTENCY_SECONDS * 1000
    return await idempotency_store.post_for_key(tx, account_id, key[:MAX_KEY_LENGTH], since_ms=since_ms)


async def remember_post(ctx: Context, tx: aiosqlite.Connection, account_id: int, key: str, post_id: int) -> None:
    """Inside the transaction that created the post (after claim)."""
    now_ms = ctx.clock.now_ms()
    await idempotency_store.remember(tx, account_id, key[:MAX_KEY_LENGTH], post_id, now_ms=now_ms,
                                     forget_before_ms=now_ms - IDEMPOTENCY_SECONDS * 1000)
