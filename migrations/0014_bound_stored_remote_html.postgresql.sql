-- PostgreSQL (this file): 0014_bound_stored_remote_html.sql with chr() for char() and to_char() for strftime().
-- Remote HTML is now kept within bounds when it is stored (activitypub/sanitize.py:
-- MAX_STORED_HTML_CHARS = 200,000) and pages show it as stored, without cleaning it again. Rows stored
-- before could be far larger (a 192 KB post of nested lists was stored as 1.6 MB of nested markup):
-- such a post keeps its text, escaped, in one paragraph (as the cleaner's fallback does), and is
-- marked updated so the corpus sees the change. Such a bio is emptied and the actor marked stale,
-- so the next look-up fetches it again and stores it within bounds.
UPDATE posts
SET content_html = '<p>' || replace(replace(replace(replace(substr(content_text, 1, 50000),
                        '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), chr(10), '<br>') || '</p>',
    updated_at = to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
WHERE is_local = 0 AND length(content_html) > 200000;

UPDATE actors
SET summary_html = '', fetched_at = NULL
WHERE is_local = 0 AND length(summary_html) > 200000;
