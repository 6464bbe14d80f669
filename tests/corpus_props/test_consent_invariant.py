"""Property tests of the consent invariant over random histories of accounts, posts, consent
changes, exclusions, edits, deletions and remote authors, run against the real services and a real
SQLite file: whatever happens, a pull contains only what its author consented to at that moment and
only posts addressed to the public, and every withdrawal reaches researchers as a removal."""
from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from fedserver.activitypub.keys import generate_rsa_private_key_pem
from fedserver.activitypub.notes import parse_note
from fedserver.activitypub.vocab import PUBLIC
from fedserver.app import close_context, open_context
from fedserver.corpus import records, signals, sync
from fedserver.services import accounts, consent, posting, remote_posts
from fedserver.store import actors as actor_store
from fedserver.store import corpus as corpus_store
from fedserver.store import posts as post_store
from tests.conftest import loopback_settings

LOCAL_USERS = ("ann", "ben", "cat")
REMOTE_USERS = ("rita", "remo")
REMOTE_HOST = "remote.example"
_KEY = generate_rsa_private_key_pem()


def _remote_actor_doc(name: str, choice: str) -> dict:
    uri = f"https://{REMOTE_HOST}/users/{name}"
    doc = {"@context": ["https://www.w3.org/ns/activitystreams", signals.actor_context_extension()],
           "id": uri, "type": "Person", "preferredUsername": name, "inbox": f"{uri}/inbox",
           "followers": f"{uri}/followers",
           "publicKey": {"id": f"{uri}#main-key", "owner": uri, "publicKeyPem": "-----BEGIN PUBLIC KEY-----x"}}
    doc.update(signals.document_fields(choice, "CC0-1.0" if choice == "allow" else None))
    return doc


