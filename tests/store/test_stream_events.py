"""The stream_events table that every serving process tails by id: pruning never lets ids start
over below where the processes read from."""
from __future__ import annotations

import pytest

from fedserver.db import Database, migrate
from fedserver.store import stream_events

OLD, NEW, LATER = "2026-01-01T00:00:00.000Z", "2026-01-01T00:10:00.000Z", "2026-01-02T00:00:00.000Z"


@pytest.fixture
async def db(tmp_path):
    database = Database(tmp_path / "db.sqlite3")
    await database.open()
    await migrate(database)
    yield database
    await database.close()


async def test_ids_keep_growing_after_every_old_event_is_pruned(db):
    async with db.transaction() as tx:
        for post_id in (1, 2, 3):
            await stream_events.add(tx, kind="post", subject_id=post_id, sort_id=post_id, actor_id=None, now=OLD)
    read_up_to = await stream_events.latest_id(db.reader)
    async with db.transaction() as tx:
        assert await stream_events.prune(tx, LATER) == 2  # all are old; the newest stays
    async with db.transaction() as tx:
        await stream_events.add(tx, kind="post", subject_id=4, sort_id=4, actor_id=None, now=NEW)
    after = await stream_events.after(db.reader, read_up_to, 10)
    assert [event.subject_id for event in after] == [4]
