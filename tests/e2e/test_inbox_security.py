"""The inbox refuses what it must (unsigned, forged, stale, spoofed, oversized, malformed requests) and
stores nothing when it does; it accepts what real peers send. A real fedserver on a loopback port
receives real HTTP from a hand-built remote (tests/e2e/fake_remote.py) that really signs."""
from __future__ import annotations

import asyncio

import json
from typing import Any, AsyncIterator

import pytest
import pytest_asyncio

from fedserver.services import accounts, posting
from fedserver.services.posting import Draft
from tests.conftest import Instance, bound_socket, loopback_settings, wait_until
from tests.e2e.fake_remote import FakeRemote

MINUTES = 60

# One server and one remote for the whole module (starting a server and hashing alice's password
# costs ~0.5 s); every test compares counts before and after, and waits for what it made accepted.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory) -> AsyncIterator[Instance]:
    sock = bound_socket()
    settings = loopback_settings(tmp_path_factory.mktemp("inbox-security"), sock.getsockname()[1])
    instance = await Instance(settings=settings, sock=sock).start()
    await accounts.create_account(instance.ctx, "alice")
    yield instance
    await instance.stop()
    instance.sock.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def remote() -> AsyncIterator[FakeRemote]:
    remote = await FakeRemote.start("eve", "mallory")
    yield remote
    await remote.stop()


async def start_server(instances, **federation: Any) -> Instance:
    server = await instances("a", **federation)
    await accounts.create_account(server.ctx, "alice")
    return server


def inbox_of(server: Instance, which: str) -> str:
    return f"{server.base}/inbox" if which == "shared" else f"{server.base}/users/alice/inbox"


async def stored(server: Instance) -> tuple[int, int]:
    """What an accepted activity would change: queued inbox items and posts."""
    return (await server.count("SELECT count(*) FROM inbox_items"),
            await server.count("SELECT count(*) FROM posts"))


def assert_refused(result: tuple[int, Any], status: int, reason: str) -> None:
    got_status, body = result
    assert got_status == status, body
    assert isinstance(body, dict) and reason in body.get("error", ""), body


async def post_row(server: Instance, uri: str):
    rows = await server.query("SELECT content_text, visibility FROM posts WHERE uri = ?", (uri,))
    return rows[0] if rows else None


async def assert_accepted_and_stored(server: Instance, remote: FakeRemote, activity: dict[str, Any], *,
                                     as_user: str = "eve", inbox: str = "shared", **options: Any) -> None:
    """Positive control: the request done right is accepted and becomes a post."""
    status, body = await remote.post(inbox_of(server, inbox), activity, as_user=as_user, **options)
    assert status == 202, body
    await wait_until(lambda: post_row(server, activity["object"]["id"]), what="post stored", timeout=5)


# --- signatures: 401 ----------------------------------------------------------------------------

@pytest.mark.parametrize("inbox", ["shared", "personal"])
async def test_unsigned_post_to_inbox_is_rejected_with_401(server, remote, inbox):
    activity = remote.create_note("eve", "unsigned", mention=server.actor_uri("alice"))
    before = await stored(server)
    result = await remote.post(inbox_of(server, inbox), activity, as_user="eve", signed=False)
    assert_refused(result, 401, "missing Signature header")
    assert await stored(server) == before
    await assert_accepted_and_stored(server, remote, activity, inbox=inbox)


async def test_signature_with_a_key_id_that_does_not_resolve_is_rejected_with_401(server, remote):
    # keyId and actor are "ghost", whom the remote answers with 404; the bytes are signed with eve's key.
    activity = remote.create_note("eve", "who am I", mention=server.actor_uri("alice"))
    activity["actor"] = activity["object"]["attributedTo"] = remote.actor_uri("ghost")
    before = await stored(server)
    result = await remote.post(inbox_of(server, "shared"), activity, as_user="ghost", key_of="eve")
    assert_refused(result, 401, f"cannot get key {remote.key_id('ghost')}")
    assert await stored(server) == before
    assert remote.fetch_count("ghost") >= 1  # it really asked, and was told 404


async def test_signature_by_a_key_the_actor_does_not_publish_is_rejected_with_401(server, remote):
    activity = remote.create_note("eve", "forged", mention=server.actor_uri("alice"))
    before, fetched_before = await stored(server), remote.fetch_count("eve")
    known = await server.count("SELECT count(*) FROM actors WHERE uri = ?", (remote.actor_uri("eve"),))
    result = await remote.post(inbox_of(server, "personal"), activity, as_user="eve", key_of="mallory")
    assert_refused(result, 401, "signature mismatch")
    assert await stored(server) == before
    # A failed check may refetch the key once (it might have been rotated), never more.
    assert remote.fetch_count("eve") - fetched_before <= (1 if known else 2)
    await assert_accepted_and_stored(server, remote, activity)


