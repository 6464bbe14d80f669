"""The ceiling of a signed key fetch: a bare client (one process, one event loop, like fedserver)
that signs every GET of an actor document as fedserver's fetcher does (draft-cavage rsa-sha256 over
(request-target), host, date and accept, with an RSA-2048 key, fedserver's own `sign_request`) and
sends it over keep-alive connections. Each request is signed when it is sent, not beforehand: the
signature is part of what a first contact costs.

Everything goes to 127.0.0.1; the loop is bounded in count and in time."""
from __future__ import annotations

import asyncio
import time
from typing import Any, Sequence

from bench.common import LoadResult, _read_response, run_in_subprocess

AS2_ACCEPT = "application/activity+json"


async def run_signed_gets(port: int, paths: Sequence[str], *, key_id: str, private_key_pem: str, connections: int,
                          duration: float, cycle: bool = False) -> LoadResult:
    """GET each path (cycling if asked) over `connections` connections, signing each request just before
    it is written. Stops when the paths run out (unless cycle) or after `duration` seconds."""
    from fedserver.activitypub.httpsig import sign_request
    from fedserver.activitypub.keys import load_private_key

    load_private_key(private_key_pem)  # parsed once, as fedserver's signer does (lru_cache)
    authority = f"127.0.0.1:{port}"
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    next_index = 0
    errors = 0
    start = time.perf_counter()
    deadline = start + duration
    total = len(paths)

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
                path = paths[i % total]
                headers = sign_request("GET", f"http://{authority}{path}", body=None, key_id=key_id,
                                       private_key_pem=private_key_pem, accept=AS2_ACCEPT)
                head = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
                try:
                    status = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                latencies.append((time.perf_counter() - now) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    cpu0 = time.process_time()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))), timeout=duration + 60)
    elapsed = time.perf_counter() - start
    return LoadResult(sent=sum(statuses.values()) + errors, statuses=statuses, latencies_ms=latencies,
                      elapsed=elapsed, cpu=time.process_time() - cpu0, errors=errors)


def signed_gets_in_subprocess(port: int, paths: Sequence[str], **kwargs: Any) -> LoadResult:
    """run_signed_gets in a process of its own (fresh, so nothing of the benchmark shares its core)."""
    return run_in_subprocess(run_signed_gets, port, list(paths), what="signed-GET client", **kwargs)
