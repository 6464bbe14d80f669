"""Wake-ups by LISTEN/NOTIFY on PostgreSQL: with the safety poll made long through config, work one
process queues is picked up by a worker process at once, and a stream event one process writes
reaches a stream held by another process at once (fedserver/queue_wakeups.py, migration 0190).

PostgreSQL only: on SQLite other processes' work is seen by looking (PRAGMA data_version)."""
from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from tests import engines
from tests.e2e.test_durability import follow_established
from tests.e2e.test_shared_state import api_token
from tests.e2e.test_workers import split_instance

pytestmark = engines.postgresql_only

# [database] listen_poll_seconds: without a notification nothing would happen for this long.
SAFETY_POLL = 60.0
# Generous: notified work is picked up in milliseconds; this bound only has to be far below the poll.
PROMPT = 10.0


async def test_work_queued_by_another_process_wakes_a_worker_and_a_stream_at_once(instances, fedserver_processes):
    b = await instances("b")
    a, _ = await split_instance(fedserver_processes, workers=1, url=engines.fresh_postgres_url(),
                                listen_poll_seconds=SAFETY_POLL)
    await asyncio.sleep(3)  # the worker has gone idle: from now on only a wake-up starts its work

    # bob@b follows alice@a: the web process stores the Follow, the worker process applies it and
    # sends the Accept back to b.
    started = time.monotonic()
    await follow_established(a, b)
    assert time.monotonic() - started < PROMPT

    # alice streams the local timeline from the web process; a CLI process posts for her.
    token = await api_token(a, "alice")
    ws_url = f"ws://{a.domain}/api/v1/streaming?stream=public:local&access_token={token}"
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as ws:
        await asyncio.sleep(2)  # the web process's stream hub has gone idle too
        posted = await a.arun("post", "alice", "woken by NOTIFY", check=True)
        written = time.monotonic()
        message = await asyncio.wait_for(ws.receive_json(), PROMPT)
        assert time.monotonic() - written < PROMPT
    assert message["event"] == "update"
    status = json.loads(message["payload"])
    assert "woken by NOTIFY" in status["content"] and status["uri"] == posted.stdout.strip()
