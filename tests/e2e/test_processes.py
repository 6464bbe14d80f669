"""`[server] processes = 2`: the real `fedserver serve` with one acceptor process beside the primary,
both on the same port. What an acceptor accepts is stored and then applied by the primary's inbox
worker; an acceptor that dies is replaced; acceptors leave with the primary, even when it is
killed. The sender is a hand-built remote that really signs (tests/e2e/fake_remote.py)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from fedserver.serving import STOP_TIMEOUT_SECONDS
from tests.e2e.fake_remote import FakeRemote
from tests.e2e.processes import ServerProcess, await_for, set_config_keys

# Fresh connections per attempt: SO_REUSEPORT spreads them over both processes by their source
# port, so among this many the chance that none reaches a given process is 2 ** -ATTEMPTS.
ATTEMPTS = 24


def acceptor_pids(primary_pid: int) -> list[int]:
    """The primary's children that are running acceptors (zombies are gone already)."""
    found = []
    for task in Path(f"/proc/{primary_pid}/task").glob("*"):
        try:
            found += [int(pid) for pid in (task / "children").read_text().split()]
        except OSError:
            pass
    return sorted(pid for pid in set(found) if _running(pid) and "--acceptor-parent-fd" in _cmdline(pid))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may wait for a reaper that never comes here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


async def two_processes(server: ServerProcess) -> tuple[int, int]:
    """Serve with processes = 2; returns (primary pid, acceptor pid) once the acceptor listens."""
    set_config_keys(server.config, processes=2)
    server.run("user", "create", "alice", check=True)
    await server.astart()
    assert server.proc is not None
    pids = await await_for(lambda: acceptor_pids(server.proc.pid), what="the acceptor process")
    assert len(pids) == 1
    await await_for(lambda: _listening_sockets(server.port) >= 2, what="both processes listening")
    return server.proc.pid, pids[0]


def _listening_sockets(port: int) -> int:
    """Sockets listening on 127.0.0.1:port (one per process with SO_REUSEPORT), from /proc/net/tcp."""
    wanted = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[1] == wanted and line.split()[3] == "0A")


@dataclass
class Sent:
    activity_id: str
    note_id: str
    status: int = 0  # 0: no answer within the timeout


