"""Posts, their mentions, hashtags, revisions, and tombstones of deleted remote objects.

The writes remote posts need also have a synchronous form (`..._sync`, taking a plain sqlite3
connection) for Database.write_batch, where the inbox worker stores a whole batch of delivered
posts in one thread hop; both forms run the same statements, written once below."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, fields

import aiosqlite

from fedserver.store.locks import lock_rows, lock_rows_sync
from fedserver.store.rows import fetch_all, fetch_one, fetch_value, from_row, from_rows


@dataclass
class Post:
    id: int
    uri: str
    url: str | None
    actor_id: int
    is_local: int
    object_type: str
    visibility: str
    content_html: str
    content_text: str
    source_text: str | None
    summary: str | None
    sensitive: int
    language: str | None
    in_reply_to_uri: str | None
    audience_json: str
    published_at: str
    edited_at: str | None
    deleted_at: str | None
    created_at: str
    updated_at: str
    corpus_excluded: int = 0

    @property
    def audience(self) -> dict[str, list[str]]:
        return json.loads(self.audience_json)

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass
class NewPost:
    id: int
    uri: str
    url: str | None
    actor_id: int
    is_local: bool
    object_type: str
    visibility: str
    content_html: str
    content_text: str
    source_text: str | None
    summary: str | None
    sensitive: bool
    language: str | None
    in_reply_to_uri: str | None
    audience: dict[str, list[str]]
    published_at: str
    corpus_excluded: bool = False

    def stored(self, now: str) -> Post:
        """The row as insert_post writes it (saves reading it back)."""
        return Post(id=self.id, uri=self.uri, url=self.url, actor_id=self.actor_id, is_local=int(self.is_local),
                    object_type=self.object_type, visibility=self.visibility, content_html=self.content_html,
                    content_text=self.content_text, source_text=self.source_text, summary=self.summary,
                    sensitive=int(self.sensitive), language=self.language, in_reply_to_uri=self.in_reply_to_uri,
                    audience_json=json.dumps(self.audience), published_at=self.published_at, edited_at=None,
                    deleted_at=None, created_at=now, updated_at=now, corpus_excluded=int(self.corpus_excluded))


_INSERT_POST = (
    "INSERT INTO posts (id, uri, url, actor_id, is_local, object_type, visibility, content_html,"
    " content_text, source_text, summary, sensitive, language, in_reply_to_uri, audience_json,"
    " published_at, created_at, updated_at, corpus_excluded)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")


def _insert_params(post: NewPost, now: str) -> tuple:
    return (post.id, post.uri, post.url, post.actor_id, int(post.is_local), post.object_type, post.visibility,
            post.content_html, post.content_text, post.source_text, post.summary, int(post.sensitive),
            post.language, post.in_reply_to_uri, json.dumps(post.audience), post.published_at, now, now,
            int(post.corpus_excluded))


# account_post_counts (migration 0160) follows every write below that adds a live post, takes one
# away (deletion) or moves it to another visibility (an edit), in the same transaction: an
# account's statuses_count is read from it, not counted from posts.
_COUNT_POST = (
    "INSERT INTO account_post_counts (actor_id, visibility, posts)"
    " SELECT actor_id, visibility, 1 FROM posts WHERE id = ? AND deleted_at IS NULL"
    " ON CONFLICT (actor_id, visibility) DO UPDATE SET posts = account_post_counts.posts + 1")
_UNCOUNT_POST = (
    "UPDATE account_post_counts SET posts = posts - 1 WHERE EXISTS (SELECT 1 FROM posts p WHERE p.id = ?"
    " AND p.deleted_at IS NULL AND p.actor_id = account_post_counts.actor_id"
    " AND p.visibility = account_post_counts.visibility)")


# tag_post_counts (migration 0180): live public posts per hashtag, what search shows beside each
# tag. A post's tags are counted after they are set and uncounted before they are replaced, before
# an edit (which may change the visibility; counted again after it) and before a deletion, in the
# same transaction: the counts read the post's tags and state as they are at that moment.
_COUNT_TAGS = (
    "INSERT INTO tag_post_counts (tag, posts)"
    " SELECT t.tag, 1 FROM post_tags t JOIN posts p ON p.id = t.post_id"
    " WHERE t.post_id = ? AND p.visibility = 'public' AND p.deleted_at IS NULL"
    " ON CONFLICT (tag) DO UPDATE SET posts = tag_post_counts.posts + 1")
_UNCOUNT_TAGS = (
    "UPDATE tag_post_counts SET posts = posts - 1 WHERE tag IN (SELECT t.tag FROM post_tags t"
    " JOIN posts p ON p.id = t.post_id WHERE t.post_id = ? AND p.visibility = 'public' AND p.deleted_at IS NULL)")

# The uncounting statements read the post's state (live? visibility? tags?) and then change the
# counts: two processes editing or deleting one post at once on PostgreSQL would both uncount what
# they read before the other committed (a decrement waiting for the counts row re-reads that row,
# not the post). Every write that uncounts locks the post's row first (store/locks.py).
_LOCK_POST = "SELECT id FROM posts WHERE id = ?"


async def insert_post(conn: aiosqlite.Connection, post: NewPost, now: str) -> bool:
    """Insert the post; False when its time-ordered id is already taken (the caller draws another)
    or its uri is (another process stored the same remote post a moment ago)."""
    cur = await conn.execute(_INSERT_POST, _insert_params(post, now))
    if cur.rowcount <= 0:
        return False
    await conn.execute(_COUNT_POST, (post.id,))
    return True


def insert_post_sync(conn: sqlite3.Connection, post: NewPost, now: str) -> bool:
    """insert_post, synchronous: for Database.write_batch."""
    if conn.execute(_INSERT_POST, _insert_params(post, now)).rowcount <= 0:
        return False
    conn.execute(_COUNT_POST, (post.id,))
    return True


_SAVE_REVISION = (
    "INSERT INTO post_revisions (post_id, content_html, summary, sensitive, revised_at)"
    " SELECT id, content_html, summary, sensitive, COALESCE(edited_at, published_at) FROM posts WHERE id = ?")
_UPDATE_CONTENT = (
    "UPDATE posts SET content_html = ?, content_text = ?, source_text = ?, summary = ?, sensitive = ?,"
    " language = ?, visibility = ?, audience_json = ?, edited_at = ?, updated_at = ? WHERE id = ?")


@dataclass(frozen=True)
class PostEdit:
    """The fields an edit replaces (update_post_content)."""
    content_html: str
    content_text: str
    source_text: str | None
    summary: str | None
    sensitive: bool
    language: str | None
    visibility: str
    audience: dict[str, list[str]]
    edited_at: str

    def params(self, post_id: int, now: str) -> tuple:
        return (self.content_html, self.content_text, self.source_text, self.summary, int(self.sensitive),
                self.language, self.visibility, json.dumps(self.audience), self.edited_at, now, post_id)


async def update_post_content(conn: aiosqlite.Connection, post_id: int, *, content_html: str, content_text: str,
                              source_text: str | None, summary: str | None, sensitive: bool,
                              language: str | None, visibility: str, audience: dict[str, list[str]],
                              edited_at: str, now: str) -> None:
    """Apply an edit, keeping the previous version in post_revisions."""
    edit = PostEdit(content_html=content_html, content_text=content_text, source_text=source_text,
                    summary=summary, sensitive=sensitive, language=language, visibility=visibility,
                    audience=audience, edited_at=edited_at)
    await lock_rows(conn, _LOCK_POST, (post_id,))
    await conn.execute(_SAVE_REVISION, (post_id,))
    await conn.execute(_UNCOUNT_POST, (post_id,))  # the edit may change its visibility
    await conn.execute(_UNCOUNT_TAGS, (post_id,))
    await conn.execute(_UPDATE_CONTENT, edit.params(post_id, now))
    await conn.execute(_COUNT_POST, (post_id,))
    await conn.execute(_COUNT_TAGS, (post_id,))


def update_post_content_sync(conn: sqlite3.Connection, post_id: int, edit: PostEdit, now: str) -> None:
    """update_post_content, synchronous: for Database.write_batch."""
    lock_rows_sync(conn, _LOCK_POST, (post_id,))
    conn.execute(_SAVE_REVISION, (post_id,))
    conn.execute(_UNCOUNT_POST, (post_id,))
    conn.execute(_UNCOUNT_TAGS, (post_id,))
    conn.execute(_UPDATE_CONTENT, edit.params(post_id, now))
    conn.execute(_COUNT_POST, (post_id,))
    conn.execute(_COUNT_TAGS, (post_id,))


async def lock_live_post(conn: aiosqlite.Connection, post_id: int) -> bool:
    """Hold the post's row for this transaction and say whether it is still live: what an edit
    checks before it writes (a deletion committed since the edit looked is seen here)."""
    await lock_rows(conn, _LOCK_POST, (post_id,))
    return await fetch_value(conn, "SELECT 1 FROM posts WHERE id = ? AND deleted_at IS NULL", (post_id,)) is not None


def lock_post_sync(conn: sqlite3.Connection, post_id: int) -> Post | None:
    """lock_live_post, synchronous (for Database.write_batch): the post as it is once locked."""
    lock_rows_sync(conn, _LOCK_POST, (post_id,))
    return get_post_sync(conn, post_id)


async def mark_post_deleted(conn: aiosqlite.Connection, post_id: int, now: str) -> bool:
    """Keep the row (so the id answers 410 and the corpus can emit a removal) but drop its content.
    False when it was deleted already (by another process a moment ago, too)."""
    await lock_rows(conn, _LOCK_POST, (post_id,))
    await conn.execute(_UNCOUNT_POST, (post_id,))  # only while it is live: deleting twice counts once
    await conn.execute(_UNCOUNT_TAGS, (post_id,))
    cur = await conn.execute(
        "UPDATE posts SET deleted_at = ?, updated_at = ?, content_html = '', content_text = '',"
        " source_text = NULL, summary = NULL WHERE id = ? AND deleted_at IS NULL", (now, now, post_id))
    if cur.rowcount <= 0:
        return False
    await conn.execute("DELETE FROM post_revisions WHERE post_id = ?", (post_id,))
    await conn.execute("DELETE FROM post_attachments WHERE post_id = ?", (post_id,))
    await conn.execute("DELETE FROM polls WHERE post_id = ?", (post_id,))
    return True


# The columns of Post in its field order: a plain sqlite3 row of them is Post(*row).
_POST_COLUMNS = ", ".join(f.name for f in fields(Post))
_POST_BY_ID = f"SELECT {_POST_COLUMNS} FROM posts WHERE id = ?"
_POST_BY_URI = f"SELECT {_POST_COLUMNS} FROM posts WHERE uri = ?"


async def get_post(conn: aiosqlite.Connection, post_id: int) -> Post | None:
    return from_row(Post, await fetch_one(conn, _POST_BY_ID, (post_id,)))


async def get_post_by_uri(conn: aiosqlite.Connection, uri: str) -> Post | None:
    return from_row(Post, await fetch_one(conn, _POST_BY_URI, (uri,)))


def get_post_sync(conn: sqlite3.Connection, post_id: int) -> Post | None:
    """get_post, synchronous: for Database.write_batch."""
    row = conn.execute(_POST_BY_ID, (post_id,)).fetchone()
    return None if row is None else Post(*row)


def get_post_by_uri_sync(conn: sqlite3.Connection, uri: str) -> Post | None:
    """get_post_by_uri, synchronous: for Database.write_batch."""
    row = conn.execute(_POST_BY_URI, (uri,)).fetchone()
    return None if row is None else Post(*row)


async def list_revisions(conn: aiosqlite.Connection, post_id: int) -> list[dict]:
    rows = await fetch_all(conn, "SELECT content_html, summary, sensitive, revised_at FROM post_revisions"
                                 " WHERE post_id = ? ORDER BY id", (post_id,))
    return [dict(row) for row in rows]


async def list_actor_posts(conn: aiosqlite.Connection, actor_id: int, *, visibilities: tuple[str, ...],
                           max_id: int | None = None, limit: int = 20) -> list[Post]:
    """An actor's live posts newest first, of the given visibilities, older than max_id."""
    placeholders = ", ".join("?" for _ in visibilities)
    params: list[object] = [actor_id, *visibilities]
    extra = ""
    if max_id is not None:
        extra = " AND id < ?"
        params.append(max_id)
    params.append(limit)
    rows = await fetch_all(
        conn, f"SELECT * FROM posts WHERE actor_id = ? AND deleted_at IS NULL AND visibility IN ({placeholders})"
              f"{extra} ORDER BY id DESC LIMIT ?", tuple(params))
    return from_rows(Post, rows)


