-- Issue 17: where a person's posts went, and proof that researchers applied removals.
--
-- researcher_receipts is one row per (researcher, author, channel): how many of the author's
-- records the researcher was sent, when first and last, and the corpus cursors of the first and
-- last delivery. It is updated when a pull or a release hands records over (a per-author
-- aggregate, so the person's page and the deadline check never scan the pull log).
-- researchers.removals_acked_seq is the cursor up to which the researcher confirmed applying
-- every removal; researcher_releases records which offline release went to whom and when its
-- removals were confirmed.

ALTER TABLE researchers ADD COLUMN organisation TEXT NOT NULL DEFAULT '';
ALTER TABLE researchers ADD COLUMN purpose TEXT NOT NULL DEFAULT '';
-- 1: API records reach this researcher scrubbed (as `corpus export --scrub`).
ALTER TABLE researchers ADD COLUMN scrub INTEGER NOT NULL DEFAULT 0;
ALTER TABLE researchers ADD COLUMN removals_acked_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE researchers ADD COLUMN removals_acked_at TEXT;

CREATE TABLE researcher_receipts (
    researcher_id INTEGER NOT NULL REFERENCES researchers (id),
    actor_id INTEGER NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('api', 'release')),
    records INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    first_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    PRIMARY KEY (researcher_id, actor_id, channel)
);
-- The person's page: who received this author's records.
CREATE INDEX researcher_receipts_actor ON researcher_receipts (actor_id);

CREATE TABLE researcher_releases (
    researcher_id INTEGER NOT NULL REFERENCES researchers (id),
    version TEXT NOT NULL,
    seq INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    acked_at TEXT,
    PRIMARY KEY (researcher_id, version)
);

-- The deadline check walks removals after a researcher's acknowledged cursor
-- (store.researchers.oldest_overdue_removal).
CREATE INDEX corpus_changes_removals ON corpus_changes (seq) WHERE action = 'removed';
-- The person's page lists the removals of their posts (store.researchers.removals_of_author).
CREATE INDEX corpus_changes_post ON corpus_changes (post_id, seq);
