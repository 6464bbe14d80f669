"""The delivery queue's lease-based claim: several workers (here two connections to one SQLite
file, as two processes would have) share it without ever taking the same row twice."""
from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from fedserver.db import database_for, migrate
from fedserver.store import deliveries as delivery_store
from tests import engines


@pytest.fixture
async def two_workers(tmp_path):
    path = tmp_path / "db.sqlite3"
    path = engines.database_target(path)
    first, second = database_for(path), database_for(path)
    await first.open()
    await migrate(first)
    await second.open()
    async with first.transaction() as tx:
        await tx.execute("INSERT INTO actors (id, uri, username, domain, key_id, created_at, updated_at)"
                         " VALUES (1, 'u', 'alice', 'x', 'k', 't', 't')")
        await tx.execute("INSERT INTO local_accounts (actor_id, username, private_key_pem, created_at)"
                         " VALUES (1, 'alice', 'pem', 't')")
        await tx.execute("INSERT INTO outbound_activities (id, uri, actor_id, activity_type, body, created_at)"
                         " VALUES (1, 'a', 1, 'Create', '{}', 't')")
        # The head of the queue is 3,000 rows for one big host, then 50 small hosts with 5 each.
        inboxes = [(f"https://big/u{i}", "big") for i in range(3000)]
        inboxes += [(f"https://h{h}/u{i}", f"h{h}") for i in range(5) for h in range(50)]
        await delivery_store.enqueue_deliveries(tx, 1, inboxes, due_ms=1000, now="t")
        await tx.execute("UPDATE deliveries SET next_attempt_at = 5000 WHERE id % 7 = 0")
    yield first, second
    await first.close()
    await second.close()


async def _claim(db, **options):
    async with db.transaction() as tx:
        return await delivery_store.claim_due_deliveries(tx, **options)


async def test_a_busy_host_does_not_block_the_others_and_no_host_exceeds_its_cap(two_workers):
    first, second = two_workers
    got = await _claim(first, now_ms=2000, lease_ms=1000, limit=32, per_host=4, in_flight={"big": 4})
    hosts = Counter(d.host for d in got)
    assert len(got) == 32 and "big" not in hosts and max(hosts.values()) <= 4
    other = await _claim(second, now_ms=2000, lease_ms=1000, limit=200, per_host=4)
    assert not {d.id for d in got} & {d.id for d in other}
    assert Counter(d.host for d in other)["big"] == 4
    not_due = {row[0] for row in await first.reader.execute_fetchall(
        "SELECT id FROM deliveries WHERE next_attempt_at = 5000")}
    assert not not_due & {d.id for d in got + other}


async def test_expired_leases_come_back_oldest_first(two_workers):
    first, _ = two_workers
    got = await _claim(first, now_ms=2000, lease_ms=1000, limit=32, per_host=4)
    again = await _claim(first, now_ms=3100, lease_ms=1000, limit=5000, per_host=10000)
    assert {d.id for d in got} <= {d.id for d in again}
    due = [row[0] for row in await first.reader.execute_fetchall(
        "SELECT id FROM deliveries WHERE next_attempt_at <= 3100 ORDER BY next_attempt_at, id")]
    assert [d.id for d in again] == due


async def test_two_workers_claiming_at_once_never_take_the_same_row(two_workers):
    seen: Counter[int] = Counter()

    async def worker(db):
        for _ in range(30):
            for delivery in await _claim(db, now_ms=10**6, lease_ms=10**9, limit=16, per_host=2):
                seen[delivery.id] += 1

    await asyncio.gather(*(worker(db) for db in two_workers))
    assert seen and max(seen.values()) == 1
