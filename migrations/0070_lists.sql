-- A person's lists of accounts they follow, each with its own timeline (Mastodon's lists).
-- replies_policy: which replies of members the list timeline shows (followed | list | none);
-- exclusive: the members' posts stay out of the home timeline.
CREATE TABLE lists (
    id INTEGER PRIMARY KEY,
    owner_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    replies_policy TEXT NOT NULL DEFAULT 'list' CHECK (replies_policy IN ('followed', 'list', 'none')),
    exclusive INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
-- A person's lists, in order of creation.
CREATE INDEX lists_owner ON lists (owner_id, id);

CREATE TABLE list_members (
    list_id INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (list_id, actor_id)
);
-- Which of a person's lists an account is on (the profile's list choices, home's exclusive lists,
-- and dropping an account from every list when it is unfollowed).
CREATE INDEX list_members_actor ON list_members (actor_id, list_id);
