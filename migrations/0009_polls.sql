-- Polls of remote posts (ActivityPub Question): the choices and their counts as the author's server
-- last reported them.
CREATE TABLE polls (
    post_id INTEGER PRIMARY KEY REFERENCES posts (id) ON DELETE CASCADE,
    -- 1: several choices may be picked (anyOf); 0: one (oneOf).
    multiple INTEGER NOT NULL DEFAULT 0,
    ends_at TEXT,
    closed_at TEXT,
    -- People who voted, when the server says (Mastodon's votersCount).
    voters INTEGER
);

CREATE TABLE poll_options (
    post_id INTEGER NOT NULL REFERENCES polls (post_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    votes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (post_id, position)
);
