-- Reports from other servers (ActivityPub Flag) about local accounts and their posts, for the admin.
CREATE TABLE reports (
    id INTEGER PRIMARY KEY,
    -- The Flag's id: the same report delivered twice is one report.
    uri TEXT NOT NULL UNIQUE,
    -- Who sent it (Mastodon sends reports as its instance actor) and the local account reported.
    reporter_id INTEGER NOT NULL REFERENCES actors (id),
    target_id INTEGER NOT NULL REFERENCES actors (id),
    -- The reporter's comment, plain text.
    comment TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    resolved_at TEXT,
    resolved_by INTEGER REFERENCES actors (id)
);
CREATE INDEX reports_open ON reports (resolved_at, id);

-- The reported account's posts a report points at.
CREATE TABLE report_posts (
    report_id INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    post_id INTEGER NOT NULL REFERENCES posts (id),
    PRIMARY KEY (report_id, post_id)
);
