"""Outbox pages build their notes together (mentions, mentioned actors, hashtags and the author's
training choice read once for the page): every note must still be exactly the document the post's
own URL serves, whatever the post carries and whoever wrote it."""
from __future__ import annotations

import aiohttp
import pytest

from fedserver.services import accounts, audience, consent, follows, posting
from fedserver.services.posting import Draft
from fedserver.store import actors as actor_store
from fedserver.store import posts as post_store
from tests.e2e.test_documents import PUBLIC, get_json

pytestmark = pytest.mark.usefixtures("fast_accounts")

EVERY_VISIBILITY = ("public", "unlisted", "followers", "direct")


def _drafts(remote_handle: str, reply_to: str) -> list[Draft]:
    """One post of each kind a note can be."""
    return [
        Draft(text=f"@bob @carol and {remote_handle}: #Fediverse #coffee #Python"),
        Draft(text="quiet one", visibility="unlisted", content_warning="spoilers"),
        Draft(text="for followers and @bob #coffee", visibility="followers"),
        Draft(text=f"just between us {remote_handle}", visibility="direct"),
        Draft(text="an answer #coffee", reply_to=reply_to),
        Draft(text="keep this one out", exclude_from_corpus=True),
        Draft(text="in English", language="en"),
    ]


async def _write_posts(ctx, username: str, remote_handle: str, reply_to: str) -> list:
    posts = [await posting.create_post(ctx, username, draft) for draft in _drafts(remote_handle, reply_to)]
    # Edited (mentions and tags replaced), and excluded after the fact.
    await posting.edit_post(ctx, username, posts[2].uri, Draft(text="now about @erin only #changed",
                                                                content_warning="edited"))
    await posting.set_post_excluded(ctx, username, posts[6].uri, True)
    return posts


@pytest.fixture
async def authors(instances):
    """Server a with alice (consented to training for all her public posts), bob (never chose),
    carol (consented for later posts only, unlisted ones too, after writing half of hers) and erin
    (said no); everyone mentions dora on server b and replies to bob."""
    a, b = await instances("a"), await instances("b")
    for name in ("alice", "bob", "carol", "erin"):
        await accounts.create_account(a.ctx, name)
    await accounts.create_account(b.ctx, "dora")
    dora = b.handle("dora")
    await follows.follow(a.ctx, "bob", a.handle("alice"))
    parent = await posting.create_post(a.ctx, "bob", Draft(text="what do you think? #coffee"))
    await consent.set_training_consent(a.ctx, "alice", "allow", license="CC-BY-4.0", scope="all")
    await consent.set_training_consent(a.ctx, "erin", "deny")
    for name in ("alice", "bob", "carol", "erin"):
        await _write_posts(a.ctx, name, dora, parent.uri)
    await consent.set_training_consent(a.ctx, "carol", "allow", license="CC0-1.0", scope="future",
                                       include_unlisted=True)
    await _write_posts(a.ctx, "carol", dora, parent.uri)
    return a


async def test_notes_read_together_are_the_notes_read_one_by_one(authors):
    a = authors
    seen: list[dict] = []
    for name in ("alice", "bob", "carol", "erin"):
        author = await actor_store.get_local_actor(a.ctx.db.reader, name)
        assert author is not None
        posts = await post_store.list_actor_posts(a.ctx.db.reader, author.id, visibilities=EVERY_VISIBILITY,
                                                  limit=100)
        for with_context in (True, False):
            one_by_one = [await audience.local_note_document(a.ctx, post, author, with_context=with_context)
                          for post in posts]
            together = await audience.local_note_documents(a.ctx, posts, author, with_context=with_context)
            assert together == one_by_one, name
        seen += one_by_one

    # What the notes carried, so the comparison above covered it.
    kinds = [[tag["type"] for tag in note["tag"]] for note in seen]
    assert any(k.count("Mention") == 3 and k.count("Hashtag") == 3 for k in kinds)
    assert any("Mention" in k for k in kinds if "Hashtag" not in k)
    assert any("inReplyTo" in note for note in seen) and any("updated" in note for note in seen)
    assert {note.get("summary") for note in seen} >= {"spoilers", "edited", None}
    assert {note.get("contentUsage") for note in seen} == {"train-ai=y", "train-ai=n", None}
    assert any(note.get("contentUsage") == "train-ai=y" and PUBLIC in note["cc"] for note in seen)  # unlisted
    assert any("contentMap" in note for note in seen)


async def test_notes_of_another_author_are_refused(authors):
    a = authors
    alice = await actor_store.get_local_actor(a.ctx.db.reader, "alice")
    bob = await actor_store.get_local_actor(a.ctx.db.reader, "bob")
    assert alice is not None and bob is not None
    posts = await post_store.list_actor_posts(a.ctx.db.reader, bob.id, visibilities=EVERY_VISIBILITY)
    with pytest.raises(ValueError):
        await audience.local_note_documents(a.ctx, posts, alice)
    assert await audience.local_note_documents(a.ctx, [], alice) == []


async def test_every_note_on_an_outbox_page_is_the_document_its_own_url_serves(instances):
    a = await instances("a")
    for name in ("alice", "bob"):
        await accounts.create_account(a.ctx, name)
    await consent.set_training_consent(a.ctx, "alice", "allow", license="CC-BY-SA-4.0", scope="all")
    parent = await posting.create_post(a.ctx, "bob", Draft(text="first!"))
    written = []
    for i in range(36):
        draft = Draft(text=f"note {i} @bob #n{i % 3}" if i % 2 else f"note {i}",
                      visibility=("public", "unlisted", "followers")[i % 3],
                      content_warning="cw" if i % 5 == 0 else None, reply_to=parent.uri if i % 4 == 0 else None,
                      exclude_from_corpus=i % 7 == 0)
        written.append(await posting.create_post(a.ctx, "alice", draft))
    await posting.edit_post(a.ctx, "alice", written[-1].uri, Draft(text="changed #n9 @bob"))

    outbox = f"{a.base}/users/alice/outbox"
    items = []
    async with aiohttp.ClientSession() as http:
        url: str | None = f"{outbox}?page=true"
        while url:
            page = await get_json(http, url)
            items += page["orderedItems"]
            url = page.get("next")
        # Public and unlisted ones, newest (highest id) first, over two pages.
        expected = [p.uri for p in sorted(written, key=lambda p: p.id, reverse=True)
                    if p.visibility in ("public", "unlisted")]
        assert [item["object"]["id"] for item in items] == expected and len(expected) > 20
        for item in items:
            own = await get_json(http, item["object"]["id"])
            assert item["object"] == {k: v for k, v in own.items() if k != "@context"}
            activity = await get_json(http, f"{item['object']['id']}/activity")
            assert item == {k: v for k, v in activity.items() if k != "@context"}
    assert any(item["object"].get("contentUsage") == "train-ai=n" for item in items)  # the excluded ones
    assert any(item["object"].get("contentUsage") == "train-ai=y" for item in items)
