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


async def test_concurrent_delivery_claims_lease_every_row_once_without_waiting_on_each_other():
    url = engines.fresh_postgres_url()
    async with open_database(url) as setup:
        async with setup.transaction() as tx:
            await tx.execute("INSERT INTO actors (id, uri, username, domain, key_id, created_at, updated_at)"
                             " VALUES (1, 'u', 'alice', 'x', 'k', ?, ?)", (THEN, THEN))
            await tx.execute("INSERT INTO outbound_activities (id, uri, actor_id, activity_type, body, created_at)"
                             " VALUES (1, 'a', 1, 'Create', '{}', ?)", (THEN,))
            await delivery_store.enqueue_deliveries(
                tx, 1, [(f"https://h{i % 50}.test/u{i}", f"h{i % 50}.test") for i in range(2000)], due_ms=1, now=THEN)
    claimed: list[list[int]] = []

    async def claimer(name: str) -> None:
        mine: list[int] = []
        claimed.append(mine)
        async with open_database(url) as db:
            while True:
                got = await db.write_batch(lambda conn: claims.claim_deliveries(
                    conn, owner=name, now_ms=int(time.time() * 1000), lease_ms=600_000, limit=37,
                    per_host=1_000_000))
                if not got:
                    return
                mine += [delivery.id for delivery in got]

    await asyncio.wait_for(asyncio.gather(*(claimer(f"worker-{n}") for n in range(CLAIMERS))), 120)
    every = [delivery_id for mine in claimed for delivery_id in mine]
    assert len(every) == len(set(every)) == 2000


# --- ids in commit order -----------------------------------------------------------------------

async def _add_stream_event(tx, n: int) -> None:
    await stream_events.add(tx, kind="post", subject_id=n, sort_id=n, actor_id=None, now=THEN)


async def _tail_stream_events(db, after: int) -> list[tuple[int, int]]:
    return [(event.id, event.subject_id) for event in await stream_events.after(db.reader, after, 100)]


async def _add_corpus_change(tx, n: int) -> None:
    await corpus.record_change(tx, post_id=n, record_id=f"r{n}", action="removed", reason="post_deleted",
                               state="removed", consent_event_id=None, content_hash="", now=THEN)


async def _tail_corpus_changes(db, after: int) -> list[tuple[int, int]]:
    return [(change["seq"], change["post_id"]) for change in await corpus.changes_after(db.reader, after, 100)]


@pytest.mark.parametrize("add, tail", [(_add_stream_event, _tail_stream_events),
                                       (_add_corpus_change, _tail_corpus_changes)],
                         ids=["stream_events", "corpus_changes"])
async def test_a_tailer_sees_a_row_whose_transaction_drew_the_smaller_id_and_committed_last(add, tail):
    url = engines.fresh_postgres_url()
    async with open_database(url) as first, open_database(url) as second:
        async with first.transaction() as tx:
            await tx.execute("INSERT INTO actors (id, uri, username, domain, key_id, created_at, updated_at)"
                             " VALUES (1, 'https://remote.test/a', 'a', 'remote.test', 'k', ?, ?)", (THEN, THEN))
            for n in (1, 2):
                await tx.execute("INSERT INTO posts (id, uri, actor_id, visibility, published_at, created_at,"
                                 " updated_at) VALUES (?, ?, 1, 'public', ?, ?, ?)",
                                 (n, f"https://remote.test/p{n}", THEN, THEN, THEN))
        start = max([row_id for row_id, _ in await tail(first, 0)], default=0)
        slow_has_written, let_slow_commit = asyncio.Event(), asyncio.Event()

        async def slow_writer() -> None:  # writes first, commits last (BASE: with the smaller id)
            async with first.transaction() as tx:
                await add(tx, 1)
                slow_has_written.set()
                await let_slow_commit.wait()

        async def quick_writer() -> None:
            async with second.transaction() as tx:
                await add(tx, 2)

        slow = asyncio.create_task(slow_writer())
        await slow_has_written.wait()
        quick = asyncio.create_task(quick_writer())
        await asyncio.wait([quick], timeout=1.0)  # BASE: committed; now: waits for the slow one
        seen = await tail(first, start)  # a tailer looks while the slow writer is still open
        cursor = max([row_id for row_id, _ in seen], default=start)
        let_slow_commit.set()
        await asyncio.wait_for(asyncio.gather(slow, quick), 10)
        seen += await tail(first, cursor)
    assert sorted(n for _, n in seen) == [1, 2]
    assert [row_id for row_id, _ in seen] == sorted(row_id for row_id, _ in seen)