async def count_actor_posts(conn: aiosqlite.Connection, actor_id: int, visibilities: tuple[str, ...]) -> int:
    placeholders = ", ".join("?" for _ in visibilities)
    return int(await fetch_value(
        conn, f"SELECT count(*) FROM posts WHERE actor_id = ? AND deleted_at IS NULL AND visibility IN ({placeholders})",
        (actor_id, *visibilities)) or 0)


async def count_local_posts(conn: aiosqlite.Connection) -> int:
    return int(await fetch_value(
        conn, "SELECT count(*) FROM posts WHERE is_local = 1 AND deleted_at IS NULL") or 0)


_DELETE_MENTIONS = "DELETE FROM post_mentions WHERE post_id = ?"
_INSERT_MENTION = "INSERT INTO post_mentions (post_id, actor_id) VALUES (?, ?) ON CONFLICT DO NOTHING"


async def set_mentions(conn: aiosqlite.Connection, post_id: int, actor_ids: list[int], *, new: bool = False) -> None:
    """Replace a post's mentions (new=True: a post just inserted has none to remove)."""
    if not new:
        await conn.execute(_DELETE_MENTIONS, (post_id,))
    if actor_ids:
        await conn.executemany(_INSERT_MENTION, [(post_id, actor_id) for actor_id in actor_ids])


