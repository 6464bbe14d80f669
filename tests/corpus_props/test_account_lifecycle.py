"""Suspension and deletion of an account reach the corpus feed and the person's ability to act."""
from __future__ import annotations

import pytest

from fedserver.app import close_context, open_context
from fedserver.corpus import sync
from fedserver.services import accounts, auth, consent, posting
from fedserver.services.accounts import AccountError
from fedserver.store import consent as consent_store
from fedserver.store import corpus as corpus_store
from tests.conftest import loopback_settings


@pytest.fixture
async def ctx(tmp_path):
    context = await open_context(loopback_settings(tmp_path, 9))
    await accounts.create_account(context, "ann", password="long enough")
    await posting.create_post(context, "ann", posting.Draft(text="a public post"))
    await consent.set_training_consent(context, "ann", "allow", license="CC0-1.0", scope="all")
    await sync.reconcile(context)
    yield context
    await close_context(context)


async def _actions(ctx) -> list[tuple[str, str | None]]:
    return [(c["action"], c["reason"]) for c in await corpus_store.changes_after(ctx.db.reader, 0, 100)]


async def test_suspension_removes_records_and_lifting_it_brings_them_back(ctx):
    await auth.set_suspended(ctx, "ann", True)
    assert await _actions(ctx) == [("added", None), ("removed", "account_suspended")]
    with pytest.raises(AccountError, match="suspended"):
        await posting.create_post(ctx, "ann", posting.Draft(text="not while suspended"))
    with pytest.raises(AccountError):
        await auth.sign_in(ctx, "ann", "long enough", client="test")
    await auth.set_suspended(ctx, "ann", False)
    assert (await _actions(ctx))[-1] == ("added", None)
    assert await auth.sign_in(ctx, "ann", "long enough", client="test")


async def test_deleting_an_account_removes_its_records_with_reason_account_deleted(ctx):
    actor = await accounts.require_local_actor(ctx, "ann")
    await auth.delete_account(ctx, "ann", password="long enough")
    assert await _actions(ctx) == [("added", None), ("removed", "account_deleted")]
    # The log keeps the history and records why consent ended.
    events = await consent_store.list_events_of_actor(ctx.db.reader, actor.id)
    assert [(e.choice, e.source) for e in events] == [("allow", "self"), ("unset", "system")]
    assert (await consent.verify_log(ctx)).ok
