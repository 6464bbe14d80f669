-- Initial schema: actors (local and remote), local accounts, posts and their audience,
-- the social graph, interactions, the durable inbox and delivery queues.
--
-- Conventions (portable to PostgreSQL): event times are ISO-8601 UTC text of fixed width
-- ("2026-11-25T09:15:00.000000Z", so text order is time order); queue scheduling columns
-- (next_attempt_at, locked_until) are integer epoch milliseconds so that workers compare numbers.
-- Booleans are 0/1 integers.

-- Every actor we know, local or remote. Local ones also have a row in local_accounts.
CREATE TABLE actors (
    id INTEGER PRIMARY KEY,
    uri TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL,
    domain TEXT NOT NULL,
    is_local INTEGER NOT NULL DEFAULT 0,
    actor_type TEXT NOT NULL DEFAULT 'Person',
    display_name TEXT NOT NULL DEFAULT '',
    summary_html TEXT NOT NULL DEFAULT '',
    url TEXT,
    inbox_url TEXT,
    shared_inbox_url TEXT,
    outbox_url TEXT,
    followers_url TEXT,
    following_url TEXT,
    featured_url TEXT,
    icon_url TEXT,
    icon_media_type TEXT,
    key_id TEXT,
    public_key_pem TEXT,
    manually_approves_followers INTEGER NOT NULL DEFAULT 0,
    discoverable INTEGER NOT NULL DEFAULT 0,
    indexable INTEGER NOT NULL DEFAULT 0,
    -- The last actor document fetched (remote only): later features read extension terms from it.
    raw_json TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    fetched_at TEXT,
    deleted_at TEXT,
    suspended_at TEXT
);
-- WebFinger and @user@host look-ups.
CREATE INDEX actors_username_domain ON actors (username, domain);
-- Signature verification looks actors up by key id.
CREATE INDEX actors_key_id ON actors (key_id);

CREATE TABLE local_accounts (
    actor_id INTEGER PRIMARY KEY REFERENCES actors (id) ON DELETE CASCADE,
    -- Lower-cased; unique per instance.
    username TEXT NOT NULL UNIQUE,
    private_key_pem TEXT NOT NULL,
    password_hash TEXT,
    is_admin INTEGER NOT NULL DEFAULT 0,
    -- The server's own Application actor that signs fetches (Mastodon's "representative").
    is_instance_actor INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

-- Posts, local and remote. ids are time-ordered (milliseconds << 16 | random), so ORDER BY id is
-- chronological order of publication.
CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    uri TEXT NOT NULL UNIQUE,
    url TEXT,
    actor_id INTEGER NOT NULL REFERENCES actors (id),
    is_local INTEGER NOT NULL DEFAULT 0,
    object_type TEXT NOT NULL DEFAULT 'Note',
    visibility TEXT NOT NULL CHECK (visibility IN ('public', 'unlisted', 'followers', 'direct')),
    -- Always sanitized HTML, for local posts rendered from source_text.
    content_html TEXT NOT NULL DEFAULT '',
    content_text TEXT NOT NULL DEFAULT '',
    source_text TEXT,
    summary TEXT,
    sensitive INTEGER NOT NULL DEFAULT 0,
    language TEXT,
    in_reply_to_uri TEXT,
    -- {"to": [...], "cc": [...]} exactly as addressed: who may see the post.
    audience_json TEXT NOT NULL DEFAULT '{"to": [], "cc": []}',
    published_at TEXT NOT NULL,
    edited_at TEXT,
    deleted_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- Profile pages and outbox: an actor's posts newest first.
CREATE INDEX posts_actor_id ON posts (actor_id, id);
-- Threads: replies of a post.
CREATE INDEX posts_in_reply_to ON posts (in_reply_to_uri);

-- Earlier versions of edited posts.
CREATE TABLE post_revisions (
    id INTEGER PRIMARY KEY,
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    content_html TEXT NOT NULL,
    summary TEXT,
    sensitive INTEGER NOT NULL DEFAULT 0,
    revised_at TEXT NOT NULL
);
CREATE INDEX post_revisions_post ON post_revisions (post_id, id);

