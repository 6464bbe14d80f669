"""Migration 0014: remote HTML stored before the bounds existed (and now shown as stored, never
cleaned again) is brought within them; everything else is left as it was."""
from __future__ import annotations

import html

from fedserver.activitypub.sanitize import MAX_STORED_HTML_CHARS, sanitize_html
from fedserver.db import MIGRATIONS_DIR, migrate, open_database
from tests import engines

THEN = "2026-01-01T00:00:00.000000Z"
# As the old code stored "<ol><li><h2>" * 16000: sanitized, balanced and enormous.
DEEP = "<p>before</p>" + "<ol><li><p><strong>" * 20000 + "x" + "</strong></p></li></ol>" * 20000
BIG_BIO = '<p><a href="https://x.example/" target="_blank" rel="nofollow noopener noreferrer">x</a></p>' * 3000


async def test_oversized_remote_html_stored_before_the_bounds_is_bounded_and_the_rest_kept(tmp_path):
    before = engines.copy_migrations_before(14, tmp_path / "before")
    async with open_database(engines.database_target(tmp_path / "db.sqlite3", migrated=False)) as db:
        await migrate(db, before)
        async with db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO actors (id, uri, username, domain, is_local, summary_html, created_at, updated_at,"
                " fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(1, "https://a.example/users/eve", "eve", "a.example", 0, BIG_BIO, THEN, THEN, THEN),
                 (2, "https://a.example/users/bob", "bob", "a.example", 0, "<p>hi</p>", THEN, THEN, THEN)])
            await tx.executemany(
                "INSERT INTO posts (id, uri, actor_id, is_local, visibility, content_html, content_text,"
                " published_at, created_at, updated_at) VALUES (?, ?, ?, 0, 'public', ?, ?, ?, ?, ?)",
                [(1, "https://a.example/notes/1", 1, DEEP, "before\n\nx & <y>", THEN, THEN, THEN),
                 (2, "https://a.example/notes/2", 2, "<p>fine</p>", "fine", THEN, THEN, THEN)])
        await migrate(db, MIGRATIONS_DIR)
        async with db.reader.execute("SELECT id, content_html, updated_at FROM posts ORDER BY id") as cur:
            posts = await cur.fetchall()
        async with db.reader.execute("SELECT id, summary_html, fetched_at FROM actors ORDER BY id") as cur:
            actors = await cur.fetchall()

    (_, bounded, updated_at), (_, fine, fine_updated_at) = posts
    assert bounded == f"<p>before<br><br>x &amp; {html.escape('<y>')}</p>"
    assert len(bounded) <= MAX_STORED_HTML_CHARS and sanitize_html(bounded) == bounded
    assert updated_at > THEN and len(updated_at) == len(THEN)  # the corpus sees the change
    assert (fine, fine_updated_at) == ("<p>fine</p>", THEN)
    assert [tuple(row) for row in actors] == [(1, "", None), (2, "<p>hi</p>", THEN)]  # eve: fetched again
