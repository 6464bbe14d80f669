"""The delivery outcome writer records a batch of finished deliveries in one transaction: every
outcome lands, per-host health comes out as if each outcome had been recorded in order, and an
outcome lost before its flush (a crash) leaves the row leased, to be sent again, never dropped."""
from __future__ import annotations

import pytest

from fedserver.clock import iso_from_epoch
from fedserver.db import Database, database_for, migrate
from fedserver.federation.delivery_outcomes import UNAVAILABLE_HOLD_MS, Outcome, OutcomeWriter
from fedserver.federation.host_availability import HeldHosts
from fedserver.store import deliveries as delivery_store
from fedserver.store import hosts as host_store
from tests import engines

NOW_MS = 1_800_000_000_000
DAY_MS = 86_400_000
LEASE_MS = 50_000


@pytest.fixture
async def db(tmp_path):
    database = database_for(engines.database_target(tmp_path / "db.sqlite3"))
    await database.open()
    await migrate(database)
    async with database.transaction() as tx:
        await tx.execute("INSERT INTO actors (id, uri, username, domain, key_id, created_at, updated_at)"
                         " VALUES (1, 'u', 'alice', 'x', 'k', 't', 't')")
        await tx.execute("INSERT INTO local_accounts (actor_id, username, private_key_pem, created_at)"
                         " VALUES (1, 'alice', 'pem', 't')")
        await tx.execute("INSERT INTO outbound_activities (id, uri, actor_id, activity_type, body, created_at)"
                         " VALUES (1, 'a', 1, 'Create', '{}', 't')")
    yield database
    await database.close()


async def queue(db: Database, *hosts: str) -> list[delivery_store.ClaimedDelivery]:
    """One delivery per host given (a host may repeat), all claimed by this worker."""
    async with db.transaction() as tx:
        await delivery_store.enqueue_deliveries(
            tx, 1, [(f"https://{host}/inbox/{i}", host) for i, host in enumerate(hosts)], due_ms=NOW_MS, now="t")
        return await delivery_store.claim_due_deliveries(tx, now_ms=NOW_MS, lease_ms=LEASE_MS, limit=len(hosts),
                                                         per_host=len(hosts))


def outcome(delivery: delivery_store.ClaimedDelivery, state: str, at_ms: int = NOW_MS, **fields) -> Outcome:
    return Outcome(delivery_id=delivery.id, host=delivery.host, state=state, at_ms=at_ms,  # type: ignore[arg-type]
                   at_iso=iso_from_epoch(at_ms / 1000), **fields)


async def rows(db: Database) -> dict[int, tuple]:
    found = await db.reader.execute_fetchall(
        "SELECT id, state, attempts, last_status, last_error, next_attempt_at, locked_until FROM deliveries")
    return {row[0]: tuple(row[1:]) for row in found}


def writer(db: Database, held: HeldHosts | None = None, host_failure_days: int = 7) -> OutcomeWriter:
    return OutcomeWriter(db, held or HeldHosts(), host_failure_days=host_failure_days)


async def test_every_outcome_of_a_batch_is_recorded(db):
    ok, gone, busy, held, other_held = await queue(db, "ok.example", "gone.example", "busy.example",
                                                   "down.example", "down.example")
    w = writer(db)
    w.start()
    w.add(outcome(ok, "delivered", status=202, host_success=True))
    w.add(outcome(gone, "failed", status=410, error="HTTP 410"))
    w.add(outcome(busy, "retry", status=503, error="HTTP 503", host_failure=True, next_attempt_ms=NOW_MS + 30_000))
    w.add(outcome(held, "held", error="host marked unavailable", next_attempt_ms=NOW_MS + DAY_MS))
    await w.stop()

    found = await rows(db)
    assert found[ok.id] == ("delivered", 1, 202, None, NOW_MS, None)
    assert found[gone.id] == ("failed", 1, 410, "HTTP 410", NOW_MS, None)
    assert found[busy.id] == ("pending", 1, 503, "HTTP 503", NOW_MS + 30_000, None)
    # Held back untried: no attempt counted, and the host's other queued delivery waits as long.
    assert found[held.id] == ("pending", 0, None, "host marked unavailable", NOW_MS + DAY_MS, None)
    assert found[other_held.id][4] == NOW_MS + DAY_MS
    assert await host_store.list_failing_hosts(db.reader) == [{
        "host": "busy.example", "unavailable_since": None, "last_failure_at": iso_from_epoch(NOW_MS / 1000),
        "last_success_at": None, "failure_days": 1}]


