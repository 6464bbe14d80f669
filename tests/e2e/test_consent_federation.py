"""Training consent travelling between two real fedserver instances on loopback: b learns each
author's choice at a from Update(Person) and the signals on their Notes, and b's corpus takes and
drops their posts accordingly (docs/fep-consent.md, issue 3 "Federated signals")."""
from __future__ import annotations

import asyncio

import pytest

from fedserver.corpus.sync import reconcile
from fedserver.services import accounts, consent, follows, posting
from fedserver.services.posting import Draft
from tests.conftest import wait_until

pytestmark = pytest.mark.usefixtures("fast_accounts")


async def remote_choice(instance, actor_uri: str):
    rows = await instance.query(
        "SELECT c.choice, c.license, c.scope, c.effective_from, e.source FROM consent_choices c"
        " JOIN actors a ON a.id = c.actor_id JOIN consent_events e ON e.id = c.event_id"
        " WHERE a.uri = ? AND c.purpose = 'train-ai'", (actor_uri,))
    return rows[0] if rows else None


async def choice_is(instance, actor_uri: str, choice: str):
    row = await remote_choice(instance, actor_uri)
    return row if row is not None and row[0] == choice else None


async def post_at(instance, uri: str):
    rows = await instance.query("SELECT id, deleted_at, corpus_excluded FROM posts WHERE uri = ?", (uri,))
    return rows[0] if rows else None


async def corpus_state(instance, uri: str):
    rows = await instance.query("SELECT r.state FROM corpus_records r JOIN posts p ON p.id = r.post_id"
                                " WHERE p.uri = ?", (uri,))
    return rows[0][0] if rows else None


async def removals(instance, uri: str) -> list[str]:
    rows = await instance.query("SELECT c.reason FROM corpus_changes c JOIN posts p ON p.id = c.post_id"
                                " WHERE p.uri = ? AND c.action = 'removed' ORDER BY c.seq", (uri,))
    return [r[0] for r in rows]


async def accepted(instance, follower_uri: str, followee_uri: str) -> bool:
    rows = await instance.query(
        "SELECT f.state FROM follows f JOIN actors a ON a.id = f.follower_id JOIN actors b ON b.id = f.followee_id"
        " WHERE a.uri = ? AND b.uri = ?", (follower_uri, followee_uri))
    return bool(rows) and rows[0][0] == "accepted"


@pytest.fixture
async def pair(instances):
    """bob@b follows alice@a and carol@a; neither of them has chosen yet."""
    a = await instances("a")
    b = await instances("b")
    for name in ("alice", "carol"):
        await accounts.create_account(a.ctx, name)
    await accounts.create_account(b.ctx, "bob")
    for name in ("alice", "carol"):
        await follows.follow(b.ctx, "bob", a.handle(name))
        await wait_until(lambda: accepted(b, b.actor_uri("bob"), a.actor_uri(name)), what=f"bob follows {name}")
    return a, b