CREATE TABLE post_mentions (
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    actor_id INTEGER NOT NULL REFERENCES actors (id),
    PRIMARY KEY (post_id, actor_id)
);
-- Mentions of an account (notifications, direct messages).
CREATE INDEX post_mentions_actor ON post_mentions (actor_id, post_id);

CREATE TABLE post_tags (
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (post_id, tag)
);
-- Hashtag timelines.
CREATE INDEX post_tags_tag ON post_tags (tag, post_id);

-- Ids of deleted remote objects: a Create arriving after its Delete must not resurrect it.
CREATE TABLE tombstones (
    uri TEXT PRIMARY KEY,
    deleted_at TEXT NOT NULL
);

CREATE TABLE follows (
    id INTEGER PRIMARY KEY,
    -- The Follow activity's id; Accept/Reject/Undo refer to it.
    uri TEXT NOT NULL UNIQUE,
    follower_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    followee_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    state TEXT NOT NULL CHECK (state IN ('pending', 'accepted')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (follower_id, followee_id)
);
-- Followers of an account (fan-out, followers collection).
CREATE INDEX follows_followee ON follows (followee_id, state);

CREATE TABLE likes (
    id INTEGER PRIMARY KEY,
    uri TEXT NOT NULL UNIQUE,
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    UNIQUE (actor_id, post_id)
);
CREATE INDEX likes_post ON likes (post_id);

-- Boosts. ids are time-ordered like posts so timelines can merge the two.
CREATE TABLE announces (
    id INTEGER PRIMARY KEY,
    uri TEXT NOT NULL UNIQUE,
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    published_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (actor_id, post_id)
);
CREATE INDEX announces_post ON announces (post_id);
CREATE INDEX announces_actor ON announces (actor_id, id);

CREATE TABLE blocks (
    id INTEGER PRIMARY KEY,
    uri TEXT NOT NULL UNIQUE,
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    target_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    UNIQUE (actor_id, target_id)
);

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    recipient_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('follow', 'follow_request', 'mention', 'reply', 'like', 'boost')),
    from_actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    post_id INTEGER REFERENCES posts (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    read_at TEXT
);
CREATE INDEX notifications_recipient ON notifications (recipient_id, id);

-- Verified inbound activities waiting to be (or already) processed. The unique activity id makes
-- a duplicate delivery a no-op. Workers claim rows by setting locked_until (a lease).
CREATE TABLE inbox_items (
    id INTEGER PRIMARY KEY,
    activity_uri TEXT NOT NULL UNIQUE,
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
-- Worker claim query: pending rows due now.
CREATE INDEX inbox_items_due ON inbox_items (state, next_attempt_at);

-- Activities this server authored, stored once; deliveries point at them and they are served at
-- their ids.
CREATE TABLE outbound_activities (
    id INTEGER PRIMARY KEY,
    uri TEXT NOT NULL UNIQUE,
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    activity_type TEXT NOT NULL,
    object_uri TEXT,
    is_public INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX outbound_activities_actor ON outbound_activities (actor_id, id);

-- One row per (activity, target inbox). Workers claim due rows with a lease (locked_until).
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    activity_id INTEGER NOT NULL REFERENCES outbound_activities (id) ON DELETE CASCADE,
    inbox_url TEXT NOT NULL,
    host TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    locked_until INTEGER,
    last_status INTEGER,
    last_error TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    UNIQUE (activity_id, inbox_url)
);
-- Worker claim query and `fedserver status`.
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_host ON deliveries (host, state);

-- Delivery health per remote host (Mastodon's DeliveryFailureTracker).
CREATE TABLE hosts (
    host TEXT PRIMARY KEY,
    unavailable_since TEXT,
    -- Deliveries to the host are held back until then (epoch ms); a success clears it.
    unavailable_until INTEGER,
    last_success_at TEXT,
    last_failure_at TEXT
);
CREATE TABLE host_failure_days (
    host TEXT NOT NULL,
    day TEXT NOT NULL,
    PRIMARY KEY (host, day)
);

CREATE TABLE domain_blocks (
    domain TEXT PRIMARY KEY,
    reason TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
