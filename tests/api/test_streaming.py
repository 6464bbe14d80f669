"""The streaming API as apps use it: Mastodon.py's event streams (stream_user, stream_public) and an
aiohttp WebSocket client, against real `fedserver serve` processes. A followed account on a second
fedserver instance posts, likes, edits and deletes, and each arrives live; a blocked account's
posts never do; with `[server] processes = 2`, events written in one process reach streams held by
the other; tokens without a read scope are refused; a reader that stops reading is dropped and the
others carry on."""
from __future__ import annotations

import json
import time
from typing import Iterator

import pytest
import requests
from mastodon import Mastodon
from playwright.sync_api import Browser

from tests.api.conftest import PASSWORD
from tests.api.entities import assert_entity
from tests.api.oauth_flow import SCOPES, api, approve, authorize_url, exchange, new_app, user_token
from tests.api.stream_clients import (Recorder, SocketClient, close_event_stream, raw_event_stream,
                                      read_until_closed, server_holds_connection, serving_pid)
from tests.e2e.processes import ProcessGroup, ServerProcess, set_config_keys, wait_for
from tests.e2e.test_processes import _listening_sockets, acceptor_pids


def _users(server: ServerProcess, *names: str) -> None:
    secret = server.directory / "password.txt"
    secret.write_text(PASSWORD, encoding="utf-8")
    for name in names:
        server.run("user", "create", name, "--password-file", str(secret), check=True)


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """`here` (alice, bob, dana) and `there` (carol)."""
    group = ProcessGroup(tmp_path_factory.mktemp("stream-pair"))
    here, there = group("here"), group("there")
    _users(here, "alice", "bob", "dana")
    _users(there, "carol")
    try:
        here.start()
        there.start()
        yield here, there
    finally:
        group.close()


@pytest.fixture(scope="module")
def busy(tmp_path_factory) -> Iterator[ServerProcess]:
    """An instance serving with two processes, and streams that may fall only 20 events behind."""
    group = ProcessGroup(tmp_path_factory.mktemp("stream-busy"))
    server = group("busy")
    set_config_keys(server.config, processes=2, streaming_queue_events=20)
    _users(server, "alice")
    try:
        server.start()
        yield server
    finally:
        group.close()


def _token(browser: Browser, server: ServerProcess, username: str, *, scope: str = "read write follow push",
           app_scopes: list[str] = SCOPES) -> str:
    context = browser.new_context()  # each person signs in in a browser of their own
    try:
        return user_token(server, context.new_page(), username=username, scope=scope, app_scopes=app_scopes)
    finally:
        context.close()


def _app(server: ServerProcess, token: str) -> Mastodon:
    return Mastodon(access_token=token, api_base_url=server.base)


def _socket(server: ServerProcess, token: str, query: str = "", **kw) -> SocketClient:
    return SocketClient(f"ws://127.0.0.1:{server.port}/api/v1/streaming{query}", **kw)


