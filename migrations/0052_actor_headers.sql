-- Profile header pictures (ActivityPub `image` on the actor, Mastodon's header): a local account's
-- own upload (served from /media/), or a remote actor's, shown from the media cache.
ALTER TABLE actors ADD COLUMN image_url TEXT;
ALTER TABLE actors ADD COLUMN image_media_type TEXT;
