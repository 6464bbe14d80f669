-- Live events for the streaming API (services/events.py): one compact row per post created,
-- edited, deleted or boosted, notification created or filter changed. Every serving process tails
-- the table by id (so an event written by one process reaches streams held open by another) and
-- renders each event for each listening person itself; rows are pruned after a few minutes.
CREATE TABLE stream_events (
    id INTEGER PRIMARY KEY,
    -- post | edit | delete | boost | notification | filters | tokens
    kind TEXT NOT NULL,
    -- The post (post, edit, delete, boost); the notification (notification).
    subject_id INTEGER,
    -- The boost's own id (its place on home timelines) for boost; else the subject's.
    sort_id INTEGER,
    -- The person it is for (notification, filters, tokens); NULL for posts, which each stream checks.
    actor_id INTEGER,
    created_at TEXT NOT NULL
);
-- The pruning: DELETE FROM stream_events WHERE created_at < ?
CREATE INDEX stream_events_created ON stream_events (created_at);
