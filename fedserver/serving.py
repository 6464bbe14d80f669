"""Running `fedserver serve`: one process, or several sharing one listening socket.

One Python process answers inbox requests at about a core's worth of CPU ([server] processes = 1,
the default, and what a small instance needs). With processes = N > 1 the first process (the
primary) binds the socket, serves HTTP and runs every background worker (inbox, delivery, corpus
reconciler; none with `serve --no-workers`, which leaves them to `fedserver worker` processes, see
fedserver/background.py); N - 1 acceptor processes serve HTTP on the same port and run no
workers. Nothing is shared in memory: queue rows are leased, sessions and sign-in throttles are rows, and what an
acceptor stores (an inbox activity, a post's deliveries) the primary's workers see through SQLite's
data_version. Caches (keys, domain blocks) are per process and may be a few seconds apart, as they
already may be between the server and a CLI command.

Each process listens on its own socket bound with SO_REUSEPORT, so that the kernel spreads new
connections evenly over them. One socket shared by all would not: asyncio accepts every pending
connection on each wake-up, so whichever process woke first took most of a burst of new
connections (measured: 65% and 89% busy, 7,000 requests/s; spread evenly, 8,000/s). Linux only
(elsewhere SO_REUSEPORT does not spread connections).

Acceptors are separate interpreters (not forks: the primary runs threads by then), restarted when
one dies, and stopped with the primary: each watches a pipe from the primary and leaves when it
closes, even if the primary was killed.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from aiohttp import web

from fedserver.config import Settings

log = logging.getLogger(__name__)

# An acceptor that exits sooner than this after its start is restarted after a growing pause (up
# to RESTART_MAX_PAUSE_SECONDS), so that one failing at start does not spin.
STABLE_AFTER_SECONDS = 10.0
RESTART_MAX_PAUSE_SECONDS = 30.0
SUPERVISE_EVERY_SECONDS = 0.5
STOP_TIMEOUT_SECONDS = 10.0
LISTEN_BACKLOG = 1024


class CannotServe(Exception):
    """The server cannot run as configured on this system (a reason the self-hoster can act on)."""


def serve(settings: Settings, *, config_path: Path, host: str, port: int, processes: int,
          on_listening: Callable[[], None], verbose: bool = False, run_workers: bool = True) -> None:
    """Serve until SIGINT/SIGTERM. Raises OSError when the address cannot be bound. With
    run_workers=False (`serve --no-workers`) no process of this server runs background work: what it
    queues waits for a `fedserver worker` (fedserver/background.py)."""
    from fedserver.app import build_app

    # What the command line overrode, as the workers read it (the inbox worker watches for what
    # acceptors store only when there are some).
    settings = replace(settings, server=replace(settings.server, host=host, port=port, processes=processes))
    app = build_app(settings, run_workers=run_workers)
    app.on_startup.insert(0, _stop_once_on_signals)
    common = dict(print=lambda _: on_listening(), access_log=None, handle_signals=False, shutdown_timeout=5)
    if processes <= 1:
        web.run_app(app, host=host, port=port, **common)
        return
    if not hasattr(socket, "SO_REUSEPORT") or not sys.platform.startswith("linux"):
        raise CannotServe("[server] processes > 1 needs Linux (SO_REUSEPORT)")
    sock = _listen(host, port)
    pool = AcceptorPool(config_path, host, port, processes - 1, verbose=verbose)
    # After build_app's own start-up, which migrates the database: acceptors find it ready.
    app.on_startup.append(pool.start)
    app.on_shutdown.append(pool.stop)
    try:
        web.run_app(app, sock=sock, **common)
    finally:
        sock.close()


def run_acceptor(settings: Settings, *, host: str, port: int, parent_fd: int) -> None:
    """An acceptor process: HTTP on its own socket on the primary's port, no background workers,
    until SIGTERM or until the primary's end of the pipe closes."""
    from fedserver.app import build_app

    sock = _listen(host, port)
    app = build_app(settings, run_workers=False)
    app.on_startup.insert(0, _stop_once_on_signals)

    async def watch_parent(app: web.Application) -> None:
        loop = asyncio.get_running_loop()

        def parent_gone() -> None:
            loop.remove_reader(parent_fd)
            log.info("acceptor %d: the primary process is gone; stopping", os.getpid())
            signal.raise_signal(signal.SIGTERM)  # a graceful shutdown (_stop_once_on_signals)

        loop.add_reader(parent_fd, parent_gone)  # the primary never writes: readable means closed

    app.on_startup.append(watch_parent)
    web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=False, shutdown_timeout=5)


