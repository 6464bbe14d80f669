-- Bounded inbound storage (issue 12, item 6).
--
-- 1. Deduplicate inbox items on a fixed-size key: activity_hash is SHA-256 of the activity id's
-- UTF-8 bytes (store.inbox.activity_key; sha256_utf8 is registered by db.migrate for this file).
-- The UNIQUE index on the full activity_uri text stored every id twice, at whatever length a peer
-- chose; a 32-byte key keeps the index small whatever arrives. The table is rebuilt because the
-- UNIQUE constraint on activity_uri cannot be dropped in place.
CREATE TABLE inbox_items_new (
    id INTEGER PRIMARY KEY,
    activity_hash BLOB NOT NULL UNIQUE,
    activity_uri TEXT NOT NULL,
    activity_type TEXT NOT NULL,
    signer_uri TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    locked_until INTEGER,
    last_error TEXT,
    received_at TEXT NOT NULL,
    processed_at TEXT
);
INSERT INTO inbox_items_new (id, activity_hash, activity_uri, activity_type, signer_uri, body, state, attempts,
                             next_attempt_at, locked_until, last_error, received_at, processed_at)
    SELECT id, sha256_utf8(activity_uri), activity_uri, activity_type, signer_uri, body, state, attempts,
           next_attempt_at, locked_until, last_error, received_at, processed_at FROM inbox_items;
DROP TABLE inbox_items;
ALTER TABLE inbox_items_new RENAME TO inbox_items;
-- As before (0001, 0005): store.inbox.next_due_ms and store.inbox.claim_due_items.
CREATE INDEX inbox_items_due ON inbox_items (state, next_attempt_at);
CREATE INDEX inbox_items_pending ON inbox_items (state, id);
-- 2. Pruning (store.inbox.prune_finished_items): finished rows oldest first, a batch at a time.
-- Partial, so that storing a new (pending) item writes no entry here.
CREATE INDEX inbox_items_finished ON inbox_items (processed_at) WHERE state <> 'pending';

-- 3. A remote actor's document is kept only as far as it is read back (activitypub.actors.
-- stored_document: its id and alsoKnownAs); every other field is in its own column already.
UPDATE actors SET raw_json = NULL WHERE is_local = 0 AND raw_json IS NOT NULL AND NOT json_valid(raw_json);
UPDATE actors SET raw_json = json_object('id', uri, 'alsoKnownAs',
        CASE WHEN length(raw_json -> '$.alsoKnownAs') <= 210000 THEN json(raw_json -> '$.alsoKnownAs') END)
    WHERE is_local = 0 AND raw_json IS NOT NULL;