def set_mentions_sync(conn: sqlite3.Connection, post_id: int, actor_ids: list[int], *, new: bool = False) -> None:
    """set_mentions, synchronous: for Database.write_batch."""
    if not new:
        conn.execute(_DELETE_MENTIONS, (post_id,))
    if actor_ids:
        conn.executemany(_INSERT_MENTION, [(post_id, actor_id) for actor_id in actor_ids])


async def list_mentioned_actor_ids(conn: aiosqlite.Connection, post_id: int) -> list[int]:
    rows = await fetch_all(conn, "SELECT actor_id FROM post_mentions WHERE post_id = ? ORDER BY actor_id",
                           (post_id,))
    return [row[0] for row in rows]


_DELETE_TAGS = "DELETE FROM post_tags WHERE post_id = ?"
_INSERT_TAG = "INSERT INTO post_tags (post_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING"


async def set_tags(conn: aiosqlite.Connection, post_id: int, tags: list[str], *, new: bool = False) -> None:
    if not new:
        await lock_rows(conn, _LOCK_POST, (post_id,))
        await conn.execute(_UNCOUNT_TAGS, (post_id,))
        await conn.execute(_DELETE_TAGS, (post_id,))
    if tags:
        await conn.executemany(_INSERT_TAG, [(post_id, tag) for tag in tags])
        await conn.execute(_COUNT_TAGS, (post_id,))


