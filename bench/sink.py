"""A delivery sink for the fan-out benchmark: one aiohttp server listening on many 127.0.0.1 ports
(each port a distinct remote "host"), verifying the HTTP signature of every POST with
fedserver.activitypub.httpsig.extract_signature and the sender's public key, and counting arrivals,
distinct signatures and failures. GET /_stats answers the counts (with ?times=1 also every arrival's
time); POST /_reset zeroes them, and with ?close=1 also closes every open connection (this request's
own once answered), as a server does when its keep-alive timeout runs out: the next round starts with
cold connections, whichever client sent the last one.

Run: python bench/sink.py PUBLIC_KEY_PEM_FILE PORTCOUNT READYFILE"""
from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

from aiohttp import web

from fedserver.activitypub.httpsig import SignatureError, extract_signature
from fedserver.activitypub.keys import load_public_key


def build_app(public_pem: str, runner: list[web.AppRunner] | None = None) -> tuple[web.Application, dict]:
    key = load_public_key(public_pem)  # parsed once: the sink must not be the bottleneck
    state: dict = {}

    def reset() -> None:
        state.update(arrivals=0, verified=0, failed=0, signatures=set(), first=None, last=None, errors={},
                     paths=set(), times=[])

    reset()

    async def inbox(request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        state["arrivals"] += 1
        state["first"] = state["first"] or now
        state["last"] = now
        state["times"].append(now)
        try:
            pending = extract_signature(request.method, request.raw_path, request.headers, body, scheme="http")
            pending.verify(key)
        except (SignatureError, ValueError) as exc:
            state["failed"] += 1
            state["errors"][str(exc)] = state["errors"].get(str(exc), 0) + 1
            return web.json_response({"error": str(exc)}, status=401)
        state["verified"] += 1
        state["signatures"].add(pending.signature)
        state["paths"].add((request.host, request.path))
        return web.Response(status=202)

    async def stats(request: web.Request) -> web.Response:
        hidden = ("signatures", "paths") if request.query.get("times") else ("signatures", "paths", "times")
        return web.json_response({**{k: v for k, v in state.items() if k not in hidden},
                                  "distinct_signatures": len(state["signatures"]),
                                  "distinct_targets": len(state["paths"])})

    async def do_reset(request: web.Request) -> web.Response:
        reset()
        closed = 0
        if request.query.get("close") and runner:
            server = runner[0].server
            for connection in server.connections if server is not None else []:
                if connection.transport is request.transport:
                    connection.close()  # after this answer
                else:
                    connection.force_close()  # idle, or a request in flight that the reset voids
                closed += 1
        return web.json_response({"ok": True, "closed": closed})

    app = web.Application()
    app.router.add_post("/inbox", inbox)
    app.router.add_post("/users/{name}/inbox", inbox)
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_reset", do_reset)
    return app, state


async def serve(pem_file: Path, port_count: int, ready: Path) -> None:
    holder: list[web.AppRunner] = []
    app, _ = build_app(pem_file.read_text(), holder)
    runner = web.AppRunner(app, access_log=None)
    holder.append(runner)
    await runner.setup()
    ports = []
    for _ in range(port_count):
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=512)
        await site.start()
        ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    ready.write_text(json.dumps(ports))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), timeout=3600)
    except asyncio.TimeoutError:
        pass
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])))
