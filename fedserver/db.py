"""SQLite connection setup (WAL, pragmas), the choice of engine ([database] url selects PostgreSQL,
fedserver/postgres.py) and the migration runner over migrations/*.sql for both engines.

One writer connection guarded by an asyncio lock (SQLite allows one writer; interleaving two
coroutines' statements on one connection would mix their transactions) and one reader connection
that sees committed data. Store functions take either connection as their first argument.
Hot paths that write many rows at once use write_batch: a plain sqlite3 connection on one thread
of its own, under the same lock, so a whole transaction is a single hop off the event loop. The
inbox writer's small group commits use write_now: the same on the loop's own thread, never waiting
for another process and never checkpointing there.
"""
from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import re
import sqlite3
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

import aiosqlite

from fedserver.clock import SYSTEM_CLOCK

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+(\.postgresql)?\.sql$")
POSTGRES_SUFFIX = ".postgresql.sql"

Connection = aiosqlite.Connection
T = TypeVar("T")


# write_now's commits between two passive checkpoints: ~1,000 WAL pages at the inbox's batch sizes,
# SQLite's own autocheckpoint threshold.
CHECKPOINT_EVERY = 100


class MigrationError(Exception):
    """A migration file is misnamed, duplicated or failed to apply."""


class SchemaMismatch(Exception):
    """The database's schema is not the one this code was written for (older: `fedserver migrate`;
    newer: this fedserver is older than the one that migrated it)."""


# WAL lets readers run beside the writer; NORMAL sync is durable across process crashes (a power
# loss may drop the last commits, not corrupt the file). The CLI and the server may write the same
# file at once: wait instead of failing.
_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=10000")


