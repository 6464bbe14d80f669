"""The inbox queue's bounded storage at the store level: deduplication on the hash of the activity id,
pruning of finished items oldest first a batch at a time (never a pending one), and the pending
counts per signer that the inbox's per-host limit reads."""
from __future__ import annotations

import pytest

from fedserver.db import database_for, migrate
from fedserver.store import inbox as inbox_store
from fedserver.store.inbox import NewInboxItem
from tests import engines


@pytest.fixture
async def db(tmp_path):
    database = database_for(engines.database_target(tmp_path / "db.sqlite3"))
    await database.open()
    await migrate(database)
    yield database
    await database.close()


def _item(n: int, signer: str = "https://a.example/users/x") -> NewInboxItem:
    return NewInboxItem(activity_uri=f"https://a.example/activities/{n}", activity_type="Create",
                        signer_uri=signer, body="{}")


async def test_the_same_activity_id_is_stored_once_keyed_by_its_hash(db):
    new = await db.write_batch(lambda conn: inbox_store.insert_inbox_items(conn, [_item(1), _item(1), _item(2)],
                                                                            now="t", now_ms=0))
    again = await db.write_batch(lambda conn: inbox_store.insert_inbox_items(conn, [_item(2)], now="t", now_ms=0))
    assert new == {"https://a.example/activities/1", "https://a.example/activities/2"}
    assert again == set()
    async with db.reader.execute("SELECT activity_hash FROM inbox_items ORDER BY id") as cur:
        keys = [row[0] for row in await cur.fetchall()]
    assert keys == [inbox_store.activity_key("https://a.example/activities/1"),
                    inbox_store.activity_key("https://a.example/activities/2")]
    assert all(len(key) == 32 for key in keys)


async def test_finished_items_are_pruned_oldest_first_in_bounded_batches_and_pending_ones_stay(db):
    await db.write_batch(lambda conn: inbox_store.insert_inbox_items(conn, [_item(n) for n in range(10)],
                                                                      now="t", now_ms=0))
    # Items 0-5 finished at times 00..05 (0-3 done, 4-5 failed); 6-9 still pending.
    await db.write_batch(lambda conn: [inbox_store.mark_many_done(conn, [n + 1], f"2026-01-01T00:00:0{n}Z")
                                       for n in range(4)])
    for n in (4, 5):
        await db.write_batch(lambda conn, n=n: inbox_store.mark_item_failed(conn, n + 1, error="x",
                                                                           now=f"2026-01-01T00:00:0{n}Z"))

    def prune(limit: int):
        return db.write_batch(lambda conn: inbox_store.prune_finished_items(
            conn, processed_before="2026-01-01T00:00:05Z", limit=limit))
    assert await prune(2) == 2
    assert await prune(10) == 3  # item 5 finished at the cut-off itself: kept
    assert await prune(10) == 0
    async with db.reader.execute("SELECT id, state FROM inbox_items ORDER BY id") as cur:
        assert [tuple(row) for row in await cur.fetchall()] == [
            (6, "failed"), (7, "pending"), (8, "pending"), (9, "pending"), (10, "pending")]


async def test_pending_counts_per_signer_are_read_only_when_the_queue_could_hold_that_many(db):
    items = [_item(n) for n in range(3)] + [_item(n + 10, "https://b.example/users/y") for n in range(2)]
    await db.write_batch(lambda conn: inbox_store.insert_inbox_items(conn, items, now="t", now_ms=0))
    assert await inbox_store.pending_count_by_signer(db.reader, at_least=6) == {}
    assert await inbox_store.pending_count_by_signer(db.reader, at_least=5) == {
        "https://a.example/users/x": 3, "https://b.example/users/y": 2}
