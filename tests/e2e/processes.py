"""The real `fedserver` command run as subprocesses: a loopback instance's config and SQLite file,
its CLI commands, and its `serve` process, which tests start, SIGKILL and restart."""
from __future__ import annotations


import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests import engines
from tests.conftest import free_port



def _fedserver_command() -> list[str]:
    """The console script installed with the package; the module when it is not on PATH."""
    script = shutil.which("fedserver")
    return [script] if script else [sys.executable, "-m", "fedserver"]


FEDSERVER = _fedserver_command()

# Federation settings that keep multi-process tests fast: retries in tenths of seconds, short
# timeouts (a delivery lease is 3 x delivery_timeout + 5 s, which bounds how long a killed
# server's in-flight deliveries stay claimed).
FAST_FEDERATION: dict[str, Any] = {
    "delivery_retry_scale": 0.01,
    "fetch_timeout_seconds": 5.0,
    "delivery_timeout_seconds": 2.0,
    # A killed test server's claimed work and periodic jobs come back after this (30 s by default).
    "worker_lease_seconds": 10.0,
    # Argon2 at 1 MiB: a few ms per `user create` and sign-in instead of ~0.15 s of CPU (and 64 MiB).
    "password_hash_memory_kib": 1024,
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value))


def set_config_keys(config: Path, **values: Any) -> None:
    """Replace `key = value` lines of a config written by `fedserver init` (every key is present
    there, each name once across sections)."""
    text = config.read_text(encoding="utf-8")
    for key, value in values.items():
        text, found = re.subn(rf"^{re.escape(key)} = .*$", f"{key} = {_toml_value(value)}", text, flags=re.M)
        if found != 1:
            raise KeyError(f"{config} has {found} lines for key {key!r}")
    config.write_text(text, encoding="utf-8")


