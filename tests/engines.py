"""Which database engine the tests run on, and a fresh database per test instance.

`pytest --engine postgresql` (with FEDSERVER_TEST_POSTGRES set to a server's URL, as .ci/run
exports it for its throwaway cluster) gives every instance a test creates its own PostgreSQL
database: a copy of a template migrated once per session (CREATE DATABASE ... TEMPLATE takes
tens of milliseconds), or an empty one for tests that run the migrations themselves. The
databases a test created are dropped when it ends. With the default, `--engine sqlite`, nothing
changes: each instance has its SQLite file in tmp_path.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import queue
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

ENV_URL = "FEDSERVER_TEST_POSTGRES"

engine = "sqlite"
_server_url: str | None = None
_template: str | None = None
_counter = itertools.count(1)
_created: list[str] = []
_by_directory: dict[Path, str] = {}

# Marks for tests that only make sense on one engine (each says why where it is used).
sqlite_only = pytest.mark.sqlite_only
postgresql_only = pytest.mark.postgresql_only


def configure(chosen: str) -> None:
    global engine, _server_url
    engine = chosen
    if chosen == "postgresql":
        _server_url = os.environ.get(ENV_URL)
        if not _server_url:
            raise pytest.UsageError(f"--engine postgresql needs {ENV_URL}=postgresql://... (see .ci/run)")


def on_postgresql() -> bool:
    return engine == "postgresql"


def postgres_server_url() -> str | None:
    """The test cluster's URL (its maintenance database), whatever --engine says; None without one."""
    return _server_url or os.environ.get(ENV_URL) or None


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _admin(sql: str) -> None:
    import psycopg

    url = postgres_server_url()
    assert url is not None
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def _template_name() -> str:
    """A database migrated to this code's schema, made once per session (the instances' copies)."""
    global _template
    if _template is None:
        from fedserver.db import open_database, prepare_schema

        name = f"fedserver_template_{os.getpid()}"
        _admin(f"DROP DATABASE IF EXISTS {name}")
        _admin(f"CREATE DATABASE {name} TEMPLATE template0")

        async def migrate() -> None:
            async with open_database(_with_database(postgres_server_url() or "", name)) as db:
                await prepare_schema(db, apply=True)

        _run_in_thread(migrate)  # (a test's event loop may be running: migrate on a thread of its own)
        _template = name
    return _template


def _run_in_thread(make: Any) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(make())
        except BaseException as exc:  # noqa: BLE001 (re-raised below)
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def fresh_postgres_url(*, migrated: bool = True) -> str:
    """A new database of its own: a copy of the migrated template, or empty (migrated=False)."""
    name = f"fedserver_t{os.getpid()}_{next(_counter)}"
    template = _template_name() if migrated else "template0"
    _admin(f"CREATE DATABASE {name} TEMPLATE {template}")
    _created.append(name)
    return _with_database(postgres_server_url() or "", name)


def database_url_for(directory: Path) -> str:
    """The PostgreSQL database of the instance kept in this directory (the same one each time it
    is asked, so that a restarted instance finds its data)."""
    directory = directory.resolve()
    if directory not in _by_directory:
        _by_directory[directory] = fresh_postgres_url()
    return _by_directory[directory]


def database_settings(directory: Path) -> dict[str, Any]:
    """[database] settings for a test instance kept in directory, on the chosen engine."""
    if on_postgresql():
        return {"path": "fedserver.sqlite3", "url": database_url_for(directory)}
    return {"path": "fedserver.sqlite3"}


def config_keys(directory: Path) -> dict[str, Any]:
    """`fedserver.toml` keys that put the instance in directory on the chosen engine."""
    return {"url": database_url_for(directory)} if on_postgresql() else {}


def database_target(path: Path, *, migrated: bool = True) -> Path | str:
    """What open_database is given in a store test: the SQLite file, or a PostgreSQL database of
    its own, migrated already (migrate then has nothing to do) or empty (migrated=False: for tests
    of migrations)."""
    if on_postgresql():
        return fresh_postgres_url(migrated=migrated)
    return path


def test_starts() -> int:
    """Called as a test starts (after its module- and session-scoped fixtures were set up): what
    was created so far belongs to those and stays until the session ends."""
    return len(_created)


def drop_created(since: int = 0) -> None:
    """Drop the databases created since test_starts() said `since` (FORCE: a killed server's
    sessions go too), on a thread of their own: a DROP DATABASE waits for a checkpoint, ~1 s the
    next test need not wait for."""
    global _dropper
    names = _created[since:]
    if not names:
        return
    del _created[since:]
    dropped = set(names)
    for directory in [d for d, name in _by_directory.items() if urlsplit(name).path.lstrip("/") in dropped]:
        del _by_directory[directory]
    for name in names:
        _drop_queue.put(name)
    if _dropper is None:
        _dropper = threading.Thread(target=_drop_forever, name="drop-test-databases", daemon=True)
        _dropper.start()


_drop_queue: "queue.Queue[str]" = queue.Queue()
_dropper: threading.Thread | None = None


def _drop_forever() -> None:
    while True:
        name = _drop_queue.get()
        try:
            _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        except Exception:  # noqa: BLE001 (a leftover database in a throwaway cluster harms nothing)
            pass
        finally:
            _drop_queue.task_done()


def drop_template() -> None:
    global _template
    drop_created()
    _drop_queue.join()
    if _template is not None:
        _admin(f"DROP DATABASE IF EXISTS {_template} WITH (FORCE)")
        _template = None


def copy_migrations_before(version: int, directory: Path) -> Path:
    """A migrations folder holding those numbered below version, for both engines (a test that
    stores rows as an older schema had them, then migrates)."""
    from fedserver.db import MIGRATIONS_DIR

    directory.mkdir(parents=True, exist_ok=True)
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if int(path.name[:4]) < version:
            (directory / path.name).write_bytes(path.read_bytes())
    return directory


def write(target: Path | str, sql: str, rows: list[tuple] | tuple = (), *, many: bool = False) -> int:
    """Change a database directly (an SQLite file, or a PostgreSQL URL), as another process or an
    operator would, committed when this returns; the rows changed. The SQL uses `?` placeholders."""
    if isinstance(target, str):
        import psycopg

        from fedserver.sql_dialect import placeholders

        with psycopg.connect(target, autocommit=True) as conn:
            with conn.cursor() as cur:
                if many:
                    cur.executemany(placeholders(sql), rows)
                else:
                    cur.execute(placeholders(sql), rows)
                return cur.rowcount
    import sqlite3

    conn = sqlite3.connect(target, timeout=30)
    try:
        with conn:
            cur = conn.executemany(sql, rows) if many else conn.execute(sql, rows)
            return cur.rowcount
    finally:
        conn.close()


def target_of(settings: Any) -> Path | str:
    """The database of an in-process instance's settings, as write() takes it."""
    return settings.database.url or settings.database_path
