"""Shared pieces of the benchmarks: a real `fedserver serve` subprocess on loopback (on SQLite, or on
a PostgreSQL database of its own, with optional `fedserver worker` processes beside it), memory
readings from /proc, statistics, a cached pool of RSA keys, and a lean HTTP/1.1 keep-alive load
generator.

Everything here talks to 127.0.0.1 (or a local Unix socket for PostgreSQL) only, and every load loop
is bounded in count and in time."""
from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
KEY_CACHE = Path(os.environ.get("FEDSERVER_BENCH_CACHE", Path.home() / ".cache" / "fedserver-bench"))


# --- machine and statistics ------------------------------------------------------------------

def machine() -> str:
    import aiohttp
    import cryptography

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, aiohttp {aiohttp.__version__},"
            f" cryptography {cryptography.__version__}, SQLite {__import__('sqlite3').sqlite_version},"
            f" {platform.system()} {platform.release()}")


def load_average() -> tuple[float, float, float]:
    """The machine's 1, 5 and 15 minute load averages: how much else was running (a shared machine)."""
    return os.getloadavg()


def layout_line(server: "Server", web_processes: int, workers: int) -> str:
    """How the instance runs, printed at the start of a benchmark with the load average."""
    one, five, fifteen = load_average()
    if workers:
        layout = (f"`serve --no-workers` with {web_processes} HTTP process(es) + {workers} `fedserver worker`"
                  f" process(es)")
    else:
        layout = f"plain `fedserver serve` ({web_processes} HTTP process(es), background work in the primary)"
    return (f"database: {engine_name(server.database_url)}; layout: {layout}\n"
            f"load average at start: {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores; a busy machine"
            f" lowers every absolute figure: compare the ratios to the ceiling measured in the same run)")


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rss_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MiB, from /proc/PID/status."""
    rss = hwm = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return rss, hwm


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (a server's acceptor and signing processes), from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass
    return sorted(set(found))


def tree_cpu_seconds(pid: int) -> float:
    """cpu_seconds of a process and its children that are still running."""
    total = 0.0
    for each in [pid, *child_pids(pid)]:
        try:
            total += cpu_seconds(each)
        except OSError:
            pass
    return total


def tree_rss_mib(pid: int) -> float:
    """Current RSS of a process and its children, summed (shared pages counted in each)."""
    total = 0.0
    for each in [pid, *child_pids(pid)]:
        try:
            total += rss_mib(each)[0]
        except OSError:
            pass
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def header(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


# --- RSA keys (generation costs ~50 ms each: generate once, keep in a cache file) --------------

def key_pool(count: int) -> list[str]:
    """`count` distinct RSA-2048 private keys (PEM), generated once and cached on disk."""
    from concurrent.futures import ProcessPoolExecutor

    KEY_CACHE.mkdir(parents=True, exist_ok=True)
    path = KEY_CACHE / "rsa2048.json"
    keys: list[str] = json.loads(path.read_text()) if path.exists() else []
    if len(keys) < count:
        missing = count - len(keys)
        print(f"generating {missing} RSA-2048 keys once (cached in {path}) ...", flush=True)
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            keys += list(pool.map(_gen_key, range(missing), chunksize=8))
        path.write_text(json.dumps(keys))
    return keys[:count]


def _gen_key(_: int) -> str:
    from fedserver.activitypub.keys import generate_rsa_private_key_pem

    return generate_rsa_private_key_pem()


# --- a real fedserver instance -------------------------------------------------------------

def fedserver_command() -> list[str]:
    # The interpreter itself, not a console-script shim (pyenv's is a shell script): the PID we hold
    # is then the server's own, for RSS readings and py-spy.
    return [sys.executable, "-m", "fedserver"]


# --- PostgreSQL: one fresh database per run, dropped at the end ------------------------------

_databases = count(1)


def _postgres_admin(server_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql)


def create_postgres_database(server_url: str) -> tuple[str, str]:
    """(name, url) of a new empty database on the PostgreSQL server that `server_url` reaches (any
    database on it, e.g. .../postgres?host=/tmp/pgmain); the URL keeps its user, host and options."""
    if not server_url.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"--database-url must be a postgresql:// URL, got {server_url!r}")
    name = f"fedserver_bench_{os.getpid()}_{next(_databases)}"
    _postgres_admin(server_url, f"CREATE DATABASE {name} TEMPLATE template0")
    return name, urlunsplit(urlsplit(server_url)._replace(path="/" + name))


def drop_postgres_database(server_url: str, name: str) -> None:
    """Drop a database create_postgres_database made (WITH (FORCE): a connection left behind by a
    killed process does not keep it)."""
    _postgres_admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def engine_name(database_url: str | None) -> str:
    if not database_url:
        return "SQLite"
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
    return f"PostgreSQL {version} (psycopg {psycopg.__version__})"


@dataclass
class Server:
    """A `fedserver serve` subprocess on 127.0.0.1 with its own config and database: an SQLite file,
    or (with `postgres`, a PostgreSQL server's URL) a database of its own created on that server for
    this instance and dropped by remove(). start(workers=M) serves with `--no-workers` and runs M
    `fedserver worker` processes beside it on the same config and database."""
    directory: Path
    port: int
    proc: subprocess.Popen | None = None
    federation: dict[str, Any] = field(default_factory=dict)
    postgres: str | None = None  # the PostgreSQL server's URL the instance's database was made on
    database_name: str | None = None
    database_url: str | None = None  # the instance's own PostgreSQL database ([database] url)
    workers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"http://{self.domain}"

    @property
    def config(self) -> Path:
        return self.directory / "fedserver.toml"

    @property
    def database(self) -> Path:
        return self.directory / "fedserver.sqlite3"

    @property
    def engine(self) -> str:
        return "postgresql" if self.database_url else "sqlite"

    @classmethod
    def create(cls, directory: Path | None = None, *, port: int | None = None, users: Sequence[str] = ("alice",),
               postgres: str | None = None, **federation: Any) -> "Server":
        directory = directory or Path(tempfile.mkdtemp(prefix="fedserver-bench-"))
        server = cls(directory=directory, port=port or free_port(), federation=federation, postgres=postgres)
        try:
            server.cli("init", "--domain", server.domain, "--scheme", "http", "--port", str(server.port),
                       "--allow-private-addresses")
            if postgres:
                server.database_name, server.database_url = create_postgres_database(postgres)
                server.set_config(url=server.database_url)
                server.database.unlink(missing_ok=True)  # init's SQLite file: the instance does not use it
                server.cli("migrate")
            server.set_config(**federation)
            password = directory / "password.txt"
            password.write_text("bench-password-123\n")
            for user in users:
                server.cli("user", "create", user, "--password-file", str(password))
        except BaseException:
            server.remove()
            raise
        return server

    def set_config(self, **values: Any) -> None:
        import re

        text = self.config.read_text()
        for key, value in values.items():
            rendered = ("true" if value else "false") if isinstance(value, bool) else (
                repr(value) if isinstance(value, (int, float)) else json.dumps(str(value)))
            text, n = re.subn(rf"^{key} = .*$", f"{key} = {rendered}", text, flags=re.M)
            if n != 1:
                raise KeyError(key)
        self.config.write_text(text)

    def cli(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run([*fedserver_command(), "--config", str(self.config), *args], cwd=self.directory,
                                capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(f"fedserver {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def start(self, *, wrapper: Sequence[str] = (), timeout: float = 30, workers: int = 0,
              worker_queues: str | None = None) -> "Server":
        """Serve; with workers >= 1, HTTP only (`serve --no-workers`) plus that many `fedserver worker`
        processes (`--queues worker_queues`, default all), each started and running before this returns."""
        log = open(self.directory / "serve.log", "ab")
        no_workers = ["--no-workers"] if workers else []
        self.proc = subprocess.Popen([*wrapper, *fedserver_command(), "--config", str(self.config), "serve",
                                      *no_workers], cwd=self.directory, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fedserver serve exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                urllib.request.urlopen(f"{self.base}/.well-known/nodeinfo", timeout=1).close()
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"fedserver did not answer in {timeout}s:\n{self.log_tail()}")
            time.sleep(0.1)
        for _ in range(workers):
            self._start_worker(worker_queues, timeout)
        return self

    def _start_worker(self, queues: str | None, timeout: float) -> None:
        path = self.directory / f"worker-{len(self.workers) + 1}.log"
        with open(path, "wb") as log:
            proc = subprocess.Popen([*fedserver_command(), "--config", str(self.config), "worker",
                                     *(["--queues", queues] if queues else [])], cwd=self.directory, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.workers.append(proc)
        deadline = time.monotonic() + timeout
        while "fedserver worker is running" not in path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"fedserver worker did not start:\n{path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def worker_pids(self) -> list[int]:
        return [proc.pid for proc in self.workers if proc.poll() is None]

    def log_tail(self, chars: int = 3000) -> str:
        path = self.directory / "serve.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        for proc in [*self.workers, *([self.proc] if self.proc is not None else [])]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, *([self.proc] if self.proc is not None else [])]:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.workers = []
        self.proc = None

    def remove(self) -> None:
        """Stop, drop its PostgreSQL database and delete the instance's directory
        (FEDSERVER_BENCH_KEEP=1 keeps both for a look)."""
        self.stop()
        if os.environ.get("FEDSERVER_BENCH_KEEP"):
            print(f"kept {self.directory}" + (f" and database {self.database_url}" if self.database_url else ""))
            return
        if self.postgres and self.database_name:
            drop_postgres_database(self.postgres, self.database_name)
            self.database_name = None
        shutil.rmtree(self.directory, ignore_errors=True)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Read the instance's database (SQL written for SQLite's `?` placeholders; portable SQL only)."""
        if self.database_url:
            import psycopg

            from fedserver.sql_dialect import placeholders

            with psycopg.connect(self.database_url, autocommit=True) as conn:
                return [tuple(row) for row in conn.execute(placeholders(sql), params).fetchall()]
        import sqlite3

        conn = sqlite3.connect(self.database, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def write(self, statements: Sequence[tuple[str, Sequence[tuple]]]) -> None:
        """Run (sql, rows) pairs in one transaction, each sql once per row (executemany); portable SQL
        with `?` placeholders."""
        if self.database_url:
            import psycopg

            from fedserver.sql_dialect import placeholders

            with psycopg.connect(self.database_url) as conn, conn.transaction(), conn.cursor() as cur:
                for sql, rows in statements:
                    cur.executemany(placeholders(sql), rows)
            return
        import sqlite3

        conn = sqlite3.connect(self.database, timeout=30)
        try:
            with conn:
                for sql, rows in statements:
                    conn.executemany(sql, rows)
        finally:
            conn.close()

    def value(self, sql: str, params: tuple = ()) -> Any:
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def database_cpu(self) -> dict[int, float]:
        """CPU seconds used so far by each PostgreSQL backend connected to this instance's database
        (from pg_stat_activity and /proc: the server runs on this machine); {} on SQLite, whose work
        is done in fedserver's own processes. Compare two readings with cpu_delta."""
        if not self.database_url:
            return {}
        found: dict[int, float] = {}
        for (pid,) in self.query("SELECT pid FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid()",
                                 (self.database_name,)):
            try:
                found[int(pid)] = cpu_seconds(int(pid))
            except OSError:
                pass
        return found


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two database_cpu readings (a backend started in between counts from 0)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


# --- lean HTTP/1.1 load generator ----------------------------------------------------------

@dataclass
class LoadResult:
    sent: int
    statuses: dict[int, int]
    latencies_ms: list[float]
    elapsed: float
    cpu: float  # generator CPU seconds during the run (≈ elapsed means the generator was the limit)
    errors: int = 0

    def ok(self, status: int = 202) -> int:
        return self.statuses.get(status, 0)

    def summary(self, status: int = 202) -> dict[str, float]:
        return {"sent": self.sent, "ok": self.ok(status), "rate": self.ok(status) / self.elapsed if self.elapsed else 0,
                "p50": pct(self.latencies_ms, 50), "p99": pct(self.latencies_ms, 99), "elapsed": self.elapsed,
                "gen_cpu": self.cpu / self.elapsed if self.elapsed else 0, "errors": self.errors,
                "other": {k: v for k, v in self.statuses.items() if k != status}}


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    lower = head.lower()
    i = lower.find(b"content-length:")
    if i >= 0:
        length = int(lower[i + 15:lower.index(b"\r\n", i)])
    elif b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
        return status
    if length:
        await reader.readexactly(length)
    return status


async def run_load(port: int, requests: Sequence[Any], *, connections: int, duration: float,
                   cycle: bool = False, rate: float | None = None,
                   build: Callable[[Any], bytes] | None = None) -> LoadResult:
    """Send pre-built raw requests over `connections` keep-alive connections, closed loop (or paced
    at `rate` req/s, latency then counted from the scheduled send time). Stops when the requests run
    out (unless cycle) or after `duration` seconds, whichever comes first. With `build`, each item of
    `requests` is turned into its bytes just before it is sent (a request signed at send time)."""
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    next_index = 0
    errors = 0
    start = time.perf_counter()
    deadline = start + duration
    total = len(requests)

    async def worker() -> None:
        nonlocal next_index, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                now = time.perf_counter()
                if now >= deadline:
                    return
                i = next_index
                if i >= total and not cycle:
                    return
                next_index += 1
                sent_at = now
                if rate is not None:
                    sent_at = start + i / rate
                    if sent_at >= deadline:
                        return
                    if sent_at > now:
                        await asyncio.sleep(sent_at - now)
                writer.write(requests[i % total] if build is None else build(requests[i % total]))
                try:
                    status = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                latencies.append((time.perf_counter() - sent_at) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    cpu0 = time.process_time()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))), timeout=duration + 60)
    elapsed = time.perf_counter() - start
    return LoadResult(sent=sum(statuses.values()) + errors, statuses=statuses, latencies_ms=latencies,
                      elapsed=elapsed, cpu=time.process_time() - cpu0, errors=errors)


def load_in_subprocess(port: int, requests: Sequence[bytes], **kwargs: Any) -> LoadResult:
    """run_load in a separate process, so the generator never shares a core's event loop with what
    it measures."""
    return run_in_subprocess(run_load, port, requests, what="load generator", **kwargs)


def run_in_subprocess(load: Callable[..., Awaitable[Any]], *args: Any, what: str, **kwargs: Any) -> Any:
    """asyncio.run(load(*args, **kwargs)) in a forked child process and its result (an exception in
    the child is raised here); `what` names it when it does not finish within its duration + 90 s."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, load, args, kwargs), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(kwargs.get("duration", 10) + 90):
            raise RuntimeError(f"{what} did not finish in time")
        result = parent.recv()
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
    if isinstance(result, BaseException):
        raise result
    return result


def _child(conn, load: Callable[..., Awaitable[Any]], args: tuple, kwargs: dict[str, Any]) -> None:
    try:
        conn.send(asyncio.run(load(*args, **kwargs)))
    except BaseException as exc:  # noqa: BLE001 - handed back to the parent
        conn.send(RuntimeError(f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def raw_post(path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def raw_get(path: str, host: str, accept: str = "text/html") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\n\r\n".encode("latin-1")
