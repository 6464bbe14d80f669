-- Keyword filters (Mastodon's filters v2): a titled set of keywords that hides posts, or shows them
-- collapsed behind a warning, in the chosen contexts until an optional expiry.
CREATE TABLE keyword_filters (
    id INTEGER PRIMARY KEY,
    owner_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    -- Comma-separated subset of home,notifications,public,thread,account.
    contexts TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('warn', 'hide')),
    expires_at TEXT,
    created_at TEXT NOT NULL
);
-- A person's filters, read for every timeline page they see.
CREATE INDEX keyword_filters_owner ON keyword_filters (owner_id, id);

CREATE TABLE keyword_filter_keywords (
    id INTEGER PRIMARY KEY,
    filter_id INTEGER NOT NULL REFERENCES keyword_filters (id) ON DELETE CASCADE,
    keyword TEXT NOT NULL,
    whole_word INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX keyword_filter_keywords_filter ON keyword_filter_keywords (filter_id, id);
