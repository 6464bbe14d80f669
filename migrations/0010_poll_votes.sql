-- Votes local people cast in polls on other servers. Each choice is sent to the poll's author as a
-- Note whose name is the choice (how Mastodon votes); these rows keep anyone from voting twice.
CREATE TABLE poll_votes (
    post_id INTEGER NOT NULL REFERENCES posts (id),
    actor_id INTEGER NOT NULL REFERENCES actors (id),
    position INTEGER NOT NULL,
    uri TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (post_id, actor_id, position)
);
