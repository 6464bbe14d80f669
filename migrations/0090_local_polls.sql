-- Polls in local posts. Votes from anyone (local people and other servers' Create(Note) votes) are
-- rows of poll_votes; the counts in polls/poll_options are kept in the same transaction.
-- Whether totals are hidden until the end (Mastodon's hide_totals).
ALTER TABLE polls ADD COLUMN hide_totals INTEGER NOT NULL DEFAULT 0;

-- Durable job: close a local poll at its end time and send the final counts in an Update. The
-- closing worker reads the earliest due rows (index below) and deletes each one in the
-- transaction that closes the poll, so a restart loses none and a poll is closed once.
CREATE TABLE poll_closings (
    post_id INTEGER PRIMARY KEY REFERENCES posts (id) ON DELETE CASCADE,
    due_at TEXT NOT NULL
);
-- polls.due_closings: WHERE due_at <= ? ORDER BY due_at
CREATE INDEX poll_closings_due ON poll_closings (due_at);
