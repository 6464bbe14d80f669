-- Custom emoji of remote posts (Mastodon's Emoji tags): the post's text says :shortcode:, pages
-- show the picture from the media cache (remote_media, purpose 'emoji').
CREATE TABLE post_emojis (
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    shortcode TEXT NOT NULL,
    url TEXT NOT NULL,
    PRIMARY KEY (post_id, shortcode)
);
