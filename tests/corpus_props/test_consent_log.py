"""The consent log is append-only and any rewrite of it is detected."""
from __future__ import annotations

import sqlite3

import pytest

from fedserver.app import close_context, open_context
from fedserver.services import accounts, consent
from tests import engines
from tests.conftest import loopback_settings


def _raw(ctx, *statements: str) -> None:
    """Run statements on the instance's database directly, as someone with access to it could."""
    if engines.on_postgresql():
        import psycopg

        with psycopg.connect(ctx.settings.database.url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)
        return
    with sqlite3.connect(ctx.settings.database_path) as raw:
        for statement in statements:
            raw.execute(statement)


def _database_error() -> type[Exception]:
    if engines.on_postgresql():
        import psycopg

        return psycopg.Error
    return sqlite3.DatabaseError


@pytest.fixture
async def ctx(tmp_path):
    context = await open_context(loopback_settings(tmp_path, 9))
    await accounts.create_account(context, "ann")
    await consent.set_training_consent(context, "ann", "allow", license="CC-BY-4.0", scope="future")
    await consent.set_training_consent(context, "ann", "allow", license="CC0-1.0", scope="all")
    await consent.set_training_consent(context, "ann", "deny")
    yield context
    await close_context(context)


async def test_consent_history_lists_every_change_with_terms_version_and_chain(ctx):
    events = await consent.history(ctx, "ann")
    assert [e.choice for e in events] == ["allow", "allow", "deny"]
    assert [e.license for e in events] == ["CC-BY-4.0", "CC0-1.0", None]
    assert all(e.terms_version and e.terms_hash for e in events)
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    result = await consent.verify_log(ctx)
    assert result.ok and result.events == 3 and result.head == events[-1].hash


async def test_the_database_refuses_to_update_or_delete_consent_events(ctx):
    with pytest.raises(_database_error(), match="append-only"):
        _raw(ctx, "UPDATE consent_events SET choice = 'allow' WHERE id = 3")
    with pytest.raises(_database_error(), match="append-only"):
        _raw(ctx, "DELETE FROM consent_events WHERE id = 1")


@pytest.mark.parametrize("tamper", [
    "UPDATE consent_events SET choice = 'allow' WHERE id = 3",
    "UPDATE consent_events SET license = 'CC0-1.0' WHERE id = 1",
    "DELETE FROM consent_events WHERE id = 2",
    "UPDATE consent_events SET created_at = '2020-01-01T00:00:00.000000Z' WHERE id = 2",
])
async def test_a_tampered_consent_log_fails_verification_at_the_altered_event(ctx, tamper):
    # Someone with access to the database can drop the guard; the hash chain still shows what they did.
    on = " ON consent_events" if engines.on_postgresql() else ""
    _raw(ctx, f"DROP TRIGGER consent_events_append_only_update{on}",
         f"DROP TRIGGER consent_events_append_only_delete{on}", tamper)
    result = await consent.verify_log(ctx)
    assert not result.ok
    assert result.first_bad_id in (1, 2, 3)
