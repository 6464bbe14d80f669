-- A person's posting defaults, as Mastodon keeps them (its user settings default_privacy,
-- default_sensitive, default_language): apps read them in verify_credentials' `source` and in
-- /api/v1/preferences, set them with update_credentials `source[...]`, and a status created
-- without a visibility, sensitive flag or language takes them. Visibility in fedserver's words
-- (public, unlisted, followers, direct); language NULL for "the app decides".
ALTER TABLE local_accounts ADD COLUMN default_visibility TEXT NOT NULL DEFAULT 'public';
ALTER TABLE local_accounts ADD COLUMN default_sensitive INTEGER NOT NULL DEFAULT 0;
ALTER TABLE local_accounts ADD COLUMN default_language TEXT;
