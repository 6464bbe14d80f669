"""Several processes writing one PostgreSQL database at once (issue 15: web processes and workers on
any number of machines): each "process" here is a Database of its own on the same database, with its
own write lock and connections, so their transactions really run at the same time, at READ
COMMITTED, as two `fedserver` processes' do. Each test races the same path from both, many times,
and checks what a person would see: counts equal to what is there, one vote, one account, no error.

PostgreSQL only: on SQLite every write transaction (BEGIN IMMEDIATE) excludes all others, in any
process, so none of these paths can interleave there."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import AsyncIterator

from fedserver.activitypub.notes import parse_note
from fedserver.clock import SYSTEM_CLOCK
from fedserver.context import Context, close_context, open_context
from fedserver.db import database_from_settings, open_database
from fedserver.services import accounts, polls, posting, remote_posts
from fedserver.services.accounts import AccountError
from fedserver.services.posting import Draft, PollDraft
from fedserver.store import actors as actor_store
from fedserver.store import posts as post_store
from tests import engines
from tests.conftest import free_port, loopback_settings
from tests.store.test_actors_batch import profile

pytestmark = engines.postgresql_only

THEN = "2026-01-01T00:00:00.000000Z"
ROUNDS = 30


def _settings(tmp_path):
    """A test instance's settings on a PostgreSQL database of its own (whatever --engine says)."""
    settings = loopback_settings(tmp_path, free_port())
    return replace(settings, database=replace(settings.database, url=engines.fresh_postgres_url()))


@asynccontextmanager
async def two_processes(tmp_path) -> AsyncIterator[tuple[Context, Context]]:
    """Two contexts on one database, as two `fedserver` processes have (the second opens its own
    Database: its own write lock and pool)."""
    settings = _settings(tmp_path)
    first = await open_context(settings)
    second_db = database_from_settings(settings)
    await second_db.open()
    second = Context(settings=settings, db=second_db, clock=SYSTEM_CLOCK)
    try:
        yield first, second
    finally:
        await close_context(second)
        await close_context(first)


def _new_post(post_id: int) -> post_store.NewPost:
    return post_store.NewPost(id=post_id, uri=f"https://a.example/notes/{post_id}", url=None, actor_id=1,
                              is_local=False, object_type="Note", visibility="public", content_html="<p>x</p>",
                              content_text="x", source_text=None, summary=None, sensitive=False, language=None,
                              in_reply_to_uri=None, audience={"to": [], "cc": []}, published_at=THEN)


async def remote_author(ctx: Context, name: str):
    """A remote actor stored here (the author of the posts two processes then race on)."""
    async with ctx.db.transaction() as tx:
        author_id = await actor_store.upsert_remote_actor(
            tx, uri=f"https://remote.example/users/{name}", now=THEN, **profile(name))
    author = await actor_store.get_actor(ctx.db.reader, author_id)
    assert author is not None
    return author


async def _rows(db, sql: str) -> dict:
    return {tuple(row[:-1]): row[-1] for row in await db.reader.execute_fetchall(sql)}


async def test_a_post_edited_and_deleted_by_two_processes_at_once_keeps_the_counts_people_see():
    url = engines.fresh_postgres_url()
    async with open_database(url) as first, open_database(url) as second:
        async with first.transaction() as tx:
            await tx.execute("INSERT INTO actors (id, uri, username, domain, created_at, updated_at)"
                             " VALUES (1, 'https://a.example/users/ann', 'ann', 'a.example', ?, ?)", (THEN, THEN))
            for post_id in range(1, 2 * ROUNDS + 1):
                assert await post_store.insert_post(tx, _new_post(post_id), THEN)
                await post_store.set_tags(tx, post_id, ["cats", "dogs"], new=True)

        async def delete(db, post_id: int) -> None:
            async with db.transaction() as tx:
                await post_store.mark_post_deleted(tx, post_id, THEN)

        async def edit(db, post_id: int) -> None:
            # Public -> unlisted: the post leaves the public count and the tags' counts.
            async with db.transaction() as tx:
                await post_store.update_post_content(
                    tx, post_id, content_html="<p>y</p>", content_text="y", source_text=None, summary=None,
                    sensitive=False, language=None, visibility="unlisted", audience={"to": [], "cc": []},
                    edited_at=THEN, now=THEN)

        # The same post from both processes at the same moment: a double click on Delete or Save
        # reaching two web processes, or a moderator's and the author's deletion.
        jobs = []
        for post_id in range(1, ROUNDS + 1):
            jobs += [delete(first, post_id), delete(second, post_id)]
        for post_id in range(ROUNDS + 1, 2 * ROUNDS + 1):
            jobs += [edit(first, post_id), edit(second, post_id)]
        await asyncio.gather(*jobs)

        # statuses_count (account_post_counts) and the hashtags' post counts on search
        # (tag_post_counts) equal what is stored: ROUNDS unlisted posts, nothing public.
        counted = await _rows(first, "SELECT actor_id, visibility, posts FROM account_post_counts WHERE posts != 0")
        assert counted == {(1, "unlisted"): ROUNDS}
        tags = await _rows(first, "SELECT tag, posts FROM tag_post_counts")
        assert tags == {("cats",): 0, ("dogs",): 0}


