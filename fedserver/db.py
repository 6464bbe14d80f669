"""SQLite connection setup (WAL, pragmas) and the migration runner over migrations/*.sql.

One writer connection guarded by an asyncio lock (SQLite allows one writer; interleaving two
coroutines' statements on one connection would mix their transactions) and one reader connection
that sees committed data. Store functions take either connection as their first argument.
"""
from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import aiosqlite

from fedserver.clock import SYSTEM_CLOCK

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

Connection = aiosqlite.Connection


class MigrationError(Exception):
    """A migration file is misnamed, duplicated or failed to apply."""


async def _open(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    # WAL lets readers run beside the writer; NORMAL sync is durable across process crashes
    # (a power loss may drop the last commits, not corrupt the file).
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=NORMAL")
    await conn.execute("PRAGMA foreign_keys=ON")
    # The CLI and the server may write the same file at once: wait instead of failing.
    await conn.execute("PRAGMA busy_timeout=10000")
    return conn


class Database:
    """The application's handle on its SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await _open(self.path)
        self._reader = await _open(self.path)
        await self._reader.execute("PRAGMA query_only=ON")

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    @property
    def reader(self) -> aiosqlite.Connection:
        """Connection for reads outside a transaction (sees committed data only)."""
        assert self._reader is not None, "database not open"
        return self._reader

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Serialised write transaction: commits on success, rolls back on any exception."""
        assert self._writer is not None, "database not open"
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            else:
                await self._writer.execute("COMMIT")


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    found: dict[int, Path] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file {path.name} is not named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations share version {version}: {found[version].name}, {path.name}")
        found[version] = path
    return sorted(found.items())


async def applied_versions(conn: aiosqlite.Connection) -> set[int]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
    async with conn.execute("SELECT version FROM schema_migrations") as cur:
        return {row[0] for row in await cur.fetchall()}


async def migrate(db: Database, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations in order, each in its own transaction. Safe to run twice."""
    applied_now: list[str] = []
    async with db.transaction() as conn:
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
    return applied_now


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


@asynccontextmanager
async def open_database(path: Path) -> AsyncIterator[Database]:
    db = Database(path)
    await db.open()
    try:
        yield db
    finally:
        await db.close()
