"""The ceiling of a signed key fetch: a bare client (one process, one event loop, like fedserver)
that signs every GET of an actor document as fedserver's fetcher does (draft-cavage rsa-sha256 over
(request-target), host, date and accept, with an RSA-2048 key, fedserver's own `sign_request`) and
sends it over keep-alive connections. Each request is signed when it is sent, not beforehand: the
signature is part of what a first contact costs.

Everything goes to 127.0.0.1; the loop is bounded in count and in time."""
from __future__ import annotations

from typing import Any, Sequence

from bench.common import LoadResult, run_in_subprocess, run_load

AS2_ACCEPT = "application/activity+json"


async def run_signed_gets(port: int, paths: Sequence[str], *, key_id: str, private_key_pem: str, connections: int,
                          duration: float, cycle: bool = False) -> LoadResult:
    """GET each path (cycling if asked) over `connections` connections, signing each request just before
    it is written. Stops when the paths run out (unless cycle) or after `duration` seconds."""
    from fedserver.activitypub.httpsig import sign_request
    from fedserver.activitypub.keys import load_private_key

    load_private_key(private_key_pem)  # parsed once, as fedserver's signer does (lru_cache)
    authority = f"127.0.0.1:{port}"

    def signed(path: str) -> bytes:
        headers = sign_request("GET", f"http://{authority}{path}", body=None, key_id=key_id,
                               private_key_pem=private_key_pem, accept=AS2_ACCEPT)
        head = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")

    return await run_load(port, paths, connections=connections, duration=duration, cycle=cycle, build=signed)


def signed_gets_in_subprocess(port: int, paths: Sequence[str], **kwargs: Any) -> LoadResult:
    """run_signed_gets in a process of its own (fresh, so nothing of the benchmark shares its core)."""
    return run_in_subprocess(run_signed_gets, port, list(paths), what="signed-GET client", **kwargs)
