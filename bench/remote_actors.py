"""Many remote actors on loopback "hosts" (one aiohttp server listening on several 127.0.0.1 ports),
serving Mastodon-shaped actor documents with their public keys so fedserver can fetch them.

Actor `k<N>-<anything>` publishes public key number N of the benchmark's key pool. GET /_stats
answers how many actor documents were served (to count key fetches), and how many of those GETs
were signed.

Run: python bench/remote_actors.py KEYFILE PORTCOUNT READYFILE"""
from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from aiohttp import web

AS = "https://www.w3.org/ns/activitystreams"
AS2 = "application/activity+json"


def build_app(public_pems: list[str], stats: dict[str, int]) -> web.Application:
    async def actor(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            pem = public_pems[int(name[1:].split("-", 1)[0])]
        except (ValueError, IndexError):
            return web.json_response({"error": "not found"}, status=404)
        stats["actor_gets"] += 1
        if "Signature" in request.headers or "Signature-Input" in request.headers:
            stats["signed_gets"] += 1  # fedserver signs every fetch (authorized-fetch peers need it)
        base = f"http://{request.host}"
        uri = f"{base}/users/{name}"
        doc = {
            "@context": [AS, "https://w3id.org/security/v1"],
            "id": uri, "type": "Person", "preferredUsername": name, "name": f"Bench {name}",
            "summary": "<p>a benchmark actor</p>", "url": f"{base}/@{name}",
            "inbox": f"{uri}/inbox", "outbox": f"{uri}/outbox", "followers": f"{uri}/followers",
            "following": f"{uri}/following", "endpoints": {"sharedInbox": f"{base}/inbox"},
            "manuallyApprovesFollowers": False, "discoverable": True,
            "publicKey": {"id": f"{uri}#main-key", "owner": uri, "publicKeyPem": pem},
        }
        return web.Response(body=json.dumps(doc).encode(), content_type=AS2)

    async def inbox(request: web.Request) -> web.Response:
        await request.read()
        stats["inbox_posts"] += 1
        return web.Response(status=202)

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    app = web.Application()
    app.router.add_get("/users/{name}", actor)
    app.router.add_post("/inbox", inbox)
    app.router.add_post("/users/{name}/inbox", inbox)
    app.router.add_get("/_stats", get_stats)
    return app


async def serve(keyfile: Path, port_count: int, ready: Path) -> None:
    from fedserver.activitypub.keys import public_pem_from_private

    pems = [public_pem_from_private(k) for k in json.loads(keyfile.read_text())]
    stats = {"actor_gets": 0, "signed_gets": 0, "inbox_posts": 0}
    runner = web.AppRunner(build_app(pems, stats), access_log=None)
    await runner.setup()
    ports = []
    for _ in range(port_count):
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    ready.write_text(json.dumps(ports))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), timeout=3600)  # never outlive a benchmark by long
    except asyncio.TimeoutError:
        pass
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])))
