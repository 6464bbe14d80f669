"""Remote actors written inside Database.write_batch (the first-contact group commit) end up exactly
as the async store functions write them: same columns, same values, an update in place on refetch."""
from __future__ import annotations

from dataclasses import asdict

import pytest

from fedserver.db import database_for, migrate
from fedserver.store import actors as actor_store
from tests import engines

NOW, LATER = "2026-01-01T00:00:00.000000Z", "2026-01-02T00:00:00.000000Z"


def profile(name: str, **changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "username": name, "domain": "remote.example", "actor_type": "Person", "display_name": name.title(),
        "summary_html": "<p>hi</p>", "url": None, "inbox_url": f"https://remote.example/users/{name}/inbox",
        "shared_inbox_url": "https://remote.example/inbox", "outbox_url": None, "followers_url": None,
        "following_url": None, "featured_url": None, "icon_url": None, "icon_media_type": None,
        "key_id": f"https://remote.example/users/{name}#main-key", "public_key_pem": "PEM",
        "manually_approves_followers": 0, "discoverable": 1, "indexable": 0, "raw_json": "{}"}
    return {**base, **changes}


@pytest.fixture
async def db(tmp_path):
    database = database_for(engines.database_target(tmp_path / "db.sqlite3"))
    await database.open()
    await migrate(database)
    yield database
    await database.close()


def _comparable(actor: actor_store.Actor) -> dict[str, object]:
    values = asdict(actor)
    for column in ("id", "uri", "username", "display_name", "inbox_url", "key_id"):
        values.pop(column)
    return values


async def test_a_batch_written_actor_equals_one_written_by_the_async_functions(db):
    async with db.transaction() as tx:
        async_id = await actor_store.upsert_remote_actor(tx, uri="https://remote.example/users/a", now=NOW,
                                                         **profile("a"))

    def write(conn):
        uri = "https://remote.example/users/b"
        existing = actor_store.actor_id_by_uri_sync(conn, uri)
        actor_id = actor_store.upsert_remote_actor_sync(conn, uri=uri, now=NOW, existing=existing,
                                                        profile=profile("b"))
        return existing, actor_store.get_actors_by_ids_sync(conn, [actor_id])[actor_id]

    existing, batch_actor = await db.write_batch(write)
    assert existing is None
    async_actor = await actor_store.get_actor(db.reader, async_id)
    assert async_actor is not None
    assert _comparable(batch_actor) == _comparable(async_actor)
    assert batch_actor == await actor_store.get_actor_by_uri(db.reader, "https://remote.example/users/b")


async def test_a_batch_refetch_updates_the_row_in_place(db):
    uri = "https://remote.example/users/c"

    def write(when: str, pem: str):
        def work(conn):
            existing = actor_store.actor_id_by_uri_sync(conn, uri)
            return actor_store.upsert_remote_actor_sync(conn, uri=uri, now=when, existing=existing,
                                                        profile=profile("c", public_key_pem=pem))
        return work

    first = await db.write_batch(write(NOW, "OLD"))
    second = await db.write_batch(write(LATER, "NEW"))
    assert first == second
    actor = await actor_store.get_actor_by_key_id(db.reader, "https://remote.example/users/c#main-key")
    assert actor is not None
    assert (actor.public_key_pem, actor.created_at, actor.updated_at, actor.fetched_at) == ("NEW", NOW, LATER, LATER)


async def test_unknown_columns_are_refused_by_both_forms(db):
    with pytest.raises(ValueError):
        async with db.transaction() as tx:
            await actor_store.upsert_remote_actor(tx, uri="https://remote.example/users/d", now=NOW,
                                                  **profile("d", evil=1))
    with pytest.raises(ValueError):
        await db.write_batch(lambda conn: actor_store.upsert_remote_actor_sync(
            conn, uri="https://remote.example/users/d", now=NOW, existing=None, profile=profile("d", evil=1)))
