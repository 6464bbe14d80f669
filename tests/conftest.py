"""Fixtures that build real things: SQLite files in tmp_path and fedserver instances serving real
HTTP on loopback ports."""
from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from fedserver.app import build_app
from fedserver.services import accounts
from fedserver.config import Settings, settings_from_dict
from fedserver.context import CTX_KEY, Context
from tests import engines


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--engine", choices=("sqlite", "postgresql"), default="sqlite",
                     help="database engine of every instance the tests create (postgresql: each gets a fresh"
                          f" database on the server at ${engines.ENV_URL})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: the test is about SQLite itself (skipped on PostgreSQL)")
    config.addinivalue_line("markers", "postgresql_only: the test is about PostgreSQL itself (needs its server)")
    engines.configure(config.getoption("--engine"))


def _skip_other_engines_tests(items: list[pytest.Item]) -> None:
    for item in items:
        if engines.on_postgresql() and item.get_closest_marker("sqlite_only"):
            item.add_marker(pytest.mark.skip(reason="SQLite-specific (see the test's marker)"))
        # Tests of PostgreSQL itself run in the `--engine postgresql` pass only (.ci/run runs both
        # passes; running them in the SQLite pass too would only run them twice).
        if item.get_closest_marker("postgresql_only") and not engines.on_postgresql():
            item.add_marker(pytest.mark.skip(reason="about PostgreSQL: runs with --engine postgresql"
                                                    f" (and {engines.ENV_URL} set)"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    engines.drop_template()


@pytest.fixture(scope="session", autouse=True)
def _child_processes_cache_bytecode(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Every `fedserver` process the tests start (serve, worker, each CLI command) imports about 170
    modules of ours. With PYTHONDONTWRITEBYTECODE set (as where this suite runs), each of them
    compiled them all from source again: about 0.35 s of CPU per server start and 0.15 s per CLI
    command, hundreds of times a run. The children keep their bytecode under this session's
    temporary directory instead, so still nothing is written next to the sources."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        yield
        return
    saved = os.environ.pop("PYTHONDONTWRITEBYTECODE")
    os.environ["PYTHONPYCACHEPREFIX"] = str(tmp_path_factory.mktemp("pycache"))
    try:
        yield
    finally:
        os.environ.pop("PYTHONPYCACHEPREFIX", None)
        os.environ["PYTHONDONTWRITEBYTECODE"] = saved


@pytest.fixture(autouse=True)
def _drop_test_databases() -> Any:
    """PostgreSQL databases a test created are dropped when it ends (those of module- or
    session-scoped fixtures when the session ends)."""
    since = engines.test_starts()
    yield
    engines.drop_created(since)


def bound_socket() -> socket.socket:
    """A listening-ready socket on a free loopback port (bound now, so no other test takes it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with bound_socket() as sock:
        return sock.getsockname()[1]


def loopback_settings(directory: Path, port: int, **federation: Any) -> Settings:
    """Settings for a test instance: plain http on 127.0.0.1, private addresses allowed (tests only),
    fast retries and short timeouts."""
    fed = {"allow_private_addresses": True, "delivery_retry_scale": 0.01, "fetch_timeout_seconds": 5.0,
           "delivery_timeout_seconds": 3.0, **federation}
    return settings_from_dict({
        "instance": {"domain": f"127.0.0.1:{port}", "scheme": "http", "name": f"test-{port}"},
        "server": {"host": "127.0.0.1", "port": port},
        "database": engines.database_settings(directory),
        "federation": fed,
    }, directory)


@dataclass
class Instance:
    """A fedserver running in this test's event loop, serving real HTTP on its own port."""
    settings: Settings
    sock: socket.socket
    app: web.Application | None = None
    runner: web.AppRunner | None = None
    middlewares: list[Any] = field(default_factory=list)

    @property
    def ctx(self) -> Context:
        assert self.app is not None
        return self.app[CTX_KEY]

    @property
    def base(self) -> str:
        return self.settings.base_url

    @property
    def domain(self) -> str:
        return self.settings.instance.domain

    def handle(self, username: str) -> str:
        return f"@{username}@{self.domain}"

    def actor_uri(self, username: str) -> str:
        return f"{self.base}/users/{username}"

    async def start(self) -> "Instance":
        self.app = build_app(self.settings)
        self.app.middlewares[0:0] = self.middlewares
        self.runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
            self.app = None
        # The runner closed the socket: bind the same port again so a restart serves there too.
        port = self.settings.server.port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))

    async def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        async with self.ctx.db.reader.execute(sql, params) as cur:
            return [tuple(row) for row in await cur.fetchall()]

    async def count(self, sql: str, params: tuple = ()) -> int:
        rows = await self.query(sql, params)
        return int(rows[0][0])

    async def follow_state(self, follower_uri: str, followee_uri: str) -> str | None:
        """The state of the follow between these two actors as this instance records it, or None."""
        rows = await self.query(
            "SELECT f.state FROM follows f JOIN actors a ON a.id = f.follower_id JOIN actors b ON b.id = f.followee_id"
            " WHERE a.uri = ? AND b.uri = ?", (follower_uri, followee_uri))
        return rows[0][0] if rows else None


async def wait_until(predicate: Callable[[], Awaitable[Any]], *, timeout: float = 15.0,
                     interval: float = 0.05, what: str = "condition") -> Any:
    """Poll an async predicate until it returns something truthy (federation is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


@pytest.fixture
async def instances(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Instance]]]:
    """Factory: `await instances("a")` starts a fedserver named a with its own SQLite file."""
    started: list[Instance] = []

    async def start(name: str = "a", *, middlewares: list[Any] | None = None, **federation: Any) -> Instance:
        directory = tmp_path / name
        directory.mkdir(parents=True, exist_ok=True)
        sock = bound_socket()
        settings = loopback_settings(directory, sock.getsockname()[1], **federation)
        instance = Instance(settings=settings, sock=sock, middlewares=list(middlewares or []))
        await instance.start()
        started.append(instance)
        return instance

    yield start
    for instance in started:
        await instance.stop()
        instance.sock.close()


_key_pool: list[str] = []


def use_key_pool(monkeypatch) -> None:
    """New accounts take real, distinct RSA keys from a pool generated once per session, in order
    (generating one costs 40-400 ms)."""
    generate = accounts.generate_rsa_private_key_pem
    taken = 0

    def next_key() -> str:
        nonlocal taken
        if taken == len(_key_pool):
            _key_pool.append(generate())
        taken += 1
        return _key_pool[taken - 1]

    monkeypatch.setattr(accounts, "generate_rsa_private_key_pem", next_key)


@pytest.fixture
def fast_accounts(monkeypatch):
    """For tests that make many accounts and never sign in: pooled keys, passwords not hashed."""
    use_key_pool(monkeypatch)
    monkeypatch.setattr(accounts, "hash_password", lambda password: "not-hashed-in-tests")


def pytest_collection_modifyitems(config, items):
    """Browser tests (tests/browser/, and any test using one of Playwright's fixtures, directly or
    through another fixture) run last: Playwright's
    sync API keeps an event loop running in the main thread from its first use until the session
    ends, and asyncio tests cannot start a loop of their own while it runs. With pytest-xdist this
    holds in each test process only with `--dist load` (.ci/run), which hands each process its tests
    in this order; `loadfile`/`loadscope` would not."""
    _skip_other_engines_tests(items)
    playwright_fixtures = {"page", "context", "browser", "browser_type", "playwright"}
    items.sort(key=lambda item: "tests/browser/" in item.nodeid.replace("\\", "/")
               or not playwright_fixtures.isdisjoint(getattr(item, "fixturenames", ())))