async def test_body_changed_after_signing_is_rejected_with_401(server, remote):
    activity = remote.create_note("eve", "original words", mention=server.actor_uri("alice"))
    before = await stored(server)
    result = await remote.post(inbox_of(server, "shared"), activity, as_user="eve", tamper_body=True)
    assert_refused(result, 401, "Digest does not match the request body")
    assert await stored(server) == before
    await assert_accepted_and_stored(server, remote, activity)


async def test_rfc9421_request_with_body_changed_after_signing_is_rejected_with_401(server, remote):
    activity = remote.create_note("eve", "original words", mention=server.actor_uri("alice"))
    before = await stored(server)
    result = await remote.post(inbox_of(server, "shared"), activity, as_user="eve", scheme="rfc9421",
                               tamper_body=True)
    assert_refused(result, 401, "Content-Digest does not match the request body")
    assert await stored(server) == before


@pytest.mark.parametrize(("offset", "reason"), [(-70 * MINUTES, "signature date is too old"),
                                                (+70 * MINUTES, "signature date is too far in the future")],
                         ids=["70-minutes-old", "70-minutes-ahead"])
@pytest.mark.parametrize("scheme", ["cavage", "rfc9421"])
async def test_signature_dated_outside_the_window_is_rejected_with_401(server, remote, offset, reason, scheme):
    activity = remote.create_note("eve", "from another time", mention=server.actor_uri("alice"))
    before = await stored(server)
    result = await remote.post(inbox_of(server, "shared"), activity, as_user="eve", date_offset=offset,
                               scheme=scheme)
    assert_refused(result, 401, reason)
    assert await stored(server) == before
    await assert_accepted_and_stored(server, remote, activity, scheme=scheme)


async def test_activity_signed_by_someone_other_than_its_actor_is_rejected_with_401(server, remote):
    # mallory signs (validly, with her own key) an activity that claims to be eve's.
    activity = remote.create_note("eve", "words put in eve's mouth", mention=server.actor_uri("alice"))
    before = await stored(server)
    result = await remote.post(inbox_of(server, "shared"), activity, as_user="mallory")
    assert_refused(result, 401, "not signed by the activity's actor")
    assert await stored(server) == before
    await assert_accepted_and_stored(server, remote, activity, as_user="eve")


async def test_request_signed_for_another_server_is_rejected_with_401(server, remote):
    # A peer that received eve's signed delivery replays it, headers and all, to us (Misskey 2023).
    activity = remote.create_note("eve", "meant for another server", mention=server.actor_uri("alice"))
    before = await stored(server)
    result = await remote.post(inbox_of(server, "shared"), activity, as_user="eve",
                               signed_for=f"{remote.base}/inbox")
    assert_refused(result, 401, "host")
    assert await stored(server) == before
    await assert_accepted_and_stored(server, remote, activity)


async def test_rfc9421_request_signed_for_another_server_is_rejected_with_401(server, remote):
    activity = remote.create_note("eve", "meant for another server", mention=server.actor_uri("alice"))
    before = await stored(server)
    result = await remote.post(inbox_of(server, "shared"), activity, as_user="eve", scheme="rfc9421",
                               signed_for=f"{remote.base}/inbox")
    assert_refused(result, 401, "host")
    assert await stored(server) == before


# --- origin: 403 --------------------------------------------------------------------------------

async def test_create_of_an_object_on_a_foreign_host_is_rejected_with_403(server, remote):
    activity = remote.create_note("eve", "I wrote this on someone else's server",
                                  mention=server.actor_uri("alice"))
    activity["object"]["id"] = "https://victim.example/users/bob/statuses/1"
    before = await stored(server)
    result = await remote.post(inbox_of(server, "shared"), activity, as_user="eve")
    assert_refused(result, 403, "object id is not on the actor's host")
    assert await stored(server) == before


async def test_create_of_an_object_attributed_to_someone_else_is_rejected_with_403(server, remote):
    activity = remote.create_note("eve", "mallory said this, honest", mention=server.actor_uri("alice"))
    activity["object"]["attributedTo"] = remote.actor_uri("mallory")
    before = await stored(server)
    result = await remote.post(inbox_of(server, "personal"), activity, as_user="eve")
    assert_refused(result, 403, "object is attributed to someone else")
    assert await stored(server) == before


# --- shape of the request: 413, 400, 415, 404 ------------------------------------------------------

