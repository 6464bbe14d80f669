"""What one process kept in memory and several web processes must share: a retried status create
with the same Idempotency-Key answers with the first attempt's post whichever process serving the
instance it reaches (`[server] processes = 2`: the kernel spreads fresh connections over both)."""
from __future__ import annotations

import asyncio
import html
import json
import re
import urllib.request
from urllib.parse import urlencode

import aiohttp

from tests.e2e.processes import ServerProcess
from tests.e2e.test_processes import two_processes
from tests.e2e.web_client import Visitor

OOB = "urn:ietf:wg:oauth:2.0:oob"
# Fresh connections, one per retry: the chance that all reach the same process is 2 ** -(RETRIES - 1).
RETRIES = 12


async def api_token(server: ServerProcess, username: str) -> str:
    """An app, then a token for `username` through the sign-in and authorization pages."""
    password = (await server.arun("user", "reset-password", username, check=True)).stdout.strip().rsplit(" ", 1)[-1]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.base}/api/v1/apps", data={
                "client_name": "Retrying App", "redirect_uris": OOB, "scopes": "read write"}) as resp:
            app = await resp.json()
    async with Visitor(server.base) as person:
        assert (await person.sign_in(username, password)).status == 303
        query = urlencode({"client_id": app["client_id"], "redirect_uri": OOB, "response_type": "code",
                           "scope": "read write"})
        page = await person.get(f"/oauth/authorize?{query}")
        fields = {name: html.unescape(value) for name, value in
                  re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)}
        fields.pop("csrf_token", None)
        answer = await person.submit(f"/oauth/authorize?{query}", "/oauth/authorize", {**fields, "decision": "authorize"})
        shown = answer.text if answer.status == 200 else (await person.get(answer.location or "/")).text
        code = html.unescape(re.search(r'<code id="authorization-code">([^<]+)</code>', shown).group(1))
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.base}/oauth/token", data={
                "grant_type": "authorization_code", "client_id": app["client_id"], "client_secret": app["client_secret"],
                "code": code, "redirect_uri": OOB}) as resp:
            assert resp.status == 200, await resp.text()
            return (await resp.json())["access_token"]


def post_status(server: ServerProcess, token: str, text: str, key: str) -> dict:
    """POST /api/v1/statuses on a connection of its own (urllib opens one per request)."""
    request = urllib.request.Request(f"{server.base}/api/v1/statuses", data=urlencode({"status": text}).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


async def test_a_retried_status_create_posts_once_whichever_process_it_reaches(fedserver_processes):
    server = fedserver_processes("a")
    await two_processes(server)
    token = await api_token(server, "alice")

    answers = [post_status(server, token, "posted once however often it is retried", "retry-key-1")
               for _ in range(RETRIES)]

    assert {answer["id"] for answer in answers} == {answers[0]["id"]}
    assert server.value("SELECT count(*) FROM posts WHERE content_html LIKE '%posted once however often%'") == 1


async def test_status_creates_sent_at_once_with_one_idempotency_key_post_once(fedserver_processes):
    # A retry sent while the first attempt is still being answered (a phone that gave up waiting):
    # the attempts run at the same time, in both processes; the key is decided in the transaction
    # that creates the post (services/idempotency.claim), not looked up before it.
    server = fedserver_processes("a")
    await two_processes(server)
    token = await api_token(server, "alice")

    for round_ in range(4):
        text = f"sent at once, posted once, round {round_}"
        answers = await asyncio.gather(*(asyncio.to_thread(post_status, server, token, text, f"at-once-{round_}")
                                         for _ in range(RETRIES)))
        assert {answer["id"] for answer in answers} == {answers[0]["id"]}
        assert server.value(f"SELECT count(*) FROM posts WHERE content_html LIKE '%posted once, round {round_}<%'") == 1
