-- Idempotency-Key of POST /api/v1/statuses (api/statuses.py, services/idempotency.py): a retried
-- create answers with the post the first attempt made, for an hour, as Mastodon does. A row, not
-- a process's memory, so that a retry landing on another web process or machine (docs/scaling.md)
-- does not post twice.
CREATE TABLE api_idempotency_keys (
    account_id INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL,
    post_id INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, idempotency_key)
);
-- Pruning what is older than an hour (store.idempotency.remember).
CREATE INDEX api_idempotency_keys_created ON api_idempotency_keys (created_at_ms);
