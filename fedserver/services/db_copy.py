"""`fedserver db copy --to postgresql://...`: move an SQLite instance into an empty PostgreSQL
database, so that an instance that started small can grow without losing anything. Every table
is copied in one PostgreSQL transaction from one SQLite read snapshot (a failed copy leaves the
target as empty as it was), then checked: the same number of rows in every table, and the consent
log's hash chain verifies to the same head."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from fedserver.context import Context
from fedserver.db import open_database, prepare_schema, schema_versions
from fedserver.services.consent import verify_events
from fedserver.store import copy as copy_store
from fedserver.store.corpus import read_snapshot

log = logging.getLogger(__name__)


@dataclass
class CopyReport:
    rows: dict[str, int] = field(default_factory=dict)
    consent_events: int = 0
    consent_head: str = ""


async def copy_to_postgres(ctx: Context, url: str, *, progress: Callable[[str, int], None] | None = None
                           ) -> CopyReport:
    """Copy this (SQLite) instance's database into the empty PostgreSQL database at url."""
    import psycopg

    try:
        return await _copy(ctx, url, progress)
    except psycopg.Error as exc:
        # Cannot connect, no right to create tables, a row PostgreSQL refuses: nothing was committed.
        raise copy_store.CopyError(f"PostgreSQL refused the copy (nothing was kept): {exc}") from exc


async def _copy(ctx: Context, url: str, progress: Callable[[str, int], None] | None) -> CopyReport:
    if ctx.db.engine != "sqlite":
        raise copy_store.CopyError("db copy reads an SQLite instance; this one already uses PostgreSQL")
    source_versions = await schema_versions(ctx.db)
    async with open_database(url) as target:
        if target.engine != "postgresql":
            raise copy_store.CopyError("--to must be a postgresql:// URL")
        await prepare_schema(target, apply=True)
        filled = [table for table in await copy_store.postgres_tables(target.reader)
                  if await copy_store.count_rows(target.reader, table)]
        if filled:
            raise copy_store.CopyError(f"the PostgreSQL database is not empty ({', '.join(filled[:5])} have rows):"
                                       " copy into a new, empty database")
        if await schema_versions(target) != source_versions:
            raise copy_store.CopyError("this instance's schema is not its code's: run `fedserver migrate` first")
        report = CopyReport()
        async with open_database(ctx.db.path) as source, read_snapshot(source.reader) as snapshot:
            tables = await copy_store.sqlite_tables(snapshot)
            target_tables = await copy_store.postgres_tables(target.reader)
            if set(tables) != set(target_tables):
                raise copy_store.CopyError(f"tables differ: only in SQLite {sorted(set(tables) - set(target_tables))},"
                                           f" only in PostgreSQL {sorted(set(target_tables) - set(tables))}")
            async with target.transaction() as tx:
                for table in await copy_store.copy_order(snapshot, list(tables)):
                    columns = [c for c in tables[table] if c in target_tables[table]]
                    async for rows in copy_store.read_rows(snapshot, table, columns):
                        await copy_store.insert_rows(tx, table, columns, rows)
                    copied, expected = await copy_store.count_rows(tx, table), await copy_store.count_rows(
                        snapshot, table)
                    if copied != expected:
                        raise copy_store.CopyError(f"{table}: {copied} rows copied of {expected}")
                    report.rows[table] = copied
                    if progress is not None:
                        progress(table, copied)
                await copy_store.continue_identities(tx)
            source_log = await verify_events(snapshot)
        target_log = await verify_events(target.reader)
        if not (source_log.ok and target_log.ok and target_log.head == source_log.head
                and target_log.events == source_log.events):
            raise copy_store.CopyError(f"the consent log does not verify after the copy ({target_log.problem or 'head differs'})")
        report.consent_events, report.consent_head = target_log.events, target_log.head
    log.info("copied %d rows in %d tables to PostgreSQL", sum(report.rows.values()), len(report.rows))
    return report
