"""Group commits for first contacts: the actor rows of remote actors fetched at about the same time
(each inbox request from a never-seen actor fetches its key and stores the actor before it can be
verified) are written in one transaction instead of one each. Alone, each took its own write
transaction of six round trips queued on the one write lock, which capped first contacts near
600/s (bench/RESULTS.md). A caller gets its actor once the transaction holding its row has
committed, exactly as with a transaction of its own.

Only what needs nothing else in the transaction is written here: a new actor whose document
signals no training choice (for it, consent.apply_remote_signal has nothing to record; store_document
sends nothing else). An actor that already has a row (a refresh, a rotated key) gets None back and
takes store_document's own transaction, which records any consent change with it."""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from dataclasses import dataclass, field

from fedserver.context import Context
from fedserver.store import actors as actor_store
from fedserver.store.actors import Actor

log = logging.getLogger(__name__)

# Rows per transaction (the read back is one IN list, far below SQLite's 999 variables).
MAX_BATCH = 256


@dataclass
class _Job:
    uri: str
    profile: dict[str, object]
    future: asyncio.Future[Actor | None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class _Batch:
    """Jobs that will share one transaction. It stays open to new jobs while it waits for the write
    lock, and is sealed by the database thread when the transaction starts (hence the thread lock):
    whatever arrives until then rides along, and what arrives later opens the next batch, which
    queues for the write lock at once, so the lock passes straight to it."""

    def __init__(self) -> None:
        self._jobs: list[_Job] = []
        self._sealed = False
        self._lock = threading.Lock()

    def add(self, job: _Job) -> bool:
        with self._lock:
            if self._sealed or len(self._jobs) >= MAX_BATCH:
                return False
            self._jobs.append(job)
            return True

    def seal(self) -> list[_Job]:
        with self._lock:
            self._sealed = True
            return list(self._jobs)


class ActorWriter:
    """The batch open to new first contacts and the tasks writing batches. A task lives only while
    its batch is written, and holds the context of the call that opened the batch only for that long."""

    def __init__(self) -> None:
        self._open: _Batch | None = None
        self._writing: set[asyncio.Task[None]] = set()

    async def store_new(self, ctx: Context, uri: str, profile: dict[str, object]) -> Actor | None:
        """Store a remote actor from its checked profile (store.actors columns) if it is new, in a
        transaction shared with other first contacts; the stored actor once committed, or None when
        the actor already has a row (the caller must then store it in a transaction of its own)."""
        job = _Job(uri, profile)
        batch = self._open
        if batch is None or not batch.add(job):
            batch = self._open = _Batch()
            batch.add(job)
            task = asyncio.create_task(self._write(ctx, batch), name="actor-writer")
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)
        # Not shielded: a cancelled request's row is still written with the batch, nobody waits for it.
        return await job.future

    async def _write(self, ctx: Context, batch: _Batch) -> None:
        now = ctx.clock.now_iso()

        def work(conn: sqlite3.Connection) -> tuple[list[_Job], list[Actor | None]]:
            jobs = batch.seal()
            return jobs, _store_batch(conn, jobs, now)

        try:
            # Urgent: inbox requests are waiting for these rows, background workers are not.
            jobs, actors = await ctx.db.write_batch(work, urgent=True)
        except asyncio.CancelledError:
            for job in batch.seal():
                job.future.cancel()
            raise
        except Exception:  # noqa: BLE001 - isolate the row that broke the batch
            jobs = batch.seal()
            log.exception("actor writer: batch of %d failed; storing its rows one by one", len(jobs))
            for job in jobs:
                try:
                    (actor,) = await ctx.db.write_batch(
                        lambda conn, job=job: _store_batch(conn, [job], ctx.clock.now_iso()), urgent=True)
                except Exception as exc:  # noqa: BLE001 - that request fails alone
                    if not job.future.done():
                        job.future.set_exception(exc)
                else:
                    if not job.future.done():
                        job.future.set_result(actor)
            return
        finally:
            if self._open is batch:
                self._open = None
        for job, actor in zip(jobs, actors):
            if not job.future.done():
                job.future.set_result(actor)


def _store_batch(conn: sqlite3.Connection, batch: list[_Job], now: str) -> list[Actor | None]:
    """Inside the batch's transaction (database thread): each job's stored actor, or None for an
    actor that had a row before this transaction."""
    written: dict[str, int] = {}  # uri -> id, for rows this transaction wrote (a uri twice in a batch)
    ids: list[int | None] = []
    for job in batch:
        existing = actor_store.actor_id_by_uri_sync(conn, job.uri)
        if existing is not None and written.get(job.uri) != existing:
            ids.append(None)
            continue
        written[job.uri] = actor_store.upsert_remote_actor_sync(conn, uri=job.uri, now=now, existing=existing,
                                                                profile=job.profile)
        ids.append(written[job.uri])
    actors = actor_store.get_actors_by_ids_sync(conn, sorted(set(written.values())))
    return [None if actor_id is None else actors[actor_id] for actor_id in ids]
