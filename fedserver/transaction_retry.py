"""Retrying a write transaction that PostgreSQL aborted because it conflicted with another one.

With several processes writing one PostgreSQL database (web processes, `fedserver worker`s on other
machines), two transactions can lock the same rows in opposite order (two inbox batches counting
the same hashtags, two delivery workers' outcome batches updating the same hosts): PostgreSQL then
aborts one of them with a deadlock (SQLSTATE 40P01); a REPEATABLE READ/SERIALIZABLE transaction can
likewise fail with a serialization failure (40001). Neither is the fault of the work's input, and
the aborted transaction left nothing behind (PostgreSQL rolled it back whole), so the remedy is to
run it again, as a whole, after a short random pause that lets the winner commit. After
CONFLICT_ATTEMPTS it raises ConflictPersisted: the caller treats that as a transient failure of
the work (a queue puts the item off and keeps it; a request answers 503), never as bad input.

SQLite never raises these: every write transaction there begins with BEGIN IMMEDIATE, which
excludes every other writer.
"""
from __future__ import annotations

import asyncio
import logging
import random
from typing import Awaitable, Callable, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# deadlock_detected, serialization_failure (PostgreSQL's errcodes appendix, class 40).
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})
# Attempts in all (the first and the retries). A deadlock needs two transactions locking the same
# rows in opposite order at the same moment: a second one in a row is rare, a fifth means the
# database is overloaded, and the caller's own retry (a queue's back-off) is the better place then.
CONFLICT_ATTEMPTS = 5
# The pause before retry n (1-based) is uniform in [0, min(CAP, BASE * 2**n)] ("full jitter"): two
# transactions that deadlocked are not sent back into each other in lock step.
BACKOFF_BASE_SECONDS = 0.01
BACKOFF_CAP_SECONDS = 0.25


class ConflictPersisted(Exception):
    """A transaction was aborted by a conflict every one of its CONFLICT_ATTEMPTS times; the
    engine's last error is its __cause__. Transient: try the work again later."""

    def __init__(self, what: str, attempts: int) -> None:
        super().__init__(f"{what}: aborted by a conflicting transaction {attempts} times")
        self.what = what
        self.attempts = attempts


def is_transient_conflict(exc: BaseException) -> bool:
    """Whether exc (or what it was raised from) is PostgreSQL aborting a transaction for a deadlock
    or a serialization failure (psycopg.errors.DeadlockDetected / SerializationFailure)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, ConflictPersisted):
            return False  # retried already: the caller's own retry is next
        if getattr(current, "sqlstate", None) in TRANSIENT_SQLSTATES:
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def backoff_seconds(retry: int) -> float:
    """The random pause before the retry-th retry (1-based)."""
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** retry))


async def retry_conflicts(run: Callable[[], Awaitable[T]], *, what: str, attempts: int = CONFLICT_ATTEMPTS) -> T:
    """run() and its result; if it raises a transient conflict, run it again (a new transaction)
    after a short jittered pause, up to `attempts` times in all, then raise ConflictPersisted.
    `run` must do its whole transaction each time, reading afresh what it decides on."""
    for attempt in range(1, attempts + 1):
        try:
            return await run()
        except Exception as exc:
            if not is_transient_conflict(exc):
                raise
            if attempt >= attempts:
                log.warning("%s: aborted by a conflicting transaction %d times (%s); giving up for now",
                            what, attempt, getattr(exc, "sqlstate", None))
                raise ConflictPersisted(what, attempt) from exc
            pause = backoff_seconds(attempt)
            log.info("%s: aborted by a conflicting transaction (%s, attempt %d of %d); again in %.0f ms",
                     what, getattr(exc, "sqlstate", None), attempt, attempts, pause * 1000)
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")
