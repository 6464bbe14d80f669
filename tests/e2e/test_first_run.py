"""The first run as the README tells it: `fedserver serve` in an empty folder gives an instance a
person can open at once, and a port that its links do not name is refused with a clear message."""
from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

from tests.conftest import free_port
from tests.e2e.processes import ServerProcess, set_config_keys

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


def test_serve_behind_a_declared_reverse_proxy_listens_on_a_port_its_links_do_not_name(tmp_path: Path):
    """docs/scaling.md's web processes behind a load balancer: the domain names the balancer's port,
    each web process listens on its own. Declaring the proxy ([server] trusted_proxies) lifts the
    first-run protection above; without it the same command is still refused."""
    site = ServerProcess(tmp_path / "site")
    site.init()
    behind = ServerProcess(site.directory, port=free_port())
    refused = site.run("serve", "--port", str(behind.port), timeout=30)
    assert refused.returncode == 1 and f"would listen on port {behind.port}" in refused.stderr
    assert "trusted_proxies" in refused.stderr  # the message names the way out for a proxied set-up

    set_config_keys(site.config, trusted_proxies=["127.0.0.1"])
    try:
        behind.start("--port", str(behind.port))
        site.run("user", "create", "alice", check=True)
        request = urllib.request.Request(f"http://127.0.0.1:{behind.port}/users/alice",
                                         headers={"Accept": "application/activity+json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            actor = json.loads(response.read())
        # Served on the other port, and every id still names the domain's (the proxy's) port.
        assert actor["id"] == f"http://127.0.0.1:{site.port}/users/alice"
    finally:
        behind.terminate()