def test_a_followed_accounts_post_like_edit_and_delete_arrive_on_the_user_stream(browser: Browser, pair):
    here, there = pair
    alice_token = _token(browser, here, "alice")
    carol_token = _token(browser, there, "carol")
    alice, carol = _app(here, alice_token), _app(there, carol_token)
    assert alice.instance().configuration.urls.streaming == f"ws://{here.domain}"
    assert api(here, alice_token, "GET", "/api/v1/instance").json()["urls"]["streaming_api"] == f"ws://{here.domain}"
    assert alice.stream_healthy()
    carol_here = alice.search_v2(f"@carol@{there.domain}", resolve=True, result_type="accounts").accounts[0]
    alice.account_follow(carol_here.id)
    wait_for(lambda: alice.account_relationships([carol_here.id])[0].following, what="carol's server to accept",
             timeout=30, interval=0.3)

    recorder = Recorder()
    handle = alice.stream_user(recorder, run_async=True)
    # The same stream over a WebSocket, the token given as Sec-WebSocket-Protocol (as the web app does).
    socket = _socket(here, alice_token, "?stream=user", protocols=(alice_token,))
    try:
        assert socket.protocol == alice_token
        wait_for(lambda: handle.is_receiving(), what="the event stream to open", timeout=10)
        time.sleep(0.5)
        posted = carol.status_post("live from the other server")
        update = wait_for(lambda: next((s for s in recorder.named("update") if s.uri == posted.uri), None),
                          what="carol's post as an update", timeout=30, interval=0.2)
        assert update.account.acct == f"carol@{there.domain}" and "live from the other server" in update.content
        ws_update = wait_for(lambda: next((m for m in socket.events("update", ["user"])
                                           if json.loads(m["payload"])["id"] == str(update.id)), None),
                             what="the update on the socket", timeout=10, interval=0.1)
        # The payload is a JSON string holding the Status, as Mastodon sends it.
        assert isinstance(ws_update["payload"], str)
        assert_entity("Status", json.loads(ws_update["payload"]))

        # carol likes alice's post: a notification.
        there.run("follow", "carol", here.handle("alice"), check=True)
        wait_for(lambda: there.value("SELECT state FROM follows f JOIN actors a ON a.id = f.followee_id"
                                     " WHERE a.username = 'alice'") == "accepted", what="alice's server to accept",
                 timeout=30)
        mine = alice.status_post("carol will like this")
        copy = wait_for(lambda: there.value("SELECT uri FROM posts WHERE content_text LIKE '%carol will like%'"),
                        what="alice's post on carol's server", timeout=30)
        there.run("like", "carol", copy, check=True)
        liked = wait_for(lambda: next((n for n in recorder.named("notification") if n.type == "favourite"), None),
                         what="the favourite notification", timeout=30, interval=0.2)
        assert liked.status.id == mine.id and liked.account.acct == f"carol@{there.domain}"
        ws_liked = wait_for(lambda: [m for m in socket.events("notification")
                                     if json.loads(m["payload"])["type"] == "favourite"],
                            what="the notification on the socket", timeout=10)
        assert_entity("Notification", json.loads(ws_liked[0]["payload"]))
        # carol boosts it: a reblog notification, and the boost on alice's home (she follows carol).
        there.run("boost", "carol", copy, check=True)
        wait_for(lambda: [n for n in recorder.named("notification") if n.type == "reblog"],
                 what="the reblog notification", timeout=30, interval=0.2)
        boost = wait_for(lambda: next((s for s in recorder.named("update") if s.reblog and s.reblog.id == mine.id),
                                      None), what="carol's boost on the home stream", timeout=10, interval=0.2)
        assert boost.account.acct == f"carol@{there.domain}"

        # carol edits her post: status.update; then deletes it: delete with its id.
        carol.status_update(posted.id, "live from the other server, edited")
        edited = wait_for(lambda: next((s for s in recorder.named("status.update") if s.id == update.id), None),
                          what="the edit as status.update", timeout=30, interval=0.2)
        assert "edited" in edited.content and edited.edited_at is not None
        carol.status_delete(posted.id)
        wait_for(lambda: str(update.id) in [str(d) for d in recorder.named("delete")],
                 what="the deletion", timeout=30, interval=0.2)
        deleted = wait_for(lambda: socket.events("delete", ["user"]), what="the deletion on the socket", timeout=10)
        assert deleted[0]["payload"] == str(update.id)
        # alice's own post reached her home stream too; nothing errored.
        assert any(s.id == mine.id for s in recorder.named("update"))
        assert not socket.errors()
    finally:
        close_event_stream(handle)
        socket.close()


def test_a_blocked_accounts_posts_never_reach_the_stream(browser: Browser, pair):
    here, _ = pair
    token = _token(browser, here, "alice")
    alice = _app(here, token)
    bob = alice.account_lookup("bob")
    alice.account_block(bob.id)
    recorder = Recorder()
    handle = alice.stream_public(recorder, run_async=True, local=True)
    # The token as the access_token parameter, and a hashtag subscribed over the socket.
    socket = _socket(here, token, f"?access_token={token}")
    try:
        socket.send({"type": "subscribe", "stream": "hashtag", "tag": "Streams"})
        socket.send({"type": "subscribe", "stream": "direct"})
        wait_for(lambda: handle.is_receiving(), what="the event stream to open", timeout=10)
        time.sleep(0.5)
        here.run("post", "bob", "bob was blocked #streams", check=True)
        here.run("post", "bob", "@alice a word from bob", "--visibility", "direct", check=True)
        here.run("post", "dana", "dana was not #streams", check=True)
        here.run("post", "dana", "@alice a word from dana", "--visibility", "direct", check=True)
        # dana's post, written after bob's, arrives: bob's was left out, not late.
        wait_for(lambda: [s for s in recorder.named("update") if "dana was not" in s.content],
                 what="dana's post on the local stream", timeout=15, interval=0.2)
        tagged = wait_for(lambda: socket.events("update", ["hashtag", "streams"]), what="dana's tagged post",
                          timeout=10)
        time.sleep(1)
        assert not [s for s in recorder.named("update") if "bob was blocked" in s.content]
        assert [json.loads(m["payload"])["account"]["acct"] for m in socket.events("update")] == ["dana"]
        assert len(tagged) == 1
        # Direct messages arrive on the direct stream as conversations; bob's does not.
        conversation = wait_for(lambda: socket.events("conversation", ["direct"]), what="dana's direct message",
                                timeout=10)
        time.sleep(0.5)
        assert len(socket.events("conversation")) == 1
        payload = json.loads(conversation[0]["payload"])
        assert_entity("Conversation", payload)
        assert [a["acct"] for a in payload["accounts"]] == ["dana"]
        assert payload["last_status"]["visibility"] == "direct" and "from dana" in payload["last_status"]["content"]
    finally:
        close_event_stream(handle)
        socket.close()
        alice.account_unblock(bob.id)


