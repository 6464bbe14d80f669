"""Named leases for periodic jobs that must run in one process at a time (corpus reconciliation,
poll closing, pruning): whichever worker holds a job's row runs it, renewing the lease while it
does; when that process dies the lease runs out and another worker's copy of the job takes over."""
from __future__ import annotations

import sqlite3


def acquire(conn: sqlite3.Connection, name: str, *, owner: str, now_ms: int, lease_ms: int) -> bool:
    """Take or renew the lease on `name` for `owner` until now + lease_ms; False when another owner
    holds it and its lease has not run out. Synchronous: for Database.write_batch."""
    rows = conn.execute(
        "INSERT INTO worker_leases (name, owner, locked_until) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, locked_until = excluded.locked_until"
        " WHERE worker_leases.owner = excluded.owner OR worker_leases.locked_until <= ?"
        " RETURNING owner", (name, owner, now_ms + lease_ms, now_ms)).fetchall()
    return bool(rows)


def release(conn: sqlite3.Connection, name: str, *, owner: str) -> None:
    """Give the lease up (a graceful stop), so that another worker takes the job over at once."""
    conn.execute("DELETE FROM worker_leases WHERE name = ? AND owner = ?", (name, owner))