class _Signalled:
    """Stopping a fedserver child process (self.proc), as a crash or as an operator would."""
    proc: subprocess.Popen | None

    def kill(self) -> int | None:
        """SIGKILL: the process gets no chance to finish anything (a crash or power-off)."""
        return self._signal(signal.SIGKILL)

    def terminate(self, timeout: float = 10) -> int | None:
        """SIGTERM: the process shuts down gracefully; returns the exit status."""
        return self._signal(signal.SIGTERM, timeout)

    def _signal(self, signum: int, timeout: float = 10) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class ServerProcess(_Signalled):
    """One fedserver instance on 127.0.0.1:port, driven only through the `fedserver` command."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.config = directory / "fedserver.toml"
        self.database = directory / "fedserver.sqlite3"
        self.proc: subprocess.Popen[bytes] | None = None
        self._serve_count = 0
        self.stdout_path: Path | None = None
        self.stderr_path: Path | None = None
        self.workers: list[WorkerProcess] = []  # `fedserver worker` processes started on this instance

    # -- identity ----------------------------------------------------------------------

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"http://{self.domain}"

    def handle(self, username: str) -> str:
        return f"@{username}@{self.domain}"

    def actor_uri(self, username: str) -> str:
        return f"{self.base}/users/{username}"

    # -- configuration and CLI -----------------------------------------------------------

    def init(self, **federation: Any) -> subprocess.CompletedProcess[str]:
        """`fedserver init` for a loopback instance, then the fast federation settings."""
        result = self.run("init", "--domain", self.domain, "--scheme", "http", "--port", str(self.port),
                          "--allow-private-addresses", check=True)
        set_config_keys(self.config, **{**FAST_FEDERATION, **engines.config_keys(self.directory), **federation})
        return result

    def run(self, *args: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `fedserver --config <config> ARGS...`; with check=True a non-zero exit raises with
        the command's output."""
        self.directory.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([*FEDSERVER, "--config", str(self.config), *args], cwd=self.directory,
                                capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"fedserver {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    async def arun(self, *args: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`run` without blocking the event loop (in-process instances keep serving meanwhile)."""
        return await asyncio.to_thread(self.run, *args, check=check, timeout=timeout)

    # -- the serve process -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, *args: str, timeout: float = 20) -> "ServerProcess":
        """Start `fedserver serve ARGS...` and wait until it answers HTTP on its port."""
        assert not self.running, "already serving"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._serve_count += 1
        self.stdout_path = self.directory / f"serve-{self._serve_count}.out"
        self.stderr_path = self.directory / f"serve-{self._serve_count}.err"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([*FEDSERVER, "--config", str(self.config), "serve", *args],
                                         cwd=self.directory, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._wait_until_serving(timeout)
        return self

    async def astart(self, *args: str, timeout: float = 20) -> "ServerProcess":
        return await asyncio.to_thread(self.start, *args, timeout=timeout)

    def _wait_until_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}/.well-known/nodeinfo"
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"fedserver serve exited {self.proc.returncode} before serving:\n{self.logs()}")
            try:
                with urllib.request.urlopen(url, timeout=1):
                    return
            except urllib.error.HTTPError:
                return  # any HTTP answer means it is serving
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"fedserver serve did not answer on port {self.port} in {timeout}s:\n"
                                     f"{self.logs()}")
            time.sleep(0.05)

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace") if self.stdout_path else ""

    def logs(self) -> str:
        err = self.stderr_path.read_text(encoding="utf-8", errors="replace") if self.stderr_path else ""
        return f"--- stdout ---\n{self.stdout()}\n--- stderr (tail) ---\n{err[-4000:]}"

    # -- the database, read directly -------------------------------------------------------

    @property
    def database_url(self) -> str | None:
        """The instance's PostgreSQL database as its config names it ([database] url), else None."""
        import tomllib

        if not self.config.exists():
            return None
        return tomllib.loads(self.config.read_text(encoding="utf-8")).get("database", {}).get("url") or None

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Read the instance's database (SQLite in WAL mode, or PostgreSQL): sees what the server
        and CLI committed. The SQL is written for SQLite (`?` placeholders)."""
        if self.database_url is not None:
            import psycopg

            from fedserver.sql_dialect import placeholders

            with psycopg.connect(self.database_url, autocommit=True) as pg:
                return [tuple(row) for row in pg.execute(placeholders(sql), params).fetchall()]
        conn = sqlite3.connect(self.database, timeout=10)
        try:
            return [tuple(row) for row in conn.execute(sql, params).fetchall()]
        finally:
            conn.close()

    def write(self, sql: str, params: tuple = ()) -> int:
        """Change the instance's database under the running server (committed on return); the
        rows changed. The SQL is written for SQLite (`?` placeholders)."""
        return engines.write(self.database_url or self.database, sql, params)

    def write_many(self, sql: str, rows: list[tuple]) -> int:
        return engines.write(self.database_url or self.database, sql, rows, many=True)

    def value(self, sql: str, params: tuple = ()) -> Any:
        rows = self.query(sql, params)
        return rows[0][0] if rows else None


class WorkerProcess(_Signalled):
    """A `fedserver worker` process (background work, no HTTP) on a ServerProcess's config and
    database; several may run at once, beside `serve --no-workers`."""

    def __init__(self, server: ServerProcess, *args: str) -> None:
        self.server = server
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        server.workers.append(self)
        self.stdout_path = server.directory / f"worker-{len(server.workers)}.out"
        self.stderr_path = server.directory / f"worker-{len(server.workers)}.err"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 20) -> "WorkerProcess":
        """Start it and wait until it says it is running."""
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([*FEDSERVER, "--config", str(self.server.config), "worker", *self.args],
                                         cwd=self.server.directory, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while "fedserver worker is running" not in self.stdout_path.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"fedserver worker did not start:\n{self.logs()}")
            time.sleep(0.05)
        return self

    async def astart(self, timeout: float = 20) -> "WorkerProcess":
        return await asyncio.to_thread(self.start, timeout)

    def logs(self) -> str:
        out = self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""
        err = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return f"--- worker stdout ---\n{out}\n--- worker stderr (tail) ---\n{err[-4000:]}"


def wait_for(predicate: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.1,
             what: str = "condition") -> Any:
    """Poll a plain predicate until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def await_for(predicate: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.1,
                    what: str = "condition") -> Any:
    """`wait_for` that lets the event loop run between polls (for tests with in-process instances)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


class ProcessGroup:
    """Creates initialised instances under one directory and kills every serve process at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers: list[ServerProcess] = []

    def __call__(self, name: str, *, init: bool = True, **federation: Any) -> ServerProcess:
        server = ServerProcess(self.root / name)
        if init:
            server.init(**federation)
        self.servers.append(server)
        return server

    def close(self) -> None:
        for server in self.servers:
            server.kill()
            for worker in server.workers:
                worker.kill()


@pytest.fixture
def fedserver_processes(tmp_path: Path) -> Iterator[ProcessGroup]:
    """Factory: `fedserver_processes("a")` is an initialised instance; `.start()` serves it."""
    group = ProcessGroup(tmp_path)
    try:
        yield group
    finally:
        group.close()


@contextmanager
def serving_with_users(group: "ProcessGroup", password: str,
                       users: list[tuple["ServerProcess", tuple[str, ...]]]) -> Iterator[None]:
    """Create each server's accounts (all with one password), start the servers, and close the
    whole group afterwards: the module-scoped two-server fixtures of the API tests."""
    try:
        for server, names in users:
            secret = server.directory / "password.txt"
            secret.write_text(password, encoding="utf-8")
            for name in names:
                server.run("user", "create", name, "--password-file", str(secret), check=True)
        for server, _ in users:
            server.start()
        yield
    finally:
        group.close()
