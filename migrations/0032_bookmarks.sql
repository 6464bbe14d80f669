-- Posts a person bookmarked through an app (private to them; nothing is federated). The id orders
-- the bookmarks list (newest first) and pages it.
CREATE TABLE bookmarks (
    id INTEGER PRIMARY KEY,
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    UNIQUE (actor_id, post_id)
);
-- The bookmarks list: a person's bookmarks by id (the UNIQUE above answers "is it bookmarked").
CREATE INDEX bookmarks_actor ON bookmarks (actor_id, id);
-- The favourites list pages a person's likes by like id.
CREATE INDEX likes_actor ON likes (actor_id, id);
