from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from fedserver.db import (CHECKPOINT_EVERY, MigrationError, ProcessWriteLock, WriteLock, migrate, migration_files,
                          open_database)


async def test_migrations_apply_in_order_and_running_twice_changes_nothing(tmp_path):
    async with open_database(tmp_path / "db.sqlite3") as db:
        applied = await migrate(db)
        assert applied == [path.name for _, path in migration_files()]
        assert await migrate(db) == []
        async with db.reader.execute("SELECT version FROM schema_migrations ORDER BY version") as cur:
            versions = [row[0] for row in await cur.fetchall()]
        assert versions == [version for version, _ in migration_files()]
        async with db.reader.execute("PRAGMA journal_mode") as cur:
            assert (await cur.fetchone())[0] == "wal"


async def test_a_failing_migration_leaves_nothing_half_applied(tmp_path):
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_good.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (migrations / "0002_bad.sql").write_text("CREATE TABLE b (x INTEGER);\nCREATE TABLE a (y INTEGER);\n")
    async with open_database(tmp_path / "db.sqlite3") as db:
        with pytest.raises(MigrationError, match="0002_bad.sql"):
            await migrate(db, migrations)
        async with db.reader.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'b'") as cur:
            assert await cur.fetchone() is None  # 0002 rolled back entirely
        async with db.reader.execute("SELECT version FROM schema_migrations") as cur:
            assert [row[0] for row in await cur.fetchall()] == [1]


def test_misnamed_or_duplicate_migration_files_are_refused(tmp_path):
    (tmp_path / "0001_a.sql").write_text("")
    (tmp_path / "0001_b.sql").write_text("")
    with pytest.raises(MigrationError, match="share version"):
        migration_files(tmp_path)
    (tmp_path / "0001_b.sql").unlink()
    (tmp_path / "first.sql").write_text("")
    with pytest.raises(MigrationError, match="NNNN_name"):
        migration_files(tmp_path)


async def test_a_transaction_that_raises_is_rolled_back(tmp_path):
    async with open_database(tmp_path / "db.sqlite3") as db:
        await migrate(db)
        with pytest.raises(RuntimeError):
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO tombstones (uri, deleted_at) VALUES ('x', 'now')")
                raise RuntimeError("boom")
        async with db.reader.execute("SELECT count(*) FROM tombstones") as cur:
            assert (await cur.fetchone())[0] == 0


async def test_a_writer_cancelled_while_waiting_to_begin_leaves_the_database_writable(tmp_path):
    """A worker stopped while another process holds SQLite's write lock must not leave the server's
    writer inside a transaction that nobody ends (every later writer then waited out busy_timeout,
    and a server took 60 s to stop)."""
    import sqlite3

    path = tmp_path / "db.sqlite3"
    async with open_database(path) as db:
        await migrate(db)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process is writing

        async def write() -> None:
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO tombstones (uri, deleted_at) VALUES ('cancelled', 'now')")

        waiting = asyncio.create_task(write())
        await asyncio.sleep(0.3)  # inside BEGIN IMMEDIATE, waiting for the other writer
        waiting.cancel()
        other.execute("COMMIT")
        with pytest.raises(asyncio.CancelledError):
            await waiting
        other.close()
        async with asyncio.timeout(5):
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO tombstones (uri, deleted_at) VALUES ('next', 'now')")
        async with db.reader.execute("SELECT uri FROM tombstones") as cur:
            assert [row[0] for row in await cur.fetchall()] == ["next"]


# --- WriteLock: urgent writers (requests waiting for a commit) go before background workers ---

async def _hold(lock: WriteLock, name: str, order: list[str], *, urgent: bool = False) -> None:
    async with lock.held(urgent=urgent):
        order.append(name)
        await asyncio.sleep(0)


async def test_write_lock_hands_over_to_urgent_waiters_first_then_in_arrival_order():
    lock = WriteLock()
    order: list[str] = []
    await lock.acquire()
    tasks = [asyncio.create_task(_hold(lock, "worker-1", order)),
             asyncio.create_task(_hold(lock, "worker-2", order)),
             asyncio.create_task(_hold(lock, "inbox-1", order, urgent=True)),
             asyncio.create_task(_hold(lock, "inbox-2", order, urgent=True))]
    await asyncio.sleep(0)
    lock.release()
    await asyncio.gather(*tasks)
    assert order == ["inbox-1", "inbox-2", "worker-1", "worker-2"]
    assert not lock.locked()


async def test_write_lock_survives_cancelled_waiters():
    lock = WriteLock()
    order: list[str] = []
    await lock.acquire()
    gone = asyncio.create_task(_hold(lock, "gone", order, urgent=True))
    later = asyncio.create_task(_hold(lock, "later", order))
    await asyncio.sleep(0)
    gone.cancel()  # cancelled while waiting: leaves the queue
    await asyncio.sleep(0)
    lock.release()
    await later
    assert order == ["later"] and not lock.locked()

    # Cancelled just after being handed the lock: it passes the lock on instead of keeping it.
    await lock.acquire()
    handed = asyncio.create_task(_hold(lock, "handed", order, urgent=True))
    after = asyncio.create_task(_hold(lock, "after", order))
    await asyncio.sleep(0)
    lock.release()
    handed.cancel()
    await asyncio.gather(handed, after, return_exceptions=True)
    assert order[-1] == "after" and "handed" not in order and not lock.locked()