async def _open(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    for pragma in _PRAGMAS:
        await conn.execute(pragma)
    return conn


def _open_sync(path: Path) -> sqlite3.Connection:
    # Used only from the batch thread (check_same_thread would refuse the thread that opened it).
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in _PRAGMAS:
        conn.execute(pragma)
    return conn


def _open_on_loop(path: Path) -> sqlite3.Connection:
    """write_now's connection: it must never make the event loop wait, so it does not wait for
    another process's write lock (busy_timeout 0: the caller goes to the batch thread instead) and
    does not checkpoint (a checkpoint copies the WAL into the database and syncs both files)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in _PRAGMAS:
        conn.execute(pragma)
    conn.execute("PRAGMA busy_timeout=0")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    return conn


class ProcessWriteLock:
    """An advisory lock (flock on `<database>-writelock`) that fedserver's hot write paths take in
    every process before SQLite's own write lock. With several processes writing one file (a server
    with acceptor processes, fedserver/serving.py), SQLite's busy handler makes a waiting writer
    sleep 1, 2, 5, 10, 15... ms between tries, so it often waits long after the lock is free; a
    flock waiter is woken the moment it is released. Only taken right before BEGIN and released
    after COMMIT, never while waiting for anything else, so it cannot deadlock with SQLite's lock;
    a writer that does not take it (a transaction(), the sqlite3 shell) still meets busy_timeout.
    Within a process, WriteLock decides who writes; this lock is between processes."""

    def __init__(self, database_path: Path) -> None:
        self.path = database_path.with_name(database_path.name + "-writelock")
        self._fd: int | None = None

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self._file(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def acquire(self) -> None:
        """Blocks until no other process holds it: call off the event loop."""
        fcntl.flock(self._file(), fcntl.LOCK_EX)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class WriteLock:
    """The process's one-writer lock, with two classes of waiters: urgent ones (a request waiting
    for its answer, such as the inbox writer's batch) are handed the lock before normal ones
    (background workers), so a busy inbox worker cannot queue up in front of inbound requests.
    The lock passes straight to the next waiter on release; FIFO within a class."""

    def __init__(self) -> None:
        self._locked = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        return self._locked

    async def acquire(self, *, urgent: bool = False) -> None:
        if not self._locked and not self._urgent and not self._normal:
            self._locked = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._normal
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed the lock just as we were cancelled: pass it on
            elif waiter in queue:
                # (A release between the cancellation and now has already dropped it: anything but
                # CancelledError from here would make the caller carry on as if not cancelled.)
                queue.remove(waiter)
            raise

    def release(self) -> None:
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # ownership passes; the lock stays taken
                    return
        self._locked = False

    @asynccontextmanager
    async def held(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self.acquire(urgent=urgent)
        try:
            yield
        finally:
            self.release()


class Database:
    """The application's handle on its SQLite file."""

    engine = "sqlite"

    def __init__(self, path: Path, *, reader_cache_mib: int = 32) -> None:
        self.path = path
        self.reader_cache_mib = reader_cache_mib
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = WriteLock()
        self._process_lock = ProcessWriteLock(path)
        # write_batch's connection and its one thread, opened on first use.
        self._batch_conn: sqlite3.Connection | None = None
        self._batch_thread: ThreadPoolExecutor | None = None
        # write_now's connection, opened on first use; its commits since the last checkpoint.
        self._loop_conn: sqlite3.Connection | None = None
        self._loop_commits = 0

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await _open(self.path)
        self._reader = await _open(self.path)
        await self._reader.execute("PRAGMA query_only=ON")
        # Pages read posts, authors and search matches from all over the file: with SQLite's default
        # 2 MiB cache a search looking through 2,000 matches on 1M posts re-read most of its pages
        # from the OS each time (9.6 ms; 3.5 ms with a 16 MiB cache: bench/RESULTS.md, pages).
        await self._reader.execute(f"PRAGMA cache_size={-1024 * int(self.reader_cache_mib)}")

    async def close(self) -> None:
        if self._loop_conn is not None:
            self._loop_conn.close()
            self._loop_conn = None
        self._process_lock.close()
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None
        if self._batch_thread is not None:
            batch_conn, self._batch_conn = self._batch_conn, None
            if batch_conn is not None:
                await asyncio.get_running_loop().run_in_executor(self._batch_thread, batch_conn.close)
            self._batch_thread.shutdown(wait=True)
            self._batch_thread = None

    @property
    def reader(self) -> aiosqlite.Connection:
        """Connection for reads outside a transaction (sees committed data only)."""
        assert self._reader is not None, "database not open"
        return self._reader

    async def truncate_wal(self) -> None:
        """Checkpoint the whole WAL into the database and truncate the WAL file to nothing."""
        assert self._writer is not None, "database not open"
        async with self._write_lock.held():
            await self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Serialised write transaction: commits on success, rolls back on any exception."""
        assert self._writer is not None, "database not open"
        async with self._write_lock.held():
            await _begin_immediate(self._writer)
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            else:
                await self._writer.execute("COMMIT")

    async def run_transaction(self, work: Callable[[aiosqlite.Connection], Awaitable[T]], *,
                              what: str = "transaction") -> T:
        """await work(conn) inside transaction() and its result. On PostgreSQL the transaction is
        run again as a whole when aborted by a conflicting one (postgres.py); SQLite's BEGIN
        IMMEDIATE excludes every other writer, so it runs once here."""
        async with self.transaction() as conn:
            return await work(conn)

    async def write_batch(self, work: Callable[[sqlite3.Connection], T], *, urgent: bool = False) -> T:
        """Run `work` inside one write transaction on the database's batch thread and return its
        result: the whole transaction costs one thread hop instead of one per statement, which is
        what a hot path that writes many rows at once (the inbox writer) needs when the event loop
        is busy. `work` runs off the event loop: it must only touch the connection it is given. The
        write lock is held until the thread is done, even if the caller is cancelled; urgent=True
        takes it before background writers waiting for it (WriteLock)."""
        assert self._writer is not None, "database not open"
        async with self._write_lock.held(urgent=urgent):
            if self._batch_thread is None:
                self._batch_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-batch")
            return await run_to_the_end(self._batch_thread, self._run_batch, work)

    async def write_now(self, work: Callable[[sqlite3.Connection], T], *, urgent: bool = False) -> T:
        """write_batch without the thread: `work` runs inside one write transaction on the event
        loop's own thread. For short transactions that requests are waiting for (the inbox writer's
        group commit): handing a transaction to the batch thread and back costs more CPU than a
        small one itself (GIL hand-offs: ~45 us per inbox request, bench/RESULTS.md). It never makes
        the loop wait for someone else: if another process (a CLI command) holds SQLite's write
        lock, the transaction goes to write_batch, which waits on its thread. Its connection does
        not checkpoint; every CHECKPOINT_EVERY commits a passive checkpoint runs on the batch thread."""
        assert self._writer is not None, "database not open"
        async with self._write_lock.held(urgent=urgent):
            if self._loop_conn is None:
                self._loop_conn = _open_on_loop(self.path)
            conn = self._loop_conn
            began = False
            if self._process_lock.try_acquire():
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    began = True
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                        raise
                finally:
                    if not began:
                        self._process_lock.release()
            if not began:
                log.debug("write_now: another process is writing; using the batch thread")
            else:
                try:
                    result = _run_and_commit(conn, work)
                finally:
                    self._process_lock.release()
                self._loop_commits += 1
                if self._loop_commits >= CHECKPOINT_EVERY:
                    # What SQLite's autocheckpoint would do at this commit, off the loop: the caller
                    # waits for it (a few ms every CHECKPOINT_EVERY commits), nobody else writes meanwhile.
                    self._loop_commits = 0
                    if self._batch_thread is None:
                        self._batch_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-batch")
                    done = asyncio.get_running_loop().run_in_executor(self._batch_thread, self._checkpoint_wal)
                    try:
                        await asyncio.shield(done)
                    except asyncio.CancelledError:
                        await asyncio.wait([done])  # the lock stays held until the thread is done
                        raise
                return result
        return await self.write_batch(work, urgent=urgent)

    def _checkpoint_wal(self) -> None:
        """On the batch thread, with the write lock held: with no commit in between, a passive
        checkpoint catches up with the whole WAL, so the next write starts the WAL from its
        beginning again (one racing new commits would never catch up, and the WAL would grow)."""
        if self._batch_conn is None:
            self._batch_conn = _open_sync(self.path)
        self._process_lock.acquire()
        try:
            self._batch_conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            self._process_lock.release()

    def _run_batch(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._batch_conn is None:
            self._batch_conn = _open_sync(self.path)
        conn = self._batch_conn
        self._process_lock.acquire()
        try:
            conn.execute("BEGIN IMMEDIATE")
            return _run_and_commit(conn, work)
        finally:
            self._process_lock.release()


async def run_to_the_end(thread: ThreadPoolExecutor, function: Callable[..., T], *args: object) -> T:
    """function(*args) on the thread, and its result; if the caller is cancelled meanwhile, the
    cancellation waits until the thread is done, so a lock the caller holds is never released while
    the thread still uses the connection (both engines' write_batch)."""
    done = asyncio.get_running_loop().run_in_executor(thread, function, *args)
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        await asyncio.wait([done])
        raise


async def _begin_immediate(conn: aiosqlite.Connection) -> None:
    """BEGIN IMMEDIATE that a cancellation cannot leave half done: aiosqlite runs the statement on
    its thread whether or not the awaiting task is still there, so a task cancelled while waiting
    for it (a worker stopped while the database is busy) would leave the connection inside a
    transaction nobody ends, holding SQLite's write lock: every later writer would wait out its
    busy_timeout. On cancellation the BEGIN is waited for and rolled back before passing it on."""
    begin = asyncio.ensure_future(conn.execute("BEGIN IMMEDIATE"))
    try:
        await asyncio.shield(begin)
    except asyncio.CancelledError:
        await asyncio.wait([begin])
        if not begin.cancelled() and begin.exception() is None:
            await asyncio.shield(conn.execute("ROLLBACK"))
        raise


def _run_and_commit(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Inside a transaction begun on conn: run work and commit, or roll back if either fails (a
    failed COMMIT, a full disk say, would otherwise leave the transaction open on the connection)."""
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def migration_files(directory: Path = MIGRATIONS_DIR, *, engine: str = "sqlite") -> list[tuple[int, Path]]:
    """The numbered migrations in order. One sequence serves both engines: NNNN_name.sql is
    SQLite's and, translated (sql_dialect.translate_ddl), PostgreSQL's, unless a
    NNNN_name.postgresql.sql beside it says what PostgreSQL runs instead (FTS5, triggers, table
    rebuilds: what has no portable form)."""
    found: dict[int, Path] = {}
    overrides: dict[int, Path] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file {path.name} is not named NNNN_name.sql")
        version = int(match.group(1))
        into = overrides if match.group(2) else found
        if version in into:
            raise MigrationError(f"two migrations share version {version}: {into[version].name}, {path.name}")
        into[version] = path
    for version, path in overrides.items():
        if version not in found or found[version].name[:-4] != path.name[:-len(POSTGRES_SUFFIX)]:
            raise MigrationError(f"{path.name} has no {path.name[:-len(POSTGRES_SUFFIX)]}.sql beside it")
    if engine == "postgresql":
        found.update(overrides)
    return sorted(found.items())


def migration_script(path: Path, engine: str) -> str:
    script = path.read_text(encoding="utf-8")
    if engine == "postgresql" and not path.name.endswith(POSTGRES_SUFFIX):
        from fedserver.sql_dialect import translate_ddl
        script = translate_ddl(script)
    return script


_SCHEMA_MIGRATIONS = ("CREATE TABLE IF NOT EXISTS schema_migrations ("
                      " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")


async def applied_versions(conn: Any) -> set[int]:
    await conn.execute(_SCHEMA_MIGRATIONS)
    async with conn.execute("SELECT version FROM schema_migrations") as cur:
        return {row[0] for row in await cur.fetchall()}


async def migrate(db: Any, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations in order, each in its own transaction. Safe to run twice, and
    from two processes (or machines) at once."""
    if db.engine == "postgresql":
        return await _migrate_postgres(db, directory)
    applied_now: list[str] = []
    async with db.transaction() as conn:
        # For migrations that derive a key from existing text (0019: inbox dedupe on a hash).
        await conn.create_function("sha256_utf8", 1, _sha256_utf8, deterministic=True)
        done = await applied_versions(conn)
    for version, path in migration_files(directory):
        if version in done:
            continue
        script = path.read_text(encoding="utf-8")
        async with db.transaction() as conn:
            # Re-check inside the write lock/transaction: another process may have applied it.
            if version in await applied_versions(conn):
                continue
            try:
                for statement in _split_sql(script):
                    await conn.execute(statement)
            except Exception as exc:
                raise MigrationError(f"migration {path.name} failed: {exc}") from exc
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, path.name, SYSTEM_CLOCK.now_iso()))
        log.info("applied migration %s", path.name)
        applied_now.append(path.name)
    if applied_now:
        # A migration may rewrite a large table (a new index, a filled column): the WAL file keeps
        # the size of its largest run of uncheckpointed pages, so it is emptied and truncated once
        # here rather than left that large for the life of the database.
        await db.truncate_wal()
    return applied_now


