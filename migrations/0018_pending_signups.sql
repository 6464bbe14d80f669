-- Sign-ups waiting for an admin's approval (registrations = "approval"). They live here, not in
-- actors/local_accounts, until approved: a pending account has no actor, so it has no actor
-- document, no WebFinger answer and no place in any page or collection by construction.
CREATE TABLE pending_signups (
    -- Lower-cased; no local account may have the same name (checked in the same transaction).
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    -- What the person wrote for the admins: why they want to join.
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL
);
