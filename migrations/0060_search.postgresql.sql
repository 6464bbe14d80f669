-- PostgreSQL (this file) for 0060_search.sql: full-text search over posts (text and content
-- warning) and accounts (username and display name) with expression GIN indexes instead of FTS5
-- tables: the index follows every write to posts and actors by itself, so no triggers are needed.
-- store/search.py queries them through the same two functions the indexes are built on.
--
-- FTS5's unicode61 tokenizer with remove_diacritics 2 ("cafe" finds "café") is the 'simple' text
-- search configuration (lower case, no stemming, no stop words) over unaccent()ed text.
-- unaccent is a trusted extension (PostgreSQL 13+): a database owner may create it.
CREATE EXTENSION IF NOT EXISTS unaccent;

-- unaccent() is only STABLE (its dictionary could change); an index expression must be IMMUTABLE.
-- Naming the dictionary makes the result fixed for this database, the usual way around it.
CREATE FUNCTION fedserver_fold(document TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT unaccent('unaccent'::regdictionary, document) $$;

CREATE FUNCTION fedserver_search_vector(first TEXT, second TEXT) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT to_tsvector('simple'::regconfig, fedserver_fold(coalesce(first, '') || ' ' || coalesce(second, ''))) $$;

-- The query side: every phrase (words in order) must match; prefix: the last word of the last
-- phrase may be the start of a word (people type names partly). Phrases are plain text, never
-- query syntax (phraseto_tsquery reads no operators).
CREATE FUNCTION fedserver_search_query(phrases TEXT[], prefix BOOLEAN) RETURNS tsquery
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
DECLARE
    result tsquery;
    part tsquery;
    count INTEGER := coalesce(array_length(phrases, 1), 0);
BEGIN
    FOR i IN 1 .. count LOOP
        part := phraseto_tsquery('simple'::regconfig, fedserver_fold(phrases[i]));
        IF numnode(part) > 0 THEN
            IF prefix AND i = count THEN
                part := (part::text || ':*')::tsquery;
            END IF;
            result := CASE WHEN result IS NULL THEN part ELSE result && part END;
        END IF;
    END LOOP;
    RETURN result;  -- NULL when nothing searchable was typed: matches nothing
END;
$$;

CREATE INDEX post_search ON posts USING gin (fedserver_search_vector(content_text, summary));
CREATE INDEX actor_search ON actors USING gin (fedserver_search_vector(username, display_name));
