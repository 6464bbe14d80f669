"""The wire-format tests run servers on loopback only."""
from __future__ import annotations

import socket
from typing import Any

import pytest

_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", None}


@pytest.fixture(autouse=True)
def _no_real_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback only: fail loudly if anything would ask a real DNS server."""
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in _LOCAL_NAMES:
            raise AssertionError(f"test tried to resolve {name!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