async def test_one_person_voting_twice_at_once_through_two_processes_is_counted_once(tmp_path, fast_accounts):
    async with two_processes(tmp_path) as (first, second):
        await accounts.create_account(first, "alice", password="password1")
        await accounts.create_account(first, "bob", password="password1")
        posts = [await posting.create_post(first, "alice", Draft(
            text=f"poll {n}", poll=PollDraft(options=("yes", "no"), expires_in=3600))) for n in range(ROUNDS)]

        async def vote(ctx: Context, post, choice: int) -> bool:
            try:
                await polls.vote(ctx, "bob", post, [choice])
            except polls.VoteError:
                return False
            return True

        # Two tabs: "yes" in one, "no" in the other, sent at once to two web processes.
        outcomes = await asyncio.gather(*(vote(ctx, post, choice) for post in posts
                                          for ctx, choice in ((first, 0), (second, 1))))
        assert sum(outcomes) == ROUNDS  # one of each pair was told it had voted already
        shown = await polls_service_counts(first, [post.id for post in posts])
        assert all(voters == 1 and votes == 1 for voters, votes in shown.values()), shown
        stored = await first.db.reader.execute_fetchall(
            "SELECT post_id, count(*) FROM poll_votes GROUP BY post_id HAVING count(*) != 1")
        assert stored == []


async def polls_service_counts(ctx: Context, post_ids: list[int]) -> dict[int, tuple[int, int]]:
    from fedserver.store import polls as poll_store

    found = await poll_store.polls_for(ctx.db.reader, post_ids)
    return {post_id: (poll.voters or 0, poll.total_votes) for post_id, poll in found.items()}