def test_keyword_filters_mark_or_hide_streamed_posts_and_their_changes_are_announced(browser: Browser, pair):
    here, _ = pair
    token = _token(browser, here, "alice")
    socket = _socket(here, token, "?stream=user", headers={"Authorization": f"Bearer {token}"})
    try:
        socket.send({"type": "subscribe", "stream": "public:local"})
        socket.send({"type": "subscribe", "stream": "hashtag", "tag": "later"})
        time.sleep(0.5)
        for title, action, word in (("Spoilers", "warn", "spoilers"), ("Noise", "hide", "noise")):
            created = api(here, token, "POST", "/api/v2/filters", json={
                "title": title, "context": ["public"], "filter_action": action,
                "keywords_attributes": [{"keyword": word}]})
            assert created.status_code == 200, created.text
        # Each change is announced on the user stream, without a payload (as Mastodon sends it).
        changes = wait_for(lambda: socket.events("filters_changed", ["user"])
                           if len(socket.events("filters_changed")) == 2 else None, what="two filter changes",
                           timeout=10)
        assert all("payload" not in change for change in changes)
        socket.send({"type": "unsubscribe", "stream": "hashtag", "tag": "later"})
        time.sleep(0.3)
        here.run("post", "dana", "some spoilers here #later", check=True)
        here.run("post", "dana", "pure noise #later", check=True)
        here.run("post", "dana", "plain words", check=True)
        wait_for(lambda: any("plain words" in m["payload"] for m in socket.events("update", ["public:local"])),
                 what="the last post", timeout=15)
        shown = [json.loads(m["payload"]) for m in socket.events("update", ["public:local"])]
        assert [s["content"] for s in shown if "noise" in s["content"]] == []  # hidden by "hide"
        warned = next(s for s in shown if "spoilers" in s["content"])
        assert [f["filter"]["title"] for f in warned["filtered"]] == ["Spoilers"]
        assert socket.events("update", ["hashtag", "later"]) == []  # unsubscribed before
    finally:
        socket.close()


def test_streams_need_a_token_that_may_read(browser: Browser, pair):
    here, _ = pair
    base = f"{here.base}/api/v1/streaming"
    assert requests.get(f"{base}/health", timeout=5).text == "OK"
    nobody = requests.get(f"{base}/public", timeout=5)
    assert nobody.status_code == 401 and "error" in nobody.json()
    write_only = _token(browser, here, "alice", scope="write", app_scopes=["write"])
    refused = requests.get(f"{base}/user", headers={"Authorization": f"Bearer {write_only}"}, timeout=5)
    assert refused.status_code == 401 and "scopes" in refused.json()["error"]
    with pytest.raises(Exception) as handshake:
        _socket(here, write_only, "?stream=user", headers={"Authorization": f"Bearer {write_only}"})
    assert "401" in str(handshake.value)

    notifications_only = _token(browser, here, "alice", scope="read:notifications",
                                app_scopes=["read:notifications"])
    headers = {"Authorization": f"Bearer {notifications_only}"}
    assert requests.get(f"{base}/public", headers=headers, timeout=5).status_code == 401
    with requests.get(f"{base}/user/notification", headers=headers, stream=True, timeout=5) as opened:
        assert opened.status_code == 200 and opened.headers["Content-Type"].startswith("text/event-stream")
    socket = _socket(here, notifications_only, headers=headers)
    try:
        socket.send({"type": "subscribe", "stream": "public:local"})
        socket.send({"type": "subscribe", "stream": "list", "list": "12345"})
        socket.send({"type": "subscribe", "stream": "hashtag"})
        errors = wait_for(lambda: socket.errors() if len(socket.errors()) == 3 else None,
                          what="three refusals", timeout=10)
        assert [e["status"] for e in errors] == [401, 400, 400]
    finally:
        socket.close()


