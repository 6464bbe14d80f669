-- Other accounts a local person says are also theirs (alsoKnownAs, a JSON list of actor ids): an
-- account elsewhere can only move here when this account lists it (Mastodon checks).
ALTER TABLE actors ADD COLUMN also_known_as TEXT NOT NULL DEFAULT '[]';
