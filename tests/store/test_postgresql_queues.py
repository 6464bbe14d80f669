"""The queues on PostgreSQL with several claimers at once, each on its own connection (as worker
processes on several machines have): the inbox claim keeps one signer's activities with one
worker at a time and hands them out in arrival (id) order; every claim takes each row once; and
the tables tailed by id (stream_events, corpus_changes) show their ids in commit order.

PostgreSQL only: on SQLite write transactions run one at a time, so none of this can go wrong
there (its own claims are tested in test_delivery_claims.py and tests/e2e/test_workers.py)."""
from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter

import psycopg
import pytest

from fedserver.db import open_database
from fedserver.store import claims, corpus, stream_events
from fedserver.store import deliveries as delivery_store
from fedserver.store import inbox as inbox_store
from fedserver.store.inbox import NewInboxItem
from tests import engines

pytestmark = engines.postgresql_only

THEN = "2026-01-01T00:00:00.000Z"
SIGNERS = 6
ITEMS_PER_SIGNER = 100
CLAIMERS = 12
# Claims of several sizes (a worker claims more while no requests arrive): their first rows overlap.
LIMITS = (1, 2, 3, 5, 8)


def _inbox_items() -> list[NewInboxItem]:
    """Every signer's items, interleaved with the others' in a shuffled order per round: a claim's
    first rows then belong to many signers, several of one signer among them."""
    rng = random.Random(15)
    items = []
    for n in range(ITEMS_PER_SIGNER):
        signers = list(range(SIGNERS))
        rng.shuffle(signers)
        items += [NewInboxItem(f"https://remote{s}.test/activities/{n}", "Create", f"https://remote{s}.test/actor",
                               "{}") for s in signers]
    return items


async def test_concurrent_inbox_claims_never_lease_two_rows_of_one_signer_and_keep_its_order():
    url = engines.fresh_postgres_url()
    async with open_database(url) as setup:
        await setup.write_batch(lambda conn: inbox_store.insert_inbox_items(conn, _inbox_items(), now=THEN,
                                                                           now_ms=1))
    holder: dict[str, str] = {}  # signer -> the claimer holding its leased items now
    handed_out: dict[str, list[int]] = {}
    overlaps: list[str] = []
    guard = threading.Lock()
    total = SIGNERS * ITEMS_PER_SIGNER
    done = 0

    async def claimer(name: str) -> None:
        nonlocal done
        rng = random.Random(name)
        async with open_database(url) as db:
            idle_since = time.monotonic()
            while done < total and time.monotonic() - idle_since < 20:
                items = await db.write_batch(lambda conn: claims.claim_inbox_items(
                    conn, owner=name, now_ms=int(time.time() * 1000), lease_ms=600_000, limit=rng.choice(LIMITS)))
                if not items:
                    await asyncio.sleep(rng.uniform(0, 0.003))
                    continue
                idle_since = time.monotonic()
                with guard:  # after the claim committed: the database says these signers are ours
                    for signer in {item.signer_uri for item in items}:
                        if holder.get(signer, name) != name:
                            overlaps.append(f"{signer}: {holder[signer]} and {name}")
                        holder[signer] = name
                    for item in items:
                        handed_out.setdefault(item.signer_uri, []).append(item.id)
                await asyncio.sleep(rng.uniform(0, 0.004))  # applying them
                with guard:  # released here before the database releases them: never a false overlap
                    for signer in {item.signer_uri for item in items}:
                        if holder.get(signer) == name:
                            del holder[signer]
                await db.write_batch(lambda conn: inbox_store.mark_many_done(conn, [i.id for i in items], THEN))
                done += len(items)

    await asyncio.wait_for(asyncio.gather(*(claimer(f"worker-{n}") for n in range(CLAIMERS))), 120)
    assert overlaps == []
    async with open_database(url) as db:
        by_signer: dict[str, list[int]] = {}
        for row in await db.reader.execute_fetchall("SELECT id, signer_uri FROM inbox_items ORDER BY id"):
            by_signer.setdefault(row[1], []).append(row[0])
    # Each item handed out once, and each signer's in id order.
    assert handed_out == by_signer
