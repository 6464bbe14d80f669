-- Issue 16, "every day": bookmarks (an index), pinned posts and the choice to hide one's follower lists.

-- Bookmarks: the table is 0032_bookmarks.sql (the client API's); the web pages use it too.
-- Deleting a post (ON DELETE CASCADE) finds its bookmarks.
CREATE INDEX bookmarks_post ON bookmarks (post_id);

-- An account's pinned posts (its featured collection, Mastodon's toot:featured): a local person's
-- own pins, and for a remote account the posts its featured collection listed when last fetched.
CREATE TABLE pinned_posts (
    id INTEGER PRIMARY KEY,
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    UNIQUE (actor_id, post_id)
);
-- pins.pinned_posts: WHERE actor_id = ? ORDER BY id DESC (the newest pin first, as Mastodon).
CREATE INDEX pinned_posts_actor ON pinned_posts (actor_id, id);
-- pins.pinned_among (a page of cards: which are pinned) and ON DELETE CASCADE from posts.
CREATE INDEX pinned_posts_post ON pinned_posts (post_id);

-- A local person's choice to hide whom they follow and who follows them (Mastodon's
-- hide_collections): the lists are shown only to them, the AS2 collections give totalItems only.
ALTER TABLE local_accounts ADD COLUMN hide_collections INTEGER NOT NULL DEFAULT 0;
