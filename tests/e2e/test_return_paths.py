"""Where a form sends people afterwards (`next=` after signing in, `back=` after reporting a post)
stays on this site, whatever a link put there: the real `fedserver serve`, and each hostile value
as a browser would resolve it (WHATWG drops tabs and newlines and reads a backslash as a slash)."""
from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from tests.e2e.processes import ServerProcess
from tests.e2e.web_client import Visitor

PASSWORD = "a long enough password"
# Each of these resolves, in a browser, to a page on evil.example.
HOSTILE = ["/%09/evil.example", "//evil.example", "/\\evil.example", "https://evil.example",
           "/%0a/evil.example", "%09//evil.example", "/%2F%2Fevil.example"]


def hidden(text: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', text)
    assert match, f"no hidden {name} field"
    return html.unescape(match.group(1))


@pytest.fixture
async def server(fedserver_processes, tmp_path: Path) -> ServerProcess:
    server = fedserver_processes("site")
    secret = tmp_path / "password"
    secret.write_text(PASSWORD)
    for name in ("alice", "bob"):
        server.run("user", "create", name, "--password-file", str(secret), check=True)
    server.run("post", "alice", "something to report", check=True)
    await server.astart()
    return server


async def test_sign_in_with_a_next_to_another_site_lands_on_the_default(server):
    for raw in HOSTILE:  # what the link carries in its query string, percent-encoding included
        async with Visitor(server.base) as visitor:
            form = await visitor.get(f"/auth/sign_in?next={raw}")
            assert hidden(form.text, "next") == "/home"
            # The form as the page carries it, and the hostile value posted to the handler as is.
            for sent in (hidden(form.text, "next"), unquote(raw)):
                landed = await visitor.sign_in("alice", PASSWORD, next_path=sent)
                assert landed.status == 303 and landed.location == "/home", (raw, sent, landed.location)
                visitor.http.cookie_jar.clear()


async def test_sign_in_keeps_a_next_on_this_site(server):
    async with Visitor(server.base) as visitor:
        form = await visitor.get(f"/auth/sign_in?next={quote('/settings')}")
        landed = await visitor.sign_in("alice", PASSWORD, next_path=hidden(form.text, "next"))
        assert landed.status == 303 and landed.location == "/settings"


async def test_the_report_form_sends_people_back_only_to_this_site(server):
    post_id = server.value("SELECT p.id FROM posts p JOIN actors a ON a.id = p.actor_id WHERE a.username = 'alice'")
    async with Visitor(server.base) as bob:
        assert (await bob.sign_in("bob", PASSWORD)).status == 303
        for raw in [*HOSTILE, "/@alice"]:
            expected = "/@alice" if raw == "/@alice" else "/home"
            page = await bob.get(f"/posts/{post_id}/report?back={raw}")
            assert page.status == 200
            form = page.text.split(f'action="/posts/{post_id}/report"', 1)[1].split("</form>", 1)[0]
            assert hidden(form, "back") == expected
            assert f'<a href="{expected}">Cancel</a>' in form
            for back in (hidden(form, "back"), unquote(raw)):
                sent = await bob.submit(f"/posts/{post_id}/report?back={raw}", f"/posts/{post_id}/report",
                                        {"back": back, "comment": "spam"})
                assert sent.status == 303 and sent.location == expected, (raw, back, sent.location)
