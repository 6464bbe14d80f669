"""The first run as the README tells it: `fedserver serve` in an empty folder gives an instance a
person can open at once, and a port that its links do not name is refused with a clear message."""
from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

from tests.conftest import free_port
from tests.e2e.processes import ServerProcess

URL_RE = re.compile(r"\b[a-z]+://\S+")


def test_serve_on_a_fresh_config_prints_one_http_url_that_opens_and_that_ids_use(tmp_path: Path):
    server = ServerProcess(tmp_path / "fresh")
    try:
        server.start("--port", str(server.port))
        urls = URL_RE.findall(server.stdout())
        assert urls == [f"http://localhost:{server.port}/"], server.stdout()
        with urllib.request.urlopen(urls[0], timeout=10) as response:
            assert response.status == 200 and "text/html" in response.headers["Content-Type"]
        server.run("user", "create", "alice", check=True)
        request = urllib.request.Request(f"{urls[0]}users/alice", headers={"Accept": "application/activity+json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            actor = json.loads(response.read())
        # Every link and id points where the printed URL points: same scheme, host and port.
        assert actor["id"] == f"{urls[0]}users/alice"
        assert actor["inbox"].startswith(urls[0]) and actor["url"] == f"{urls[0]}@alice"
    finally:
        server.terminate()


def test_serve_refuses_a_port_that_its_loopback_links_do_not_name(tmp_path: Path):
    server = ServerProcess(tmp_path / "site")
    server.init()
    other = free_port()
    result = server.run("serve", "--port", str(other), timeout=30)
    assert result.returncode == 1
    message = result.stderr.strip()
    assert message.startswith(f"error: [instance] domain is 127.0.0.1:{server.port}, so every link and id")
    assert f"would listen on port {other}" in message and "Traceback" not in result.stderr
    assert "fedserver is running" not in result.stdout
