-- An admin's silence of a (remote) account: its posts stay out of the public timelines (local,
-- hashtags) and away from people here who do not follow it; its followers here still see them.
-- Suspension of a remote account reuses actors.suspended_at, as for local accounts.
ALTER TABLE actors ADD COLUMN silenced_at TEXT;
