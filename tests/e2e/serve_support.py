"""What the hardening tests of issue 12 item 8 share: a real `fedserver serve` with local people who
sign in through the web form, and a hand-built remote (FakeRemote) whose actors are known to it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.fake_remote import FakeRemote
from tests.e2e.processes import ProcessGroup, ServerProcess, await_for
from tests.web.browser import PASSWORD, Browser


async def serve_with_people(processes: ProcessGroup, tmp_path: Path, *names: str, **config: Any) -> ServerProcess:
    """An initialised, serving instance with these local accounts (password PASSWORD)."""
    server = processes("a", **config)
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD, encoding="utf-8")
    for name in names:
        await server.arun("user", "create", name, "--password-file", str(secret), check=True)
    await server.astart()
    return server


async def signed_in(server: ServerProcess, username: str) -> Browser:
    browser = Browser(server.base)
    await browser.sign_in(username)
    return browser


async def delivered(server: ServerProcess, remote: FakeRemote, activity: dict[str, Any], *, as_user: str,
                    inbox: str | None = None) -> None:
    """POST the activity to the server's shared inbox and wait until the inbox worker processed it."""
    status, body = await remote.post(inbox or f"{server.base}/inbox", activity, as_user=as_user)
    assert status == 202, (status, body)
    await await_for(lambda: server.value("SELECT state FROM inbox_items WHERE activity_uri = ?",
                                         (activity["id"],)) in ("done", "failed"),
                    what=f"{activity['type']} {activity['id']} processed")


def post_id_of(server: ServerProcess, uri: str) -> int | None:
    return server.value("SELECT id FROM posts WHERE uri = ?", (uri,))
