"""A client's write that deadlocks with another process's transaction on PostgreSQL (a person's
favourite sent from two tabs, reaching two web processes at once) is retried by the server, not
answered 500. The other process here is a Database of this test on the server's database: it locks
the post, lets the request's transaction insert its like and wait for that post, then inserts the
same person's like, which waits for the request's: a cycle, which PostgreSQL breaks by aborting the
transaction that has waited longest to check (the request's).

PostgreSQL only: on SQLite write transactions exclude each other (BEGIN IMMEDIATE) and cannot
deadlock."""
from __future__ import annotations

import asyncio

import aiohttp

from fedserver.config import load_settings
from fedserver.db import open_database
from fedserver.store import bookmarks as bookmark_store
from fedserver.store import interactions as interaction_store
from fedserver.store import posts as post_store
from tests import engines
from tests.e2e.processes import await_for
from tests.e2e.test_shared_state import api_token

pytestmark = engines.postgresql_only

THEN = "2026-01-01T00:00:00.000000Z"


async def _someone_waits_for_a_lock(db) -> None:
    for _ in range(200):
        rows = await db.reader.execute_fetchall(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE NOT l.granted AND a.datname = current_database()")
        if rows[0][0]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the request never waited for the post's lock")


async def _request_deadlocking_with_another_process(fedserver_processes, action: str, insert_same):
    """alice's post, bob's API `action` on it (favourite, bookmark) while another process's
    transaction locks the post and then writes the same row as the request (insert_same): returns
    (a, the answer's status and body, post id, bob's id)."""
    a = fedserver_processes("a")
    await a.astart()
    await a.arun("user", "create", "alice", check=True)
    await a.arun("user", "create", "bob", check=True)
    post_uri = (await a.arun("post", "alice", "like me", check=True)).stdout.strip()
    post_id = a.value("SELECT id FROM posts WHERE uri = ?", (post_uri,))
    bob_id = a.value("SELECT id FROM actors WHERE username = 'bob' AND uri LIKE ?", (f"{a.base}/%",))
    token = await api_token(a, "bob")

    async with open_database(load_settings(a.config).database.url) as other, aiohttp.ClientSession() as http:
        async def send() -> tuple[int, dict, str | None]:
            async with http.post(f"{a.base}/api/v1/statuses/{post_id}/{action}",
                                 headers={"Authorization": f"Bearer {token}"}) as resp:
                return resp.status, await resp.json(), resp.headers.get("Retry-After")

        async with other.transaction() as tx:
            assert await post_store.lock_live_post(tx, post_id)
            request = asyncio.create_task(send())
            # The request's transaction has inserted its row and waits for the post (its foreign
            # key): give it a head start, so that it is the one PostgreSQL aborts.
            await _someone_waits_for_a_lock(other)
            await asyncio.sleep(0.3)
            await insert_same(tx, bob_id, post_id)
        answer = await asyncio.wait_for(request, timeout=30)
    # The cycle really happened (the statistics are reported a moment after the abort).
    await await_for(lambda: a.value("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()") >= 1,
                    timeout=30, what="the deadlock counted")
    return a, answer, post_id, bob_id


async def test_a_favourite_that_deadlocks_with_another_process_is_retried_and_answered_200(fedserver_processes):
    async def like_from_the_other_tab(tx, bob_id: int, post_id: int) -> None:
        assert await interaction_store.add_like(tx, uri="https://example.invalid/other-tab-like", actor_id=bob_id,
                                                post_id=post_id, now=THEN)

    a, (status, body, _), post_id, bob_id = await _request_deadlocking_with_another_process(
        fedserver_processes, "favourite", like_from_the_other_tab)
    assert status == 200, body
    assert body["favourited"] is True and body["favourites_count"] == 1
    assert a.query("SELECT actor_id, post_id FROM likes") == [(bob_id, post_id)]


async def test_a_write_still_conflicting_after_its_transaction_is_answered_503_with_retry_after(fedserver_processes):
    """A bookmark's transaction is not retried by the server (only the writes that touch what other
    processes share are): its deadlock is answered 503 with Retry-After (the client may send it
    again), not 500."""
    async def bookmark_from_the_other_tab(tx, bob_id: int, post_id: int) -> None:
        await bookmark_store.add_bookmark(tx, bob_id, post_id, THEN)

    a, (status, body, retry_after), post_id, bob_id = await _request_deadlocking_with_another_process(
        fedserver_processes, "bookmark", bookmark_from_the_other_tab)
    assert (status, retry_after) == (503, "1"), body
    assert "try again" in body["error"]
    assert a.query("SELECT actor_id, post_id FROM bookmarks") == [(bob_id, post_id)]
