"""PostgreSQL as the engine: the migration runner, the adapters that let the store's SQLite-shaped
code run on psycopg (placeholders, lastrowid, rowcount, rows by name), full-text search, and a
server refusing a schema that is not its code's, on both engines.

The PostgreSQL tests need a server (FEDSERVER_TEST_POSTGRES, started by .ci/run) and run in the
plain SQLite pass too: each makes a database of its own."""
from __future__ import annotations

import asyncio
import sqlite3

import pytest

from fedserver.db import MigrationError, migrate, migration_files, open_database
from fedserver.store import search as search_store
from tests import engines
from tests.e2e.processes import ServerProcess, set_config_keys

THEN = "2026-01-01T00:00:00.000000Z"

postgresql = engines.postgresql_only


def _names(engine: str) -> list[str]:
    return [path.name for _, path in migration_files(engine=engine)]


@postgresql
async def test_migrations_apply_on_postgresql_in_order_and_running_twice_changes_nothing():
    async with open_database(engines.fresh_postgres_url(migrated=False)) as db:
        applied = await migrate(db)
        assert applied == _names("postgresql")
        assert "0060_search.postgresql.sql" in applied and "0001_initial.sql" in applied
        assert await migrate(db) == []
        versions = [row[0] for row in await db.reader.execute_fetchall(
            "SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == [version for version, _ in migration_files()]


@postgresql
async def test_two_machines_migrating_one_postgresql_database_at_once_take_turns():
    url = engines.fresh_postgres_url(migrated=False)
    async with open_database(url) as first, open_database(url) as second:
        applied = await asyncio.gather(migrate(first), migrate(second))
        # The advisory lock: one applied everything, the other found nothing left to do.
        assert sorted(applied, key=len) == [[], _names("postgresql")]


@postgresql
async def test_a_failing_migration_on_postgresql_leaves_nothing_half_applied(tmp_path):
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE b (x INTEGER);\nCREATE TABLE a (y INTEGER);\n")
    async with open_database(engines.fresh_postgres_url(migrated=False)) as db:
        with pytest.raises(MigrationError, match="0002_bad.sql"):
            await migrate(db, tmp_path)
        assert await db.reader.execute_fetchall("SELECT to_regclass('b')") == [(None,)]
        assert await db.reader.execute_fetchall("SELECT version FROM schema_migrations") == [(1,)]


def test_a_postgresql_only_migration_needs_its_portable_twin(tmp_path):
    (tmp_path / "0001_a.sql").write_text("")
    (tmp_path / "0002_b.postgresql.sql").write_text("")
    with pytest.raises(MigrationError, match="0002_b.postgresql.sql has no 0002_b.sql"):
        migration_files(tmp_path)
    (tmp_path / "0002_b.sql").write_text("")
    assert [path.name for _, path in migration_files(tmp_path)] == ["0001_a.sql", "0002_b.sql"]
    assert [path.name for _, path in migration_files(tmp_path, engine="postgresql")] == \
        ["0001_a.sql", "0002_b.postgresql.sql"]


@postgresql
async def test_the_adapters_give_the_store_what_sqlite_gives_it():
    async with open_database(engines.fresh_postgres_url()) as db:
        async with db.transaction() as tx:
            cur = await tx.execute("INSERT INTO actors (uri, username, domain, display_name, created_at, updated_at)"
                                   " VALUES (?, ?, 'a.example', '100% sure? yes', ?, ?)", ("u1", "ann", THEN, THEN))
            ann = cur.lastrowid
            assert isinstance(ann, int) and cur.rowcount == 1
            # No identity column: nothing to report.
            cur = await tx.execute("INSERT INTO tombstones (uri, deleted_at) VALUES (?, ?)", ("t", THEN))
            assert cur.lastrowid is None and cur.rowcount == 1
            cur = await tx.executemany("INSERT INTO tombstones (uri, deleted_at) VALUES (?, ?)"
                                       " ON CONFLICT (uri) DO NOTHING", [("t", THEN), ("t2", THEN), ("t3", THEN)])
            assert cur.rowcount == 2
            cur = await tx.execute("UPDATE actors SET indexable = ? WHERE id = :id".replace(":id", "?"), (True, ann))
            assert cur.rowcount == 1
        # A ? or % inside a literal is text; :name parameters; rows by position and by name.
        rows = await db.reader.execute_fetchall(
            "SELECT id, display_name, indexable, 'what?' AS q FROM actors"
            " WHERE username = :name AND display_name LIKE '100%'", {"name": "ann"})
        assert len(rows) == 1
        row = rows[0]
        assert row[0] == row["id"] == ann and row["q"] == "what?" and row["display_name"] == "100% sure? yes"
        assert row["indexable"] == 1 and dict(zip(row.keys(), row))["q"] == "what?"
        async with db.reader.execute("SELECT uri FROM tombstones ORDER BY uri") as cur:
            assert [tuple(r) for r in await cur.fetchall()] == [("t",), ("t2",), ("t3",)]
        assert (await db.reader.execute_fetchall("SELECT sum(id) FROM actors"))[0][0] == ann

        def batch(conn):
            cur = conn.execute("INSERT INTO actors (uri, username, domain, created_at, updated_at)"
                               " VALUES (?, 'bo', 'a.example', ?, ?)", ("u2", THEN, THEN))
            deleted = conn.execute("DELETE FROM tombstones WHERE uri LIKE 't%'").rowcount
            return cur.lastrowid, deleted, [tuple(r) for r in conn.execute("SELECT username FROM actors ORDER BY id")]

        bo, deleted, names = await db.write_batch(batch)
        assert bo > ann and deleted == 3 and names == [("ann",), ("bo",)]
        # NUL cannot be stored in PostgreSQL text: it arrives as U+FFFD instead of failing the write.
        async with db.transaction() as tx:
            await tx.execute("UPDATE actors SET display_name = ? WHERE id = ?", ("a\x00b", bo))
        assert (await db.reader.execute_fetchall("SELECT display_name FROM actors WHERE id = ?", (bo,)))[0][0] \
            == "a\ufffdb"


@postgresql
async def test_full_text_search_on_postgresql_folds_accents_matches_prefixes_and_reads_no_query_syntax():
    async with open_database(engines.fresh_postgres_url()) as db:
        async with db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO actors (id, uri, username, domain, display_name, indexable, created_at, updated_at)"
                " VALUES (?, ?, ?, 'a.example', ?, 1, ?, ?)",
                [(1, "https://a.example/users/ann", "ann", "Ann Café", THEN, THEN),
                 (2, "https://a.example/users/bjorn", "bjorn", "Björn Borg", THEN, THEN)])
            await tx.executemany(
                "INSERT INTO posts (id, uri, actor_id, visibility, content_text, summary, published_at, created_at,"
                " updated_at) VALUES (?, ?, 1, 'public', ?, ?, ?, ?, ?)",
                [(10, "https://a.example/n/10", "Un café au lait", None, THEN, THEN, THEN),
                 (11, "https://a.example/n/11", "plain words & more | !bang", "heron <-> egret", THEN, THEN, THEN),
                 (12, "https://a.example/n/12", "lait au café", None, THEN, THEN, THEN)])

        async def found(*phrases: str) -> list[int]:
            return [p.id for p in (await search_store.search_posts(db.reader, list(phrases), viewer_id=99)).posts]

        assert await found("cafe") == [12, 10]
        assert await found("café au lait") == [10]  # a phrase: words in order
        assert await found("cafe", "lait") == [12, 10]  # every phrase
        assert await found("heron <-> egret") == [11]  # operators typed are words, the CW counts
        assert await found("!bang") == [11] and await found("& |") == []
        assert await found("caf") == []  # posts: whole words only
        people = await search_store.search_accounts(db.reader, ["bjo"], viewer_id=99)
        assert [actor.username for actor in people] == ["bjorn"]  # accounts: the start of a word
        assert [a.username for a in await search_store.search_accounts(db.reader, ["ann"], viewer_id=99)] == ["ann"]


def _change_schema(server: ServerProcess, url: str | None, *statements: str) -> None:
    if url is not None:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)
        return
    with sqlite3.connect(server.database) as conn:
        for statement in statements:
            conn.execute(statement)


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=postgresql)])
def test_a_server_refuses_a_schema_older_or_newer_than_its_code_and_migrate_brings_it_up(tmp_path, engine):
    server = ServerProcess(tmp_path / "a")
    server.init()
    url = engines.fresh_postgres_url(migrated=False) if engine == "postgresql" else None
    set_config_keys(server.config, url=url or "")  # this engine, whatever --engine says
    server.run("user", "create", "ann", check=True)  # (PostgreSQL: an empty database is set up on first use)
    try:
        # A newer fedserver migrated this database: this one would misread it.
        _change_schema(server, url, "INSERT INTO schema_migrations (version, name, applied_at)"
                                    " VALUES (9999, '9999_future.sql', 'x')")
        result = server.run("serve")
        assert result.returncode != 0 and "newer than this fedserver" in result.stderr
        assert "migration 9999" in result.stderr and "Traceback" not in result.stderr
        # An older schema (the last migration not applied yet) is refused with what to run.
        _change_schema(server, url, "DELETE FROM schema_migrations WHERE version = 9999",
                       "ALTER TABLE post_attachments DROP COLUMN duration",
                       "DELETE FROM schema_migrations WHERE version = 95")
        result = server.run("user", "list")
        assert result.returncode != 0 and "Run `fedserver migrate`" in result.stderr
        assert "Traceback" not in result.stderr
        server.run("migrate", check=True)
        server.start()
        assert "ann" in server.run("user", "list", check=True).stdout
    finally:
        server.kill()


