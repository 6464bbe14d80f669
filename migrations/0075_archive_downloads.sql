-- Personal archive downloads (services/archive.py): each started download is a row, so the per-account
-- limit holds across restarts and across the server's processes. Read by
-- store/archive.count_downloads_since (actor_id, started_ms >= ?); rows older than a day are pruned.
CREATE TABLE archive_downloads (
    id INTEGER PRIMARY KEY,
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    started_ms INTEGER NOT NULL
);
CREATE INDEX archive_downloads_actor ON archive_downloads (actor_id, started_ms);
