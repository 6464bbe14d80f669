"""A Create that reuses the id of a post we already hold never changes that post: another actor of
the same host (the inbox's origin check only compares hosts) must not be able to rewrite it, whether
the object is embedded (the inbox worker's batched path) or given by id and fetched (one by one).
Only an Update from the post's own author edits it. Real `fedserver serve`, hostile FakeRemote."""
from __future__ import annotations

import time

from tests.e2e.fake_remote import FakeRemote
from tests.e2e.serve_support import delivered, post_id_of, serve_with_people, signed_in


def _later(seconds: float) -> str:
    """A wire time after the original's (an edit needs a newer `updated` to apply)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))


def _stored(server, uri: str) -> tuple:
    return tuple(server.query("SELECT content_text, actor_id, edited_at FROM posts WHERE uri = ?", (uri,))[0])


async def test_a_create_reusing_another_actors_post_id_leaves_the_post_unchanged(fedserver_processes, tmp_path):
    server = await serve_with_people(fedserver_processes, tmp_path, "alice")
    remote = await FakeRemote.start("eve", "mallory")
    alice = await signed_in(server, "alice")
    try:
        original = remote.create_note("eve", "eve wrote this", mention=server.actor_uri("alice"))
        note_uri = original["object"]["id"]
        await delivered(server, remote, original, as_user="eve")
        post_id = post_id_of(server, note_uri)
        assert post_id is not None
        before = _stored(server, note_uri)
        assert "eve wrote this" in before[0]

        # Embedded object: mallory (same host) claims eve's post id as his own new post.
        forged = remote.note("mallory", "mallory rewrote it", mention=server.actor_uri("alice"))
        forged["id"], forged["updated"] = note_uri, _later(60)
        await delivered(server, remote, remote.activity("mallory", "Create", forged), as_user="mallory")
        # By id: the object is fetched from the remote, which serves mallory's version at that id.
        remote.serve({**forged, "content": "<p>mallory fetched rewrite</p>"})
        by_id = remote.activity("mallory", "Create", note_uri)
        await delivered(server, remote, by_id, as_user="mallory")
        # eve herself re-sending a Create with other content does not edit it either (edits are Updates).
        again = {**original["object"], "content": "<p>eve sneaky recreate</p>", "updated": _later(60)}
        await delivered(server, remote, remote.activity("eve", "Create", again), as_user="eve")

        assert _stored(server, note_uri) == before
        assert server.value("SELECT count(*) FROM post_revisions WHERE post_id = ?", (post_id,)) == 0
        page = await alice.get(f"/posts/{post_id}")
        assert page.status == 200 and "eve wrote this" in page.text
        assert "mallory" not in page.text and "sneaky" not in page.text

        # Positive control: an Update by the author still edits the post.
        edited = {**original["object"], "content": "<p>eve edited this</p>", "updated": _later(120)}
        await delivered(server, remote, remote.activity("eve", "Update", edited), as_user="eve")
        assert "eve edited this" in _stored(server, note_uri)[0]
        # ... and an Update by mallory of eve's post does not.
        hijack = {**forged, "content": "<p>mallory update</p>", "updated": _later(180)}
        await delivered(server, remote, remote.activity("mallory", "Update", hijack), as_user="mallory")
        assert "eve edited this" in _stored(server, note_uri)[0]
    finally:
        await alice.close()
        await remote.stop()
