"""Polls in local posts between two real `fedserver serve` processes: a poll written on A's web
compose form reaches B as a Question, a person on B votes there, A counts the vote, and at the end
time A closes the poll (a job in its database, so even across a restart) and B gets the final
counts through the Update. A hostile remote's votes are counted once per voter and option, and
never after the end or for another author."""
from __future__ import annotations

import asyncio
import html
import time
from typing import Any

import aiohttp

from tests.e2e.fake_remote import AS2, FakeRemote
from tests.e2e.processes import ProcessGroup, ServerProcess, await_for
from tests.e2e.serve_support import delivered, signed_in
from tests.web.browser import PASSWORD, Browser

# Seconds a test poll lasts: long enough for a vote to travel B -> A on a loaded machine.
POLL_SECONDS = 15


async def _serving(processes: ProcessGroup, tmp_path, name: str, *people: str, **config: Any) -> ServerProcess:
    server = processes(name, **config)
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD, encoding="utf-8")
    for person in people:
        await server.arun("user", "create", person, "--password-file", str(secret), check=True)
    await server.astart()
    return server


async def _post_poll(browser: Browser, text: str, options: list[str], *, seconds: int, multiple: bool = False,
                     visibility: str = "public"):
    """Submit the home page's compose form with its poll section filled in."""
    home = await browser.get("/home")
    assert 'name="poll_option"' in home.text and "Add a poll" in home.text
    form = [("csrf_token", home.csrf), ("back", "/home"), ("text", text), ("visibility", visibility),
            ("poll_expires_in", str(seconds)), *[("poll_option", option) for option in options], ("poll_option", "")]
    if multiple:
        form.append(("poll_multiple", "1"))
    return await browser.post("/posts", form)


async def _question(http: aiohttp.ClientSession, uri: str) -> dict[str, Any]:
    async with http.get(uri, headers={"Accept": AS2}) as resp:
        assert resp.status == 200
        return await resp.json(content_type=None)


def _counts(server: ServerProcess, post_id: int) -> list[int]:
    return [row[0] for row in server.query("SELECT votes FROM poll_options WHERE post_id = ? ORDER BY position",
                                           (post_id,))]


