-- Single posts a keyword filter also applies to (Mastodon's FilterStatus): the post is hidden or
-- shown behind the filter's warning in the filter's contexts, whatever its words.
CREATE TABLE keyword_filter_statuses (
    id INTEGER PRIMARY KEY,
    filter_id INTEGER NOT NULL REFERENCES keyword_filters (id) ON DELETE CASCADE,
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
-- A post is in a filter once; store.keyword_filters reads a person's filters' posts by filter_id.
CREATE UNIQUE INDEX keyword_filter_statuses_filter ON keyword_filter_statuses (filter_id, post_id);
