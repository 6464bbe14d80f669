"""Interop with an independently written ActivityPub server: fediverse-pasture (Quart + bovine, by
another author) runs as its own process on loopback, from its own virtualenv, and exchanges signed
Follow, Accept, Create and Undo with a real fedserver in both directions.

The peer records an inbox POST only after its own draft-cavage check passed (it fetches our key
with a signed GET), so anything it lists proves our signature verified there. fedserver's inbox
stores nothing it could not verify, so anything we store proves the peer's signature verified here.

The peer's virtualenv comes from tests/interop/setup_peer_venv.sh; without it these tests skip,
except under CI, where they fail.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import aiohttp
import pytest

from fedserver.services import accounts, follows, posting
from fedserver.services.posting import Draft
from tests.conftest import free_port, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).with_name("peer_launcher.py")
AS2 = "application/activity+json"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
STARTUP_SECONDS = 30.0
# Loopback never goes through a proxy, whatever http_proxy says (aiohttp ignores it by default too).
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _peer_python() -> Path:
    """The peer virtualenv's interpreter; skip (or, under CI, fail) when it was not set up."""
    venv = Path(os.environ.get("FEDSERVER_PEER_VENV", ".interop-venv"))
    if not venv.is_absolute():
        venv = REPO_ROOT / venv
    python = venv / "bin" / "python"
    if not python.exists():
        message = f"peer virtualenv {venv} is missing: run tests/interop/setup_peer_venv.sh"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(message + " (CI must create it before pytest)", pytrace=False)
        pytest.skip(message)
    return python


@dataclass
class PeerProcess:
    """A fediverse-pasture app served by peer_launcher.py on its own loopback port."""
    process: subprocess.Popen
    port: int
    workdir: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def actor_uri(self) -> str:
        return f"{self.base}/actor"

    @property
    def handle(self) -> str:
        return f"@actor@127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        log = self.workdir / "peer.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    async def received(self) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{self.base}/_test/received") as resp:
                assert resp.status == 200, await resp.text()
                return await resp.json()

    async def find(self, activity_type: str, actor: str, object_id: str | None = None) -> dict[str, Any] | None:
        """The first verified activity of this type from this actor (about object_id, if given)."""
        for activity in await self.received():
            if activity.get("type") == activity_type and activity.get("actor") == actor and \
                    (object_id is None or _id_of(activity.get("object")) == object_id):
                return activity
        return None

    async def send(self, inbox: str, **order: Any) -> dict[str, Any]:
        """Make the peer build (with bovine's factories), sign and POST an activity to inbox."""
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self.base}/_test/send", json={"inbox": inbox, **order}) as resp:
                assert resp.status == 200, f"launcher /_test/send failed: {await resp.text()}\n{self.log_tail()}"
                return await resp.json()


