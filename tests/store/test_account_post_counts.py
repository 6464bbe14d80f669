"""Migration 0160 and account_post_counts: posts stored before it are counted when it runs, and
every later write through the store (insert, a refused duplicate id, an edit that changes the
visibility, a deletion, deleting twice) keeps the counts equal to counting the live posts."""
from __future__ import annotations

import shutil

from fedserver.db import MIGRATIONS_DIR, migrate, migration_files, open_database
from fedserver.store import posts as post_store
from fedserver.store import timelines as timeline_store

THEN = "2026-01-01T00:00:00.000000Z"


def _new(post_id: int, actor_id: int, visibility: str) -> post_store.NewPost:
    return post_store.NewPost(id=post_id, uri=f"https://a.example/notes/{post_id}", url=None, actor_id=actor_id,
                              is_local=False, object_type="Note", visibility=visibility, content_html="<p>x</p>",
                              content_text="x", source_text=None, summary=None, sensitive=False, language=None,
                              in_reply_to_uri=None, audience={"to": [], "cc": []}, published_at=THEN)


async def _counted(db) -> dict[tuple[int, str], int]:
    return {(row[0], row[1]): row[2] for row in await db.reader.execute_fetchall(
        "SELECT actor_id, visibility, posts FROM account_post_counts WHERE posts != 0")}


async def _live(db) -> dict[tuple[int, str], int]:
    return {(row[0], row[1]): row[2] for row in await db.reader.execute_fetchall(
        "SELECT actor_id, visibility, count(*) FROM posts WHERE deleted_at IS NULL GROUP BY actor_id, visibility")}


async def test_counts_follow_every_write_of_posts_and_start_from_what_was_stored(tmp_path):
    before = tmp_path / "before"
    before.mkdir()
    for version, path in migration_files():
        if version < 160:
            shutil.copy(path, before / path.name)
    async with open_database(tmp_path / "db.sqlite3") as db:
        await migrate(db, before)
        async with db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO actors (id, uri, username, domain, created_at, updated_at)"
                " VALUES (?, ?, ?, 'a.example', ?, ?)",
                [(1, "https://a.example/users/ann", "ann", THEN, THEN), (2, "https://a.example/users/bo", "bo", THEN,
                                                                         THEN)])
            await tx.executemany(
                "INSERT INTO posts (id, uri, actor_id, visibility, content_text, published_at, created_at, updated_at,"
                " deleted_at) VALUES (?, ?, ?, ?, 'x', ?, ?, ?, ?)",
                [(1, "https://a.example/notes/1", 1, "public", THEN, THEN, THEN, None),
                 (2, "https://a.example/notes/2", 1, "followers", THEN, THEN, THEN, None),
                 (3, "https://a.example/notes/3", 1, "public", THEN, THEN, THEN, THEN),  # deleted: not counted
                 (4, "https://a.example/notes/4", 2, "unlisted", THEN, THEN, THEN, None)])
        await migrate(db, MIGRATIONS_DIR)
        assert await _counted(db) == await _live(db) == {(1, "public"): 1, (1, "followers"): 1, (2, "unlisted"): 1}

        async with db.transaction() as tx:
            assert await post_store.insert_post(tx, _new(5, 1, "public"), THEN)
            assert not await post_store.insert_post(tx, _new(5, 2, "public"), THEN)  # id taken: nothing counted
            await post_store.update_post_content(tx, 2, content_html="<p>y</p>", content_text="y", source_text=None,
                                                 summary=None, sensitive=False, language=None, visibility="public",
                                                 audience={"to": [], "cc": []}, edited_at=THEN, now=THEN)
            await post_store.mark_post_deleted(tx, 4, THEN)
            await post_store.mark_post_deleted(tx, 4, THEN)  # a second Delete of the same post
        await db.write_batch(lambda conn: post_store.insert_post_sync(conn, _new(6, 2, "direct"), THEN))
        assert await _counted(db) == await _live(db) == {(1, "public"): 3, (2, "direct"): 1}
        assert await timeline_store.profile_counts(db.reader, 1, ("public", "unlisted")) == (3, 0, 0)
        counts = await timeline_store.account_counts(db.reader, {1: ("public", "unlisted"), 2: ("public", "unlisted",
                                                                                                "followers")})
        assert (counts[1].posts, counts[2].posts, counts[2].last_status_at) == (3, 0, None)
