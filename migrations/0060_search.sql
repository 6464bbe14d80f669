-- Full-text search (services/search.py, store/search.py): posts by their text and content warning,
-- accounts by username and display name. SQLite FTS5 external-content tables: the index holds only
-- tokens, the text stays in posts/actors, and triggers keep the index in step with every write path
-- (the store's async and batch writes, edits, deletions that blank a post, migrations). PostgreSQL
-- would use a tsvector expression index instead, behind the same store functions.
--
-- Every post is indexed, whatever its visibility or author: who may find what (indexable authors'
-- public and unlisted posts, the searcher's own posts of any visibility, no blocked, muted or
-- suspended accounts) is decided when searching, so a change of an author's indexable flag or of
-- a block applies at once without reindexing.
-- unicode61 with remove_diacritics 2: "cafe" finds "café".
CREATE VIRTUAL TABLE post_search USING fts5(
    content_text, summary,
    content='posts', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
);

CREATE TRIGGER post_search_insert AFTER INSERT ON posts BEGIN
    INSERT INTO post_search (rowid, content_text, summary) VALUES (new.id, new.content_text, new.summary);
END;

-- An external-content index must be told the old values to remove them.
CREATE TRIGGER post_search_delete AFTER DELETE ON posts BEGIN
    INSERT INTO post_search (post_search, rowid, content_text, summary)
    VALUES ('delete', old.id, old.content_text, old.summary);
END;

CREATE TRIGGER post_search_update AFTER UPDATE OF content_text, summary ON posts BEGIN
    INSERT INTO post_search (post_search, rowid, content_text, summary)
    VALUES ('delete', old.id, old.content_text, old.summary);
    INSERT INTO post_search (rowid, content_text, summary) VALUES (new.id, new.content_text, new.summary);
END;

-- Accounts by name: prefix indexes make "ali" (typed so far) find alice cheaply.
CREATE VIRTUAL TABLE actor_search USING fts5(
    username, display_name,
    content='actors', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2', prefix='2 3'
);

CREATE TRIGGER actor_search_insert AFTER INSERT ON actors BEGIN
    INSERT INTO actor_search (rowid, username, display_name) VALUES (new.id, new.username, new.display_name);
END;

CREATE TRIGGER actor_search_delete AFTER DELETE ON actors BEGIN
    INSERT INTO actor_search (actor_search, rowid, username, display_name)
    VALUES ('delete', old.id, old.username, old.display_name);
END;

CREATE TRIGGER actor_search_update AFTER UPDATE OF username, display_name ON actors BEGIN
    INSERT INTO actor_search (actor_search, rowid, username, display_name)
    VALUES ('delete', old.id, old.username, old.display_name);
    INSERT INTO actor_search (rowid, username, display_name) VALUES (new.id, new.username, new.display_name);
END;

-- Index what is already stored (reads every post and account once).
INSERT INTO post_search (post_search) VALUES ('rebuild');
INSERT INTO actor_search (actor_search) VALUES ('rebuild');
