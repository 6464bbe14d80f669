"""Property tests of the consent invariant over random histories of accounts, posts, consent
changes, exclusions, edits, deletions and remote authors, run against the real services and a real
SQLite file: whatever happens, a pull contains only what its author consented to at that moment and
only posts addressed to the public, and every withdrawal reaches researchers as a removal.

Researchers pull (snapshots and the changes feed), acknowledge removals and let time pass: no
researcher who holds a removed record unconfirmed past the deadline ever receives a record, and each
person's consent page (who received their records, who confirmed which removal) matches the pull
log."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from fedserver.activitypub.keys import generate_rsa_private_key_pem
from fedserver.activitypub.notes import parse_note
from fedserver.activitypub.vocab import PUBLIC
from fedserver.app import close_context, open_context
from fedserver.clock import Clock, iso_from_epoch
from fedserver.corpus import records, signals, sync
from fedserver.services import accounts, consent, corpus_custody, posting, remote_posts, researchers
from fedserver.store import actors as actor_store
from fedserver.store import corpus as corpus_store
from fedserver.store import posts as post_store
from fedserver.store import researchers as researcher_store
from tests.conftest import loopback_settings

LOCAL_USERS = ("ann", "ben", "cat")
REMOTE_USERS = ("rita", "remo")
REMOTE_HOST = "remote.example"
_KEY = generate_rsa_private_key_pem()
RESEARCHERS = ("lab", "uni")
DAY = 86_400


class ShiftedClock(Clock):
    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


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
        base = loopback_settings(self.dir, 9)
        # Pulls here come faster than any researcher's; the rate limit is not what is tested.
        settings = dataclasses.replace(base, corpus=dataclasses.replace(base.corpus, rate_limit_per_minute=10**9))
        self.clock = ShiftedClock()
        self.ctx = self.run(open_context(settings, self.clock))
        # The pull log, as the researchers saw it: record id -> corpus cursors it was sent at;
        # records sent per author; the data cursor; the acknowledged cursor.
        self.sent: dict[str, dict[str, list[int]]] = {name: {} for name in RESEARCHERS}
        self.sent_per_author: dict[str, dict[int, int]] = {name: {} for name in RESEARCHERS}
        self.data_cursor = {name: 0 for name in RESEARCHERS}
        self.acked = {name: 0 for name in RESEARCHERS}
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
        # ann starts out consenting with two public posts, so that researchers have records to
        # hold and removals to owe within a short history.
        self.run(consent.set_training_consent(self.ctx, "ann", "allow", license="CC0-1.0", scope="all"))
        for _ in range(2):
            self.posts.append(self.run(posting.create_post(self.ctx, "ann", posting.Draft(text="ann's post"))).uri)
        for name in RESEARCHERS:
            async def add(name=name):
                researcher, _ = await researchers.add_researcher(self.ctx, name, organisation=f"{name} org",
                                                                 scrub=name == "uni")
                terms = researchers.current_terms(self.ctx, researcher)
                await researchers.accept_terms(self.ctx, researcher, version=terms.version, sha256=terms.sha256,
                                               accept=True)
            self.run(add())

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

    # --- researchers: pulls, acknowledgements, deadlines --------------------------------------

    async def _researcher(self, name: str):
        return await researcher_store.get_researcher_by_name(self.ctx.db.reader, name)

    def _removals(self) -> list[dict]:
        return self.run(self.ctx.db.reader.execute_fetchall(
            "SELECT c.seq, c.record_id, c.created_at, p.actor_id FROM corpus_changes c JOIN posts p ON p.id = c.post_id"
            " WHERE c.action = 'removed' ORDER BY c.seq"))

    def _exactly_owed(self, name: str, seq: int, record_id: str) -> bool:
        """Owed from the pull log alone: the record was sent to this researcher before its removal."""
        return any(cursor < seq for cursor in self.sent[name].get(record_id, ()))

    def _exactly_overdue(self, name: str) -> bool:
        cutoff = iso_from_epoch(self.clock.now() - self.ctx.settings.corpus.removal_deadline_days * DAY)
        return any(seq > self.acked[name] and created_at <= cutoff and self._exactly_owed(name, seq, record_id)
                   for seq, record_id, created_at, _ in self._removals())

    def _assert_refusal_justified(self, name: str, removal: dict) -> None:
        """Refused only for a removal past its deadline, unconfirmed, of an author whose records this
        researcher was sent (author granularity may refuse a little early, never late)."""
        cutoff = iso_from_epoch(self.clock.now() - self.ctx.settings.corpus.removal_deadline_days * DAY)
        assert removal["seq"] > self.acked[name] and removal["created_at"] <= cutoff
        actor = next(r[3] for r in self._removals() if r[0] == removal["seq"])
        assert self.sent_per_author[name].get(actor), "refused for a removal of an author never sent"

    def _actor_of_post(self, uri: str) -> int:
        return self.run(post_store.get_post_by_uri(self.ctx.db.reader, uri)).actor_id

    @rule(name=st.sampled_from(RESEARCHERS), kind=st.sampled_from(["snapshot", "changes"]))
    def researcher_pull(self, name, kind):
        """A researcher's pull through the API's own steps: the deadline gate, then records with
        their receipts in the pull log."""
        self.run(sync.reconcile(self.ctx))
        researcher = self.run(self._researcher(name))
        exactly_overdue = self._exactly_overdue(name)
        try:
            self.run(corpus_custody.require_removals_applied(self.ctx, researcher))
        except corpus_custody.RemovalsOverdue as refused:
            # Refused only for a removal past its deadline, unconfirmed, of an author whose records
            # this researcher was sent (author granularity may refuse a little early, never late).
            self._assert_refusal_justified(name, refused.removal)
            return
        assert not exactly_overdue, f"{name} holds a removed record past the deadline and was let through"
        pull_id = self.run(researchers.begin_pull(self.ctx, researcher, f"GET {kind}", ""))
        if kind == "snapshot":
            snapshot = self.run(researchers.open_snapshot(self.ctx, researcher))

            async def read():
                return [record async for batch in snapshot.batches for record in batch]
            sent = self.run(read())
            cursor, receipts = snapshot.cursor, dict(snapshot.tally.per_author)
        else:
            page = self.run(researchers.changes_since(self.ctx, self.data_cursor[name], 100_000, researcher))
            sent = [c["record"] for c in page.changes if c.get("record")]
            cursor, receipts = page.next_cursor, page.per_author
        self.run(researchers.finish_pull(self.ctx, pull_id, status=200, records=len(sent), researcher=researcher,
                                         receipts=receipts, receipt_seq=cursor))
        for record in sent:
            self.sent[name].setdefault(record["record_id"], []).append(cursor)
            actor = self._actor_of_post(record["post_url"])
            self.sent_per_author[name][actor] = self.sent_per_author[name].get(actor, 0) + 1
        self.data_cursor[name] = cursor

    @rule(name=st.sampled_from(RESEARCHERS))
    def researcher_acknowledges(self, name):
        """The researcher applied everything up to their data cursor and says so."""
        researcher = self.run(self._researcher(name))
        state = self.run(corpus_custody.acknowledge_cursor(self.ctx, researcher, self.data_cursor[name]))
        self.acked[name] = max(self.acked[name], self.data_cursor[name])
        assert state.cursor == self.acked[name]

    @rule(name=st.sampled_from(RESEARCHERS))
    def researcher_catches_up_on_removals(self, name):
        """A late researcher reads the removals (never refused), applies and confirms them."""
        self.run(sync.reconcile(self.ctx))
        page = self.run(corpus_custody.removals_after(self.ctx, self.acked[name], 1000))
        researcher = self.run(self._researcher(name))
        self.run(corpus_custody.acknowledge_cursor(self.ctx, researcher, page["next_cursor"]))
        self.acked[name] = max(self.acked[name], page["next_cursor"])

    @rule(days=st.sampled_from([10, 31]))
    def time_passes(self, days):
        # A running server reconciles every few seconds: what changed is in the feed (and its
        # removals' deadlines run) before days go by.
        self.run(sync.reconcile(self.ctx))
        self.clock.offset += days * DAY

    @invariant()
    def the_deadline_gate_follows_the_pull_log(self):
        """Checked after every step, not only when a pull happens to come: a researcher who holds
        a removed record unconfirmed past the deadline is refused; one who is refused owes a late
        removal of an author they were sent."""
        self.run(sync.reconcile(self.ctx))
        for name in RESEARCHERS:
            researcher = self.run(self._researcher(name))
            try:
                self.run(corpus_custody.require_removals_applied(self.ctx, researcher))
            except corpus_custody.RemovalsOverdue as refused:
                self._assert_refusal_justified(name, refused.removal)
                continue
            assert not self._exactly_overdue(name), f"{name} holds a removed record past the deadline"

    @invariant()
    def every_page_matches_the_pull_log(self):
        self.run(sync.reconcile(self.ctx))
        actors = self.run(self.ctx.db.reader.execute_fetchall("SELECT id FROM actors WHERE username != ''"))
        removals = {row[0]: row for row in self._removals()}
        for (actor_id,) in actors:
            custody = self.run(corpus_custody.where_my_posts_went(self.ctx, actor_id))
            received = {name: self.sent_per_author[name].get(actor_id, 0) for name in RESEARCHERS}
            assert {r.name: r.records for r in custody.recipients} == {n: c for n, c in received.items() if c}
            cutoff = iso_from_epoch(self.clock.now() - self.ctx.settings.corpus.removal_deadline_days * DAY)
            for group in custody.removals:
                named = set(group.confirmed) | set(group.overdue) | set(group.pending)
                assert named <= {n for n, c in received.items() if c}, "a researcher who got nothing of theirs"
                for name in RESEARCHERS:
                    owed = [seq for seq in group.seqs if self._exactly_owed(name, seq, removals[seq][1])]
                    if owed:
                        assert name in named, f"{name} received a removed record but is not listed"
                    if name in group.confirmed:
                        assert all(seq <= self.acked[name] for seq in owed)
                    late = [seq for seq in owed if seq > self.acked[name] and removals[seq][2] <= cutoff]
                    if late:
                        assert name in group.overdue, f"{name} is late on {late} but not shown overdue"

    @invariant()
    def consent_log_verifies(self):
        assert self.run(consent.verify_log(self.ctx)).ok


@pytest.fixture(autouse=True)
def _fast_keys(monkeypatch):
    # Key generation is irrelevant to consent; a fixed key keeps each example fast. So is the cost of
    # hashing each account's (generated) password: real Argon2 with cheap parameters, as in
    # tests/corpus (at the default cost, hashing was two thirds of this test's time).
    monkeypatch.setattr(accounts, "generate_rsa_private_key_pem", lambda: _KEY)
    monkeypatch.setattr(accounts, "hash_password", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash)


TestConsentInvariant = ConsentMachine.TestCase

TestConsentInvariant.settings = settings(max_examples=15, stateful_step_count=40, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
