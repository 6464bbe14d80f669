"""Database micro-benchmark: what one read and one inbox write cost through fedserver's own helpers
(aiosqlite), against the same work in fewer thread hops and in plain sqlite3. Explains the inbound
and delivery figures: each aiosqlite call is a round trip to its thread.

    python -m bench.micro_db
"""
from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import header, machine

BODY = "x" * 1000


async def run(seconds: float = 1.5) -> None:
    from fedserver.db import Database, migrate
    from fedserver.store import inbox as inbox_store
    from fedserver.store.actors import get_actor_by_key_id
    from fedserver.store.rows import fetch_one

    path = Path(tempfile.mkdtemp(prefix="fedserver-bench-micro-")) / "db.sqlite3"
    db = Database(path)
    await db.open()
    await migrate(db)
    async with db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO actors (uri, username, domain, key_id, public_key_pem, created_at, updated_at)"
            " VALUES (?, ?, 'remote.example', ?, 'pem', 'now', 'now')",
            [(f"https://remote.example/users/u{i}", f"u{i}", f"https://remote.example/users/u{i}#main-key")
             for i in range(1000)])
    sql = "SELECT * FROM actors WHERE key_id = ? ORDER BY id LIMIT 1"

    async def rate(label: str, fn) -> float:
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            await fn(n)
            n += 1
        per_s = n / (time.perf_counter() - start)
        print(f"{label:70s} {per_s:8.0f}/s  ({1e6 / per_s:6.0f} us each)")
        return per_s

    key = lambda n: f"https://remote.example/users/u{n % 1000}#main-key"  # noqa: E731
    async def three_hops(n: int):
        async with db.reader.execute(sql, (key(n),)) as cur:
            return await cur.fetchone()

    await rate("store.actors.get_actor_by_key_id (rows.fetch_one + dataclass)",
               lambda n: get_actor_by_key_id(db.reader, key(n)))
    await rate("rows.fetch_one, same query (execute_fetchall: 1 hop)", lambda n: fetch_one(db.reader, sql, (key(n),)))
    await rate("execute+fetchone+close, same query (3 hops, rows.fetch_one before)", three_hops)
    await rate("aiosqlite execute_fetchall, same query (1 hop)", lambda n: db.reader.execute_fetchall(sql, (key(n),)))
    sync = sqlite3.connect(path)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sync.execute(sql, (key(n),)).fetchone()
        n += 1
    per_s = n / (time.perf_counter() - start)
    print(f"{'plain sqlite3, same query (no thread)':70s} {per_s:8.0f}/s  ({1e6 / per_s:6.0f} us each)")
    sync.close()

    async def one_tx(n: int) -> None:
        async with db.transaction() as tx:
            await inbox_store.enqueue_inbox_item(tx, activity_uri=f"urn:a:{n}", activity_type="Create",
                                                 signer_uri="s", body=BODY, now="now", now_ms=0)
    await rate("inbox enqueue, one transaction each (BEGIN+INSERT+COMMIT)", one_tx)

    counter = [10**9]

    async def batch_tx(_: int) -> None:
        async with db.transaction() as tx:
            base = counter[0]
            counter[0] += 100
            await tx.executemany(
                "INSERT INTO inbox_items (activity_hash, activity_uri, activity_type, signer_uri, body,"
                " next_attempt_at, received_at) VALUES (?, ?, 'Create', 's', ?, 0, 'now')"
                " ON CONFLICT (activity_hash) DO NOTHING",
                [(inbox_store.activity_key(f"urn:b:{base + i}"), f"urn:b:{base + i}", BODY) for i in range(100)])
    r = await rate("inbox enqueue, 100 per transaction (executemany) -- batches", batch_tx)
    print(f"{'  = rows per second':70s} {100 * r:8.0f}/s")

    async def concurrent_reads(_: int) -> None:
        await asyncio.gather(*(get_actor_by_key_id(db.reader, key(i)) for i in range(64)))
    r = await rate("64 concurrent get_actor_by_key_id on the one reader -- batches", concurrent_reads)
    print(f"{'  = reads per second':70s} {64 * r:8.0f}/s")
    await db.close()


def main() -> int:
    header("database micro-benchmark (fedserver store helpers over aiosqlite)")
    print(machine())
    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
