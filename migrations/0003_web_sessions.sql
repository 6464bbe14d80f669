-- The web interface: login sessions, sign-in throttling, invites and locally stored media.

-- A session is identified by a random token in an HttpOnly cookie; only its SHA-256 is stored.
CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX web_sessions_actor ON web_sessions (actor_id);

-- Failed sign-ins, counted per username and per client address to slow down guessing.
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    client TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX login_failures_username ON login_failures (username, created_ms);
CREATE INDEX login_failures_client ON login_failures (client, created_ms);

CREATE TABLE invites (
    code TEXT PRIMARY KEY,
    created_by TEXT NOT NULL DEFAULT 'admin',
    created_at TEXT NOT NULL,
    expires_at TEXT,
    max_uses INTEGER NOT NULL DEFAULT 1,
    uses INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE media (
    id TEXT PRIMARY KEY,
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- What the person typed as their bio (the actor's summary is the HTML made from it).
ALTER TABLE local_accounts ADD COLUMN bio_source TEXT NOT NULL DEFAULT '';

-- Home timeline: posts of the accounts a person follows, newest first (posts_actor_id covers the
-- per-author scan; this one serves the local timeline of public posts).
CREATE INDEX posts_local_public ON posts (is_local, visibility, id);
