-- The Mastodon client API's OAuth 2: registered apps, authorization codes and access tokens.
-- Secrets, codes and tokens are random and high-entropy; only their SHA-256 is stored, so a copy
-- of the database does not let anyone act as an app or a person.

CREATE TABLE oauth_apps (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    client_secret_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    website TEXT,
    redirect_uris TEXT NOT NULL,   -- JSON list of the registered redirect URIs
    scopes TEXT NOT NULL,          -- space-separated, as registered; '' when the app named none
    created_at TEXT NOT NULL
);

-- Single-use, short-lived codes from /oauth/authorize; a used code is kept until it expires, so that
-- replaying it can be recognised (and the tokens it gave revoked, RFC 6749 §4.1.2).
CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY,
    app_id INTEGER NOT NULL REFERENCES oauth_apps (id) ON DELETE CASCADE,
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    scopes TEXT NOT NULL,
    code_challenge TEXT,           -- PKCE S256 challenge, when the app sent one
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
-- Pruning expired codes when a new one is issued.
CREATE INDEX oauth_codes_expires ON oauth_codes (expires_at);

-- actor_id is NULL for client_credentials tokens (the app alone, no person).
CREATE TABLE oauth_tokens (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    app_id INTEGER NOT NULL REFERENCES oauth_apps (id) ON DELETE CASCADE,
    actor_id INTEGER REFERENCES actors (id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    code_hash TEXT,
    created_at TEXT NOT NULL,
    last_used_at TEXT
);
-- The settings "Apps" page (a person's tokens by app) and revoking an app for a person.
CREATE INDEX oauth_tokens_actor ON oauth_tokens (actor_id, app_id);
-- Revoking what a replayed code gave.
CREATE INDEX oauth_tokens_code ON oauth_tokens (code_hash) WHERE code_hash IS NOT NULL;