async def _stop_once_on_signals(app: web.Application) -> None:
    """SIGINT/SIGTERM start a graceful shutdown, once. aiohttp's own handlers start it again on
    every signal, and a second one during the shutdown (systemd signals every process of the
    service, and the primary then signals its acceptors too; or Ctrl-C twice) broke it off before
    the database was closed: the process then waited forever for its database threads."""
    loop = asyncio.get_running_loop()
    stopping = False

    def stop() -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise web.GracefulExit()  # leaves the event loop; run_app then shuts the app down

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)


def _listen(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _Acceptor:
    def __init__(self, proc: subprocess.Popen, parent_end: int) -> None:
        self.proc = proc
        self.parent_end = parent_end  # the primary's end of the pipe the acceptor watches
        self.started = time.monotonic()

    def close_pipe(self) -> None:
        if self.parent_end >= 0:
            os.close(self.parent_end)
            self.parent_end = -1


class AcceptorPool:
    """The primary's acceptor processes: started with the app, restarted when they die, stopped
    (SIGTERM, then SIGKILL after STOP_TIMEOUT_SECONDS) when the primary shuts down."""

    def __init__(self, config_path: Path, host: str, port: int, count: int, *, verbose: bool = False) -> None:
        self.config_path = config_path
        self.host, self.port = host, port
        self.count = count
        self.verbose = verbose
        self.acceptors: list[_Acceptor] = []
        self._failures = 0
        self._supervisor: asyncio.Task | None = None

    async def start(self, app: web.Application) -> None:
        self.acceptors = [self._spawn() for _ in range(self.count)]
        log.info("serving with %d acceptor processes besides this one (pids %s)", self.count,
                 ", ".join(str(a.proc.pid) for a in self.acceptors))
        self._supervisor = asyncio.create_task(self._supervise(), name="acceptor-supervisor")

    def pids(self) -> list[int]:
        return [a.proc.pid for a in self.acceptors]

    def _spawn(self) -> _Acceptor:
        child_end, parent_end = os.pipe()
        command = [sys.executable, "-m", "fedserver", "--config", str(self.config_path),
                   *(["--verbose"] if self.verbose else []), "serve", "--host", self.host, "--port", str(self.port),
                   "--acceptor-parent-fd", str(child_end)]
        try:
            proc = subprocess.Popen(command, pass_fds=(child_end,), stdin=subprocess.DEVNULL)
        except BaseException:
            os.close(parent_end)
            raise
        finally:
            os.close(child_end)
        return _Acceptor(proc, parent_end)

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(SUPERVISE_EVERY_SECONDS)
            for index, acceptor in enumerate(self.acceptors):
                code = acceptor.proc.poll()
                if code is None:
                    continue
                acceptor.close_pipe()
                lived = time.monotonic() - acceptor.started
                self._failures = 0 if lived >= STABLE_AFTER_SECONDS else self._failures + 1
                pause = min(RESTART_MAX_PAUSE_SECONDS, 0.5 * 2 ** self._failures) if self._failures else 0.0
                log.warning("acceptor process %d exited with status %s after %.1fs; starting another%s",
                            acceptor.proc.pid, code, lived, f" in {pause:.1f}s" if pause else "")
                if pause:
                    await asyncio.sleep(pause)
                self.acceptors[index] = self._spawn()

    async def stop(self, app: web.Application) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            try:
                await self._supervisor
            except asyncio.CancelledError:
                pass
        for acceptor in self.acceptors:
            if acceptor.proc.poll() is None:
                acceptor.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(self._reap)
        for acceptor in self.acceptors:
            acceptor.close_pipe()
        self.acceptors = []

    def _reap(self) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for acceptor in self.acceptors:
            try:
                acceptor.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("acceptor process %d did not stop in %.0fs; killing it", acceptor.proc.pid,
                            STOP_TIMEOUT_SECONDS)
                acceptor.proc.kill()
                acceptor.proc.wait()
