-- Training consent and the opt-in research corpus.
--
-- consent_choices holds each account's current tri-state choice per purpose; consent_events is the
-- append-only, hash-chained history of every change (never rewritten: the triggers refuse UPDATE
-- and DELETE, and the hash chain shows tampering done around them). corpus_records is the
-- materialised membership of the corpus and corpus_changes the feed researchers pull (its seq is
-- the cursor).
-- PostgreSQL note: the triggers below become a plpgsql function raising an exception.

CREATE TABLE consent_events (
    id INTEGER PRIMARY KEY,
    actor_id INTEGER NOT NULL,
    -- Kept as text so the log still names the account after it is gone.
    actor_uri TEXT NOT NULL,
    purpose TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('allow', 'deny', 'unset')),
    license TEXT,
    scope TEXT CHECK (scope IS NULL OR scope IN ('future', 'all')),
    include_unlisted INTEGER NOT NULL DEFAULT 0,
    terms_version TEXT,
    terms_hash TEXT,
    -- self (the person), admin (CLI on their behalf), remote-signal (a remote actor's document),
    -- system (account deleted or suspended)
    source TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
);
CREATE INDEX consent_events_actor ON consent_events (actor_id, id);

CREATE TRIGGER consent_events_append_only_update BEFORE UPDATE ON consent_events
BEGIN
    SELECT RAISE(ABORT, 'consent_events is append-only');
END;

CREATE TRIGGER consent_events_append_only_delete BEFORE DELETE ON consent_events
BEGIN
    SELECT RAISE(ABORT, 'consent_events is append-only');
END;

CREATE TABLE consent_choices (
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('allow', 'deny', 'unset')),
    license TEXT,
    scope TEXT CHECK (scope IS NULL OR scope IN ('future', 'all')),
    include_unlisted INTEGER NOT NULL DEFAULT 0,
    -- With scope 'future', posts published before this time stay out.
    effective_from TEXT,
    event_id INTEGER NOT NULL REFERENCES consent_events (id),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (actor_id, purpose)
);

-- The author's per-post "keep this one out of the corpus".
ALTER TABLE posts ADD COLUMN corpus_excluded INTEGER NOT NULL DEFAULT 0;
-- Incremental corpus reconciliation looks for posts changed since its last run.
CREATE INDEX posts_updated_at ON posts (updated_at);
CREATE INDEX actors_updated_at ON actors (updated_at);

CREATE TABLE corpus_records (
    post_id INTEGER PRIMARY KEY REFERENCES posts (id) ON DELETE CASCADE,
    record_id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('present', 'removed')),
    consent_event_id INTEGER,
    content_hash TEXT NOT NULL DEFAULT '',
    changed_seq INTEGER NOT NULL
);
-- Snapshots stream present records in post order.
CREATE INDEX corpus_records_state ON corpus_records (state, post_id);

CREATE TABLE corpus_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id TEXT NOT NULL,
    post_id INTEGER NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('added', 'updated', 'removed')),
    -- For removals: consent_withdrawn, post_deleted, post_excluded, account_deleted,
    -- account_suspended, visibility_narrowed, outside_consent_scope.
    reason TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX corpus_changes_record ON corpus_changes (record_id, seq);

-- Small key/value state of the server itself (secrets, reconciliation watermark).
CREATE TABLE instance_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE researchers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- SHA-256 of the bearer token; the token itself is shown once and never stored.
    token_hash TEXT NOT NULL UNIQUE,
    contact TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    terms_version TEXT,
    terms_hash TEXT,
    terms_accepted_at TEXT
);

CREATE TABLE researcher_pulls (
    id INTEGER PRIMARY KEY,
    researcher_id INTEGER NOT NULL REFERENCES researchers (id),
    endpoint TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '',
    status INTEGER NOT NULL,
    records INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
-- Rate limiting counts a researcher's recent pulls.
CREATE INDEX researcher_pulls_recent ON researcher_pulls (researcher_id, created_ms);

CREATE TABLE corpus_releases (
    version TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    records INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
