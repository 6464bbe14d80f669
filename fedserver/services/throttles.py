"""How often one client address may try to sign in or sign up.

Sign-in back-off is designed so that guessing is slow while the account's owner is never locked
out by someone else's failures:

- Per address: the first FREE_FAILURES_PER_CLIENT failures (on any accounts) in the window are free;
  after that each attempt must wait BASE_DELAY_S * 2^(failures - free) seconds after that address's
  last failure, at most MAX_CLIENT_DELAY_S.
- Per account: once an account has ACCOUNT_UNDER_ATTACK failures in the window (from anywhere),
  an address that itself failed on it k times waits BASE_DELAY_S * 2^(k - 1) seconds after its own
  last failure there (at most MAX_ACCOUNT_DELAY_S), growing with the account's total failures. It
  applies only to addresses that failed on that account: a correct password from an address
  without failures is always checked, so a flood of failures from elsewhere (or behind a proxy
  not listed in trusted_proxies, one address for everyone) cannot keep the owner out; the owner's
  own typos cost them seconds. A botnet gets about one guess per address before its addresses are
  slowed down too.

Counting and recording happen in one write transaction, before the password is checked: parallel
attempts from one address (even across server processes) see each other, so firing many requests at
once gains nothing. A correct password then forgives that address's failures on that account only.
Attempts refused with Throttled are not checked, not recorded and cost no Argon2 time.
"""
from __future__ import annotations

import logging
import math

from fedserver.client_address import throttle_key
from fedserver.context import Context
from fedserver.store import locks
from fedserver.store import throttles as throttle_store

log = logging.getLogger(__name__)

FAILURE_WINDOW_MS = 60 * 60 * 1000
FREE_FAILURES_PER_CLIENT = 5
ACCOUNT_UNDER_ATTACK = 5
BASE_DELAY_S = 2.0
MAX_CLIENT_DELAY_S = 15 * 60.0
MAX_ACCOUNT_DELAY_S = 5 * 60.0
SIGN_UP_WINDOW_MS = 60 * 60 * 1000


class Throttled(Exception):
    """Too many attempts from this address (or on this account from it): wait retry_after seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _doubling(exponent: int, cap: float) -> float:
    return min(BASE_DELAY_S * 2.0 ** min(exponent, 30), cap)


def client_delay_s(failures: int) -> float:
    """How long an address with this many recent failures waits after its last one."""
    if failures < FREE_FAILURES_PER_CLIENT:
        return 0.0
    return _doubling(failures - FREE_FAILURES_PER_CLIENT, MAX_CLIENT_DELAY_S)


def account_delay_s(account_failures: int, own_failures: int) -> float:
    """How long an address that failed own_failures times on an account with account_failures
    recent failures waits after its own last failure there (0 for an address without failures)."""
    if own_failures == 0 or account_failures < ACCOUNT_UNDER_ATTACK:
        return 0.0
    return min(_doubling(account_failures - ACCOUNT_UNDER_ATTACK, MAX_ACCOUNT_DELAY_S),
               _doubling(own_failures - 1, MAX_ACCOUNT_DELAY_S))


async def begin_sign_in(ctx: Context, username: str, client: str) -> None:
    """Refuse (Throttled) or record this attempt as a failure until sign_in_succeeded forgives it."""
    key = throttle_key(client)
    async with ctx.db.transaction() as tx:
        # Attempts reaching several web processes at once must each see the others' failures, or
        # every process would let one through per delay (store/locks.py; always address, then
        # account, so two attempts never wait for each other's second lock).
        await locks.lock_name(tx, f"sign-in-from:{key}")
        await locks.lock_name(tx, f"sign-in-to:{username.lower()}")
        now = ctx.clock.now_ms()
        counts = await throttle_store.login_failure_counts(tx, username=username, client=key,
                                                           since_ms=now - FAILURE_WINDOW_MS)
        allowed_at = max(
            counts.by_client_last_ms + client_delay_s(counts.by_client) * 1000,
            counts.by_account_from_client_last_ms
            + account_delay_s(counts.by_account, counts.by_account_from_client) * 1000)
        if allowed_at > now:
            log.info("sign-in for %r from %s throttled (%d failures from there, %d on the account)",
                     username, client, counts.by_client, counts.by_account)
            raise Throttled("too many failed sign-ins from your address; wait a moment and try again",
                            math.ceil((allowed_at - now) / 1000))
        await throttle_store.record_login_failure(tx, username, key, now)


async def sign_in_succeeded(ctx: Context, username: str, client: str) -> None:
    async with ctx.db.transaction() as tx:
        await throttle_store.forget_login_failures(tx, username, throttle_key(client))


async def begin_sign_up(ctx: Context, client: str) -> None:
    """Count a sign-up attempt from this address, or refuse it (Throttled) when the address used up
    [server] sign_ups_per_address_per_hour: creating accounts in bulk is a spammer's first step, and
    each attempt costs an Argon2 hash."""
    key = throttle_key(client)
    limit = ctx.settings.server.sign_ups_per_address_per_hour
    async with ctx.db.transaction() as tx:
        await locks.lock_name(tx, f"sign-up-from:{key}")  # (as in begin_sign_in)
        now = ctx.clock.now_ms()
        if await throttle_store.count_sign_up_attempts(tx, key, now - SIGN_UP_WINDOW_MS) >= limit:
            log.info("sign-up from %s refused: %d attempts in the last hour", client, limit)
            raise Throttled("too many sign-ups from your address; try again in an hour", 3600)
        await throttle_store.record_sign_up_attempt(tx, key, now)
