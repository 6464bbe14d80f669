"""Two processes' write transactions that lock the same rows in opposite order, on one PostgreSQL
database (two `fedserver` processes: each "process" here is a Database of its own, with its own
write lock and connections). PostgreSQL aborts one of them with a deadlock (40P01); the storage
layer must run the aborted one again as a whole (fedserver/transaction_retry.py), so that both end
up committed and each effect is there exactly once.

PostgreSQL only: on SQLite every write transaction (BEGIN IMMEDIATE) excludes all others, so two
transactions never hold locks at the same time and cannot deadlock."""
from __future__ import annotations

import asyncio
import threading

from fedserver.db import open_database
from fedserver.store import interactions as interaction_store
from fedserver.store import posts as post_store
from tests import engines
from tests.store.test_concurrent_writers import THEN, _new_post

pytestmark = engines.postgresql_only

# Two posts whose rows both transactions lock, in opposite orders.
FIRST_POST, SECOND_POST = 1, 2


async def _two_posts_and_two_likers(db) -> None:
    async with db.transaction() as tx:
        for actor_id, name in ((1, "ann"), (2, "bob"), (3, "cy")):
            await tx.execute("INSERT INTO actors (id, uri, username, domain, created_at, updated_at)"
                             " VALUES (?, ?, ?, 'a.example', ?, ?)",
                             (actor_id, f"https://a.example/users/{name}", name, THEN, THEN))
        for post_id in (FIRST_POST, SECOND_POST):
            assert await post_store.insert_post(tx, _new_post(post_id), THEN)


async def _deadlocks(db) -> int:
    """How many deadlocks PostgreSQL has detected in this database (pg_stat_database)."""
    rows = await db.reader.execute_fetchall(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
    return int(rows[0][0])


async def _wait_for_deadlock_count(db, at_least: int) -> int:
    # The aborted backend reports its statistics a little later (when idle: within 10 s).
    for _ in range(300):
        found = await _deadlocks(db)
        if found >= at_least:
            return found
        await asyncio.sleep(0.1)
    return await _deadlocks(db)


async def test_two_write_batches_locking_two_posts_in_opposite_order_both_commit_once_each():
    url = engines.fresh_postgres_url()
    async with open_database(url) as first, open_database(url) as second:
        await _two_posts_and_two_likers(first)
        deadlocks_before = await _deadlocks(first)
        # Both hold their first row before either asks for its second: a deadlock every time, not
        # by chance. Only the first attempt of each waits here; a retry goes straight through.
        both_hold_one = threading.Barrier(2, timeout=30)
        attempts = {"bob": 0, "cy": 0}

        def notify_both(name: str, from_actor_id: int, order: tuple[int, int]):
            def work(conn) -> int:
                attempts[name] += 1
                assert post_store.lock_post_sync(conn, order[0]) is not None
                if attempts[name] == 1:
                    both_hold_one.wait()
                assert post_store.lock_post_sync(conn, order[1]) is not None
                for post_id in order:
                    interaction_store.add_notification_sync(conn, recipient_id=1, kind="mention",
                                                            from_actor_id=from_actor_id, post_id=post_id, now=THEN)
                return from_actor_id
            return work

        results = await asyncio.gather(
            first.write_batch(notify_both("bob", 2, (FIRST_POST, SECOND_POST))),
            second.write_batch(notify_both("cy", 3, (SECOND_POST, FIRST_POST))))

        assert results == [2, 3]  # both committed: neither caller saw the deadlock
        assert sorted(attempts.values()) == [1, 2]  # the deadlock's victim ran again, once
        rows = await first.reader.execute_fetchall(
            "SELECT from_actor_id, post_id, count(*) FROM notifications GROUP BY from_actor_id, post_id"
            " ORDER BY from_actor_id, post_id")
        assert [tuple(row) for row in rows] == [(2, 1, 1), (2, 2, 1), (3, 1, 1), (3, 2, 1)]
        assert await _wait_for_deadlock_count(first, deadlocks_before + 1) >= deadlocks_before + 1


async def test_two_transactions_liking_two_posts_in_opposite_order_both_commit_once_each():
    url = engines.fresh_postgres_url()
    async with open_database(url) as first, open_database(url) as second:
        await _two_posts_and_two_likers(first)
        deadlocks_before = await _deadlocks(first)
        held: dict[str, asyncio.Event] = {"bob": asyncio.Event(), "cy": asyncio.Event()}
        attempts = {"bob": 0, "cy": 0}

        def like_both(name: str, other: str, actor_id: int, order: tuple[int, int]):
            async def work(tx) -> None:
                attempts[name] += 1
                assert await post_store.lock_live_post(tx, order[0])
                if attempts[name] == 1:
                    held[name].set()
                    await asyncio.wait_for(held[other].wait(), timeout=30)
                assert await post_store.lock_live_post(tx, order[1])
                for post_id in order:
                    assert await interaction_store.add_like(
                        tx, uri=f"https://a.example/likes/{name}/{post_id}", actor_id=actor_id, post_id=post_id,
                        now=THEN)
            return work

        await asyncio.gather(
            first.run_transaction(like_both("bob", "cy", 2, (FIRST_POST, SECOND_POST)), what="bob likes"),
            second.run_transaction(like_both("cy", "bob", 3, (SECOND_POST, FIRST_POST)), what="cy likes"))

        assert sorted(attempts.values()) == [1, 2]
        for post_id in (FIRST_POST, SECOND_POST):
            assert await interaction_store.count_likes(first.reader, post_id) == 2
        rows = await first.reader.execute_fetchall("SELECT actor_id, post_id FROM likes ORDER BY actor_id, post_id")
        assert [tuple(row) for row in rows] == [(2, 1), (2, 2), (3, 1), (3, 2)]
        assert await _wait_for_deadlock_count(first, deadlocks_before + 1) >= deadlocks_before + 1
