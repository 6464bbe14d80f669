"""Copying every row of an SQLite instance into a PostgreSQL database of the same schema
(`fedserver db copy`): which tables, in which order, and the statements that read and write them.
The same numbered migrations made both schemas, so the tables and columns are the same; SQLite's
full-text tables (FTS5 and their shadow tables) have no rows of their own to copy: PostgreSQL's
search indexes are built from posts and actors as they arrive."""
from __future__ import annotations

from graphlib import CycleError, TopologicalSorter
from typing import Any, AsyncIterator

from fedserver.store.rows import fetch_all, fetch_value

# Tables each engine keeps for itself.
_SKIPPED = {"schema_migrations"}


class CopyError(Exception):
    """The copy cannot be made as asked (a target that is not empty, tables that do not match)."""


async def sqlite_tables(conn: Any) -> dict[str, list[str]]:
    """SQLite's own tables (not its internal or FTS ones) and their columns, in column order."""
    rows = await fetch_all(conn, "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
                                 " AND name NOT LIKE 'sqlite_%' ORDER BY name")
    virtual = {row[0] for row in rows if (row[1] or "").upper().startswith("CREATE VIRTUAL TABLE")}
    tables: dict[str, list[str]] = {}
    for name, _ in rows:
        # FTS5 keeps its index in shadow tables named after the virtual one (post_search_data ...).
        if name in _SKIPPED or name in virtual or any(name.startswith(f"{v}_") for v in virtual):
            continue
        tables[name] = [row[1] for row in await fetch_all(conn, f'PRAGMA table_info("{name}")')]
    return tables


async def postgres_tables(conn: Any) -> dict[str, list[str]]:
    rows = await fetch_all(
        conn, "SELECT c.table_name, c.column_name FROM information_schema.columns c"
              " JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
              " WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"
              " ORDER BY c.table_name, c.ordinal_position")
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        if table not in _SKIPPED:
            tables.setdefault(table, []).append(column)
    return tables


async def copy_order(conn: Any, tables: list[str]) -> list[str]:
    """The tables with every table after those its foreign keys name (read from SQLite), so that
    PostgreSQL's constraints hold at each insert."""
    graph: dict[str, set[str]] = {}
    for table in tables:
        parents = {row[2] for row in await fetch_all(conn, f'PRAGMA foreign_key_list("{table}")')}
        graph[table] = {parent for parent in parents if parent != table and parent in tables}
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise CopyError(f"foreign keys form a cycle: {exc.args[1]}") from None


async def read_rows(conn: Any, table: str, columns: list[str], batch: int = 1000) -> AsyncIterator[list[tuple]]:
    """A table's rows in rowid order (ids in the order they were made), a batch at a time."""
    names = ", ".join(f'"{column}"' for column in columns)
    after = -(2 ** 63)
    while True:
        rows = await fetch_all(conn, f'SELECT rowid, {names} FROM "{table}" WHERE rowid > ? ORDER BY rowid LIMIT ?',
                               (after, batch))
        if not rows:
            return
        after = rows[-1][0]
        yield [tuple(row)[1:] for row in rows]


async def insert_rows(conn: Any, table: str, columns: list[str], rows: list[tuple]) -> None:
    names = ", ".join(f'"{column}"' for column in columns)
    marks = ", ".join("?" for _ in columns)
    await conn.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)


async def count_rows(conn: Any, table: str) -> int:
    return int(await fetch_value(conn, f'SELECT count(*) FROM "{table}"') or 0)


async def continue_identities(conn: Any) -> None:
    """PostgreSQL: each identity column draws after the largest id copied into it (SQLite's next
    rowid is one past the largest, too)."""
    rows = await fetch_all(conn, "SELECT table_name, column_name FROM information_schema.columns"
                                 " WHERE table_schema = current_schema() AND is_identity = 'YES'")
    for table, column in rows:
        await fetch_all(conn, f"SELECT setval(pg_get_serial_sequence(?, ?), COALESCE(max(\"{column}\"), 0) + 1,"
                              f' false) FROM "{table}"', (table, column))
