-- Custom emoji of remote accounts (the Emoji tags of their actor document), for the :shortcodes:
-- of their display name and bio: JSON list of [shortcode, picture URL]. The pictures are rows of
-- remote_media (purpose 'emoji'), shown from this server's media cache. Account.emojis in the API.
ALTER TABLE actors ADD COLUMN emojis_json TEXT NOT NULL DEFAULT '[]';
