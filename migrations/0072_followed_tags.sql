-- Hashtags a person follows: public posts we hold with them appear on that person's home timeline.
CREATE TABLE followed_tags (
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (actor_id, tag)
);
