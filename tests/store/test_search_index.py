"""Migration 0060 and the full-text index: posts and accounts stored before it are indexed when it
runs, and every later write (insert, edit, deletion that blanks a post, removal) keeps the index in
step, so a search finds exactly the live text."""
from __future__ import annotations


from fedserver.db import MIGRATIONS_DIR, migrate, open_database
from fedserver.store import search as search_store
from tests import engines

THEN = "2026-01-01T00:00:00.000000Z"


async def _found(db, words: list[str], viewer_id: int = 1) -> list[int]:
    return [post.id for post in (await search_store.search_posts(db.reader, words, viewer_id=viewer_id)).posts]


async def test_posts_and_accounts_stored_before_the_migration_are_found_after_it(tmp_path):
    before = engines.copy_migrations_before(60, tmp_path / "before")
    async with open_database(engines.database_target(tmp_path / "db.sqlite3", migrated=False)) as db:
        await migrate(db, before)
        async with db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO actors (id, uri, username, domain, display_name, indexable, created_at, updated_at)"
                " VALUES (?, ?, ?, 'a.example', ?, ?, ?, ?)",
                [(1, "https://a.example/users/ann", "ann", "Ann Example", 1, THEN, THEN),
                 (2, "https://a.example/users/bo", "bo", "Bö Björk", 0, THEN, THEN)])
            await tx.executemany(
                "INSERT INTO posts (id, uri, actor_id, visibility, content_text, summary, published_at, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(10, "https://a.example/notes/10", 1, "public", "Old heron sighting", None, THEN, THEN, THEN),
                 (11, "https://a.example/notes/11", 1, "unlisted", "quiet", "heron behind a warning", THEN, THEN,
                  THEN),
                 (12, "https://a.example/notes/12", 2, "public", "heron by someone not indexable", None, THEN, THEN,
                  THEN)])
        await migrate(db, MIGRATIONS_DIR)

        assert await _found(db, ["heron"], viewer_id=99) == [11, 10]  # newest first; the CW counts
        assert await _found(db, ["heron"], viewer_id=2) == [12, 11, 10]  # bo finds his own too
        people = await search_store.search_accounts(db.reader, ["bjo"], viewer_id=99)
        assert [actor.username for actor in people] == ["bo"]  # by the start of a display-name word

        async with db.transaction() as tx:
            # An edit replaces the indexed words; blanking a deleted post removes them.
            await tx.execute("UPDATE posts SET content_text = 'Old egret sighting' WHERE id = 10")
            await tx.execute("UPDATE posts SET content_text = '', summary = NULL, deleted_at = ? WHERE id = 11",
                             (THEN,))
            await tx.execute("DELETE FROM posts WHERE id = 12")
            await tx.execute("UPDATE actors SET display_name = 'Ann Other' WHERE id = 1")
        assert await _found(db, ["heron"], viewer_id=2) == []
        assert await _found(db, ["egret"], viewer_id=99) == [10]
        assert await search_store.search_accounts(db.reader, ["example"], viewer_id=99) == []
        if engines.on_postgresql():
            return  # (an expression index cannot go out of step with its table: nothing to check)
        async with db.transaction() as tx:
            # Raises if an external-content index no longer matches its table.
            await tx.execute("INSERT INTO post_search (post_search, rank) VALUES ('integrity-check', 1)")
            await tx.execute("INSERT INTO actor_search (actor_search, rank) VALUES ('integrity-check', 1)")


async def test_a_page_looks_at_a_bounded_window_of_matches_and_says_where_to_go_on(tmp_path):
    async with open_database(engines.database_target(tmp_path / "db.sqlite3")) as db:
        await migrate(db)
        async with db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO actors (id, uri, username, domain, indexable, created_at, updated_at)"
                " VALUES (?, ?, ?, 'a.example', ?, ?, ?)",
                [(1, "https://a.example/users/ann", "ann", 1, THEN, THEN),
                 (2, "https://a.example/users/bo", "bo", 0, THEN, THEN)])
            # ann's (findable) post is older than five of bo's (not findable by others).
            await tx.executemany(
                "INSERT INTO posts (id, uri, actor_id, visibility, content_text, published_at, created_at,"
                " updated_at) VALUES (?, ?, ?, 'public', 'a lark sings', ?, ?, ?)",
                [(n, f"https://a.example/notes/{n}", 1 if n == 1 else 2, THEN, THEN, THEN) for n in range(1, 7)])
        first = await search_store.search_posts(db.reader, ["lark"], viewer_id=99, window=3)
        assert first.posts == [] and first.next_max_id == 4  # looked at 6, 5, 4 only
        second = await search_store.search_posts(db.reader, ["lark"], viewer_id=99, max_id=4, window=3)
        assert [post.id for post in second.posts] == [1] and second.next_max_id is None
        # A page that fills up continues after its last post.
        full = await search_store.search_posts(db.reader, ["lark"], viewer_id=2, limit=2, window=3)
        assert [post.id for post in full.posts] == [6, 5] and full.next_max_id == 5


async def test_a_short_first_look_goes_on_through_the_whole_window(tmp_path):
    """search_posts looks at FIRST_WINDOW matches first and at the whole window only when the page
    stays short there: the pages are the ones one look at the whole window gives."""
    async with open_database(tmp_path / "db.sqlite3") as db:
        await migrate(db)
        async with db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO actors (id, uri, username, domain, indexable, created_at, updated_at)"
                " VALUES (?, ?, ?, 'a.example', ?, ?, ?)",
                [(1, "https://a.example/users/ann", "ann", 1, THEN, THEN),
                 (2, "https://a.example/users/bo", "bo", 0, THEN, THEN)])
            hidden = search_store.FIRST_WINDOW + 50  # bo's, newer than ann's only post
            await tx.executemany(
                "INSERT INTO posts (id, uri, actor_id, visibility, content_text, published_at, created_at,"
                " updated_at) VALUES (?, ?, ?, 'public', 'a wren sings', ?, ?, ?)",
                [(n, f"https://a.example/notes/{n}", 1 if n == 1 else 2, THEN, THEN, THEN)
                 for n in range(1, hidden + 2)])
        found = await search_store.search_posts(db.reader, ["wren"], viewer_id=99)
        assert [post.id for post in found.posts] == [1] and found.next_max_id is None
        # bo himself finds a full page of his own within the first look.
        own = await search_store.search_posts(db.reader, ["wren"], viewer_id=2, limit=5)
        assert [post.id for post in own.posts] == list(range(hidden + 1, hidden - 4, -1))
        assert own.next_max_id == hidden - 3