def _id_of(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def _start_peer(app: str, workdir: Path) -> PeerProcess:
    python = _peer_python()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with (workdir / "peer.log").open("wb") as log:
        process = subprocess.Popen(
            [str(python), str(LAUNCHER), "--app", app, "--port", str(port), "--workdir", str(workdir),
             "--parent-pid", str(os.getpid())],
            cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    peer = PeerProcess(process=process, port=port, workdir=workdir)
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if process.poll() is not None:
            pytest.fail(f"peer {app} exited with {process.returncode}:\n{peer.log_tail()}", pytrace=False)
        try:
            with _DIRECT.open(f"{peer.base}/actor", timeout=1) as resp:
                if resp.status == 200:
                    return peer
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            _stop_peer(peer)
            pytest.fail(f"peer {app} did not answer within {STARTUP_SECONDS}s:\n{peer.log_tail()}", pytrace=False)
        time.sleep(0.1)


def _stop_peer(peer: PeerProcess) -> None:
    peer.process.terminate()  # Quart's run() turns SIGTERM into a clean shutdown
    try:
        peer.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        peer.process.kill()
        peer.process.wait(timeout=5)


@pytest.fixture(scope="module")
def pasture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerProcess]:
    """fediverse-pasture's one_actor, shared by this module's tests (each uses its own fedserver)."""
    peer = _start_peer("one_actor", tmp_path_factory.mktemp("pasture-one-actor"))
    yield peer
    _stop_peer(peer)


@pytest.fixture
def pasture_verifier(tmp_path: Path) -> Iterator[PeerProcess]:
    peer = _start_peer("verify_actor", tmp_path / "pasture-verify-actor")
    yield peer
    _stop_peer(peer)


async def _inbox_of(actor_uri: str) -> str:
    """The inbox as a peer finds it: from the actor document."""
    async with aiohttp.ClientSession() as http:
        async with http.get(actor_uri, headers={"Accept": AS2}) as resp:
            assert resp.status == 200
            return (await resp.json(content_type=None))["inbox"]


async def _is(awaitable, expected) -> bool:
    return await awaitable == expected


async def _stored_post(instance, uri: str) -> tuple | None:
    rows = await instance.query(
        "SELECT p.visibility, p.content_text, a.uri FROM posts p JOIN actors a ON a.id = p.actor_id WHERE p.uri = ?",
        (uri,))
    return rows[0] if rows else None


async def test_fedserver_account_follows_pasture_peer_and_stores_its_signed_post(instances, pasture):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    alice = a.actor_uri("alice")
    alice_inbox = await _inbox_of(alice)

    # alice follows the peer by its handle: WebFinger over http, then a signed Follow it must verify.
    record = await follows.follow(a.ctx, "alice", pasture.handle)
    assert record.state == "pending"
    follow = await wait_until(lambda: pasture.find("Follow", alice, pasture.actor_uri),
                              what="the peer to verify and record alice's Follow")

    # The peer never answers by itself: make it send a signed Accept, which fedserver must verify.
    accept = await pasture.send(alice_inbox, type="Accept", object=follow)
    assert accept["status"] == 202, accept
    await wait_until(lambda: _is(a.follow_state(alice, pasture.actor_uri), "accepted"),
                     what="fedserver to mark the follow accepted")

    # A public post by the peer reaches alice's inbox and is stored, attributed to the peer.
    created = await pasture.send(alice_inbox, type="Create", content="<p>Hello from the pasture</p>")
    assert created["status"] == 202, created
    note = created["activity"]["object"]
    assert note["to"] == [PUBLIC]
    stored = await wait_until(lambda: _stored_post(a, note["id"]), what="the peer's Note stored")
    assert stored == ("public", "Hello from the pasture", pasture.actor_uri)

    # alice unfollows: the peer verifies the signed Undo of exactly that Follow.
    await follows.unfollow(a.ctx, "alice", pasture.handle)
    undo = await wait_until(lambda: pasture.find("Undo", alice), what="the peer to verify alice's Undo")
    assert _id_of(undo["object"]) == follow["id"]


async def test_pasture_peer_follows_fedserver_account_and_receives_signed_accept_and_post(instances, pasture):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    alice = a.actor_uri("alice")
    alice_inbox = await _inbox_of(alice)

    sent = await pasture.send(alice_inbox, type="Follow", object=alice)
    assert sent["status"] == 202, sent
    follow_id = sent["activity"]["id"]

    # alice is unlocked: fedserver accepts and delivers a signed Accept the peer verifies.
    await wait_until(lambda: pasture.find("Accept", alice, follow_id), what="the peer to verify alice's Accept")
    assert await a.follow_state(pasture.actor_uri, alice) == "accepted"

    # alice posts publicly: the Create is delivered to her new follower and verified there.
    post = await posting.create_post(a.ctx, "alice", Draft(text="Hello, pasture"))
    create = await wait_until(lambda: pasture.find("Create", alice, post.uri),
                              what="the peer to verify alice's Create")
    assert "Hello, pasture" in create["object"]["content"]
    assert PUBLIC in create["object"]["to"]

    # The peer unfollows with a signed Undo: fedserver drops the follow.
    undone = await pasture.send(alice_inbox, type="Undo", object=sent["activity"])
    assert undone["status"] == 202, undone
    await wait_until(lambda: _is(a.follow_state(pasture.actor_uri, alice), None),
                     what="fedserver to drop the undone follow")


async def test_follow_without_id_from_pasture_peer_is_accepted(instances, pasture):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    alice = a.actor_uri("alice")
    sent = await pasture.send(await _inbox_of(alice), type="Follow", object=alice, with_id=False)
    assert sent["status"] == 202 and "id" not in sent["activity"], sent
    await wait_until(lambda: _is(a.follow_state(pasture.actor_uri, alice), "accepted"), timeout=3,
                     what="fedserver to accept the id-less Follow")


async def test_unsigned_copy_of_a_peer_activity_is_refused_and_not_stored(instances, pasture):
    """What makes the stored Note above prove a verified signature: the same shape unsigned is 401."""
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    alice_inbox = await _inbox_of(a.actor_uri("alice"))
    note_id = f"{pasture.base}/objects/unsigned-note"
    activity = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{note_id}/activity", "type": "Create",
                "actor": pasture.actor_uri, "to": [PUBLIC],
                "object": {"id": note_id, "type": "Note", "attributedTo": pasture.actor_uri, "to": [PUBLIC],
                           "content": "<p>forged</p>"}}
    async with aiohttp.ClientSession() as http:
        async with http.post(alice_inbox, data=json.dumps(activity), headers={"Content-Type": AS2}) as resp:
            assert resp.status == 401
    assert await _stored_post(a, note_id) is None


async def test_pasture_peer_refuses_unsigned_inbox_posts(pasture):
    """What makes the peer's list above prove our signatures verified: it does not take unsigned POSTs."""
    follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": "http://127.0.0.1:9/unsigned-follow",
              "type": "Follow", "actor": "http://127.0.0.1:9/users/nobody", "object": pasture.actor_uri}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{pasture.actor_uri}/inbox", data=json.dumps(follow),
                             headers={"Content-Type": AS2}) as resp:
            assert resp.status == 401
    assert await pasture.find("Follow", follow["actor"]) is None


async def test_pasture_verify_actor_personas_accept_only_signed_inbox_posts(instances, pasture_verifier):
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.get(f"{pasture_verifier.base}/", params={"actor_uri": a.actor_uri("alice")},
                            headers={"Accept": "application/json"}) as resp:
            assert resp.status == 200, pasture_verifier.log_tail()
            report = await resp.json()
    result = report["result"]
    context = f"{json.dumps(result, indent=1)}\n{report['messages']}"
    assert result["webfinger"] is True, context
    for persona in ("alice", "bob", "claire", "dean", "emily", "frank"):
        assert result[persona]["get_actor"] is True, f"{persona}: {context}"
    for unsigned in ("alice", "dean"):
        assert result[unsigned]["post_inbox"] is False, f"{unsigned}: {context}"
    for signed in ("bob", "claire", "emily", "frank"):
        assert result[signed]["post_inbox"] is True, f"{signed}: {context}"
