-- Read positions apps sync through the client API (Mastodon's markers): the last read item of the
-- home timeline and of the notifications, per person, with a version that counts updates.
CREATE TABLE markers (
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    timeline TEXT NOT NULL CHECK (timeline IN ('home', 'notifications')),
    last_read_id TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (actor_id, timeline)
);
