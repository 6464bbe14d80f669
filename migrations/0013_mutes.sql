-- Accounts a local person muted: their posts, boosts and notifications stop reaching that person,
-- follows stay, and nothing is sent to anyone (the muted account is not told).
CREATE TABLE mutes (
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (actor_id, target_id)
);
