-- Reports made here by local people: whether a copy went to the reported account's server (as a
-- Flag from this server's instance actor, without the reporter's name).
ALTER TABLE reports ADD COLUMN forwarded INTEGER NOT NULL DEFAULT 0;
