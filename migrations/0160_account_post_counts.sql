-- Live posts per account and visibility: what an account's statuses_count reads (the client API
-- shows it with every account on a page of statuses, up to 80 per page) instead of counting the
-- account's posts each time (alice's home page on the 1M-post benchmark counted ~140,000 index
-- entries per request: bench/RESULTS.md, sixth session). Kept in step by store/posts.py, the one
-- module that writes posts, in the transaction of each insert, edit (which may change the
-- visibility) and deletion; Mastodon keeps account_stats the same way.
CREATE TABLE account_post_counts (
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    visibility TEXT NOT NULL,
    posts INTEGER NOT NULL,
    PRIMARY KEY (actor_id, visibility)
);

-- What is already stored (reads the posts_actor_cover index once: ~1 s per million posts).
INSERT INTO account_post_counts (actor_id, visibility, posts)
SELECT actor_id, visibility, count(*) FROM posts WHERE deleted_at IS NULL GROUP BY actor_id, visibility;
