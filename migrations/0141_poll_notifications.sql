-- "A poll you voted in (or your own poll) has ended" notifications. The first migration's CHECK on
-- notifications.kind has no word for them, and SQLite cannot change a CHECK without rebuilding
-- the table, so the kind shown is kept here when it is set (the row's `kind` then holds
-- 'mention', a value the CHECK accepts; readers use coalesce(shown_kind, kind)).
ALTER TABLE notifications ADD COLUMN shown_kind TEXT;

-- Each ended poll notifies its voters and author once, however often it is closed: by the closing
-- worker here, or by repeated Updates (with `closed`) from the poll's own server.
CREATE TABLE poll_end_notices (
    post_id INTEGER PRIMARY KEY REFERENCES posts (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
