"""The application's handle on a PostgreSQL database, with the interface of db.Database, so that
the store's functions run unchanged on either engine.

psycopg 3 (with psycopg_pool) is the driver: the store has async paths (reader, transaction()) and
synchronous ones run on a thread (write_batch, write_now), and psycopg gives both with one API and
one set of adapters; it also has pipelined executemany and LISTEN/NOTIFY (`notifies()`) for queue
wake-ups. The adapters below make a psycopg connection look like the sqlite3/aiosqlite ones the
store was written against: `?`/`:name` placeholders (sql_dialect), rows indexed by position and by
name, cursor.lastrowid (an appended `RETURNING id`) and cursor.rowcount.

Writes within one process are serialised by the same WriteLock as on SQLite (the store's
read-then-write transactions were written for one writer at a time), except the urgent ones (the
inbox's accept path: a request waits for them): those run on a thread and connection of their own,
beside the process's other writers, as a separate `serve --no-workers` process would. Between
processes and machines PostgreSQL's own row locks and transactions decide, not a file lock. Two processes'
transactions may then deadlock (or, above READ COMMITTED, fail to serialise): write_batch and
run_transaction run their work again as a whole when PostgreSQL aborts it so
(fedserver/transaction_retry.py).
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, Sequence, TypeVar

import psycopg
from psycopg.adapt import AdaptersMap, Dumper, Loader
from psycopg.types.string import StrDumperUnknown
from psycopg_pool import AsyncConnectionPool

from fedserver.db import WriteLock, run_to_the_end  # db imports this module lazily: no cycle
from fedserver.sql_dialect import placeholders, returning_id, without_index_hints
from fedserver.transaction_retry import retry_conflicts

log = logging.getLogger(__name__)

T = TypeVar("T")
ENGINE = "postgresql"


class Row:
    """A result row read like sqlite3.Row: row[0], row["name"], keys(), dict(row), tuple(row)."""

    __slots__ = ("_values", "_index")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = tuple(values)
        self._index = index

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Row):
            return self._values == other._values
        return self._values == other

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return f"Row{self._values!r}"


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    index: dict[str, int] = {}
    for position, column in enumerate(cursor.description or ()):
        index.setdefault(column.name, position)  # the first of two same-named columns, as sqlite3.Row
    return lambda values: Row(values, index)


class _BoolAsInt(Dumper):
    """Booleans are 0/1 integers in the schema (portable): a Python bool goes as one."""
    oid = psycopg.postgres.types["int8"].oid

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


class _TextWithoutNul(StrDumperUnknown):
    """PostgreSQL text cannot hold U+0000 (SQLite's can): a remote document's NUL would fail the
    whole transaction, so it is stored as U+FFFD, the replacement character."""

    def dump(self, obj: str) -> Any:
        return super().dump(obj.replace("\x00", "\ufffd") if "\x00" in obj else obj)


class _NumericAsNumber(Loader):
    """sum() and avg() of integers are numeric in PostgreSQL: read them as int (or float), as
    SQLite gives them, not Decimal."""

    def load(self, data: Any) -> Any:
        value = Decimal(bytes(data).decode())
        return int(value) if value == value.to_integral_value() else float(value)


ADAPTERS = AdaptersMap(psycopg.adapters)
ADAPTERS.register_dumper(bool, _BoolAsInt)
ADAPTERS.register_dumper(str, _TextWithoutNul)
ADAPTERS.register_loader("numeric", _NumericAsNumber)


class _Translator:
    """The SQL text psycopg is given for a statement of the store, cached per text."""

    def __init__(self) -> None:
        self.identity_columns: dict[str, str] = {}
        self._cache: dict[str, tuple[str, bool]] = {}

    def __call__(self, sql: str) -> tuple[str, bool]:
        found = self._cache.get(sql)
        if found is None:
            text, returning = returning_id(without_index_hints(sql), self.identity_columns)
            found = self._cache[sql] = (placeholders(text), returning)
        return found


def _params(params: Any) -> Any:
    if params is None:
        return ()
    if isinstance(params, (dict, tuple, list)):
        return params
    return tuple(params)


class Cursor:
    """A finished statement's result (rows read eagerly) for both the async and the sync adapter."""

    def __init__(self, rows: list[Row], rowcount: int, lastrowid: int | None,
                 description: Any) -> None:
        self._rows = rows
        self._position = 0
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self.description = description

    def _next(self, size: int | None) -> list[Row]:
        start = self._position
        end = len(self._rows) if size is None else min(len(self._rows), start + size)
        self._position = end
        return self._rows[start:end]

    # sqlite3's synchronous cursor
    def fetchone(self) -> Row | None:
        rows = self._next(1)
        return rows[0] if rows else None

    def fetchall(self) -> list[Row]:
        return self._next(None)

    def fetchmany(self, size: int = 1) -> list[Row]:
        return self._next(size)

    def __iter__(self) -> Iterator[Row]:
        return iter(self._next(None))

    def close(self) -> None:
        pass


class AsyncCursor(Cursor):
    """aiosqlite's cursor: the same reads, awaited."""

    async def fetchone(self) -> Row | None:  # type: ignore[override]
        return Cursor.fetchone(self)

    async def fetchall(self) -> list[Row]:  # type: ignore[override]
        return Cursor.fetchall(self)

    async def fetchmany(self, size: int = 1) -> list[Row]:  # type: ignore[override]
        return Cursor.fetchmany(self, size)

    def __aiter__(self) -> AsyncIterator[Row]:
        async def rows() -> AsyncIterator[Row]:
            for row in self._next(None):
                yield row
        return rows()

    async def close(self) -> None:  # type: ignore[override]
        pass

    async def __aenter__(self) -> "AsyncCursor":
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass


class _Pending:
    """What aiosqlite's execute returns: awaitable, or used as `async with conn.execute(...) as cur`."""

    def __init__(self, run: Any) -> None:
        self._run = run

    def __await__(self) -> Any:
        return self._run.__await__()

    async def __aenter__(self) -> AsyncCursor:
        return await self._run

    async def __aexit__(self, *exc: object) -> None:
        pass


def _finish(returning: bool, rows: list[Row]) -> tuple[list[Row], int | None]:
    if returning:
        return [], (int(rows[-1][0]) if rows else None)
    return rows, None


class AsyncConnection:
    """An async psycopg connection (or, for the reader, the pool: each statement takes one of its
    connections in autocommit mode) as the store's aiosqlite code uses it."""

    engine = ENGINE

    def __init__(self, translate: _Translator, conn: psycopg.AsyncConnection | None = None,
                 pool: AsyncConnectionPool | None = None) -> None:
        self._translate = translate
        self._conn = conn
        self._pool = pool
        self._at_commit: list[Callable[[], Awaitable[None]]] = []

    def at_commit(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work` last in this transaction, right before it commits (not if it rolls back):
        for statements that should hold their locks as briefly as possible (store/commit_order.py)."""
        assert self._conn is not None, "at_commit is for a transaction"
        self._at_commit.append(work)

    async def _run_at_commit(self) -> None:
        while self._at_commit:
            await self._at_commit.pop(0)()

    async def _run(self, sql: str, params: Any) -> AsyncCursor:
        text, returning = self._translate(sql)
        if self._conn is not None:
            return await self._run_on(self._conn, text, returning, params)
        assert self._pool is not None
        async with self._pool.connection() as conn:
            return await self._run_on(conn, text, returning, params)

    @staticmethod
    async def _run_on(conn: psycopg.AsyncConnection, text: str, returning: bool, params: Any) -> AsyncCursor:
        async with conn.cursor() as cur:
            await cur.execute(text, _params(params))
            rows = await cur.fetchall() if cur.description is not None else []
            rows, lastrowid = _finish(returning, rows)
            return AsyncCursor(rows, cur.rowcount, lastrowid, None if returning else cur.description)

    def execute(self, sql: str, params: Any = ()) -> _Pending:
        return _Pending(self._run(sql, params))

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator["AsyncConnection"]:
        """One pooled connection in a read-only REPEATABLE READ transaction: every statement sees
        the same committed state (store.corpus.read_snapshot)."""
        assert self._pool is not None, "a snapshot is taken from the reader"
        async with self._pool.connection() as conn:
            async with conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield AsyncConnection(self._translate, conn=conn)

    async def execute_fetchall(self, sql: str, params: Any = ()) -> list[Row]:
        return (await self._run(sql, params))._rows

    async def executemany(self, sql: str, seq: Any) -> AsyncCursor:
        text, _ = self._translate(sql)
        seq = [_params(params) for params in seq]
        if self._conn is not None:
            return await self._many_on(self._conn, text, seq)
        assert self._pool is not None
        async with self._pool.connection() as conn:
            return await self._many_on(conn, text, seq)

    @staticmethod
    async def _many_on(conn: psycopg.AsyncConnection, text: str, seq: list) -> AsyncCursor:
        if not seq:
            return AsyncCursor([], 0, None, None)
        async with conn.cursor() as cur:
            await cur.executemany(text, seq)
            return AsyncCursor([], cur.rowcount, None, None)


class SyncConnection:
    """A psycopg connection as the store's sqlite3 code (write_batch, write_now) uses it."""

    engine = ENGINE

    def __init__(self, translate: _Translator, conn: psycopg.Connection) -> None:
        self._translate = translate
        self._conn = conn
        self._at_commit: list[Callable[[], None]] = []

    def at_commit(self, work: Callable[[], None]) -> None:
        """AsyncConnection.at_commit, for a write_batch transaction."""
        self._at_commit.append(work)

    def _run_at_commit(self) -> None:
        while self._at_commit:
            self._at_commit.pop(0)()

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def execute(self, sql: str, params: Any = ()) -> Cursor:
        text, returning = self._translate(sql)
        with self._conn.cursor() as cur:
            cur.execute(text, _params(params))
            rows = cur.fetchall() if cur.description is not None else []
            rows, lastrowid = _finish(returning, rows)
            return Cursor(rows, cur.rowcount, lastrowid, None if returning else cur.description)

    def cursor(self) -> "_CursorFactory":
        """sqlite3's conn.cursor(), whose row_factory the store sets to sqlite3.Row: rows here
        already read by name."""
        return _CursorFactory(self)

    def executemany(self, sql: str, seq: Any) -> Cursor:
        text, _ = self._translate(sql)
        seq = [_params(params) for params in seq]
        if not seq:
            return Cursor([], 0, None, None)
        with self._conn.cursor() as cur:
            cur.executemany(text, seq)
            return Cursor([], cur.rowcount, None, None)


class _CursorFactory:
    def __init__(self, conn: SyncConnection) -> None:
        self._conn = conn
        self.row_factory: Any = None

    def execute(self, sql: str, params: Any = ()) -> Cursor:
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, seq: Any) -> Cursor:
        return self._conn.executemany(sql, seq)


class _BatchLane:
    """One thread with its own connection, on which write_batch runs its transactions one at a time
    (a psycopg connection is used by one thread at a time); opened on first use."""

    def __init__(self, db: "PostgresDatabase", name: str) -> None:
        self._db = db
        self._name = name
        self._thread: ThreadPoolExecutor | None = None
        self._conn: psycopg.Connection | None = None

    async def run(self, work: Callable[[SyncConnection], T]) -> T:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        return await run_to_the_end(self._thread, self._run, work)

    def _run(self, work: Callable[[SyncConnection], T]) -> T:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            db = self._db
            conn = self._conn = psycopg.connect(db.url, autocommit=True, row_factory=_row_factory, context=ADAPTERS,
                                                **db.connect_kwargs())
        with conn.transaction():
            sync = SyncConnection(self._db._translate, conn)
            result = work(sync)
            sync._run_at_commit()
            return result

    async def close(self) -> None:
        if self._thread is None:
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, conn.close)
        self._thread.shutdown(wait=True)
        self._thread = None


class PostgresDatabase:
    """The application's handle on a PostgreSQL database (see the module docstring)."""

    engine = ENGINE

    def __init__(self, url: str, *, pool_min_size: int = 1, pool_max_size: int = 10,
                 statement_timeout_ms: int = 30_000) -> None:
        self.url = url
        self.path = None  # no file: what reads db.path for SQLite says so
        self._pool_min, self._pool_max = pool_min_size, max(pool_min_size, pool_max_size)
        self._statement_timeout_ms = statement_timeout_ms
        self._pool: AsyncConnectionPool | None = None
        self._translate = _Translator()
        self._write_lock = WriteLock()
        self._batch = _BatchLane(self, "postgres-batch")
        self._urgent = _BatchLane(self, "postgres-urgent")
        self._reader: AsyncConnection | None = None

    def connect_kwargs(self) -> dict[str, Any]:
        # A statement running longer than this is cancelled by the server (a runaway query must
        # not hold a pooled connection and its locks for ever).
        return {"options": f"-c statement_timeout={int(self._statement_timeout_ms)}"}

    async def open(self) -> None:
        self._pool = AsyncConnectionPool(
            self.url, min_size=self._pool_min, max_size=self._pool_max, open=False,
            kwargs={**self.connect_kwargs(), "autocommit": True, "row_factory": _row_factory, "context": ADAPTERS},
            name="fedserver")
        try:
            await self._pool.open(wait=True, timeout=30)
            self._reader = AsyncConnection(self._translate, pool=self._pool)
            await self.load_identity_columns()
        except BaseException:
            # Stopped while starting (a SIGTERM right after an acceptor process binds its socket):
            # the pool's workers must be told to stop, or one that caught the cancellation of its
            # connect keeps the process from exiting.
            await self.close()
            raise

    async def load_identity_columns(self) -> None:
        """Which column an INSERT's lastrowid is read from, per table (migrations may add tables)."""
        rows = await self.reader.execute_fetchall(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND is_identity = 'YES'")
        self._translate.identity_columns = {row[0]: row[1] for row in rows}
        self._translate._cache.clear()

    async def close(self) -> None:
        for lane in (self._batch, self._urgent):
            await lane.close()
        if self._pool is not None:
            # Wait until the pool's workers are done (one may be opening a connection): a worker
            # still running when the server cancels what is left of its tasks at exit catches the
            # cancellation of its connect and would keep the process from ever ending.
            await self._pool.close(timeout=60)
            self._pool = None
        self._reader = None

    @property
    def reader(self) -> AsyncConnection:
        """Reads outside a transaction (autocommit: each sees what is committed)."""
        assert self._reader is not None, "database not open"
        return self._reader

    @property
    def pool(self) -> AsyncConnectionPool:
        assert self._pool is not None, "database not open"
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction on a pooled connection: commits on success, rolls back on any
        exception."""
        async with self._write_lock.held():
            async with self.pool.connection() as conn:
                async with conn.transaction():
                    tx = AsyncConnection(self._translate, conn=conn)
                    yield tx
                    await tx._run_at_commit()

    async def run_transaction(self, work: Callable[[AsyncConnection], Awaitable[T]], *, what: str = "transaction") -> T:
        """await work(tx) inside transaction() and its result; if PostgreSQL aborts the transaction
        for a deadlock or a serialization failure, work runs again in a new one (a few times, with
        a short random pause between: transaction_retry), then ConflictPersisted. `work` must do
        the whole transaction each time (read what it decides on inside it)."""
        async def attempt() -> T:
            async with self.transaction() as tx:
                return await work(tx)
        return await retry_conflicts(attempt, what=what)

    async def write_batch(self, work: Callable[[SyncConnection], T], *, urgent: bool = False) -> T:
        """Run `work` inside one transaction on the database's own thread (db.Database.write_batch).
        A transaction that PostgreSQL aborts for a deadlock or a serialization failure is run again
        as a whole (`work` anew, in a new transaction; transaction_retry), the write lock released
        during the pause so that this process's other writers go on; ConflictPersisted at last."""
        return await retry_conflicts(lambda: self._write_batch_once(work, urgent), what="write batch")

    async def _write_batch_once(self, work: Callable[[SyncConnection], T], urgent: bool) -> T:
        assert self._pool is not None, "database not open"
        if urgent:
            # A request is waiting (the inbox's accept path): not behind this process's inbox worker
            # and other writers, whose batches take tens of milliseconds, but on a thread and
            # connection of its own beside them, as in a separate `serve --no-workers` process.
            # PostgreSQL's row locks order it with them; a deadlock is retried (write_batch).
            return await self._urgent.run(work)
        async with self._write_lock.held():
            return await self._batch.run(work)

    async def write_now(self, work: Callable[[SyncConnection], T], *, urgent: bool = False) -> T:
        """On SQLite a short transaction on the loop's thread; a PostgreSQL statement is a network
        round trip that must not block the loop, so it is write_batch here."""
        return await self.write_batch(work, urgent=urgent)