@pytest.fixture
async def own_remote() -> AsyncIterator[FakeRemote]:
    remote = await FakeRemote.start("eve")
    yield remote
    await remote.stop()


@pytest.mark.asyncio(loop_scope="function")  # its own server, with a 4 kB inbox limit
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_over_the_size_limit_is_rejected_with_413(instances, own_remote, chunked):
    server, remote = await start_server(instances, max_inbox_body_bytes=4096), own_remote
    activity = remote.create_note("eve", "x" * 5000, mention=server.actor_uri("alice"))
    before = await stored(server)
    result = await remote.post(inbox_of(server, "shared"), activity, as_user="eve", chunked=chunked)
    assert_refused(result, 413, "larger than 4096 bytes")
    assert await stored(server) == before
    small = remote.create_note("eve", "short enough", mention=server.actor_uri("alice"))
    await assert_accepted_and_stored(server, remote, small, chunked=chunked)


@pytest.mark.parametrize("raw_body", [b'{"type": "Create", "actor": ', b"", b"\xff\xfe\x00not utf-8"],
                         ids=["truncated", "empty", "not-utf-8"])
async def test_malformed_json_is_rejected_with_400(server, remote, raw_body):
    before = await stored(server)
    result = await remote.post(inbox_of(server, "shared"), {}, as_user="eve", raw_body=raw_body)
    assert_refused(result, 400, "not valid JSON")
    assert await stored(server) == before


async def test_deeply_nested_json_is_rejected_with_400_not_500(server, remote):
    before = await stored(server)
    result = await remote.post(inbox_of(server, "shared"), {}, as_user="eve", raw_body=b"[" * 100_000)
    assert_refused(result, 400, "not valid JSON")
    assert await stored(server) == before


async def test_signed_utf16_json_is_rejected_with_400_not_500(server, remote):
    # json.loads(bytes) would happily decode UTF-16; the inbox must insist on UTF-8 (RFC 8259 8.1).
    activity = remote.create_note("eve", "in utf-16", mention=server.actor_uri("alice"))
    before = await stored(server)
    result = await remote.post(inbox_of(server, "shared"), activity, as_user="eve",
                               raw_body=json.dumps(activity).encode("utf-16"))
    assert_refused(result, 400, "not valid JSON")
    assert await stored(server) == before


@pytest.mark.parametrize("document", [
    [{"type": "Create"}],
    {"id": "https://x.example/1", "actor": "https://x.example/users/x", "object": "https://x.example/2"},
    {"id": "https://x.example/1", "type": "Create", "object": "https://x.example/2"},
    "Create",
], ids=["array", "no-type", "no-actor", "string"])
async def test_json_that_is_not_an_activity_is_rejected_with_400(server, remote, document):
    before = await stored(server)
    result = await remote.post(inbox_of(server, "shared"), {}, as_user="eve",
                               raw_body=json.dumps(document).encode())
    assert_refused(result, 400, "not an activity")
    assert await stored(server) == before


async def test_non_activitypub_content_type_is_rejected_with_415(server, remote):
    activity = remote.create_note("eve", "plain text?", mention=server.actor_uri("alice"))
    before = await stored(server)
    result = await remote.post(inbox_of(server, "shared"), activity, as_user="eve", content_type="text/plain")
    assert_refused(result, 415, "text/plain")
    assert await stored(server) == before
    await assert_accepted_and_stored(
        server, remote, activity, content_type='application/ld+json; profile="https://www.w3.org/ns/activitystreams"')


async def test_post_to_the_inbox_of_an_unknown_account_is_rejected_with_404(server, remote):
    activity = remote.create_note("eve", "hello nobody", mention=server.actor_uri("nobody"))
    before = await stored(server)
    result = await remote.post(f"{server.base}/users/nobody/inbox", activity, as_user="eve")
    assert_refused(result, 404, "no such inbox")
    assert await stored(server) == before


# --- what must be accepted -----------------------------------------------------------------------

@pytest.mark.parametrize("inbox", ["shared", "personal"])
async def test_signed_create_mentioning_a_local_account_is_accepted_and_stored(server, remote, inbox):
    activity = remote.create_note("eve", "hello alice", mention=server.actor_uri("alice"))
    status, _ = await remote.post(inbox_of(server, inbox), activity, as_user="eve")
    assert status == 202
    row = await wait_until(lambda: post_row(server, activity["object"]["id"]), what="post stored")
    assert "hello alice" in row[0] and row[1] == "public"