def test_the_store_sql_is_translated_for_psycopg_outside_literals_names_and_comments():
    from fedserver.sql_dialect import placeholders, returning_id, translate_ddl, without_index_hints

    assert placeholders("SELECT '?', \"a?\", x FROM t WHERE a = ? AND b LIKE '10%' -- why? 5%\n AND c = :c::text") \
        == "SELECT '?', \"a?\", x FROM t WHERE a = %s AND b LIKE '10%%' -- why? 5%%\n AND c = %(c)s::text"
    assert placeholders("SELECT 'it''s ?' || ?") == "SELECT 'it''s ?' || %s"
    assert returning_id("INSERT INTO posts (a) VALUES (?)", {"posts": "id"}) == \
        ("INSERT INTO posts (a) VALUES (?) RETURNING id", True)
    assert returning_id("INSERT INTO posts (a) VALUES (?) RETURNING uri", {"posts": "id"})[1] is False
    assert returning_id("INSERT INTO tombstones (a) VALUES (?)", {"posts": "id"})[1] is False
    assert without_index_hints("FROM a JOIN posts p INDEXED BY posts_actor_cover ON x") == "FROM a JOIN posts p ON x"
    ddl = translate_ddl("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, owner INTEGER PRIMARY KEY"
                        " REFERENCES o (id), at INTEGER, key BLOB, x REAL)")
    assert ddl == ("CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, owner BIGINT PRIMARY KEY"
                   " REFERENCES o (id), at BIGINT, key BYTEA, x DOUBLE PRECISION)")


@postgresql
async def test_consent_events_appended_by_two_processes_at_once_stay_one_chain():
    from fedserver.services.consent import verify_events
    from fedserver.store import consent as consent_store

    url = engines.fresh_postgres_url()
    # Two handles: two processes (or machines), each with its own in-process write lock.
    async with open_database(url) as first, open_database(url) as second:
        async def append(db, n: int) -> None:
            async with db.transaction() as tx:
                await consent_store.append_event(
                    tx, actor_id=n, actor_uri=f"https://a.example/users/{n}", purpose="train-ai", choice="deny",
                    license=None, scope=None, include_unlisted=False, terms_version="1", terms_hash="h",
                    source="self", note="", created_at=THEN)

        await asyncio.gather(*(append(first if n % 2 else second, n) for n in range(40)))
        result = await verify_events(first.reader)
        assert result.ok and result.events == 40, result
