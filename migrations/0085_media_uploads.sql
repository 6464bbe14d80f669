-- Pictures uploaded through the client API (POST /api/v2/media) before the post that carries them
-- exists: cleaned and stored at once (their files are rows of `media`), owned by the uploader and
-- attached at most once (post_id set in the post's transaction). Unattached ones are pruned after a
-- day. Ids are time-ordered like posts' (they are MediaAttachment ids).
CREATE TABLE media_uploads (
    id INTEGER PRIMARY KEY,
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    file_id TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    thumb_id TEXT NOT NULL,
    thumb_width INTEGER NOT NULL,
    thumb_height INTEGER NOT NULL,
    blur_id TEXT NOT NULL,
    blurhash TEXT,
    description TEXT NOT NULL DEFAULT '',
    -- Mastodon's focal point, each in -1.0 .. 1.0 (0, 0 is the centre).
    focus_x REAL NOT NULL DEFAULT 0,
    focus_y REAL NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    post_id INTEGER REFERENCES posts (id) ON DELETE CASCADE
);
CREATE INDEX media_uploads_post ON media_uploads (post_id);
CREATE INDEX media_uploads_unattached ON media_uploads (created_at) WHERE post_id IS NULL;
