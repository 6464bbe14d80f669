-- Video and audio uploaded through the client API (POST /api/v2/media) before their post: checked
-- and cleaned by ffprobe/ffmpeg after the answer (202, as Mastodon does), so the row exists while
-- that runs. kind: image | video | gifv (a video without sound, migration 0145) | audio.
-- state: processing | ready | failed (error says why).
-- Audio has no picture unless a `thumbnail` was sent: its width, height and picture ids are then
-- 0 and '' (the first columns are NOT NULL).
ALTER TABLE media_uploads ADD COLUMN kind TEXT NOT NULL DEFAULT 'image';
ALTER TABLE media_uploads ADD COLUMN state TEXT NOT NULL DEFAULT 'ready';
ALTER TABLE media_uploads ADD COLUMN error TEXT;
ALTER TABLE media_uploads ADD COLUMN duration REAL;
ALTER TABLE media_uploads ADD COLUMN frame_rate TEXT;