async def test_write_batch_commits_its_work_or_nothing(tmp_path):
    async with open_database(tmp_path / "db.sqlite3") as db:
        await migrate(db)

        def insert(conn, name: str, fail: bool = False) -> int:
            conn.execute("INSERT INTO instance_state (key, value) VALUES (?, 'v')", (name,))
            if fail:
                raise RuntimeError("half-way")
            return conn.execute("SELECT count(*) FROM instance_state WHERE key LIKE 'batch-%'").fetchone()[0]

        assert await db.write_batch(lambda conn: insert(conn, "batch-1")) == 1
        with pytest.raises(RuntimeError, match="half-way"):
            await db.write_batch(lambda conn: insert(conn, "batch-2", fail=True))
        async with db.reader.execute("SELECT key FROM instance_state WHERE key LIKE 'batch-%'") as cur:
            assert [row[0] for row in await cur.fetchall()] == ["batch-1"]
        # The ordinary transaction still works after a batch on the other connection.
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO instance_state (key, value) VALUES ('batch-3', 'v')")
        assert await db.write_batch(lambda conn: insert(conn, "batch-4"), urgent=True) == 3


async def test_write_lock_waiter_cancelled_then_skipped_by_a_release_still_ends_cancelled():
    """A waiter cancelled and then dropped by a release before it resumes must end with
    CancelledError, not an error of the lock's own: a task that catches Exception (a periodic
    worker) would otherwise carry on and never stop (the server's shutdown would hang)."""
    lock = WriteLock()
    order: list[str] = []
    await lock.acquire()
    cancelled = asyncio.create_task(_hold(lock, "cancelled", order))
    await asyncio.sleep(0)
    cancelled.cancel()
    lock.release()  # runs before the cancelled task resumes: drops its waiter
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert order == [] and not lock.locked()
    await _hold(lock, "next", order)
    assert order == ["next"]


# --- write_now: the inbox writer's transactions on the event loop's own thread ---

# Another process that takes SQLite's write lock, says so, and commits its row when told to.
LOCK_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO instance_state (key, value) VALUES ('held-by-another-process', 'v')")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


async def write_while_another_process_holds(db, holder_script: str, held: Path, write, key: str) -> None:
    """Start holder_script (it takes a lock on `held`, prints "locked", lets go on a line of input),
    write `key` with `write` meanwhile, and check the write waits its turn while the event loop
    keeps running, then completes once the other process lets go."""
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", holder_script, str(held),
                                                  stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        assert (await asyncio.wait_for(holder.stdout.readline(), 30)).strip() == b"locked"
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        written = asyncio.create_task(write(
            lambda conn: conn.execute("INSERT INTO instance_state (key, value) VALUES (?, 'v')", (key,))))
        await asyncio.sleep(0.3)
        assert not written.done()  # its turn has not come
        assert ticks > 5  # and the event loop kept running meanwhile
        holder.stdin.write(b"go\n")
        await holder.stdin.drain()
        await asyncio.wait_for(written, 30)
        ticking.cancel()
    finally:
        if holder.returncode is None:
            holder.stdin.close()
        await holder.wait()


async def test_write_now_never_makes_the_event_loop_wait_for_another_process(tmp_path):
    path = tmp_path / "db.sqlite3"
    async with open_database(path) as db:
        await migrate(db)
        # The write waits for the other process (on the batch thread) while the loop keeps running.
        await write_while_another_process_holds(db, LOCK_HOLDER, path, db.write_now, "written-now")
        async with db.reader.execute("SELECT key FROM instance_state WHERE value = 'v' ORDER BY key") as cur:
            assert [row[0] for row in await cur.fetchall()] == ["held-by-another-process", "written-now"]


# Another fedserver process (an acceptor, a CLI command) in its write path: it holds the
# cross-process write lock, says so, and lets go when told to.
FLOCK_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.readline()
fcntl.flock(fd, fcntl.LOCK_UN)
"""


@pytest.mark.parametrize("path_used", ["write_now", "write_batch"])
async def test_writers_in_two_processes_take_turns_without_the_loop_waiting(tmp_path, path_used):
    path = tmp_path / "db.sqlite3"
    async with open_database(path) as db:
        await migrate(db)
        await write_while_another_process_holds(db, FLOCK_HOLDER, ProcessWriteLock(path).path,
                                                getattr(db, path_used), "after-turn")
        rows = await db.reader.execute_fetchall("SELECT key FROM instance_state WHERE value = 'v'")
        assert [tuple(row) for row in rows] == [("after-turn",)]


async def test_write_now_keeps_the_wal_from_growing_without_bound(tmp_path):
    # write_now's connection does not checkpoint on the loop; the batch thread does it in its place.
    path = tmp_path / "db.sqlite3"
    async with open_database(path) as db:
        await migrate(db)
        row = "x" * 20_000  # ~6 WAL pages a commit
        for i in range(4 * CHECKPOINT_EVERY):
            await db.write_now(lambda conn, i=i: conn.execute(
                "INSERT INTO instance_state (key, value) VALUES (?, ?)", (f"big-{i}", row)))
        wal = path.with_name(path.name + "-wal").stat().st_size
        written = 4 * CHECKPOINT_EVERY * len(row)
        assert wal < written * 0.6, f"WAL {wal} bytes after {written} bytes written"
        async with db.reader.execute("SELECT count(*) FROM instance_state WHERE key LIKE 'big-%'") as cur:
            assert (await cur.fetchone())[0] == 4 * CHECKPOINT_EVERY
