-- Account migration (ActivityPub Move): where a remote account says it moved to (its movedTo, or
-- a verified Move), and when a Move was last carried out for it (further Moves are ignored for a
-- while, as Mastodon ignores them for 7 days).
ALTER TABLE actors ADD COLUMN moved_to_uri TEXT;
ALTER TABLE actors ADD COLUMN moved_at TEXT;
