"""Pages protect themselves in the browser: every page of the real `fedserver serve` sends a
Content-Security-Policy that forbids inline script, framing, <base> and forms to other sites, and
pages rendered for a signed-in person are not kept in any cache."""
from __future__ import annotations

from pathlib import Path

from tests.e2e.web_client import Visitor

PASSWORD = "a long enough password"


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


def assert_protective(policy: str | None) -> None:
    assert policy, "no Content-Security-Policy"
    found = directives(policy)
    assert found["frame-ancestors"] == ["'none'"]
    assert found["form-action"] == ["'self'"]
    assert found["base-uri"] == ["'none'"]
    scripts = found.get("script-src", found.get("default-src"))
    assert scripts is not None and "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
    assert "'unsafe-inline'" not in found.get("style-src", found.get("default-src", []))


async def test_pages_send_a_content_security_policy_and_signed_in_pages_are_not_stored(fedserver_processes,
                                                                                       tmp_path: Path):
    server = fedserver_processes("site")
    secret = tmp_path / "password"
    secret.write_text(PASSWORD)
    server.run("user", "create", "alice", "--password-file", str(secret), check=True)
    server.run("post", "alice", "hello", check=True)
    await server.astart()

    async with Visitor(server.base) as anonymous:
        for path in ("/", "/local", "/@alice", "/auth/sign_in", "/auth/sign_up", "/no/such/page"):
            page = await anonymous.get(path)
            assert_protective(page.headers.get("Content-Security-Policy"))
            assert "no-store" not in page.headers.get("Cache-Control", ""), path  # public pages may be cached
        refused = await anonymous.sign_in("alice", "wrong")
        assert refused.status == 401
        assert_protective(refused.headers.get("Content-Security-Policy"))

    async with Visitor(server.base) as alice:
        assert (await alice.sign_in("alice", PASSWORD)).status == 303
        for path in ("/home", "/local", "/notifications", "/@alice", "/settings/profile", "/settings/password"):
            page = await alice.get(path)
            assert page.status == 200, path
            assert_protective(page.headers.get("Content-Security-Policy"))
            assert page.headers.get("Cache-Control") == "private, no-store", path