async def test_host_health_in_a_batch_follows_the_order_of_its_outcomes(db):
    first, second, third, fourth = await queue(db, "recovered.example", "recovered.example",
                                               "relapsed.example", "relapsed.example")
    w = writer(db)
    w.start()
    # recovered: failed, then succeeded; relapsed: succeeded, then failed.
    w.add(outcome(first, "retry", error="HTTP 500", host_failure=True, next_attempt_ms=NOW_MS + 1))
    w.add(outcome(third, "delivered", status=202, host_success=True))
    w.add(outcome(second, "delivered", status=202, at_ms=NOW_MS + 10, host_success=True))
    w.add(outcome(fourth, "retry", error="HTTP 500", at_ms=NOW_MS + 10, host_failure=True,
                  next_attempt_ms=NOW_MS + 1))
    await w.stop()

    failing = {h["host"]: h for h in await host_store.list_failing_hosts(db.reader)}
    assert set(failing) == {"relapsed.example"}
    assert failing["relapsed.example"]["failure_days"] == 1
    assert failing["relapsed.example"]["last_success_at"] == iso_from_epoch(NOW_MS / 1000)


async def test_failing_on_enough_distinct_days_in_one_batch_holds_the_host(db):
    yesterday, today = await queue(db, "down.example", "down.example")
    held = HeldHosts()
    w = writer(db, held, host_failure_days=2)
    w.start()
    w.add(outcome(yesterday, "retry", at_ms=NOW_MS - DAY_MS, error="HTTP 500", host_failure=True,
                  next_attempt_ms=NOW_MS))
    w.add(outcome(today, "retry", error="HTTP 500", host_failure=True, next_attempt_ms=NOW_MS + 1000))
    await w.stop()

    assert await host_store.unavailable_until(db.reader, "down.example") == NOW_MS + UNAVAILABLE_HOLD_MS
    # The worker's cache knows at once, without reading the hosts table before each delivery.
    assert held.held_until("down.example", NOW_MS) == NOW_MS + UNAVAILABLE_HOLD_MS


async def test_a_success_in_the_same_batch_clears_a_hold_that_was_cached(db):
    failing, succeeding = await queue(db, "flaky.example", "flaky.example")
    held = HeldHosts()
    w = writer(db, held, host_failure_days=1)
    w.start()
    w.add(outcome(failing, "retry", error="HTTP 500", host_failure=True, next_attempt_ms=NOW_MS + 1000))
    w.add(outcome(succeeding, "delivered", status=202, at_ms=NOW_MS + 5, host_success=True))
    await w.stop()

    assert await host_store.unavailable_until(db.reader, "flaky.example") is None
    assert held.held_until("flaky.example", NOW_MS) is None


async def test_an_outcome_lost_before_its_flush_leaves_the_row_leased_and_it_is_sent_again(db):
    [delivery] = await queue(db, "slow.example")
    w = writer(db)
    # The POST succeeded, then the process died before the writer flushed: nothing is written.
    w.add(outcome(delivery, "delivered", status=202, host_success=True))

    assert (await rows(db))[delivery.id] == ("pending", 0, None, None, NOW_MS, NOW_MS + LEASE_MS)
    async with db.transaction() as tx:
        during_lease = await delivery_store.claim_due_deliveries(
            tx, now_ms=NOW_MS + LEASE_MS - 1, lease_ms=LEASE_MS, limit=10, per_host=4)
        after_lease = await delivery_store.claim_due_deliveries(
            tx, now_ms=NOW_MS + LEASE_MS, lease_ms=LEASE_MS, limit=10, per_host=4)
    assert during_lease == []
    assert [d.id for d in after_lease] == [delivery.id]


async def test_a_cached_hold_is_checked_against_the_hosts_table_before_holding(db):
    """Inbound traffic from a held host clears its hold in the table (another code path): the cache
    must not keep holding it."""
    held = HeldHosts()
    def mark(conn) -> None:
        host_store.record_failure(conn, "back.example", iso_from_epoch(NOW_MS / 1000))
        host_store.mark_unavailable(conn, "back.example", now="t", until_ms=NOW_MS + DAY_MS)
    await db.write_batch(mark)
    await held.refresh(db.reader, NOW_MS)
    assert held.held_until("back.example", NOW_MS) == NOW_MS + DAY_MS
    assert await held.confirm(db.reader, "back.example", NOW_MS) == NOW_MS + DAY_MS

    async with db.transaction() as tx:
        await host_store.clear_unavailable(tx, "back.example")
    assert await held.confirm(db.reader, "back.example", NOW_MS) is None
    assert held.held_until("back.example", NOW_MS) is None