# Any fixed number: the advisory lock every fedserver takes while it migrates a PostgreSQL database.
_MIGRATION_LOCK = 0x66656473  # "feds"


async def _migrate_postgres(db: Any, directory: Path) -> list[str]:
    """PostgreSQL: the whole run under a session advisory lock, so that two machines migrating at
    once take turns (the second finds nothing left to do); each migration is one transaction
    (PostgreSQL's DDL is transactional), its script run as one multi-statement text."""
    import psycopg

    from fedserver.sql_dialect import translate_ddl

    applied_now: list[str] = []
    async with db.pool.connection() as conn:
        # A migration may rewrite a large table: [database] statement_timeout_ms is for the
        # application's statements, not for this connection's.
        await conn.execute("SET statement_timeout = 0")
        await conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            await conn.execute(translate_ddl(_SCHEMA_MIGRATIONS))
            cur = await conn.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in await cur.fetchall()}
            for version, path in migration_files(directory, engine="postgresql"):
                if version in done:
                    continue
                script = migration_script(path, "postgresql")
                try:
                    async with conn.transaction():
                        await conn.execute(script.encode("utf-8"))
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                            (version, path.name, SYSTEM_CLOCK.now_iso()))
                except psycopg.Error as exc:
                    raise MigrationError(f"migration {path.name} failed: {exc}") from exc
                log.info("applied migration %s", path.name)
                applied_now.append(path.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
            await conn.execute("RESET statement_timeout")
    await db.load_identity_columns()
    return applied_now


async def schema_versions(db: Any) -> set[int]:
    """The migrations applied to this database (empty for a new one), without changing it."""
    if db.engine == "postgresql":
        exists = await fetch_first(db.reader, "SELECT to_regclass('schema_migrations') IS NOT NULL")
    else:
        exists = await fetch_first(db.reader, "SELECT 1 FROM sqlite_master WHERE type = 'table'"
                                              " AND name = 'schema_migrations'")
    if not exists:
        return set()
    async with db.reader.execute("SELECT version FROM schema_migrations") as cur:
        return {int(row[0]) for row in await cur.fetchall()}


async def prepare_schema(db: Any, *, apply: bool = False) -> list[str]:
    """Make sure the schema is the one this code expects before anything uses it: a new (empty)
    database is set up, so a first `fedserver serve` just works; otherwise pending migrations are
    applied only when asked (apply: `fedserver migrate`), and a schema older or newer than the
    code is refused with what to do."""
    applied = await schema_versions(db)
    known = {version for version, _ in migration_files(engine=db.engine)}
    if not applied or apply:
        return await migrate(db)
    unknown = sorted(applied - known)
    if unknown:
        raise SchemaMismatch(
            f"the database schema is newer than this fedserver: migration {unknown[-1]:04d} was applied by a newer"
            " version. Run that version (or newer) of fedserver; this one would misread the data.")
    pending = sorted(known - applied)
    if pending:
        raise SchemaMismatch(
            f"the database schema is older than this fedserver ({len(pending)} migration(s) pending, first"
            f" {pending[0]:04d}). Run `fedserver migrate` (once, from any machine), then start it again.")
    return []


async def fetch_first(conn: Any, sql: str) -> Any:
    rows = await conn.execute_fetchall(sql, ())
    rows = list(rows)
    return rows[0][0] if rows else None


def _sha256_utf8(text: str | None) -> bytes | None:
    """SHA-256 of text's UTF-8 bytes (the same key as store.inbox.activity_key)."""
    return None if text is None else hashlib.sha256(str(text).encode("utf-8")).digest()


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statements: list[str] = []
    buffer: list[str] = []
    for line in script.splitlines():
        stripped = line.strip()
        if stripped.startswith("--") and not buffer:
            continue
        buffer.append(line)
        candidate = "\n".join(buffer)
        if stripped.endswith(";") and sqlite3.complete_statement(candidate):
            statements.append(candidate)
            buffer = []
    if "\n".join(buffer).strip():
        statements.append("\n".join(buffer))
    return statements


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def database_for(target: Path | str, **postgres: Any) -> Any:
    """A Database (SQLite file) or a PostgresDatabase (a postgresql:// URL; postgres: its pool
    sizes and statement timeout), not yet open."""
    if is_postgres_url(target):
        from fedserver.postgres import PostgresDatabase
        return PostgresDatabase(str(target), **postgres)
    return Database(Path(target))


def database_from_settings(settings: Any) -> Any:
    database = settings.database
    if database.url:
        return database_for(database.url, pool_min_size=database.pool_min_size,
                            pool_max_size=database.pool_max_size,
                            statement_timeout_ms=database.statement_timeout_ms)
    return Database(settings.database_path, reader_cache_mib=database.reader_cache_mib)


@asynccontextmanager
async def open_database(path: Path | str) -> AsyncIterator[Any]:
    """Open a database by file path or postgresql:// URL (closed when the block ends)."""
    db = database_for(path)
    await db.open()
    try:
        yield db
    finally:
        await db.close()
