-- The media cache: one row per remote picture URL (attachment or avatar) this server shows. The
-- files themselves live under the media directory, named by the SHA-256 of their content
-- (cache/<sha256>.<ext>), and are served from this server: pages never load other origins.
CREATE TABLE remote_media (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    -- SHA-256 of url (hex): the key pages link to (/media/remote/<url_hash>), computable without
    -- a query while rendering an avatar.
    url_hash TEXT NOT NULL UNIQUE,
    -- attachment | avatar
    purpose TEXT NOT NULL,
    -- queued (the worker fetches it) | absent (fetched on first view: never fetched, or pruned)
    -- | cached | failed (not asked again before retry_at)
    state TEXT NOT NULL,
    -- Epoch ms until which a worker holds the queued row (a crashed worker's rows come back).
    lease_until INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_at INTEGER,
    last_error TEXT,
    -- What the cleaned copies are; kept when pruned, so that pages keep their size and
    -- placeholder and a content-addressed link can fetch the picture again.
    file_name TEXT,
    thumb_name TEXT,
    blur_name TEXT,
    width INTEGER,
    height INTEGER,
    thumb_width INTEGER,
    thumb_height INTEGER,
    blurhash TEXT,
    -- Bytes of the three files while cached (0 otherwise): the disk used, summed for status.
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    -- Epoch seconds of the last successful fetch: what retention counts from.
    fetched_at INTEGER,
    created_at TEXT NOT NULL
);
-- claim_queued: queued rows in order.
CREATE INDEX remote_media_state ON remote_media (state, id);
-- prune_before: cached rows by age.
CREATE INDEX remote_media_fetched ON remote_media (state, fetched_at);
-- by_file_name: a content-addressed file asked for after it was pruned.
CREATE INDEX remote_media_file ON remote_media (file_name);
CREATE INDEX remote_media_thumb ON remote_media (thumb_name);
CREATE INDEX remote_media_blur ON remote_media (blur_name);
