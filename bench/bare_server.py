"""The ceiling for inbound: a bare aiohttp endpoint that reads the POST body, parses it as JSON and
answers 202, served like fedserver serves (web.run_app, default asyncio loop, no access log).

Run: python bench/bare_server.py PORT"""
from __future__ import annotations

import json
import sys

from aiohttp import web


async def inbox(request: web.Request) -> web.Response:
    body = await request.read()
    json.loads(body)
    return web.Response(status=202)


async def ready(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    app = web.Application()
    app.router.add_post("/inbox", inbox)
    app.router.add_post("/users/{name}/inbox", inbox)
    app.router.add_get("/", ready)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