async def post_on_fresh_connections(remote: FakeRemote, server: ServerProcess, *, text: str,
                                    timeout: float) -> list[Sent]:
    """Send ATTEMPTS signed Create(Note)s mentioning alice, each on a new connection."""
    inbox = f"{server.base}/inbox"
    sent: list[Sent] = []

    async def send(n: int) -> None:
        activity = remote.create_note("bob", f"{text} {n}", mention=server.actor_uri("alice"))
        this = Sent(activity["id"], activity["object"]["id"])
        sent.append(this)
        body = json.dumps(activity).encode()
        headers = remote.sign("POST", inbox, body, as_user="bob")
        connector = aiohttp.TCPConnector(force_close=True)
        try:
            async with aiohttp.ClientSession(connector=connector) as http:
                async with http.post(URL(inbox, encoded=True), data=body, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                    this.status = resp.status
        except (asyncio.TimeoutError, aiohttp.ClientError):
            pass

    await asyncio.gather(*(send(n) for n in range(ATTEMPTS)))
    return sent


def stored_posts(server: ServerProcess, sent: list[Sent]) -> int:
    marks = ",".join("?" * len(sent))
    return server.value(f"SELECT count(*) FROM posts WHERE uri IN ({marks})", tuple(s.note_id for s in sent)) or 0


@pytest.fixture
async def remote():
    remote = await FakeRemote.start("bob")
    yield remote
    await remote.stop()


async def test_what_an_acceptor_accepts_is_stored_and_applied_by_the_primary(fedserver_processes, remote):
    server = fedserver_processes("a")
    primary, acceptor = await two_processes(server)

    # With the primary frozen, only the acceptor answers: the requests that get a 202 were verified
    # (the acceptor fetched bob's key itself) and stored by it alone.
    os.kill(primary, signal.SIGSTOP)
    try:
        sent = await post_on_fresh_connections(remote, server, text="frozen primary", timeout=3)
        accepted = [s for s in sent if s.status == 202]
        assert accepted, f"no request reached the acceptor: {sent}"
        assert {s.status for s in sent} <= {202, 0}, sent
        marks = ",".join("?" * len(accepted))
        assert server.value(f"SELECT count(*) FROM inbox_items WHERE activity_uri IN ({marks})",
                            tuple(s.activity_id for s in accepted)) == len(accepted)
        assert stored_posts(server, accepted) == 0  # nobody has applied them: the primary is stopped
    finally:
        os.kill(primary, signal.SIGCONT)

    await await_for(lambda: stored_posts(server, accepted) == len(accepted),
                    what="the primary's inbox worker applying what the acceptor stored")
    # Both processes answer again: everything sent now is accepted and applied.
    sent = await post_on_fresh_connections(remote, server, text="both running", timeout=10)
    assert {s.status for s in sent} == {202}, sent
    await await_for(lambda: stored_posts(server, sent) == ATTEMPTS, what="all posts applied")
    assert acceptor_pids(primary) == [acceptor]


async def test_an_acceptor_that_dies_is_replaced(fedserver_processes, remote):
    server = fedserver_processes("a")
    primary, acceptor = await two_processes(server)

    os.kill(acceptor, signal.SIGKILL)
    replacement = (await await_for(lambda: [pid for pid in acceptor_pids(primary) if pid != acceptor],
                                   what="a new acceptor process"))[0]
    await await_for(lambda: _listening_sockets(server.port) >= 2, what="the new acceptor listening")
    sent = await post_on_fresh_connections(remote, server, text="after the crash", timeout=10)
    assert {s.status for s in sent} == {202}, sent
    await await_for(lambda: stored_posts(server, sent) == ATTEMPTS, what="all posts applied")
    assert acceptor_pids(primary) == [replacement]
    assert f"acceptor process {acceptor} exited" in server.logs()


async def test_acceptors_stop_with_the_primary(fedserver_processes):
    server = fedserver_processes("a")
    _, acceptor = await two_processes(server)
    assert server.terminate() == 0
    assert not _running(acceptor)
    assert _listening_sockets(server.port) == 0


async def test_all_processes_stop_gracefully_when_each_gets_sigterm(fedserver_processes):
    # What systemd does on stop: SIGTERM to every process of the service at once. Each acceptor
    # then also gets the primary's SIGTERM during its shutdown; before, that second signal broke
    # the shutdown off and the acceptor hung until the primary killed it 10 s later.
    server = fedserver_processes("a")
    _, acceptor = await two_processes(server)
    os.kill(acceptor, signal.SIGTERM)
    assert server.terminate(timeout=STOP_TIMEOUT_SECONDS + 5) == 0
    assert not _running(acceptor)
    assert "did not stop" not in server.logs()  # it stopped by itself, not killed by the primary


async def test_acceptors_leave_when_the_primary_is_killed(fedserver_processes):
    server = fedserver_processes("a")
    _, acceptor = await two_processes(server)
    server.kill()
    await await_for(lambda: not _running(acceptor), what="the orphaned acceptor to exit")
    # The port is free for the next start: nothing is left listening on it (SO_REUSEADDR, as a
    # server sets it, only passes over connections in TIME_WAIT, not over a listener).
    assert _listening_sockets(server.port) == 0
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", server.port))


def test_serve_refuses_a_process_count_out_of_range(fedserver_processes):
    server = fedserver_processes("a")
    result = server.run("serve", "--processes", "0")
    assert result.returncode == 1
    assert "--processes must be 1-64, got 0" in result.stderr + result.stdout
    set_config_keys(server.config, processes=100)
    result = server.run("serve")
    assert result.returncode == 2  # a configuration error
    assert "[server] processes must be 1-64, got 100" in result.stderr + result.stdout