def set_tags_sync(conn: sqlite3.Connection, post_id: int, tags: list[str], *, new: bool = False) -> None:
    """set_tags, synchronous: for Database.write_batch."""
    if not new:
        lock_rows_sync(conn, _LOCK_POST, (post_id,))
        conn.execute(_UNCOUNT_TAGS, (post_id,))
        conn.execute(_DELETE_TAGS, (post_id,))
    if tags:
        conn.executemany(_INSERT_TAG, [(post_id, tag) for tag in tags])
        conn.execute(_COUNT_TAGS, (post_id,))


async def list_tags(conn: aiosqlite.Connection, post_id: int) -> list[str]:
    rows = await fetch_all(conn, "SELECT tag FROM post_tags WHERE post_id = ? ORDER BY tag", (post_id,))
    return [row[0] for row in rows]


async def add_tombstone(conn: aiosqlite.Connection, uri: str, now: str) -> None:
    await conn.execute("INSERT INTO tombstones (uri, deleted_at) VALUES (?, ?) ON CONFLICT (uri) DO NOTHING",
                       (uri, now))


async def is_tombstoned(conn: aiosqlite.Connection, uri: str) -> bool:
    return await fetch_value(conn, "SELECT 1 FROM tombstones WHERE uri = ?", (uri,)) is not None


