"""One statement's round trip to the database, the unit every store call pays: `SELECT 1` and a
one-row INSERT committed per row, on PostgreSQL over its socket (psycopg, autocommit, a TEMP table
that goes with the connection) beside sqlite3 in WAL mode on a temporary file, p50/p99.

    python -m bench.db_roundtrip --database-url "postgresql://fedserver@/postgres?host=/tmp/pgmain"

A PostgreSQL statement is a message to another process, which must be scheduled to answer: on a
busy machine the p99 shows it. SQLite's statement is a function call in the same process. Bounded:
3,000 reads and 2,000 writes per engine. Prints the load average and ends with a `JSON {...}` line.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_average, median, pct

BODY = "x" * 1500  # about an inbox row's size


def timed(call: Callable[[int], object], n: int) -> dict[str, float]:
    """p50/p99 in µs of n calls."""
    times = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - start) * 1e6)
    return {"p50_us": median(times), "p99_us": pct(times, 99)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", required=True, help="a PostgreSQL server (postgresql://...)")
    p.add_argument("--reads", type=int, default=3000)
    p.add_argument("--writes", type=int, default=2000)
    args = p.parse_args()
    import psycopg

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in load_average())}")
    out: dict[str, dict[str, float]] = {}
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE bench_roundtrip (id integer PRIMARY KEY, body text)")
        out["pg_select"] = timed(lambda i: conn.execute("SELECT 1").fetchone(), args.reads)
        out["pg_insert_commit"] = timed(
            lambda i: conn.execute("INSERT INTO bench_roundtrip VALUES (%s, %s)", (i, BODY)), args.writes)
    with tempfile.TemporaryDirectory(prefix="fedserver-bench-rtt-") as tmp:
        conn = sqlite3.connect(os.path.join(tmp, "x.sqlite3"), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE bench_roundtrip (id integer PRIMARY KEY, body text)")
            out["sqlite_select"] = timed(lambda i: conn.execute("SELECT 1").fetchone(), args.reads)
            out["sqlite_insert_commit"] = timed(
                lambda i: conn.execute("INSERT INTO bench_roundtrip VALUES (?, ?)", (i, BODY)), args.writes)
        finally:
            conn.close()
    for name, figures in out.items():
        print(f"{name:22s} p50 {figures['p50_us']:8.1f} µs   p99 {figures['p99_us']:8.1f} µs")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in load_average())}")
    print("JSON " + json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
