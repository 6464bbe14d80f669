"""Fan-out benchmark: one public post by a local account with 10,000 remote followers on 500
loopback "hosts", delivered to a sink that verifies every signature; with shared inboxes (one
delivery per host) and without (one per follower); against a bare aiohttp client POSTing the same
body, pre-signed, to the same sink with the same concurrency limits, in the same run.

    python -m bench.fanout                     # 10,000 followers, 500 hosts, 3 + 2 rounds
    python -m bench.fanout --profile           # also py-spy the server during a personal-inbox round
    python -m bench.fanout --profile shared    # ... during the first shared-inbox round instead
    python -m bench.fanout --profile shared --profile-round 2   # ... during its second round
                                               # (FANOUT_PROFILE_OUT=FILE keeps py-spy's raw samples)
    python -m bench.fanout --timeline          # fedserver's arrivals per 20 ms, every round
    python -m bench.fanout --database-url "postgresql://fedserver@/postgres?host=/tmp/pgmain"
                                               # on PostgreSQL: a fresh database made on that server
    python -m bench.fanout --database-url URL --workers 2   # `serve --no-workers` + 2 `fedserver worker`

Followers are inserted directly into the instance's database (remote actors + accepted follows); the
post is made with `fedserver post` (the CLI), which commits the post and its queued deliveries; the
running server's delivery worker picks them up (on SQLite an idle worker notices another process's
commit through PRAGMA data_version, within 50 ms while it has been busy recently, 250 ms after a
quiet spell). Large claims are signed in fedserver's signing process, whose CPU is shown beside the
server's.

Engines and layouts: without --database-url the instance is an SQLite file. With --database-url (a
PostgreSQL server, reached through any database on it; the user needs CREATEDB), the run creates its
own database there (`fedserver_bench_<pid>_<n>`), points the instance at it with `[database] url`,
and drops it at the end, whatever happens. --workers M >= 1 serves with `serve --no-workers` and runs
M `fedserver worker --queues delivery` processes beside it, which share the post's deliveries by
their leases; "server CPU" is then the workers' (plus the web process's, idle here). --workers 0 (the
default) is plain `fedserver serve`. The load average at the start is printed: on a shared machine
the ratios to the bare client measured in the same run are what compare.

Like for like: before every timed run, fedserver's and the bare client's alike, the sink closes all
its connections (as servers do after their keep-alive timeout, which is shorter than the time
between two posts to the same servers), so every round starts with cold connections on both sides.
Earlier versions of this benchmark kept fedserver's connections warm from round 2 on while the bare
client always started cold, which flattered fedserver (a warm bare client is ~2x as fast on 500
hosts; bench/RESULTS.md).

Every delivery needs an RSA signature (one per shared inbox, one per personal inbox), so each round
also measures the machine's RSA-2048 signing rate on one and on two cores, and prints fedserver's
rate against the lower of that two-core rate and the bare client's, and the CPU time per delivery of
fedserver (server + signing process), the bare client and the sink.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, Server, cpu_delta, cpu_seconds, header, layout_line, load_average, machine, median, rss_mib
from bench.procs import BENCH, _stop, py_spy, summarize_profile


@contextmanager
def sink(public_pem: str, hosts: int, avoid: int) -> Iterator[tuple[list[int], int]]:
    """The sink's ports and pid; never `avoid` (the fedserver's own port, chosen before the sink
    binds its ports but listened on only later: a sink port equal to it kept the server from starting)."""
    for _ in range(5):
        with _sink(public_pem, hosts) as (ports, pid):
            if avoid not in ports:
                yield ports, pid
                return
    raise RuntimeError(f"the sink kept taking port {avoid}")


@contextmanager
def _sink(public_pem: str, hosts: int) -> Iterator[tuple[list[int], int]]:
    import subprocess

    tmp = Path(tempfile.mkdtemp(prefix="fedserver-bench-sink-"))
    (tmp / "key.pem").write_text(public_pem)
    proc = subprocess.Popen([sys.executable, str(BENCH / "sink.py"), str(tmp / "key.pem"), str(hosts),
                             str(tmp / "ports.json")], cwd=ROOT, stdin=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while not (tmp / "ports.json").exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("sink did not start")
            time.sleep(0.05)
        time.sleep(0.05)
        ports = json.loads((tmp / "ports.json").read_text())
        yield ports, proc.pid
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def sink_call(port: int, path: str, method: str = "GET") -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def add_followers(server: Server, ports: list[int], followers: int) -> None:
    """Remote actors spread evenly over the sink's ports, each following alice (accepted)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    alice_id = server.value("SELECT actor_id FROM local_accounts WHERE username = 'alice'")
    rows = []
    for i in range(followers):
        port = ports[i % len(ports)]
        base = f"http://127.0.0.1:{port}"
        uri = f"{base}/users/f{i}"
        rows.append((uri, f"f{i}", f"127.0.0.1:{port}", f"{uri}/inbox", f"{base}/inbox", f"{uri}/followers",
                     f"{uri}#main-key", "unused", now, now, now))
    server.write([
        ("INSERT INTO actors (uri, username, domain, inbox_url, shared_inbox_url, followers_url, key_id,"
         " public_key_pem, created_at, updated_at, fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows),
        ("INSERT INTO follows (uri, follower_id, followee_id, state, created_at, updated_at)"
         " SELECT uri || '/follows/1', id, ?, 'accepted', ?, ? FROM actors WHERE is_local = 0",
         [(alice_id, now, now)])])


def set_shared(server: Server, shared: bool) -> None:
    """Every follower advertises its host's shared inbox (http://DOMAIN/inbox), or none."""
    if shared:
        server.write([("UPDATE actors SET shared_inbox_url = 'http://' || domain || '/inbox' WHERE is_local = 0",
                       [()])])
    else:
        server.write([("UPDATE actors SET shared_inbox_url = NULL WHERE is_local = 0", [()])])


_ALICE: dict[str, str] = {}


def _init(key_id: str, pem: str) -> None:
    from bench.inbound import fast_private_keys

    fast_private_keys()
    _ALICE.update(key_id=key_id, pem=pem)


def _sign(job: tuple[str, bytes]) -> tuple[str, dict]:
    from fedserver.activitypub.httpsig import sign_request

    url, body = job
    return url, sign_request("POST", url, body=body, key_id=_ALICE["key_id"], private_key_pem=_ALICE["pem"])


def sign_ceiling(pem: str, cores: int, seconds: float) -> float:
    """RSA-2048 signatures per second on `cores` processes signing side by side for `seconds`."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    start = ctx.Event()
    results = ctx.Queue()
    procs = [ctx.Process(target=_sign_for, args=(pem, seconds, start, results), daemon=True) for _ in range(cores)]
    for proc in procs:
        proc.start()
    start.set()
    try:
        counts = [results.get(timeout=seconds + 30) for _ in procs]
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
    return sum(n / elapsed for n, elapsed in counts)


def _sign_for(pem: str, seconds: float, start, results) -> None:
    from fedserver.activitypub.httpsig import sign_message
    from fedserver.activitypub.keys import load_private_key

    key = load_private_key(pem)
    start.wait(30)
    t = time.perf_counter()
    n = 0
    while time.perf_counter() - t < seconds:
        sign_message(key, b"(request-target): post /inbox\nhost: x\ndate: y\ndigest: z" + n.to_bytes(4, "big"))
        n += 1
    results.put((n, time.perf_counter() - t))


def bare_client(requests: list[tuple[str, dict]], body: bytes, limit: int, per_host: int, timeout: float) -> dict:
    """POST every pre-signed request with a plain aiohttp client (run in a child process)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_bare_child, args=(child, requests, body, limit, per_host, timeout), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout + 30):
            raise RuntimeError("bare client did not finish")
        return parent.recv()
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()


