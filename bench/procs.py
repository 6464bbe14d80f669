"""Helper processes the benchmarks start and always stop: the bare aiohttp ceiling endpoint, the
remote-actors server, and py-spy profiles of the fedserver process."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from bench.common import ROOT, free_port

BENCH = Path(__file__).resolve().parent


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def bare_server() -> Iterator[tuple[int, int]]:
    """(port, pid) of a bare aiohttp endpoint: read body, json.loads, answer 202."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(BENCH / "bare_server.py"), str(port)], cwd=ROOT,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("bare server did not start")
                time.sleep(0.05)
        yield port, proc.pid
    finally:
        _stop(proc)


@contextmanager
def remote_actors(keys: list[str], hosts: int) -> Iterator[list[int]]:
    """Ports of a remote-actors server publishing the public halves of `keys` on `hosts` ports."""
    tmp = Path(tempfile.mkdtemp(prefix="fedserver-bench-remote-"))
    keyfile, ready = tmp / "keys.json", tmp / "ports.json"
    keyfile.write_text(json.dumps(keys))
    proc = subprocess.Popen([sys.executable, str(BENCH / "remote_actors.py"), str(keyfile), str(hosts), str(ready)],
                            cwd=ROOT, stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("remote actors server did not start")
            time.sleep(0.05)
        time.sleep(0.05)
        yield json.loads(ready.read_text())
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def remote_stats(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats", timeout=5) as resp:
        return json.loads(resp.read())


@contextmanager
def py_spy(pid: int, out: Path, duration: int | None, rate: int = 250) -> Iterator[None]:
    """Sample `pid` with py-spy (collapsed stacks to `out`) while the block runs; no-op without py-spy.
    duration=None samples for exactly as long as the block runs (py-spy is stopped with SIGINT, on
    which it writes what it has): for a load of unknown length, so that what follows is not mixed in."""
    exe = shutil.which("py-spy")
    proc = None
    if exe:
        out.parent.mkdir(parents=True, exist_ok=True)
        # PYSPY_GIL=1: sample only the thread holding the GIL (what the other threads cost the loop).
        only_gil = ["--gil"] if os.environ.get("PYSPY_GIL") else []
        proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", str(rate),
                                 "--duration", str(duration or 120), "--format", "raw", "--threads", *only_gil,
                                 "--output", str(out), "--nonblocking"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        if duration is None:
            time.sleep(0.5)  # attached before the load starts
    try:
        yield
    finally:
        if proc is not None:
            if duration is None:
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=(duration or 0) + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def summarize_profile(path: Path, duration: float, rate: int = 250, top: int = 22) -> str:
    """Inclusive and self share of the event-loop thread's time per function, from py-spy's
    collapsed output (--threads; idle samples are not recorded, so the busy share is samples
    over rate x duration)."""
    if not path.exists() or not path.read_text().strip():
        return "(no profile: py-spy missing or failed)"
    inclusive: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        threads[thread.split(" ")[0]] += count
        if thread != "MainThread":
            continue  # aiosqlite's threads: their time shows as the main thread waiting
        names = [_frame_name(f) for f in frames[1:]]
        if not names:
            continue
        total += count
        for name in set(names):
            inclusive[name] += count
        self_[names[-1]] += count
    if total == 0:
        return "(empty profile)"
    expected = rate * duration
    lines = [f"event-loop thread busy {100 * total / expected:.0f}% of the sampled time; other threads' samples: "
             + ", ".join(f"{name} {100 * n / expected:.0f}%" for name, n in threads.most_common() if name != "MainThread"),
             "  incl% | self% | function (file) -- shares of the event-loop thread's busy samples"]
    skip = ("<module>", "run_forever", "_run_once", "run_app", "_run_module_as_main", "_run_code", "main (fedserver",
            "_serve (fedserver", "run (asyncio", "run_until_complete", "Handle._run", "_run (asyncio")
    for name, count in inclusive.most_common(top * 3):
        if any(s in name for s in skip):
            continue
        lines.append(f"  {100 * count / total:5.1f} | {100 * self_[name] / total:5.1f} | {name}")
        if len(lines) >= top + 2:
            break
    lines.append("  top self time:")
    for name, count in self_.most_common(12):
        lines.append(f"    {100 * count / total:5.1f}% {name}")
    return "\n".join(lines)


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"; shorten the path.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    where = where.rsplit(":", 1)[0]
    return f"{name} ({where})"