async def test_a_web_form_poll_is_voted_on_from_another_server_and_closes_with_final_counts_after_a_restart(
        fedserver_processes, tmp_path):
    a = await _serving(fedserver_processes, tmp_path, "a", "alice", "dave", poll_min_expiry_seconds=5)
    b = await _serving(fedserver_processes, tmp_path, "b", "bob")
    alice, dave, bob = await signed_in(a, "alice"), await signed_in(a, "dave"), await signed_in(b, "bob")
    http = aiohttp.ClientSession()
    try:
        await b.arun("follow", "bob", a.handle("alice"), check=True)
        # Accepted on both sides: b keeps alice's posts only once it knows bob follows her.
        await await_for(lambda: a.value("SELECT count(*) FROM follows WHERE state = 'accepted'") == 1
                        and b.value("SELECT count(*) FROM follows WHERE state = 'accepted'") == 1,
                        timeout=30, what="bob following alice")
        # The form refuses a poll outside the limits and keeps what was typed.
        refused = await _post_poll(alice, "Too many?", ["1", "2", "3", "4", "5"], seconds=60)
        assert refused.status == 400 and "a poll needs 2 to 4 options" in html.unescape(refused.text)
        assert 'value="5"' in refused.text

        posted = await _post_poll(alice, "Tea or coffee?", ["Tea", "Coffee"], seconds=POLL_SECONDS)
        assert posted.status == 200 and "Your post is published" in posted.text
        post_id, uri = a.query("SELECT id, uri FROM posts WHERE source_text = 'Tea or coffee?'")[0]
        question = await _question(http, uri)
        assert question["type"] == "Question" and "anyOf" not in question
        assert [(o["type"], o["name"], o["replies"]) for o in question["oneOf"]] == [
            ("Note", "Tea", {"type": "Collection", "totalItems": 0}),
            ("Note", "Coffee", {"type": "Collection", "totalItems": 0})]
        assert question["votersCount"] == 0 and question["endTime"].endswith("Z") and "closed" not in question

        # B holds it as a poll; bob votes on his home page there.
        await await_for(lambda: b.value("SELECT post_id FROM polls JOIN posts ON posts.id = polls.post_id"
                                    " WHERE posts.uri = ?", (uri,)) is not None, timeout=30, what="the poll on b")
        b_id = b.value("SELECT id FROM posts WHERE uri = ?", (uri,))
        home = await bob.get("/home")
        assert f'action="/posts/{b_id}/vote"' in home.text and "Coffee" in home.text
        voted = await bob.submit("/home", f"/posts/{b_id}/vote", {"choice": "1", "back": "/home"})
        assert "Your vote was sent" in voted.text
        await await_for(lambda: _counts(a, post_id) == [0, 1], what="bob's vote counted on a")

        # Local people vote on the post page; the author cannot vote in her own poll.
        page = f"/@alice/{post_id}"
        own = await alice.get(page)
        assert f'action="/posts/{post_id}/vote"' not in own.text
        refused_vote = await alice.submit(page, f"/posts/{post_id}/vote", {"choice": "0", "back": page})
        assert "you cannot vote in your own poll" in html.unescape(refused_vote.text)
        counted = await dave.submit(page, f"/posts/{post_id}/vote", {"choice": "0", "back": page})
        assert "Your vote was counted" in counted.text
        assert "your vote" in counted.text and f'action="/posts/{post_id}/vote"' not in counted.text
        again = await dave.post(f"/posts/{post_id}/vote", {"csrf_token": counted.csrf, "choice": "1", "back": page})
        assert "already voted" in html.unescape(again.text)
        assert _counts(a, post_id) == [1, 1] and a.value("SELECT voters FROM polls WHERE post_id = ?", (post_id,)) == 2

        # A stops before the end and comes back after it: the closing job is in its database.
        a.terminate()
        ends = question["endTime"]
        end_epoch = time.mktime(time.strptime(ends, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        await asyncio.sleep(max(0.0, end_epoch - time.time()) + 1)
        await a.astart()
        await await_for(lambda: a.value("SELECT closed_at FROM polls WHERE post_id = ?", (post_id,)) is not None,
                        timeout=20, what="the poll closed on a")
        closed = await _question(http, uri)
        assert closed["closed"] and [o["replies"]["totalItems"] for o in closed["oneOf"]] == [1, 1]
        assert closed["votersCount"] == 2
        await await_for(lambda: b.value("SELECT closed_at FROM polls WHERE post_id = ?", (b_id,)) is not None,
                        timeout=20, what="the Update with the final counts on b")
        assert _counts(b, b_id) == [1, 1] and b.value("SELECT voters FROM polls WHERE post_id = ?", (b_id,)) == 2
        final = await bob.get("/home")
        assert f'action="/posts/{b_id}/vote"' not in final.text and "2 people voted" in final.text
        assert a.value("SELECT count(*) FROM poll_closings") == 0
    finally:
        for browser in (alice, dave, bob):
            await browser.close()
        await http.close()


async def test_votes_from_another_server_count_once_per_voter_and_option_and_not_after_the_end(
        fedserver_processes, tmp_path):
    a = await _serving(fedserver_processes, tmp_path, "a", "alice", poll_min_expiry_seconds=5)
    remote = await FakeRemote.start("eve", "mallory")
    alice = await signed_in(a, "alice")
    try:
        await _post_poll(alice, "Pick colours", ["Red", "Green", "Blue"], seconds=POLL_SECONDS, multiple=True)
        await _post_poll(alice, "Pick one", ["Yes", "No"], seconds=POLL_SECONDS)
        await _post_poll(alice, "Friends only", ["Yes", "No"], seconds=POLL_SECONDS, visibility="followers")
        many_id, many_uri = a.query("SELECT id, uri FROM posts WHERE source_text = 'Pick colours'")[0]
        one_id, one_uri = a.query("SELECT id, uri FROM posts WHERE source_text = 'Pick one'")[0]
        alice_uri = a.actor_uri("alice")

        def vote(name: str, question: str, choice: str, **extra: Any) -> dict[str, Any]:
            note = {"id": remote.new_id(name), "type": "Note", "name": choice, "attributedTo": remote.actor_uri(name),
                    "inReplyTo": question, "to": [alice_uri], **extra}
            return remote.activity(name, "Create", note, to=[alice_uri])

        red, blue = vote("eve", many_uri, "Red"), vote("eve", many_uri, "Blue")
        for activity in (red, blue, {**red, "id": remote.new_id("eve")}):  # the same vote Note twice
            await delivered(a, remote, activity, as_user="eve")
        await delivered(a, remote, vote("eve", one_uri, "Yes"), as_user="eve")
        await delivered(a, remote, vote("eve", one_uri, "No"), as_user="eve")  # a second choice in a one-choice poll
        await delivered(a, remote, vote("eve", one_uri, "Maybe"), as_user="eve")  # no such option
        # mallory signs a vote that claims to be eve's.
        forged = vote("eve", one_uri, "No")
        forged["actor"] = remote.actor_uri("mallory")
        status, _ = await remote.post(f"{a.base}/inbox", forged, as_user="mallory")
        assert status == 403
        # Someone who may not see a followers-only poll cannot vote in it.
        friends_id, friends_uri = a.query("SELECT id, uri FROM posts WHERE source_text = 'Friends only'")[0]
        await delivered(a, remote, vote("eve", friends_uri, "Yes"), as_user="eve")
        assert _counts(a, friends_id) == [0, 0]
        assert _counts(a, many_id) == [1, 0, 1]
        assert a.value("SELECT voters FROM polls WHERE post_id = ?", (many_id,)) == 1
        assert _counts(a, one_id) == [1, 0] and a.value("SELECT voters FROM polls WHERE post_id = ?", (one_id,)) == 1
        # Votes are counted, not stored as replies.
        assert a.value("SELECT count(*) FROM posts WHERE in_reply_to_uri IN (?, ?)", (many_uri, one_uri)) == 0

        await await_for(lambda: a.value("SELECT closed_at FROM polls WHERE post_id = ?", (one_id,)) is not None,
                        timeout=POLL_SECONDS + 15, what="the poll closed")
        await delivered(a, remote, vote("mallory", one_uri, "No"), as_user="mallory")
        assert _counts(a, one_id) == [1, 0]
        # eve's server (a voter's) receives the Update with the final counts.
        await await_for(lambda: any((item.activity or {}).get("type") == "Update"
                                    and item.activity["object"].get("id") == one_uri
                                    and item.activity["object"].get("closed") for item in remote.received),
                        timeout=20, what="the Update at eve's server")
    finally:
        await alice.close()
        await remote.stop()