class ConsentMachine(RuleBasedStateMachine):
    """Drives the real services; keeps a plain model of who consented to what for the oracle."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="consent-props-"))
        self.ctx = self.run(open_context(loopback_settings(self.dir, 9)))
        self.posts: list[str] = []  # uris
        self.present: set[str] = set()  # record ids present at the last pull
        self.cursor = 0
        self.remote_count = 0
        self.gone: set[str] = set()

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(close_context(self.ctx))
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @initialize()
    def create_accounts(self) -> None:
        for name in LOCAL_USERS:
            self.run(accounts.create_account(self.ctx, name))
        for name in REMOTE_USERS:
            self.run(self._remote_signal(name, "unset"))

    async def _remote_signal(self, name: str, choice: str) -> None:
        doc = _remote_actor_doc(name, choice)
        profile = {"username": name, "domain": REMOTE_HOST, "inbox_url": doc["inbox"],
                   "followers_url": doc["followers"], "key_id": doc["publicKey"]["id"]}
        async with self.ctx.db.transaction() as tx:
            actor_id = await actor_store.upsert_remote_actor(tx, uri=doc["id"], now=self.ctx.clock.now_iso(),
                                                             **profile)
            actor = await actor_store.get_actor(tx, actor_id)
            await consent.apply_remote_signal(self.ctx, tx, actor, doc)

    @rule(user=st.sampled_from(LOCAL_USERS), visibility=st.sampled_from(["public", "unlisted", "followers", "direct"]),
          excluded=st.booleans())
    def write_post(self, user, visibility, excluded):
        if user in self.gone:
            return
        post = self.run(posting.create_post(self.ctx, user, posting.Draft(
            text=f"post by {user}", visibility=visibility, exclude_from_corpus=excluded)))
        self.posts.append(post.uri)

    @rule(user=st.sampled_from(REMOTE_USERS), visibility=st.sampled_from(["public", "unlisted", "followers"]),
          noai=st.booleans())
    def receive_remote_post(self, user, visibility, noai):
        if user in self.gone:
            return
        self.remote_count += 1
        uri = f"https://{REMOTE_HOST}/users/{user}"
        to = {"public": [PUBLIC], "unlisted": [f"{uri}/followers"], "followers": [f"{uri}/followers"]}[visibility]
        cc = [PUBLIC] if visibility == "unlisted" else []
        obj = {"id": f"{uri}/notes/{self.remote_count}", "type": "Note", "attributedTo": uri,
               "content": f"<p>remote {self.remote_count}</p>", "to": to, "cc": cc,
               "published": self.ctx.clock.now_iso()}
        if noai:
            obj["@context"] = ["https://www.w3.org/ns/activitystreams", signals.actor_context_extension()]
            obj["xRobotsTag"] = "noai"
        author = self.run(actor_store.get_actor_by_uri(self.ctx.db.reader, uri))
        parsed, vis = parse_note(obj, followers_url=author.followers_url)

        self.run(remote_posts.save_remote_note(self.ctx, remote_posts.incoming_note(
            self.ctx, parsed, vis, author, [], excluded=remote_posts.author_excluded(obj))))
        self.posts.append(obj["id"])

    @rule(user=st.sampled_from(LOCAL_USERS), choice=st.sampled_from(["allow", "deny"]),
          scope=st.sampled_from(["future", "all"]), unlisted=st.booleans(),
          license=st.sampled_from(["CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0"]))
    def change_consent(self, user, choice, scope, unlisted, license):
        if user in self.gone:
            return
        self.run(consent.set_training_consent(self.ctx, user, choice, license=license, scope=scope,
                                              include_unlisted=unlisted))

    @rule(user=st.sampled_from(REMOTE_USERS), choice=st.sampled_from(["allow", "deny", "unset"]))
    def remote_consent_signal(self, user, choice):
        if user in self.gone:
            return
        self.run(self._remote_signal(user, choice))

    @precondition(lambda self: self.posts)
    @rule(data=st.data(), excluded=st.booleans())
    def toggle_exclusion(self, data, excluded):
        uri = data.draw(st.sampled_from(self.posts))
        post = self.run(post_store.get_post_by_uri(self.ctx.db.reader, uri))
        author = self.run(actor_store.get_actor(self.ctx.db.reader, post.actor_id))
        if post.is_local and not post.is_deleted and not author.deleted_at:
            self.run(posting.set_post_excluded(self.ctx, author.username, uri, excluded))

    @precondition(lambda self: self.posts)
    @rule(data=st.data())
    def edit_post(self, data):
        uri = data.draw(st.sampled_from(self.posts))
        post = self.run(post_store.get_post_by_uri(self.ctx.db.reader, uri))
        author = self.run(actor_store.get_actor(self.ctx.db.reader, post.actor_id))
        if post.is_local and not post.is_deleted and not author.deleted_at:
            self.run(posting.edit_post(self.ctx, author.username, uri, posting.Draft(text="edited text")))

    @precondition(lambda self: self.posts)
    @rule(data=st.data())
    def delete_post(self, data):
        uri = data.draw(st.sampled_from(self.posts))
        post = self.run(post_store.get_post_by_uri(self.ctx.db.reader, uri))
        author = self.run(actor_store.get_actor(self.ctx.db.reader, post.actor_id))
        if post.is_deleted:
            return
        if post.is_local and not author.deleted_at:
            self.run(posting.delete_post(self.ctx, author.username, uri))
        else:
            async def remote_delete():
                async with self.ctx.db.transaction() as tx:
                    await post_store.mark_post_deleted(tx, post.id, self.ctx.clock.now_iso())
            self.run(remote_delete())

    @rule(user=st.sampled_from(LOCAL_USERS + REMOTE_USERS))
    def account_gone(self, user):
        async def gone():
            actor = await actor_store.get_actor_by_handle(
                self.ctx.db.reader, user, REMOTE_HOST if user in REMOTE_USERS else self.ctx.urls.domain)
            if actor is not None:
                async with self.ctx.db.transaction() as tx:
                    await actor_store.mark_actor_deleted(tx, actor.id, self.ctx.clock.now_iso())
        self.run(gone())
        self.gone.add(user)

    @rule()
    def pull(self):
        """A researcher's pull: reconcile, read the change feed from the last cursor and the snapshot."""
        self.run(sync.reconcile(self.ctx))
        changes = self.run(corpus_store.changes_after(self.ctx.db.reader, self.cursor, 100_000))
        secret = self.run(sync.corpus_secret(self.ctx))

        async def snapshot():
            out = []
            async for batch in records.iter_records(self.ctx.db.reader, secret):
                out.extend(batch)
            return out
        snapshot_records = self.run(snapshot())
        now_present = {r["record_id"] for r in snapshot_records}
        # Every record that left since the last pull is announced as a removal with a reason.
        removed_in_feed = {c["record_id"] for c in changes if c["action"] == "removed"}
        for gone in self.present - now_present:
            assert gone in removed_in_feed, f"{gone} left the corpus without a removal record"
        assert all(c["reason"] for c in changes if c["action"] == "removed")
        for record in snapshot_records:
            self._assert_consented(record)
        if changes:
            self.cursor = changes[-1]["seq"]
        self.present = now_present

    def _assert_consented(self, record: dict) -> None:
        """The oracle, written from the rules as a person states them, not from the code."""
        async def facts():
            post = await post_store.get_post_by_uri(self.ctx.db.reader, record["post_url"])
            author = await actor_store.get_actor(self.ctx.db.reader, post.actor_id)
            choice = await consent.get_state(self.ctx, author.id)
            return post, author, choice
        post, author, choice = self.run(facts())
        assert choice.choice == "allow", f"{record['post_url']}: author has not consented ({choice.choice})"
        assert record["license"] == choice.license
        assert not post.is_deleted and not author.deleted_at and not post.corpus_excluded
        assert post.visibility == "public" or (post.visibility == "unlisted" and choice.include_unlisted), \
            f"{record['post_url']} is {post.visibility}"
        if choice.scope == "future":
            assert post.published_at >= choice.effective_from
        assert record["author_choices"] == {"train-ai": "allow"}
        assert "ann" not in json.dumps(record["author_id"])  # pseudonymous, never the handle

    @invariant()
    def consent_log_verifies(self):
        assert self.run(consent.verify_log(self.ctx)).ok


@pytest.fixture(autouse=True)
def _fast_keys(monkeypatch):
    # Key generation is irrelevant to consent; a fixed key keeps each example fast.
    monkeypatch.setattr(accounts, "generate_rsa_private_key_pem", lambda: _KEY)


TestConsentInvariant = ConsentMachine.TestCase
TestConsentInvariant.settings = settings(max_examples=15, stateful_step_count=30, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
