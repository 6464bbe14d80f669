-- Media attached to remote posts (Mastodon's Document/Image/Video/Audio attachments): what a page
-- needs to show each one, not the media itself (fedserver links to it; it does not copy it).
CREATE TABLE post_attachments (
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    -- Order as the author attached them (0, 1, ...).
    position INTEGER NOT NULL,
    media_type TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL,
    -- The author's description (alt text), or NULL.
    description TEXT,
    width INTEGER,
    height INTEGER,
    PRIMARY KEY (post_id, position)
);
