"""Inbound benchmark: signed Create(Note) activities per second accepted by a real fedserver's shared
inbox, against a bare aiohttp endpoint loaded the same way in the same run.

    python -m bench.inbound            # defaults: 64 connections, 3 rounds of <= 6 s
    python -m bench.inbound --profile  # also py-spy the server during one round
    python -m bench.inbound --processes 2  # [server] processes = 2: a primary and one acceptor
    python -m bench.inbound --database-url "postgresql://fedserver@/postgres?host=/tmp/pgmain"
                                           # on PostgreSQL: a fresh database made on that server
    python -m bench.inbound --database-url URL --web-processes 2 --workers 2
                                           # `serve --no-workers` (2 HTTP processes) + 2 `fedserver worker`

Engines and layouts: without --database-url the instance is an SQLite file. With --database-url (a
PostgreSQL server, reached through any database on it; the user needs CREATEDB), the run creates its
own database there (`fedserver_bench_<pid>_<n>`), points the instance at it with `[database] url`,
and drops it at the end, whatever happens. --web-processes N (alias of --processes) sets `[server]
processes`; --workers M >= 1 serves with `serve --no-workers` and runs M `fedserver worker` processes
(all queues) beside it, so accepted/s is the web processes' and stored/s the workers'; --workers 0
(the default) is plain `fedserver serve`, which does both. The load average at the start is printed:
on a shared machine the ratios to the bare endpoint measured in the same run are what compare.

What happens: a `fedserver serve` subprocess (temp dir, http on 127.0.0.1, private addresses allowed)
with one account `alice`; a remote-actors server publishing N actors on M loopback ports; requests
signed beforehand (draft-cavage rsa-sha256 with fedserver's own signer, one distinct RSA key per actor)
so the load generator (a separate process, raw HTTP/1.1 over keep-alive connections) only writes
bytes. Every activity has a fresh id, mentions alice and is addressed to her, so the inbox worker
stores it as a post.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (Server, cpu_delta, header, key_pool, layout_line, load_average, load_in_subprocess, machine, median,
                          raw_post, rss_mib, tree_cpu_seconds, tree_rss_mib)
from bench.procs import bare_server, py_spy, remote_actors, remote_stats, summarize_profile
from bench.signed_get import signed_gets_in_subprocess

AS = "https://www.w3.org/ns/activitystreams"
PUBLIC = AS + "#Public"
TEXT = ("Benchmark note number {n}: a few sentences of ordinary text, about the length of a typical toot,"
        " with a #hashtag and a link-free body so that sanitizing it costs what a normal post costs.")

_KEYS: list[str] = []


def _init_signer(keys: list[str]) -> None:
    _KEYS[:] = keys
    fast_private_keys()


def fast_private_keys() -> None:
    """In the load generator only: parse our own benchmark keys without cryptography's RSA
    consistency check, which costs ~70 ms per key (the signatures are the same)."""
    from functools import lru_cache

    from cryptography.hazmat.primitives import serialization

    from fedserver.activitypub import httpsig

    @lru_cache(maxsize=None)
    def load(pem: str):
        return serialization.load_pem_private_key(pem.encode(), None, unsafe_skip_rsa_key_validation=True)

    httpsig.load_private_key = load


def _sign(job: tuple[str, int, str, str, str, int]) -> bytes:
    """One raw HTTP request: a Create(Note) by actor `name` on remote port `rport`, signed for `inbox`."""
    from fedserver.activitypub.httpsig import sign_request

    inbox, rport, name, alice, tag, key_index = job
    actor = f"http://127.0.0.1:{rport}/users/{name}"
    published = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    note = {"id": f"{actor}/statuses/{tag}", "type": "Note", "attributedTo": actor,
            "content": f'<p><span class="h-card"><a href="{alice}" class="u-url mention">@alice</a></span> '
                       f"{TEXT.format(n=tag)}</p>",
            "to": [PUBLIC], "cc": [f"{actor}/followers", alice], "published": published,
            "tag": [{"type": "Mention", "href": alice, "name": "@alice"}], "sensitive": False}
    activity = {"@context": AS, "id": f"{actor}/activities/{tag}", "type": "Create", "actor": actor,
                "published": published, "to": note["to"], "cc": note["cc"], "object": note}
    body = json.dumps(activity).encode()
    headers = sign_request("POST", inbox, body=body, key_id=f"{actor}#main-key", private_key_pem=_KEYS[key_index])
    return raw_post("/inbox", headers, body)


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat (all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


def main_thread_cpu(pid: int) -> float:
    """CPU seconds of a process's main thread (its event loop), without its other threads."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workers_cpu(server: Server) -> float:
    """CPU seconds used so far by the instance's `fedserver worker` processes and their children."""
    return sum(tree_cpu_seconds(pid) for pid in server.worker_pids)