async def test_consent_withdrawal_exclusion_and_delete_travel_to_the_other_servers_corpus(pair):
    a, b = pair
    alice, carol = a.actor_uri("alice"), a.actor_uri("carol")

    # alice opts in at a: b receives Update(Person) and records her choice as a remote signal.
    await consent.set_training_consent(a.ctx, "alice", "allow", license="CC-BY-SA-4.0", scope="all")
    seen = await wait_until(lambda: choice_is(b, alice, "allow"), what="alice's consent recorded at b")
    choice, license, scope, effective_from, source = seen
    assert (license, source) == ("CC-BY-SA-4.0", "remote-signal")
    # Whatever scope she chose at a, b only counts posts from the moment it learned of it.
    assert scope == "future" and effective_from is not None
    assert await b.count("SELECT count(*) FROM consent_events e JOIN actors x ON x.id = e.actor_id"
                         " WHERE x.uri = ? AND e.source = 'remote-signal' AND e.choice = 'allow'", (alice,)) == 1

    # Her later public posts arrive at b and enter b's corpus; carol's never does.
    kept = await posting.create_post(a.ctx, "alice", Draft(text="Fine to train on this"))
    to_exclude = await posting.create_post(a.ctx, "alice", Draft(text="This one I will keep out"))
    to_delete = await posting.create_post(a.ctx, "alice", Draft(text="This one I will delete"))
    never = await posting.create_post(a.ctx, "carol", Draft(text="I never said yes"))
    for post in (kept, to_exclude, to_delete, never):
        await wait_until(lambda: post_at(b, post.uri), what=f"{post.uri} delivered to b")
    await reconcile(b.ctx)
    for post in (kept, to_exclude, to_delete):
        assert await corpus_state(b, post.uri) == "present", post.uri
    assert await corpus_state(b, never.uri) is None
    # carol's documents carry the noai hint (she never chose): b holds her as deny.
    assert (await remote_choice(b, carol))[::4] == ("deny", "remote-signal")

    # An excluded post leaves b's corpus (its Update carries the post's own no).
    await posting.set_post_excluded(a.ctx, "alice", to_exclude.uri, True)
    await wait_until(lambda: _excluded(b, to_exclude.uri), what="exclusion reached b")
    # A remote Delete removes the post.
    await posting.delete_post(a.ctx, "alice", to_delete.uri)
    await wait_until(lambda: _deleted(b, to_delete.uri), what="Delete reached b")
    await reconcile(b.ctx)
    assert await removals(b, to_exclude.uri) == ["post_excluded"]
    assert await removals(b, to_delete.uri) == ["post_deleted"]
    assert await corpus_state(b, kept.uri) == "present"

    # alice withdraws: b receives the Update and her remaining post leaves b's corpus.
    await consent.set_training_consent(a.ctx, "alice", "deny")
    await wait_until(lambda: choice_is(b, alice, "deny"), what="withdrawal recorded at b")
    await reconcile(b.ctx)
    assert await removals(b, kept.uri) == ["consent_withdrawn"]
    assert await corpus_state(b, kept.uri) == "removed"
    assert await b.count("SELECT count(*) FROM corpus_records WHERE state = 'present'") == 0
    sources = await b.query("SELECT e.choice, e.source FROM consent_events e JOIN actors x ON x.id = e.actor_id"
                            " WHERE x.uri = ? ORDER BY e.id", (alice,))
    # First the noai hint b read when bob followed her (no allow yet), then her two changes.
    assert sources == [("deny", "remote-signal"), ("allow", "remote-signal"), ("deny", "remote-signal")]


async def _excluded(instance, uri: str) -> bool:
    row = await post_at(instance, uri)
    return bool(row and row[2])


async def _deleted(instance, uri: str) -> bool:
    row = await post_at(instance, uri)
    return bool(row and row[1])


async def test_posts_from_before_the_consent_reached_us_stay_out(pair):
    a, b = pair
    early = await posting.create_post(a.ctx, "alice", Draft(text="Written before I said yes"))
    await wait_until(lambda: post_at(b, early.uri), what="early post at b")
    # Make sure b observes the consent in a later second than the post was published.
    await asyncio.sleep(1.05)
    await consent.set_training_consent(a.ctx, "alice", "allow", license="CC0-1.0", scope="all")
    await wait_until(lambda: choice_is(b, a.actor_uri("alice"), "allow"), what="consent at b")
    await reconcile(b.ctx)
    assert await corpus_state(b, early.uri) is None


async def test_a_note_that_says_no_stays_out_even_when_its_author_consented(pair):
    a, b = pair
    await consent.set_training_consent(a.ctx, "alice", "allow", license="CC-BY-4.0", scope="future")
    await wait_until(lambda: choice_is(b, a.actor_uri("alice"), "allow"), what="consent at b")
    # Excluded when written: the Create itself carries the Note's no.
    post = await posting.create_post(a.ctx, "alice", Draft(text="Not this one"))
    await posting.set_post_excluded(a.ctx, "alice", post.uri, True)
    await wait_until(lambda: _excluded(b, post.uri), what="excluded post at b")
    await reconcile(b.ctx)
    assert await corpus_state(b, post.uri) is None