async def test_one_name_signed_up_in_two_processes_at_once_makes_one_account_and_a_clear_refusal(
        tmp_path, fast_accounts):
    async with two_processes(tmp_path) as (first, second):
        async def sign_up(ctx: Context, name: str) -> str:
            try:
                await accounts.create_account(ctx, name, password="password1")
            except AccountError as exc:
                return str(exc)
            return "created"

        outcomes = await asyncio.gather(*(sign_up(ctx, f"name{n}") for n in range(ROUNDS // 2)
                                          for ctx in (first, second)))
        assert outcomes.count("created") == ROUNDS // 2
        assert all(o == "created" or "is taken" in o for o in outcomes), outcomes
        assert await first.db.reader.execute_fetchall(
            "SELECT count(*) FROM local_accounts WHERE username LIKE 'name%'") == [(ROUNDS // 2,)]


async def test_every_process_of_a_new_instance_starting_at_once_finds_one_instance_actor(tmp_path, monkeypatch):
    key = accounts.generate_rsa_private_key_pem()
    monkeypatch.setattr(accounts, "generate_rsa_private_key_pem", lambda: key)  # no time between them
    for attempt in range(5):
        # Two web processes and two workers started together on a new, migrated database.
        settings = _settings(tmp_path / str(attempt))
        handles = [database_from_settings(settings) for _ in range(4)]
        for db in handles:
            await db.open()
        try:
            contexts = [Context(settings=settings, db=db, clock=SYSTEM_CLOCK) for db in handles]
            found = await asyncio.gather(*(accounts.ensure_instance_actor(ctx) for ctx in contexts))
            assert len({actor.id for actor, _ in found}) == 1
        finally:
            for db in handles:
                await db.close()


async def test_one_new_remote_actor_stored_by_two_processes_at_once_is_one_row_and_no_error():
    url = engines.fresh_postgres_url()
    uris = [f"https://remote.example/users/u{n}" for n in range(ROUNDS)]
    async with open_database(url) as first, open_database(url) as second:
        async def store(db, uri: str) -> int:
            # As services/remote_actors.store_document: the actor's first activities reached two
            # web processes, each fetched the document and stores it.
            async with db.transaction() as tx:
                return await actor_store.upsert_remote_actor(tx, uri=uri, now=THEN, **profile(uri[-3:]))

        def store_batch(conn, uri: str) -> int:
            # As services/actor_writer (the first-contact group commit).
            existing = actor_store.actor_id_by_uri_sync(conn, uri)
            return actor_store.upsert_remote_actor_sync(conn, uri=uri, now=THEN, existing=existing,
                                                        profile=profile(uri[-3:]))

        ids = await asyncio.gather(*(job for uri in uris for job in (
            store(first, uri), second.write_batch(lambda conn, uri=uri: store_batch(conn, uri)))))
        assert [ids[i] == ids[i + 1] for i in range(0, len(ids), 2)] == [True] * ROUNDS
        assert await first.reader.execute_fetchall(
            "SELECT count(*) FROM actors WHERE uri LIKE 'https://remote.example/%'") == [(ROUNDS,)]


async def test_one_remote_post_stored_by_two_inbox_workers_at_once_is_one_post_and_no_error(tmp_path):
    async with two_processes(tmp_path) as (first, second):
        author = await remote_author(first, "pop")

        async def store(ctx: Context, n: int) -> bool:
            # Two workers applying boosts of one post by two signers: each fetched it and stores it.
            obj = {"id": f"https://remote.example/notes/{n}", "type": "Note", "attributedTo": author.uri,
                   "content": "<p>popular #cats</p>", "published": "2026-01-01T00:00:00Z",
                   "to": ["https://www.w3.org/ns/activitystreams#Public"],
                   "tag": [{"type": "Hashtag", "name": "#cats"}]}
            parsed, visibility = parse_note(obj, followers_url=author.followers_url)
            note = remote_posts.incoming_note(ctx, parsed, visibility, author, [])
            _, created = await remote_posts.save_remote_note(ctx, note)
            return created

        created = await asyncio.gather(*(store(ctx, n) for n in range(ROUNDS) for ctx in (first, second)))
        assert [created[i] + created[i + 1] for i in range(0, len(created), 2)] == [1] * ROUNDS
        db = first.db
        assert await db.reader.execute_fetchall(
            "SELECT count(*) FROM posts WHERE uri LIKE 'https://remote.example/notes/%'") == [(ROUNDS,)]
        assert await db.reader.execute_fetchall(
            "SELECT posts FROM account_post_counts WHERE actor_id = ?", (author.id,)) == [(ROUNDS,)]
        assert await db.reader.execute_fetchall("SELECT posts FROM tag_post_counts WHERE tag = 'cats'") == [(ROUNDS,)]



async def test_one_remote_choice_seen_by_two_processes_at_once_is_logged_once_and_the_log_verifies(tmp_path):
    from fedserver.corpus.signals import X_ROBOTS_TAG_IRI
    from fedserver.services import consent

    async with two_processes(tmp_path) as (first, second):
        async with first.db.transaction() as tx:
            ids = [await actor_store.upsert_remote_actor(tx, uri=f"https://remote.example/users/c{n}", now=THEN,
                                                         **profile(f"c{n}")) for n in range(ROUNDS)]
        actors = [await actor_store.get_actor(first.db.reader, actor_id) for actor_id in ids]

        async def seen(ctx: Context, actor) -> None:
            # Its document (saying "no AI training") refreshed by two processes at once.
            document = {"id": actor.uri, "type": "Person", X_ROBOTS_TAG_IRI: "noai"}
            async with ctx.db.transaction() as tx:
                await consent.apply_remote_signal(ctx, tx, actor, document)

        await asyncio.gather(*(seen(ctx, actor) for actor in actors for ctx in (first, second)))
        logged = await first.db.reader.execute_fetchall(
            "SELECT actor_id, count(*) FROM consent_events GROUP BY actor_id ORDER BY actor_id")
        assert logged == [(actor_id, 1) for actor_id in sorted(ids)]
        verified = await consent.verify_log(first)
        assert verified.ok and verified.events == ROUNDS, verified


async def test_a_follow_clicked_twice_through_two_processes_notifies_once(tmp_path, fast_accounts):
    from fedserver.services import follows

    async with two_processes(tmp_path) as (first, second):
        await accounts.create_account(first, "alice", password="password1")
        fans = [f"fan{n}" for n in range(10)]
        for fan in fans:
            await accounts.create_account(first, fan, password="password1")
        alice = f"@alice@{first.settings.instance.domain}"
        await asyncio.gather(*(follows.follow(ctx, fan, alice) for fan in fans for ctx in (first, second)))
        notified = await first.db.reader.execute_fetchall(
            "SELECT from_actor_id, count(*) FROM notifications n JOIN local_accounts l ON l.actor_id = n.recipient_id"
            " WHERE l.username = 'alice' GROUP BY from_actor_id HAVING count(*) != 1")
        assert notified == []
        assert await first.db.reader.execute_fetchall(
            "SELECT count(*) FROM notifications n JOIN local_accounts l ON l.actor_id = n.recipient_id"
            " WHERE l.username = 'alice'") == [(len(fans),)]


async def test_an_undo_clicked_twice_through_two_processes_is_sent_once_and_the_second_click_is_told(
        tmp_path, fast_accounts):
    from fedserver.services import follows, interactions

    async with two_processes(tmp_path) as (first, second):
        await accounts.create_account(first, "bob", password="password1")
        now = first.clock.now_iso()  # (fresh: the cached remote actors are not fetched again)
        async with first.db.transaction() as tx:
            for n in range(10):
                await actor_store.upsert_remote_actor(tx, uri=f"https://remote.example/users/p{n}", now=now,
                                                      **profile(f"p{n}"))
        remote = [await actor_store.get_actor_by_uri(first.db.reader, f"https://remote.example/users/p{n}")
                  for n in range(10)]
        post_uris = []
        for n, author in enumerate(remote):
            obj = {"id": f"https://remote.example/notes/{n}", "type": "Note", "attributedTo": author.uri,
                   "content": "<p>hello</p>", "published": "2026-01-01T00:00:00Z",
                   "to": ["https://www.w3.org/ns/activitystreams#Public"]}
            parsed, visibility = parse_note(obj, followers_url=author.followers_url)
            await remote_posts.save_remote_note(first, remote_posts.incoming_note(first, parsed, visibility, author, []))
            post_uris.append(obj["id"])
            await interactions.like(first, "bob", obj["id"])
            await interactions.boost(first, "bob", obj["id"])
            await follows.follow(first, "bob", f"@p{n}@remote.example")

        async def attempt(undo) -> str:
            try:
                await undo
            except (interactions.InteractionError, follows.FollowError):
                return "refused"
            return "done"

        jobs = []
        for n, uri in enumerate(post_uris):
            for ctx in (first, second):
                jobs += [attempt(interactions.unlike(ctx, "bob", uri)), attempt(interactions.unboost(ctx, "bob", uri)),
                         attempt(follows.unfollow(ctx, "bob", f"@p{n}@remote.example"))]
        outcomes = await asyncio.gather(*jobs)
        assert outcomes.count("done") == outcomes.count("refused") == 30
        undos = await first.db.reader.execute_fetchall(
            "SELECT count(*), count(DISTINCT object_uri) FROM outbound_activities WHERE activity_type = 'Undo'")
        assert undos == [(30, 30)]
        left = await first.db.reader.execute_fetchall(
            "SELECT (SELECT count(*) FROM likes) + (SELECT count(*) FROM announces) + (SELECT count(*) FROM follows)")
        assert left == [(0,)]


async def test_pins_made_through_two_processes_at_once_stay_within_the_limit(tmp_path, fast_accounts):
    from fedserver.services import pins

    async with two_processes(tmp_path) as (first, second):
        await accounts.create_account(first, "alice", password="password1")
        for round_ in range(5):
            made = [await posting.create_post(first, "alice", Draft(text=f"post {round_}.{n}"))
                    for n in range(pins.MAX_PINS + 1)]
            for post in made[:pins.MAX_PINS - 1]:
                await pins.pin(first, "alice", post)

            async def pin(ctx: Context, post) -> None:
                try:
                    await pins.pin(ctx, "alice", post)
                except pins.PinError:
                    pass

            # One place left: the last two posts pinned at once through two processes.
            await asyncio.gather(pin(first, made[-2]), pin(second, made[-1]))
            assert await first.db.reader.execute_fetchall("SELECT count(*) FROM pinned_posts") == [(pins.MAX_PINS,)]
            for post in made:
                await pins.unpin(first, "alice", post)


async def test_one_corpus_state_released_by_two_processes_at_once_is_one_release_and_no_error():
    from fedserver.corpus.manifest import ReleaseError, ReleasePlan, record_release

    url = engines.fresh_postgres_url()
    async with open_database(url) as first, open_database(url) as second:
        async def release(db, seq: int) -> None:
            plan = ReleasePlan(version=f"1.{seq}.0", seq=seq, created_at=THEN, previous_version=None, previous_seq=0,
                               is_new=True, removes_records=False)
            try:
                async with db.transaction() as tx:
                    await record_release(tx, plan, 0, THEN)
            except ReleaseError:
                pass  # a later state was released meanwhile: the clear refusal, "export again"

        # Each state exported twice at once (two researchers' pulls reaching two web processes).
        await asyncio.gather(*(release(db, seq) for seq in range(1, ROUNDS + 1) for db in (first, second)))
        assert await first.reader.execute_fetchall("SELECT count(*) FROM corpus_releases") == [(ROUNDS,)]


async def test_sign_in_attempts_reaching_two_processes_at_once_get_no_more_free_tries(tmp_path):
    from fedserver.services import throttles

    async with two_processes(tmp_path) as (first, second):
        clients = [f"203.0.113.{n}" for n in range(1, 21)]

        async def attempt(ctx: Context, client: str) -> bool:
            try:
                await throttles.begin_sign_in(ctx, f"target-of-{client}", client)
            except throttles.Throttled:
                return False
            return True  # let through to the password check (and counted as failed until it succeeds)

        # A guesser firing at once from each address through both web processes.
        let_through = await asyncio.gather(*(attempt(ctx, client) for client in clients for _ in range(6)
                                             for ctx in (first, second)))
        per_client = [sum(let_through[i:i + 12]) for i in range(0, len(let_through), 12)]
        assert per_client == [throttles.FREE_FAILURES_PER_CLIENT] * len(clients)


async def test_researcher_pulls_reaching_two_processes_at_once_stay_within_the_rate_limit(tmp_path):
    from fedserver.services import researchers
    from fedserver.store import researchers as researcher_store

    async with two_processes(tmp_path) as (first, second):
        async with first.db.transaction() as tx:
            ids = [await researcher_store.insert_researcher(tx, name=f"lab{n}", token_hash=f"h{n}", contact="x",
                                                            now=THEN) for n in range(10)]
        labs = [await researcher_store.get_researcher_by_name(first.db.reader, f"lab{n}") for n in range(10)]
        limit = first.settings.corpus.rate_limit_per_minute

        async def pull(ctx: Context, lab) -> bool:
            try:
                await researchers.begin_pull(ctx, lab, "/api/corpus/v1/records", "")
            except researchers.RateLimited:
                return False
            return True

        # Each lab's client fires its pulls at once, spread over both web processes.
        served = await asyncio.gather(*(pull(ctx, lab) for lab in labs for _ in range(limit // 2 + 3)
                                        for ctx in (first, second)))
        per_lab = [sum(served[i:i + limit + 6]) for i in range(0, len(served), limit + 6)]
        assert per_lab == [limit] * len(ids)


async def test_archive_downloads_started_through_two_processes_at_once_stay_within_the_daily_limit(
        tmp_path, fast_accounts):
    from fedserver.services import archive

    async with two_processes(tmp_path) as (first, second):
        limit = first.settings.server.archive_downloads_per_day
        names = [f"reader{n}" for n in range(10)]
        for name in names:
            await accounts.create_account(first, name, password="password1")

        async def download(ctx: Context, name: str) -> bool:
            try:
                await archive.start_download(ctx, name)
            except archive.ArchiveLimited:
                return False
            return True

        started = await asyncio.gather(*(download(ctx, name) for name in names for _ in range(limit + 1)
                                         for ctx in (first, second)))
        per_account = [sum(started[i:i + 2 * (limit + 1)]) for i in range(0, len(started), 2 * (limit + 1))]
        assert per_account == [limit] * len(names)


async def test_the_corpus_reconciled_by_two_processes_at_once_lists_each_post_once_under_one_id(
        tmp_path, fast_accounts):
    from fedserver.corpus import sync
    from fedserver.services import consent

    async with two_processes(tmp_path) as (first, second):
        await accounts.create_account(first, "alice", password="password1")
        await consent.set_training_consent(first, "alice", "allow", license="CC-BY-4.0", scope="all")
        for n in range(ROUNDS):
            await posting.create_post(first, "alice", Draft(text=f"for the corpus {n}"))
        # The first researcher pulls, reaching both web processes at once: each reconciles first
        # (and makes the key of the pseudonymous ids, which neither had yet).
        await asyncio.gather(sync.reconcile(first), sync.reconcile(second))
        feed = await first.db.reader.execute_fetchall(
            "SELECT post_id, count(*), count(DISTINCT record_id) FROM corpus_changes GROUP BY post_id")
        assert len(feed) == ROUNDS and all(tuple(row[1:]) == (1, 1) for row in feed), feed
        secret = await sync.corpus_secret(first)
        records = await first.db.reader.execute_fetchall(
            "SELECT r.record_id, p.uri FROM corpus_records r JOIN posts p ON p.id = r.post_id")
        assert all(record_id == sync.pseudonym(secret, "record", uri) for record_id, uri in records)


async def test_a_post_edited_while_another_process_deletes_it_stays_deleted_and_empty(tmp_path, fast_accounts):
    async with two_processes(tmp_path) as (first, second):
        await accounts.create_account(first, "alice", password="password1")
        made = [await posting.create_post(first, "alice", Draft(text=f"soon gone {n}")) for n in range(ROUNDS)]

        async def edit(ctx: Context, uri: str) -> None:
            try:
                await posting.edit_post(ctx, "alice", uri, Draft(text="edited back to life"))
            except posting.PostingError:
                pass  # "already deleted": the clear refusal

        # Delete in one tab, Save of an edit in another, reaching two processes.
        await asyncio.gather(*(job for post in made for job in (
            posting.delete_post(first, "alice", post.uri), edit(second, post.uri))))
        left = await first.db.reader.execute_fetchall(
            "SELECT count(*) FROM posts WHERE actor_id = ? AND (deleted_at IS NULL OR content_html != '')",
            (made[0].actor_id,))
        assert left == [(0,)]
        # (and no Update of a post goes out after its Delete)
        late = await first.db.reader.execute_fetchall(
            "SELECT count(*) FROM outbound_activities u JOIN outbound_activities d ON d.object_uri = u.object_uri"
            " AND d.activity_type = 'Delete' WHERE u.activity_type = 'Update' AND u.id > d.id")
        assert late == [(0,)]


async def test_a_remote_edit_applied_while_another_process_deletes_the_post_leaves_it_deleted_and_empty(tmp_path):
    async with two_processes(tmp_path) as (first, second):
        author = await remote_author(first, "ed")

        def note(n: int, updated: str | None = None):
            obj = {"id": f"https://remote.example/notes/{n}", "type": "Note", "attributedTo": author.uri,
                   "content": "<p>edited</p>" if updated else "<p>first</p>", "published": "2026-01-01T00:00:00Z",
                   "to": ["https://www.w3.org/ns/activitystreams#Public"], **({"updated": updated} if updated else {})}
            parsed, visibility = parse_note(obj, followers_url=author.followers_url)
            return remote_posts.incoming_note(first, parsed, visibility, author, [])

        stored = [(await remote_posts.save_remote_note(first, note(n)))[0] for n in range(ROUNDS)]

        async def moderate(post) -> None:  # a moderator removes it here
            async with first.db.transaction() as tx:
                await post_store.mark_post_deleted(tx, post.id, THEN)

        # ...while an inbox worker in another process applies its author's Update.
        await asyncio.gather(*(job for n, post in enumerate(stored) for job in (
            moderate(post), remote_posts.save_remote_edit(second, note(n, "2026-01-01T00:05:00Z")))))
        left = await first.db.reader.execute_fetchall(
            "SELECT count(*) FROM posts WHERE actor_id = ? AND (deleted_at IS NULL OR content_html != '')",
            (author.id,))
        assert left == [(0,)]


async def test_a_delete_clicked_twice_through_two_processes_sends_one_delete_and_tells_the_second(
        tmp_path, fast_accounts):
    async with two_processes(tmp_path) as (first, second):
        await accounts.create_account(first, "alice", password="password1")
        made = [await posting.create_post(first, "alice", Draft(text=f"deleted twice {n}")) for n in range(ROUNDS)]

        async def delete(ctx: Context, uri: str) -> str:
            try:
                await posting.delete_post(ctx, "alice", uri)
            except posting.PostingError as exc:
                return str(exc)
            return "deleted"

        outcomes = await asyncio.gather(*(delete(ctx, post.uri) for post in made for ctx in (first, second)))
        assert outcomes.count("deleted") == ROUNDS
        assert all(o == "deleted" or "already deleted" in o for o in outcomes), outcomes
        assert await first.db.reader.execute_fetchall(
            "SELECT count(*), count(DISTINCT object_uri) FROM outbound_activities WHERE activity_type = 'Delete'"
        ) == [(ROUNDS, ROUNDS)]