_SET_CORPUS_EXCLUDED = "UPDATE posts SET corpus_excluded = ?, updated_at = ? WHERE id = ?"


async def set_corpus_excluded(conn: aiosqlite.Connection, post_id: int, excluded: bool, now: str) -> None:
    await conn.execute(_SET_CORPUS_EXCLUDED, (int(excluded), now, post_id))


def set_corpus_excluded_sync(conn: sqlite3.Connection, post_id: int, excluded: bool, now: str) -> None:
    """set_corpus_excluded, synchronous: for Database.write_batch."""
    conn.execute(_SET_CORPUS_EXCLUDED, (int(excluded), now, post_id))


async def list_live_post_ids_of_actor(conn: aiosqlite.Connection, actor_id: int) -> list[int]:
    rows = await fetch_all(conn, "SELECT id FROM posts WHERE actor_id = ? AND deleted_at IS NULL ORDER BY id",
                           (actor_id,))
    return [row[0] for row in rows]


# The hashtags' count rows (tag_post_counts) are shared by everyone's posts. A transaction that
# counts or uncounts the tags of several posts (a batch of Creates, an account's deletion) takes
# them post by post, in the posts' order: two such transactions on PostgreSQL, with #a then #b and
# #b then #a, would deadlock. Locking all of them first, in tag order (lock_rows), makes every such
# transaction take them in the same order. (A tag counted for the first time has no row to lock yet:
# its insert can still conflict, and the retry of fedserver/transaction_retry.py takes over.)
_LOCK_TAG_COUNTS_OF_ACTOR = (
    "SELECT tag FROM tag_post_counts WHERE tag IN (SELECT t.tag FROM post_tags t JOIN posts p ON p.id = t.post_id"
    " WHERE p.actor_id = ? AND p.deleted_at IS NULL)")


async def lock_tag_counts_of_actor(conn: aiosqlite.Connection, actor_id: int) -> None:
    """Before uncounting all of an actor's posts in one transaction (see above)."""
    await lock_rows(conn, _LOCK_TAG_COUNTS_OF_ACTOR, (actor_id,))


def lock_tag_counts_sync(conn: sqlite3.Connection, tags: list[str]) -> None:
    """Before counting the tags of several new posts in one transaction (see above)."""
    ordered = sorted(set(tags))
    for start in range(0, len(ordered), 500):  # (chunks in tag order too)
        chunk = ordered[start:start + 500]
        lock_rows_sync(conn, f"SELECT tag FROM tag_post_counts WHERE tag IN ({', '.join('?' for _ in chunk)})",
                       tuple(chunk))


async def existing_post_uris(conn: aiosqlite.Connection, uris: list[str]) -> set[str]:
    """Which of these post ids are stored (at most ~500 at a time: one parameter each)."""
    if not uris:
        return set()
    rows = await fetch_all(conn, f"SELECT uri FROM posts WHERE uri IN ({', '.join('?' for _ in uris)})", tuple(uris))
    return {row[0] for row in rows}


async def replied_uris(conn: aiosqlite.Connection, uris: list[str]) -> set[str]:
    """Which of these post uris any stored post replies to (robots.txt: a post page that shows
    replies is not its author's work alone). Uses the posts_in_reply_to index."""
    found: set[str] = set()
    for start in range(0, len(uris), 500):
        chunk = uris[start:start + 500]
        rows = await fetch_all(conn, "SELECT DISTINCT in_reply_to_uri FROM posts WHERE in_reply_to_uri IN"
                                     f" ({', '.join('?' for _ in chunk)})", tuple(chunk))
        found.update(row[0] for row in rows)
    return found


async def last_language(conn: aiosqlite.Connection, actor_id: int) -> str | None:
    """The language of the account's newest live post that declares one, among its newest 50 (an
    index range on posts_actor_id, bounded however many posts declare none)."""
    return await fetch_value(conn, "SELECT language FROM (SELECT id, language FROM posts WHERE actor_id = ?"
                                   " AND deleted_at IS NULL ORDER BY id DESC LIMIT 50) AS newest"
                                   " WHERE language IS NOT NULL ORDER BY id DESC LIMIT 1", (actor_id,))