async def test_same_create_delivered_twice_is_accepted_twice_and_stored_once(server, remote):
    activity = remote.create_note("eve", "said once", mention=server.actor_uri("alice"))
    first = await remote.post(inbox_of(server, "shared"), activity, as_user="eve")
    second = await remote.post(inbox_of(server, "personal"), activity, as_user="eve")
    assert (first[0], second[0]) == (202, 202)
    await wait_until(lambda: post_row(server, activity["object"]["id"]), what="post stored")
    await wait_until(lambda: _item_state(server, activity["id"], "done"), what="inbox item processed")
    assert await server.count("SELECT count(*) FROM inbox_items WHERE activity_uri = ?", (activity["id"],)) == 1
    assert await server.count("SELECT count(*) FROM posts WHERE uri = ?", (activity["object"]["id"],)) == 1


async def test_the_same_create_sent_many_times_at_once_is_stored_once(server, remote):
    # Concurrent copies land in the same group commit of the inbox writer: one is new, the rest
    # are duplicates, and every request is answered only after the commit.
    activity = remote.create_note("eve", "said at once", mention=server.actor_uri("alice"))
    results = await asyncio.gather(*(remote.post(inbox_of(server, "shared"), activity, as_user="eve")
                                     for _ in range(8)))
    assert [status for status, _ in results] == [202] * 8
    await wait_until(lambda: _item_state(server, activity["id"], "done"), what="inbox item processed")
    assert await server.count("SELECT count(*) FROM inbox_items WHERE activity_uri = ?", (activity["id"],)) == 1
    assert await server.count("SELECT count(*) FROM posts WHERE uri = ?", (activity["object"]["id"],)) == 1


async def test_many_different_creates_at_once_are_all_stored(server, remote):
    activities = [remote.create_note("eve", f"burst {i}", mention=server.actor_uri("alice")) for i in range(20)]
    results = await asyncio.gather(*(remote.post(inbox_of(server, "shared"), a, as_user="eve") for a in activities))
    assert [status for status, _ in results] == [202] * 20
    for activity in activities:
        await wait_until(lambda: post_row(server, activity["object"]["id"]), what="every burst post stored")


async def test_rfc9421_signed_create_is_accepted_and_stored(server, remote):
    activity = remote.create_note("eve", "signed the new way", mention=server.actor_uri("alice"))
    await assert_accepted_and_stored(server, remote, activity, scheme="rfc9421")


@pytest.mark.parametrize("options", [{"algorithm": "hs2019"}, {"digest_name": "sha-256"},
                                     {"algorithm": "hs2019", "digest_name": "sha-256"}],
                         ids=["hs2019", "lowercase-digest", "both"])
async def test_hs2019_and_lowercase_digest_signatures_are_accepted(server, remote, options):
    activity = remote.create_note("eve", "GoToSocial and bovine spell it this way",
                                  mention=server.actor_uri("alice"))
    await assert_accepted_and_stored(server, remote, activity, **options)


async def test_rotated_key_is_refetched_once_and_accepted(server, remote):
    # Its own actor: the refetch limiter is per key id, and no other test touches this one.
    remote.add_actor("rotating")
    first = remote.create_note("rotating", "before rotation", mention=server.actor_uri("alice"))
    await assert_accepted_and_stored(server, remote, first, as_user="rotating")
    assert remote.fetch_count("rotating") == 1

    new_pem = remote.rotate_key("rotating")
    second = remote.create_note("rotating", "after rotation", mention=server.actor_uri("alice"))
    await assert_accepted_and_stored(server, remote, second, as_user="rotating")
    assert remote.fetch_count("rotating") == 2  # exactly one refetch
    stored_pem = await server.query("SELECT public_key_pem FROM actors WHERE uri = ?",
                                    (remote.actor_uri("rotating"),))
    assert stored_pem[0][0] == remote.actor_document("rotating")["publicKey"]["publicKeyPem"]
    assert new_pem  # the remote really has a new private key

    third = remote.create_note("rotating", "new key, cached", mention=server.actor_uri("alice"))
    await assert_accepted_and_stored(server, remote, third, as_user="rotating")
    assert remote.fetch_count("rotating") == 2  # the new key is cached now


async def test_delete_of_an_actor_never_seen_is_accepted_without_fetching_anything(server, remote):
    remote.add_actor("leaving")
    remote.delete_actor("leaving")  # its documents answer 410 now, as after a real account deletion
    uri = remote.actor_uri("leaving")
    activity = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{uri}#delete", "type": "Delete",
                "actor": uri, "object": uri, "to": ["https://www.w3.org/ns/activitystreams#Public"]}
    before, fetches_before = await stored(server), len(remote.fetches)
    status, _ = await remote.post(inbox_of(server, "shared"), activity, as_user="leaving")
    assert status == 202
    assert remote.fetches[fetches_before:] == []
    assert await stored(server) == before
    assert await server.count("SELECT count(*) FROM actors WHERE uri = ?", (uri,)) == 0