def _bare_child(conn, requests, body, limit, per_host, timeout) -> None:
    import aiohttp
    from yarl import URL

    async def run() -> dict:
        statuses: dict[int, int] = {}
        connector = aiohttp.TCPConnector(limit=limit, limit_per_host=per_host, keepalive_timeout=30)
        slots = asyncio.Semaphore(limit)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def one(url: str, headers: dict) -> None:
                async with slots:
                    async with session.post(URL(url, encoded=True), data=body, headers=headers) as resp:
                        await resp.read()
                        statuses[resp.status] = statuses.get(resp.status, 0) + 1

            start, cpu = time.perf_counter(), time.process_time()
            await asyncio.wait_for(asyncio.gather(*(one(u, h) for u, h in requests)), timeout=timeout)
            return {"elapsed": time.perf_counter() - start, "cpu": time.process_time() - cpu, "statuses": statuses}

    try:
        conn.send(asyncio.run(run()))
    except BaseException as exc:  # noqa: BLE001
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def children_cpu(pid: int) -> dict[int, float]:
    """CPU seconds used so far by each child of pid (the signing process, when it runs)."""
    found: dict[int, float] = {}
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in children.read_text().split():
            try:
                found[int(child)] = cpu_seconds(int(child))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return found


def cold_sink(port: int) -> None:
    """Zero the sink's counts and close every connection to it: the next run starts cold."""
    sink_call(port, "/_reset?close=1", "POST")
    time.sleep(0.3)  # the clients see the connections close before they send again
    sink_call(port, "/_reset", "POST")