def presign(pool: ProcessPoolExecutor, jobs: list[tuple]) -> list[bytes]:
    return list(pool.map(_sign, jobs, chunksize=64))


def wait_drained(server: Server, timeout: float) -> float:
    """Seconds until the inbox queue has nothing pending (bounded by timeout)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if not server.value("SELECT count(*) FROM inbox_items WHERE state = 'pending'"):
            break
        time.sleep(0.05)
    return time.perf_counter() - start


def fmt(s: dict) -> str:
    other = f", other statuses {s['other']}" if s["other"] else ""
    errors = f", {s['errors']} connection errors" if s["errors"] else ""
    return (f"{s['ok']:6d} accepted in {s['elapsed']:.2f}s = {s['rate']:7.0f}/s  p50 {s['p50']:6.1f} ms"
            f"  p99 {s['p99']:6.1f} ms  (generator CPU {100 * s['gen_cpu']:.0f}%{other}{errors})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=6.0, help="time bound of one round, seconds")
    p.add_argument("--per-round", type=int, default=6000, help="signed requests available to one round")
    p.add_argument("--actors", type=int, default=300, help="distinct remote actors (cached keys)")
    p.add_argument("--cold", type=int, default=400, help="fresh actors per cold-keys round")
    p.add_argument("--hosts", type=int, default=30, help="loopback ports the remote actors live on")
    p.add_argument("--profile", action="store_true",
                   help="py-spy the server during the first round (cached keys and cold keys)")
    p.add_argument("--processes", "--web-processes", dest="processes", type=int, default=1,
                   help="[server] processes: HTTP processes sharing the port (the bare endpoint stays one)")
    p.add_argument("--workers", type=int, default=0,
                   help="0: plain `fedserver serve`; M >= 1: `serve --no-workers` + M `fedserver worker` processes")
    p.add_argument("--database-url", "--database", dest="database_url",
                   help="a PostgreSQL server (postgresql://...): the run creates a database of its own there"
                        " and drops it at the end; default SQLite")
    p.add_argument("--cold-only", action="store_true",
                   help="only the cold-keys rounds and their ceilings (no cached rounds, no paced run)")
    args = p.parse_args()

    header("inbound: signed Create(Note) to the shared inbox")
    print(machine())
    cold_total = args.cold * args.rounds
    if args.cold_only:
        args.actors = 0
    keys = key_pool(args.actors + cold_total)
    load_start = load_average()
    # The config is set inside create: a failure there drops the PostgreSQL database it made.
    server = Server.create(postgres=args.database_url, processes=args.processes)
    alice = f"{server.base}/users/alice"
    inbox = f"{server.base}/inbox"
    run = uuid.uuid4().hex[:8]
    results: dict[str, list[dict]] = {"fed": [], "bare": [], "cold": [], "fetch": [], "signed_fetch": []}
    try:
        # fedserver listens first: the other servers' ports (free_port, or port 0) are then never its
        # port. Started after them, a bare endpoint that happened to get the same port answered in its
        # place (202 for everything, no key fetched) while fedserver could not listen.
        server.start(workers=args.workers)
        print(layout_line(server, args.processes, args.workers))
        with remote_actors(keys, args.hosts) as ports, bare_server() as (bare_port, bare_pid), \
                ProcessPoolExecutor(max_workers=os.cpu_count() or 2, initializer=_init_signer,
                                    initargs=(keys,)) as signer:
            time.sleep(1.0)
            if server.proc is None or server.proc.poll() is not None:
                raise RuntimeError(f"fedserver is not running:\n{server.log_tail()}")
            idle_rss = tree_rss_mib(server.pid)
            processes = f" (RSS of its {args.processes} processes summed)" if args.processes > 1 else ""
            print(f"server pid {server.pid}; idle RSS {idle_rss:.1f} MiB{processes}; bare endpoint RSS "
                  f"{rss_mib(bare_pid)[0]:.1f} MiB")

            def actor_job(i: int, phase: str, n: int, key: int, actor_phase: str | None = None) -> tuple:
                """One request: activity n of phase by actor `key`, whose name (and so whether its key
                is already cached) comes from actor_phase, by default the phase itself."""
                return (inbox, ports[key % len(ports)], f"k{key}-{actor_phase or phase}{run}", alice,
                        f"{phase}{run}-{n}", key)

            fed_rate = bare_rate = half = float("nan")
            paced: dict = {}
            loaded_rss = idle_rss
            if not args.cold_only:
                # Warm-up: each cached actor's first activity (the server fetches and stores its key).
                t = time.perf_counter()
                warm = presign(signer, [actor_job(0, "c", i, i) for i in range(args.actors)])
                jobs = [actor_job(0, "c", args.actors + i, i % args.actors) for i in range(args.rounds * args.per_round)]
                pool_requests = presign(signer, jobs)
                print(f"pre-signed {len(warm) + len(pool_requests)} requests in {time.perf_counter() - t:.1f}s")
                w = load_in_subprocess(server.port, warm, connections=min(args.connections, 32), duration=60)
                print(f"warm-up: {w.ok()} of {len(warm)} first contacts accepted in {w.elapsed:.1f}s; "
                      f"{server.value('SELECT count(*) FROM actors WHERE is_local = 0')} remote actors cached")
                wait_drained(server, 60)

                for r in range(args.rounds):
                    chunk = pool_requests[r * args.per_round:(r + 1) * args.per_round]
                    b = load_in_subprocess(bare_port, chunk, connections=args.connections, duration=args.duration,
                                           cycle=True).summary()
                    results["bare"].append(b)
                    print(f"round {r + 1} bare aiohttp : {fmt(b)}")
                    cpu0, wcpu0, dbcpu0 = tree_cpu_seconds(server.pid), workers_cpu(server), server.database_cpu()
                    started = time.perf_counter()
                    profile_out = Path(server.directory) / "inbound-profile.txt"
                    if args.profile and r == 0:
                        with py_spy(server.pid, profile_out, int(args.duration)):
                            f = load_in_subprocess(server.port, chunk, connections=args.connections,
                                                   duration=args.duration).summary()
                    else:
                        f = load_in_subprocess(server.port, chunk, connections=args.connections,
                                               duration=args.duration).summary()
                    f["server_cpu"] = (tree_cpu_seconds(server.pid) - cpu0) / f["elapsed"]
                    drain = wait_drained(server, 120)
                    f["processed_rate"] = f["ok"] / (time.perf_counter() - started)
                    # The workers' CPU over the whole round (load + drain), per stored post.
                    f["worker_cpu_ms"] = 1000 * (workers_cpu(server) - wcpu0) / max(1, f["ok"])
                    # PostgreSQL's own backends (its CPU is outside fedserver's processes), per stored post.
                    f["db_cpu_ms"] = 1000 * cpu_delta(dbcpu0, server.database_cpu()) / max(1, f["ok"])
                    results["fed"].append(f)
                    print(f"round {r + 1} fedserver   : {fmt(f)}")
                    print(f"               server CPU {100 * f['server_cpu']:.0f}% of a core while loaded; inbox "
                          f"worker finished {drain:.1f}s after the load ({f['processed_rate']:.0f} stored posts/s end to end)"
                          + (f"; workers' CPU {f['worker_cpu_ms']:.2f} ms per stored post" if args.workers else "")
                          + (f"; PostgreSQL backends' CPU {f['db_cpu_ms']:.2f} ms per stored post (accept + apply)"
                             if server.database_url else ""))
                    if args.profile and r == 0:
                        print("profile of the server during this round (py-spy, main thread):")
                        print(summarize_profile(profile_out, int(args.duration)))
                loaded_rss = tree_rss_mib(server.pid)

                fed_rate = median([x["rate"] for x in results["fed"]])
                bare_rate = median([x["rate"] for x in results["bare"]])
                # Latency at half the load fedserver sustains: paced sending, latency from the scheduled time.
                half = max(1.0, fed_rate / 2)
                extra = presign(signer, [actor_job(0, "h", i, i % args.actors, "c") for i in range(int(half * 5) + 1)])
                paced = load_in_subprocess(server.port, extra, connections=args.connections, duration=5.0,
                                           rate=half).summary()
                # At a load the server sustains, the inbox worker must keep pace (no backlog left behind).
                paced_drain = wait_drained(server, 120)
                paced["drain_after_s"] = paced_drain
                print(f"paced at {half:.0f}/s (half of fedserver's median): {fmt(paced)}; inbox worker finished "
                      f"{paced_drain:.1f}s after the load")

            # The instance actor signs every key fetch: the signed-GET ceiling signs with its key too.
            instance_key_id, instance_pem = server.query(
                "SELECT a.key_id, l.private_key_pem FROM actors a JOIN local_accounts l ON l.actor_id = a.id"
                " WHERE l.is_instance_actor = 1")[0]

            # Cold keys: every request is a fresh actor's first contact (key fetch + actor stored).
            for r in range(args.rounds if args.cold else 0):  # --cold 0 skips them
                base = args.actors + r * args.cold
                cold = presign(signer, [actor_job(0, f"f{r}", i, base + i) for i in range(args.cold)])
                stats0 = remote_stats(ports[0])
                cpu0, loop0 = tree_cpu_seconds(server.pid), main_thread_cpu(server.pid)
                busy0, total0 = machine_busy()
                profile_out = Path(server.directory) / "cold-profile.txt"
                if args.profile and r == 0:
                    with py_spy(server.pid, profile_out, None):
                        c = load_in_subprocess(server.port, cold, connections=args.connections, duration=30).summary()
                else:
                    c = load_in_subprocess(server.port, cold, connections=args.connections, duration=30).summary()
                c["server_cpu"] = (tree_cpu_seconds(server.pid) - cpu0) / c["elapsed"]
                c["loop_cpu"] = (main_thread_cpu(server.pid) - loop0) / c["elapsed"]
                busy1, total1 = machine_busy()
                c["machine_busy"] = (busy1 - busy0) / (total1 - total0) if total1 > total0 else float("nan")
                stats1 = remote_stats(ports[0])
                c["fetches"] = stats1["actor_gets"] - stats0["actor_gets"]
                c["signed_fetches"] = stats1["signed_gets"] - stats0["signed_gets"]
                results["cold"].append(c)
                print(f"cold round {r + 1}: {fmt(c)}; {c['fetches']} actor documents fetched "
                      f"({c['signed_fetches']} signed); server CPU {100 * c['server_cpu']:.0f}% of a core (event loop "
                      f"{100 * c['loop_cpu']:.0f}%), "
                      f"machine {100 * c['machine_busy']:.0f}% busy (all {os.cpu_count()} cores, every process)")
                if args.profile and r == 0:
                    print("profile of the server during this cold round (py-spy, main thread):")
                    print(summarize_profile(profile_out, c["elapsed"]))
                # Ceilings for first contact, each over the same number of connections: the remote-actors
                # server's own rate for the same documents fetched by a bare client, and the rate of a bare
                # client that signs each GET as fedserver must (the key fetch's real ceiling).
                paths = [f"/users/k{base + i}-x{run}{r}" for i in range(args.cold)]
                gets = [f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{ports[0]}"
                        f"\r\nAccept: application/activity+json\r\n\r\n".encode() for path in paths]
                fr = load_in_subprocess(ports[0], gets, connections=args.connections, duration=3.0,
                                        cycle=True).summary(200)
                results["fetch"].append(fr)
                sr = signed_gets_in_subprocess(ports[0], paths, key_id=instance_key_id, private_key_pem=instance_pem,
                                               connections=args.connections, duration=3.0, cycle=True).summary(200)
                results["signed_fetch"].append(sr)
                print(f"      bare GETs of actor documents  : {fmt(fr)}")
                print(f"      signed GETs (RSA-2048 each)   : {fmt(sr)}")
                wait_drained(server, 120)
            final_rss, final_peak = tree_rss_mib(server.pid), rss_mib(server.pid)[1]

        header("inbound summary (medians of rounds)")
        print(f"{server.engine}, {args.processes} HTTP process(es), "
              + (f"{args.workers} worker process(es)" if args.workers else "background work in `serve`")
              + f"; load average at start {load_start[0]:.2f}, at end {load_average()[0]:.2f}")
        cold_rate = median([x["rate"] for x in results["cold"]])
        fetch_rate = median([x["rate"] for x in results["fetch"]])
        signed_rate = median([x["rate"] for x in results["signed_fetch"]])
        summary = {
            "fed_rate": fed_rate, "bare_rate": bare_rate, "ratio": fed_rate / bare_rate if bare_rate else 0,
            "fed_p50": median([x["p50"] for x in results["fed"]]), "fed_p99": median([x["p99"] for x in results["fed"]]),
            "bare_p50": median([x["p50"] for x in results["bare"]]),
            "bare_p99": median([x["p99"] for x in results["bare"]]),
            "processed_rate": median([x["processed_rate"] for x in results["fed"]]),
            "server_cpu": median([x["server_cpu"] for x in results["fed"]]),
            "paced_rate": paced.get("rate"), "paced_p50": paced.get("p50"), "paced_p99": paced.get("p99"),
            "paced_drain_after_s": paced.get("drain_after_s"),
            "cold_rate": cold_rate, "cold_p50": median([x["p50"] for x in results["cold"]]),
            "cold_p99": median([x["p99"] for x in results["cold"]]),
            "actor_doc_get_rate": fetch_rate, "signed_get_rate": signed_rate,
            "cold_ratio_signed": cold_rate / signed_rate if signed_rate else 0,
            "cold_server_cpu": median([x["server_cpu"] for x in results["cold"]]),
            "rss_idle": idle_rss, "rss_after_cached": loaded_rss, "rss_after_all": final_rss, "rss_peak": final_peak,
            "connections": args.connections,
            "engine": server.engine, "web_processes": args.processes, "workers": args.workers,
            "worker_cpu_ms_per_post": median([x["worker_cpu_ms"] for x in results["fed"]]) if args.workers else None,
            "db_cpu_ms_per_post": median([x["db_cpu_ms"] for x in results["fed"]]) if server.database_url else None,
            "load_avg_start": list(load_start), "load_avg_end": list(load_average()),
        }
        if not args.cold_only:
            print(f"fedserver accepted/s {fed_rate:.0f} (p50 {summary['fed_p50']:.1f} ms, p99 {summary['fed_p99']:.1f} ms)")
            print(f"bare aiohttp POST/s   {bare_rate:.0f} (p50 {summary['bare_p50']:.1f} ms, p99 {summary['bare_p99']:.1f} ms)")
            print(f"ratio fedserver/bare  {summary['ratio']:.2f}   (target >= 0.5)")
            print(f"stored posts/s end to end (accept + inbox worker) {summary['processed_rate']:.0f}")
            if args.workers or server.database_url:
                print("CPU ms per stored post (load + drain):"
                      + (f" workers {summary['worker_cpu_ms_per_post']:.2f}" if args.workers else "")
                      + (f" PostgreSQL backends {summary['db_cpu_ms_per_post']:.2f}" if server.database_url else ""))
        if paced:
            print(f"at half load ({half:.0f}/s paced): p50 {paced['p50']:.1f} ms, p99 {paced['p99']:.1f} ms"
                  f" (target p99 < 50 ms); inbox worker finished {paced['drain_after_s']:.1f}s after the load")
        if results["cold"]:  # --cold 0 skips them
            print(f"cold keys accepted/s  {cold_rate:.0f} (p50 {summary['cold_p50']:.1f} ms, p99 {summary['cold_p99']:.1f} ms);"
                  f" remote-actors server answers bare GETs of actor documents at {fetch_rate:.0f}/s")
            print(f"signed GETs of the same documents by a bare client (one process, RSA-2048 signature per GET) "
                  f"{signed_rate:.0f}/s; ratio cold keys/signed GETs {summary['cold_ratio_signed']:.2f}"
                  f" (server CPU {100 * summary['cold_server_cpu']:.0f}% of a core in cold rounds)")
        print(f"server RSS idle {idle_rss:.1f} MiB, after cached rounds {loaded_rss:.1f} MiB, after all "
              f"{final_rss:.1f} MiB, peak {final_peak:.1f} MiB (the serve process alone; targets 60 / 150)")
        # Figures a --cold-only run did not measure are null (json.dumps would write NaN, not JSON).
        print("JSON " + json.dumps({k: None if isinstance(v, float) and v != v else v for k, v in summary.items()}))
        return 0
    finally:
        server.remove()


if __name__ == "__main__":
    sys.exit(main())
