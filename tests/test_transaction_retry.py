"""The bound of the conflict retry (fedserver/transaction_retry.py), with psycopg's own exceptions:
a transaction aborted by a deadlock or a serialization failure is run again a bounded number of
times, then reported as ConflictPersisted (transient); any other error is not retried. (Real
deadlocks between two processes: tests/store/test_transaction_conflicts.py, tests/e2e/.)"""
from __future__ import annotations

import psycopg.errors
import pytest

from fedserver import transaction_retry
from fedserver.transaction_retry import CONFLICT_ATTEMPTS, ConflictPersisted, retry_conflicts


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):
    monkeypatch.setattr(transaction_retry, "BACKOFF_CAP_SECONDS", 0.001)


def _failing(times: int, error: type[Exception]):
    runs = []

    async def run() -> str:
        runs.append(1)
        if len(runs) <= times:
            raise error("aborted")
        return "committed"
    return run, runs


@pytest.mark.parametrize("error", [psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure])
async def test_a_transaction_aborted_by_a_conflict_runs_again_until_it_commits(error):
    run, runs = _failing(CONFLICT_ATTEMPTS - 1, error)
    assert await retry_conflicts(run, what="test") == "committed"
    assert len(runs) == CONFLICT_ATTEMPTS


async def test_a_conflict_that_persists_is_reported_as_transient_after_the_bounded_attempts():
    run, runs = _failing(CONFLICT_ATTEMPTS + 10, psycopg.errors.DeadlockDetected)
    with pytest.raises(ConflictPersisted) as raised:
        await retry_conflicts(run, what="test")
    assert len(runs) == CONFLICT_ATTEMPTS
    assert isinstance(raised.value.__cause__, psycopg.errors.DeadlockDetected)
    # An outer retry (the inbox's around a handler's transactions) does not multiply the attempts.
    with pytest.raises(ConflictPersisted):
        await retry_conflicts(lambda: retry_conflicts(run, what="inner"), what="outer")
    assert len(runs) == 2 * CONFLICT_ATTEMPTS


async def test_other_database_errors_are_not_retried():
    run, runs = _failing(1, psycopg.errors.UniqueViolation)
    with pytest.raises(psycopg.errors.UniqueViolation):
        await retry_conflicts(run, what="test")
    assert len(runs) == 1