def timeline(times: list[float], step: float = 0.02) -> str:
    if not times:
        return "(none)"
    first = min(times)
    bins = [0] * (int((max(times) - first) / step) + 1)
    for t in times:
        bins[int((t - first) / step)] += 1
    return " ".join(str(n) for n in bins)


def wait_for_arrivals(port: int, expected: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        stats = sink_call(port, "/_stats")
        if stats["arrivals"] >= expected or time.monotonic() > deadline:
            return stats
        time.sleep(0.05)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--followers", type=int, default=10_000)
    p.add_argument("--hosts", type=int, default=500)
    p.add_argument("--shared-rounds", type=int, default=3)
    p.add_argument("--personal-rounds", type=int, default=2)
    p.add_argument("--timeout", type=float, default=120.0, help="longest wait for one post to reach everyone")
    p.add_argument("--profile", nargs="?", const="personal", choices=("personal", "shared"),
                   help="py-spy the server during a round of this mode (default personal)")
    p.add_argument("--profile-round", type=int, default=1, help="which round --profile samples (default 1)")
    p.add_argument("--timeline", action="store_true",
                   help="print fedserver's arrivals per 20 ms from the first one, for every round")
    p.add_argument("--workers", type=int, default=0,
                   help="0: plain `fedserver serve`; M >= 1: `serve --no-workers` + M `fedserver worker"
                        " --queues delivery` processes")
    p.add_argument("--database-url", "--database", dest="database_url",
                   help="a PostgreSQL server (postgresql://...): the run creates a database of its own there"
                        " and drops it at the end; default SQLite")
    args = p.parse_args()

    header(f"fan-out: one public post to {args.followers} followers on {args.hosts} hosts")
    print(machine())
    load_start = load_average()
    server = Server.create(postgres=args.database_url)
    try:
        return run(args, server, load_start)
    finally:
        server.remove()


def fedserver_pids(server: Server) -> list[int]:
    """The processes doing fedserver's work: the serve process and its `fedserver worker`s."""
    return [server.pid, *server.worker_pids]


def fedserver_cpu(server: Server) -> tuple[float, dict[int, float]]:
    """CPU seconds of fedserver's processes so far, and of each of their children (signing processes)."""
    own, children = 0.0, {}
    for pid in fedserver_pids(server):
        own += cpu_seconds(pid)
        children.update(children_cpu(pid))
    return own, children


def run(args: argparse.Namespace, server: Server, load_start: tuple[float, float, float]) -> int:
    alice_key_id, alice_pem, alice_public = server.query(
        "SELECT a.key_id, l.private_key_pem, a.public_key_pem FROM actors a JOIN local_accounts l"
        " ON l.actor_id = a.id WHERE l.username = 'alice'")[0]
    settings_text = server.config.read_text()
    concurrency = int(next(l for l in settings_text.splitlines() if l.startswith("delivery_concurrency")).split("=")[1])
    per_host = int(next(l for l in settings_text.splitlines()
                        if l.startswith("delivery_per_host_concurrency")).split("=")[1])

    # The machine's signing ceiling, one core, same key.
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    key = serialization.load_pem_private_key(alice_pem.encode(), None)
    t = time.perf_counter()
    n = 0
    while time.perf_counter() - t < 1.0:
        key.sign(b"(request-target): post /inbox\nhost: x\ndate: y\ndigest: z" + bytes([n % 256]), padding.PKCS1v15(),
                 hashes.SHA256())
        n += 1
    sign_rate = n / (time.perf_counter() - t)
    print(f"RSA-2048 sign ceiling: {sign_rate:.0f}/s on one core")

    results: dict[str, list[dict]] = {"shared": [], "personal": []}
    try:
        with sink(alice_public, args.hosts, server.port) as (ports, sink_pid), \
                ProcessPoolExecutor(max_workers=os.cpu_count() or 2, initializer=_init,
                                    initargs=(alice_key_id, alice_pem)) as signer:
            add_followers(server, ports, args.followers)
            server.start(workers=args.workers, worker_queues="delivery")
            print(layout_line(server, 1, args.workers))
            time.sleep(1.0)
            # With workers, the deliveries are theirs: profile the first one.
            busy_pid = server.worker_pids[0] if args.workers else server.pid
            idle_rss = sum(rss_mib(pid)[0] for pid in fedserver_pids(server))
            print(f"server pid {server.pid}, worker pids {server.worker_pids}, idle RSS {idle_rss:.1f} MiB"
                  f" (summed); {args.followers} followers inserted;"
                  f" delivery_concurrency {concurrency}, per host {per_host}")
            for mode, rounds in (("shared", args.shared_rounds), ("personal", args.personal_rounds)):
                set_shared(server, mode == "shared")
                expected = len(ports) if mode == "shared" else args.followers
                signed: list[tuple[str, dict]] | None = None
                for r in range(rounds):
                    cold_sink(ports[0])
                    (cpu0, child_cpu0), sink_cpu0 = fedserver_cpu(server), cpu_seconds(sink_pid)
                    db_cpu0 = server.database_cpu()
                    t0 = time.time()
                    profile = args.profile == mode and r == args.profile_round - 1
                    out = Path(os.environ.get("FANOUT_PROFILE_OUT") or server.directory / "fanout-profile.txt")
                    # A shared round lasts well under a second: sample it more often.
                    rate = 1000 if mode == "shared" else 250
                    with (py_spy(busy_pid, out, 20, rate=rate) if profile else _nothing()):
                        uri = server.cli("post", "alice", f"Fan-out benchmark post {mode} {r}").strip()
                        t1 = time.time()
                        stats = wait_for_arrivals(ports[0], expected, args.timeout)
                    cpu1, child_cpu1 = fedserver_cpu(server)
                    db_cpu = cpu_delta(db_cpu0, server.database_cpu())
                    cpu, sink_cpu = cpu1 - cpu0, cpu_seconds(sink_pid) - sink_cpu0
                    child_cpu = sum(seconds - child_cpu0.get(child, 0.0) for child, seconds in child_cpu1.items())
                    done = stats["last"] or time.time()
                    window = max(1e-6, (stats["last"] or 0) - (stats["first"] or 0))
                    # CPU shares over the time deliveries were going out (they may start before the CLI
                    # process has exited).
                    busy = max(1e-6, done - min(t1, stats["first"] or t1))
                    row = {"arrivals": stats["arrivals"], "verified": stats["verified"], "failed": stats["failed"],
                           "signatures": stats["distinct_signatures"], "targets": stats["distinct_targets"],
                           "reach_s": done - t0, "reach_after_cli_s": done - t1, "cli_s": t1 - t0,
                           "first_after_cli_s": (stats["first"] or done) - t1,
                           "rate_window": stats["verified"] / window, "server_cpu": cpu / busy,
                           "children_cpu": child_cpu / busy, "sink_cpu": sink_cpu / busy,
                           # PostgreSQL's backends, per delivery (the CLI's post included): 0 on SQLite.
                           "cpu_ms_database": 1000 * db_cpu / max(1, stats["verified"])}
                    print(f"{mode} round {r + 1} fedserver: {row['verified']}/{expected} verified"
                          f" ({row['failed']} failed), {row['signatures']} distinct signatures;"
                          f" reached everyone {row['reach_s']:.2f}s after `fedserver post` started"
                          f" (CLI took {row['cli_s']:.2f}s, first arrival {row['first_after_cli_s']:.2f}s after it);"
                          f" {row['rate_window']:.0f} deliveries/s first->last; server CPU"
                          f" {100 * row['server_cpu']:.0f}% (+ {100 * row['children_cpu']:.0f}% signing process),"
                          f" sink CPU {100 * row['sink_cpu']:.0f}%"
                          + (f"; PostgreSQL backends {row['cpu_ms_database']:.3f} ms CPU per delivery"
                             if server.database_url else ""))
                    if stats["errors"]:
                        print(f"   sink errors: {stats['errors']}")
                    if args.timeline:
                        print("   arrivals per 20 ms: " + timeline(sink_call(ports[0], "/_stats?times=1")["times"]))
                    if profile:
                        print(summarize_profile(out, 20, rate=rate))
                    # The ceiling: the same body, pre-signed, POSTed by a bare aiohttp client.
                    if signed is None:
                        body = server.value("SELECT body FROM outbound_activities WHERE object_uri = ?",
                                            (uri,)).encode()
                        targets = [row[0] for row in server.query(
                            "SELECT inbox_url FROM deliveries d JOIN outbound_activities o ON o.id = d.activity_id"
                            " WHERE o.object_uri = ?", (uri,))]
                        signed = list(signer.map(_sign, [(u, body) for u in targets], chunksize=64))
                    cold_sink(ports[0])
                    bare_sink_cpu0 = cpu_seconds(sink_pid)
                    b = bare_client(signed, body, concurrency, per_host, args.timeout)
                    bstats = sink_call(ports[0], "/_stats")
                    bare_sink_cpu = cpu_seconds(sink_pid) - bare_sink_cpu0
                    bwindow = max(1e-6, (bstats["last"] or 0) - (bstats["first"] or 0))
                    row["bare_rate_window"] = bstats["verified"] / bwindow
                    row["bare_elapsed"] = b.get("elapsed", float("nan"))
                    row["ratio"] = row["rate_window"] / row["bare_rate_window"]
                    print(f"{mode} round {r + 1} bare client: {bstats['verified']}/{len(signed)} verified in"
                          f" {row['bare_elapsed']:.2f}s, {row['bare_rate_window']:.0f} deliveries/s first->last;"
                          f" ratio fedserver/bare {row['ratio']:.2f}")
                    # Every delivery needs a signature: the machine's signing rate is a ceiling too.
                    row["sign_one_core"] = sign_ceiling(alice_pem, 1, 0.5)
                    row["sign_two_cores"] = sign_ceiling(alice_pem, 2, 0.5)
                    row["ceiling"] = min(row["bare_rate_window"], row["sign_two_cores"])
                    row["ratio_to_ceiling"] = row["rate_window"] / row["ceiling"]
                    # CPU per delivery (ms): what the machine's two cores are shared between.
                    delivered = max(1, row["verified"])
                    row["cpu_ms_fedserver"] = 1000 * (cpu + child_cpu) / delivered
                    row["cpu_ms_signing"] = 1000 * child_cpu / delivered
                    row["cpu_ms_sink"] = 1000 * sink_cpu / delivered
                    row["cpu_ms_bare"] = 1000 * b.get("cpu", float("nan")) / max(1, bstats["verified"])
                    row["cpu_ms_sink_bare"] = 1000 * bare_sink_cpu / max(1, bstats["verified"])
                    print(f"{mode} round {r + 1} ceilings: RSA-2048 signing {row['sign_one_core']:.0f}/s on one core,"
                          f" {row['sign_two_cores']:.0f}/s on two; fedserver / min(bare, two-core signing)"
                          f" {row['ratio_to_ceiling']:.2f}; CPU ms per delivery: fedserver"
                          f" {row['cpu_ms_fedserver']:.3f} (signing process {row['cpu_ms_signing']:.3f}) + sink"
                          f" {row['cpu_ms_sink']:.3f}, bare client {row['cpu_ms_bare']:.3f} + sink"
                          f" {row['cpu_ms_sink_bare']:.3f}")
                    results[mode].append(row)
            loaded_rss = sum(rss_mib(pid)[0] for pid in fedserver_pids(server))
            peak_rss = max(rss_mib(pid)[1] for pid in fedserver_pids(server))
            child_rss = sum(rss_mib(child)[0] for child in fedserver_cpu(server)[1])

        header("fan-out summary (medians of rounds)")
        print(f"{server.engine}, " + (f"{args.workers} `fedserver worker` process(es) beside `serve --no-workers`"
                                      if args.workers else "plain `fedserver serve`")
              + f"; load average at start {load_start[0]:.2f}, at end {load_average()[0]:.2f}")
        summary = {"sign_rate_one_core": sign_rate, "rss_idle": idle_rss, "rss_after": loaded_rss, "rss_peak": peak_rss,
                   "rss_signing_process": child_rss, "engine": server.engine, "workers": args.workers,
                   "load_avg_start": list(load_start), "load_avg_end": list(load_average())}
        for mode, rows in results.items():
            if not rows:
                continue
            m = {k: median([r[k] for r in rows]) for k in rows[0] if isinstance(rows[0][k], (int, float))}
            summary[mode] = m
            people = args.followers
            print(f"{mode:8s}: {int(m['verified'])} deliveries, {int(m['signatures'])} RSA signatures; all"
                  f" {people} followers reached in {m['reach_s']:.2f}s ({m['reach_after_cli_s']:.2f}s after the CLI"
                  f" returned); {m['rate_window']:.0f} deliveries/s vs bare client {m['bare_rate_window']:.0f}/s"
                  f" -> ratio {m['ratio']:.2f} (target >= 0.7); server CPU {100 * m['server_cpu']:.0f}%"
                  f" (+ {100 * m['children_cpu']:.0f}% signing process); round 1 alone (the first post since the server"
                  f" started) {rows[0]['ratio']:.2f}")
            print(f"{'':8s}  every round with cold connections on both sides; ratios per round"
                  f" {' / '.join(f'{row_ratio:.2f}' for row_ratio in (r['ratio'] for r in rows))}; RSA-2048 signing"
                  f" {m['sign_one_core']:.0f}/s one core, {m['sign_two_cores']:.0f}/s two cores -> fedserver /"
                  f" min(bare, two-core signing) {m['ratio_to_ceiling']:.2f}; CPU ms per delivery fedserver"
                  f" {m['cpu_ms_fedserver']:.3f} (signing {m['cpu_ms_signing']:.3f}), bare client"
                  f" {m['cpu_ms_bare']:.3f}, sink {m['cpu_ms_sink']:.3f}")
            # A model, not a measurement: a client as lean as the bare one that also made each
            # delivery's signature would cost the bare client's CPU per delivery, plus one signature,
            # plus the sink's; the machine's two cores cap it at this rate.
            signed_bare_ms = m["cpu_ms_bare"] + m["cpu_ms_sink_bare"] + 1000 / m["sign_one_core"]
            model = 2 * 1000 / signed_bare_ms
            summary[mode]["signed_bare_model"] = model
            print(f"{'':8s}  model: the bare client plus one RSA signature per delivery needs {signed_bare_ms:.3f} ms"
                  f" of CPU per delivery with the sink's, at most {model:.0f}/s on two cores; fedserver"
                  f" {m['rate_window']:.0f}/s = {m['rate_window'] / model:.2f} of that"
                  f" ({m['cpu_ms_fedserver'] + m['cpu_ms_sink']:.3f} ms per delivery with the sink's)")
        print(f"server RSS idle {idle_rss:.1f} MiB, after {loaded_rss:.1f} MiB (peak {peak_rss:.1f});"
              f" signing process {child_rss:.1f} MiB")
        print("JSON " + json.dumps(summary))
        return 0
    finally:
        server.remove()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


if __name__ == "__main__":
    sys.exit(main())
