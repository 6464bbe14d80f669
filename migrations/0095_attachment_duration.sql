-- Video and audio attachments (issue 14): how long they play, in seconds (ffprobe's for files
-- posted here, the sender's claim for remote ones); NULL for pictures and where unknown.
ALTER TABLE post_attachments ADD COLUMN duration REAL;
