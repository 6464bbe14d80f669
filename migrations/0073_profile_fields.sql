-- Profile fields (Mastodon's PropertyValue attachments), local and remote, as a JSON list of
-- {"name", "value" (sanitized HTML), "source" (local: the text typed), "verified_at"}: read with
-- the actor row, never queried by content.
ALTER TABLE actors ADD COLUMN fields_json TEXT NOT NULL DEFAULT '[]';
