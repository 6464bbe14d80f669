"""Where the inbox's time goes: fedserver's real application served in this process with its inbox
handler cut after each stage, loaded the same way as bench/inbound.py, interleaved in one run.

    python -m bench.inbound_stages [--rounds 3] [--per-round 8000] [--connections 64]

Stages (each answers 202 at the end):
  bare       a plain aiohttp app: read the body, json.loads (bench/bare_server.py's work)
  app        fedserver's app (its middlewares and router), same work as bare
  signature  + verify_request as the inbox does it (cached keys: parse, digest, date, RSA verify)
  inbox      the real inbox handler: + origin checks and the durable group commit

The difference between two stages is what the later one costs per request; the `ratio` column is
each stage's rate over bare's, which shows how far a single Python process can go before
fedserver does anything of its own. CPU is this process's (server and its threads; the load
generator is a separate process), per accepted request. Everything listens on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Awaitable, Callable

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web

import bench.inbound as inbound
from bench.common import Server, free_port, key_pool, load_in_subprocess, machine, median
from bench.procs import remote_actors

STAGES = ("bare", "app", "signature", "inbox")


async def _parse_only(request: web.Request) -> web.Response:
    json.loads((await request.read()).decode("utf-8"))
    return web.Response(status=202)


async def _signature_only(request: web.Request) -> web.Response:
    from fedserver.context import CTX_KEY
    from fedserver.federation.signatures import verify_request

    body = await request.read()
    json.loads(body.decode("utf-8"))
    await verify_request(request.app[CTX_KEY], request, body, use_cache=True)
    return web.Response(status=202)


async def _serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _measure(args: argparse.Namespace, server: Server, requests: dict[str, list[list[bytes]]],
                   warm: list[bytes]) -> dict[str, list[tuple[float, float]]]:
    import fedserver.app as fedserver_app
    from fedserver.config import load_settings
    from fedserver.federation.inbox import handle_inbox

    # build_app wires fedserver.app.handle_inbox; route through a switch so one app serves every stage.
    current: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {"handler": handle_inbox}

    async def switch(request: web.Request) -> web.StreamResponse:
        return await current["handler"](request)

    fedserver_app.handle_inbox = switch  # type: ignore[assignment]
    app_runner = await _serve(fedserver_app.build_app(load_settings(server.config), run_workers=False), server.port)
    bare = web.Application()
    bare.router.add_post("/inbox", _parse_only)
    bare_port = free_port()
    bare_runner = await _serve(bare, bare_port)
    loop = asyncio.get_running_loop()
    results: dict[str, list[tuple[float, float]]] = {stage: [] for stage in STAGES}
    try:
        warmed = await loop.run_in_executor(None, lambda: load_in_subprocess(server.port, warm, connections=32,
                                                                              duration=60))
        print(f"warm-up: {warmed.ok()} of {len(warm)} first contacts accepted; keys cached")
        for r in range(args.rounds):
            for stage in STAGES:
                current["handler"] = {"app": _parse_only, "signature": _signature_only}.get(stage, handle_inbox)
                port = bare_port if stage == "bare" else server.port
                batch = requests[stage][r]
                cpu0, t0 = time.process_time(), time.perf_counter()
                result = await loop.run_in_executor(None, lambda: load_in_subprocess(
                    port, batch, connections=args.connections, duration=30))
                elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                s = result.summary()
                us = cpu / max(1, s["ok"]) * 1e6
                results[stage].append((s["rate"], us))
                print(f"round {r + 1} {stage:9s}: {s['ok']:6d} in {s['elapsed']:5.2f}s = {s['rate']:7.0f}/s"
                      f"  p50 {s['p50']:5.1f} ms  p99 {s['p99']:5.1f} ms  CPU {100 * cpu / elapsed:3.0f}%"
                      f" = {us:4.0f} us/request")
    finally:
        await app_runner.cleanup()
        await bare_runner.cleanup()
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--per-round", type=int, default=8000)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--actors", type=int, default=300)
    p.add_argument("--hosts", type=int, default=30)
    args = p.parse_args()
    print("== inbound stages: fedserver's app with its inbox cut after each stage ==")
    print(machine())
    keys = key_pool(args.actors)
    server = Server.create()
    alice, inbox = f"{server.base}/users/alice", f"{server.base}/inbox"
    run = uuid.uuid4().hex[:8]
    try:
        with remote_actors(keys, args.hosts) as ports, \
                ProcessPoolExecutor(2, initializer=inbound._init_signer, initargs=(keys,)) as signer:
            def job(phase: str, n: int) -> tuple:
                key = n % args.actors
                return (inbox, ports[key % len(ports)], f"k{key}-s{run}", alice, f"{phase}{run}-{n}", key)

            warm = inbound.presign(signer, [job("w", i) for i in range(args.actors)])
            # Fresh activity ids everywhere: the inbox stage must store each one, not see duplicates.
            requests = {stage: [inbound.presign(signer, [job(f"{stage}{r}-", i) for i in range(args.per_round)])
                                for r in range(args.rounds)] for stage in STAGES}
            results = asyncio.run(_measure(args, server, requests, warm))
    finally:
        server.remove()
    bare_rate = median([rate for rate, _ in results["bare"]])
    bare_us = median([us for _, us in results["bare"]])
    print("== inbound stages summary (medians of rounds) ==")
    print("  stage      |  req/s | ratio to bare | CPU us/request | added by this stage")
    summary = {}
    previous_us = None
    for stage in STAGES:
        rate, us = median([r for r, _ in results[stage]]), median([u for _, u in results[stage]])
        added = "" if previous_us is None else f"{us - previous_us:+.0f} us"
        print(f"  {stage:10s} | {rate:6.0f} | {rate / bare_rate:13.2f} | {us:14.0f} | {added}")
        summary[stage] = {"rate": round(rate), "ratio": round(rate / bare_rate, 3), "cpu_us": round(us)}
        previous_us = us
    print(f"bare CPU per request {bare_us:.0f} us: a stage's ceiling ratio is about {bare_us:.0f} / its CPU us")
    print("JSON " + json.dumps({"bench": "inbound_stages", "stages": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
