-- A video posted here without a sound track is shown as a looping, soundless animation (Mastodon's
-- `gifv`: its VideoTranscoder marks a video without audio so). 1 for such videos; 0 otherwise and
-- for other servers' media. Uploads through the API say so in media_uploads.kind ('gifv').
ALTER TABLE post_attachments ADD COLUMN looping INTEGER NOT NULL DEFAULT 0;