def test_revoking_a_token_ends_its_streams_at_once_and_a_token_holds_a_bounded_number(browser: Browser, pair):
    here, _ = pair
    client_id, client_secret = new_app(here)
    context = browser.new_context()
    try:
        code = approve(context.new_page(), authorize_url(here, client_id), username="alice")
    finally:
        context.close()
    token = exchange(here, client_id, client_secret, code).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    sockets = [_socket(here, token, "?stream=user", headers=headers) for _ in range(8)]
    try:
        # Eight streams per token (the default [server] streaming_connections_per_token); a ninth is refused.
        with pytest.raises(Exception) as refused:
            _socket(here, token, "?stream=user", headers=headers)
        assert "429" in str(refused.value)
        recorder = Recorder()
        sockets[-1].close()
        time.sleep(0.5)
        handle = _app(here, token).stream_user(recorder, run_async=True)
        wait_for(lambda: handle.is_receiving(), what="the event stream to open", timeout=10)
        started = time.monotonic()
        revoked = requests.post(f"{here.base}/oauth/revoke", data={"client_id": client_id,
                                                                    "client_secret": client_secret, "token": token},
                                timeout=5)
        assert revoked.status_code == 200
        # Ended within seconds, not at the next periodic check (30 s).
        wait_for(lambda: all(s.closed.is_set() for s in sockets[:-1]), what="the sockets to close", timeout=5)
        wait_for(lambda: not handle.is_receiving(), what="the event stream to end", timeout=5)
        assert time.monotonic() - started < 5
        again = requests.get(f"{here.base}/api/v1/streaming/user", headers=headers, timeout=5)
        assert again.status_code == 401
        handle.close()
    finally:
        for client in sockets:
            client.close()


def test_an_event_written_in_one_process_reaches_streams_held_by_the_other(browser: Browser, busy):
    token = _token(browser, busy, "alice")
    alice = _app(busy, token)
    assert busy.proc is not None
    pids = [busy.proc.pid, *wait_for(lambda: acceptor_pids(busy.proc.pid), what="the second process")]
    assert len(pids) == 2
    wait_for(lambda: _listening_sockets(busy.port) >= 2, what="both processes listening", timeout=30)
    # Open sockets until both processes hold at least one (the kernel spreads them by port).
    sockets: list[SocketClient] = []
    held: dict[int, list[SocketClient]] = {pid: [] for pid in pids}
    try:
        for _ in range(24):
            if all(held.values()):
                break
            client = _socket(busy, token, "?stream=public:local", headers={"Authorization": f"Bearer {token}"})
            sockets.append(client)
            pid = wait_for(lambda: serving_pid(busy.port, client.local_port, pids), what="the serving process",
                           timeout=5)
            if held[pid]:
                sockets.remove(client)  # that process holds one already (and a token may hold 8)
                client.close()
            else:
                held[pid].append(client)
        assert all(held.values()), "both processes should hold a stream"
        time.sleep(0.5)
        posted = alice.status_post("one post, every stream")  # written by whichever process takes it
        busy.run("post", "alice", "from the command line", check=True)  # and by a third process
        for client in sockets:
            wait_for(lambda: {json.loads(m["payload"])["id"] for m in client.events("update")} >=
                     {str(posted.id)} and any("command line" in m["payload"] for m in client.events("update")),
                     what="both posts on every stream", timeout=10, interval=0.1)
    finally:
        for client in sockets:
            client.close()


def test_a_reader_that_stops_reading_is_dropped_and_the_others_carry_on(browser: Browser, busy):
    token = _token(browser, busy, "alice")
    headers = {"Authorization": f"Bearer {token}"}
    stalled = raw_event_stream(busy.port, "/api/v1/streaming/public/local", token, receive_buffer=4096)
    reader = _socket(busy, token, "?stream=public:local", headers=headers)
    try:
        time.sleep(0.5)
        text = "A long post to fill the stalled reader's buffers. " * 9
        worst = 0.0
        posted = 0
        # Post until the server has dropped the stalled stream (its end of the connection is no
        # longer open; about 90 posts fill the buffers and the 20-event queue), then 20 more.
        dropped_at: int | None = None
        for number in range(300):
            if dropped_at is not None and posted >= dropped_at + 20:
                break
            response = api(busy, token, "POST", "/api/v1/statuses", data={"status": f"{number} {text}"})
            assert response.status_code == 200, response.text
            status_id = response.json()["id"]
            started = time.monotonic()
            wait_for(lambda: any(json.loads(m["payload"])["id"] == status_id for m in reader.events("update")),
                     what=f"post {number} on the reading stream", timeout=10, interval=0.01)
            worst = max(worst, time.monotonic() - started)
            posted += 1
            if dropped_at is None and not server_holds_connection(busy.port, stalled.getsockname()[1]):
                dropped_at = posted
        # The reading stream got every post, each quickly, while the other had stopped reading.
        assert dropped_at is not None, "the server should have dropped the stalled stream"
        assert len(reader.events("update")) == posted and worst < 2.0, worst
        data, closed = read_until_closed(stalled, timeout=10)
        assert closed, "the server should have closed the stalled stream"
        assert data.startswith(b"HTTP/1.1 200") and data.count(b"event: update") < posted
    finally:
        stalled.close()
        reader.close()
    assert not reader.errors()
