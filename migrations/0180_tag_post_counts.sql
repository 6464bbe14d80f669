-- Live public posts per hashtag: what the search page shows beside each matching hashtag, read
-- from here instead of counting each tag's posts on every search (up to 1,000 posts looked up per
-- tag, ~3 ms of a mixed search page on the 1M-post benchmark: bench/RESULTS.md, sixth session).
-- Kept in step by store/posts.py, the one module that writes posts and their tags, in the
-- transaction of each tag change, edit (which may change the visibility) and deletion, as
-- account_post_counts (0160) is.
CREATE TABLE tag_post_counts (
    tag TEXT PRIMARY KEY,
    posts INTEGER NOT NULL
);

-- What is already stored (reads post_tags once, each tagged post once).
INSERT INTO tag_post_counts (tag, posts)
SELECT t.tag, count(*) FROM post_tags t JOIN posts p ON p.id = t.post_id
WHERE p.visibility = 'public' AND p.deleted_at IS NULL GROUP BY t.tag;
