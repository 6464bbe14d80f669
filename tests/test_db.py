from __future__ import annotations

import pytest

from fedserver.db import MigrationError, migrate, migration_files, open_database


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