async def test_unknown_activity_type_is_accepted_and_processed_without_effect(server, remote):
    activity = remote.activity("eve", "Wobble", server.actor_uri("alice"))
    tables = ("posts", "likes", "announces", "follows", "notifications")
    before = {t: await server.count(f"SELECT count(*) FROM {t}") for t in tables}
    status, _ = await remote.post(inbox_of(server, "personal"), activity, as_user="eve")
    assert status == 202
    await wait_until(lambda: _item_state(server, activity["id"], "done"), what="Wobble marked done")
    assert {t: await server.count(f"SELECT count(*) FROM {t}") for t in tables} == before


async def test_like_delivered_twice_counts_once(server, remote):
    post = await posting.create_post(server.ctx, "alice", Draft(text="like me"))
    like = remote.activity("eve", "Like", post.uri)
    first = await remote.post(inbox_of(server, "shared"), like, as_user="eve")
    second = await remote.post(inbox_of(server, "personal"), like, as_user="eve")
    assert (first[0], second[0]) == (202, 202)
    await wait_until(lambda: _item_state(server, like["id"], "done"), what="Like processed")
    # Some servers resend a Like under a new id: it still counts once.
    again = remote.activity("eve", "Like", post.uri)
    assert (await remote.post(inbox_of(server, "shared"), again, as_user="eve"))[0] == 202
    await wait_until(lambda: _item_state(server, again["id"], "done"), what="second Like processed")
    assert await server.count("SELECT count(*) FROM likes WHERE post_id = ?", (post.id,)) == 1
    assert await server.count("SELECT count(*) FROM notifications WHERE kind = 'like' AND post_id = ?",
                              (post.id,)) == 1
    assert await server.count("SELECT count(*) FROM inbox_items WHERE activity_uri = ?", (like["id"],)) == 1


async def _item_state(server: Instance, activity_uri: str, state: str) -> bool:
    rows = await server.query("SELECT state, last_error FROM inbox_items WHERE activity_uri = ?", (activity_uri,))
    if rows and rows[0][0] == "failed":
        raise AssertionError(f"inbox item {activity_uri} failed: {rows[0][1]}")
    return bool(rows) and rows[0][0] == state


async def test_the_fake_remote_verifies_what_our_server_delivers_to_it(server, remote):
    # The test double itself: WebFinger, actor documents and signature checks on its inbox work,
    # so a remote that refused everything could not make the tests above pass or fail vacuously.
    post = await posting.create_post(server.ctx, "alice", Draft(text=f"hello @eve@{remote.domain}"))
    arrived = await wait_until(lambda: _received(remote, post.uri), what="delivery at the remote")
    assert arrived.verified, arrived.error
    assert arrived.key_id == f"{server.actor_uri('alice')}#main-key"


async def _received(remote: FakeRemote, object_uri: str):
    """The delivery of this object once the remote has judged its signature. A delivery is listed as
    it arrives, while the remote still fetches the signer's key from our server; under load that
    takes long enough for a poll to see it unjudged (verified False, no error) and fail for nothing."""
    for record in remote.received:
        obj = (record.activity or {}).get("object")
        if isinstance(obj, dict) and obj.get("id") == object_uri and (record.verified or record.error is not None):
            return record
    return None


async def test_an_actor_publishing_someone_elses_key_id_cannot_lock_them_out(server, remote):
    remote.add_actor("squatter")
    remote.add_actor("victim")
    hello = remote.activity("squatter", "Wobble", server.actor_uri("alice"))
    assert (await remote.post(inbox_of(server, "shared"), hello, as_user="squatter"))[0] == 202
    # squatter now claims victim's key id for its own key (no owner, so nothing contradicts it).
    profile = remote.actor_document("squatter")
    profile["publicKey"] = {"id": remote.key_id("victim"), "publicKeyPem": profile["publicKey"]["publicKeyPem"]}
    update = remote.activity("squatter", "Update", profile)
    assert (await remote.post(inbox_of(server, "shared"), update, as_user="squatter"))[0] == 202
    await wait_until(lambda: _item_state(server, update["id"], "done"), what="Update(Person) processed")

    for n in range(2):
        activity = remote.create_note("victim", f"victim speaking ({n})", mention=server.actor_uri("alice"))
        status, body = await remote.post(inbox_of(server, "shared"), activity, as_user="victim")
        assert status == 202, f"delivery {n}: {body}"
