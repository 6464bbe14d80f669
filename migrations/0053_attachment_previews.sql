-- Thumbnails of pictures posted here (made when uploaded, like the media cache's for remote ones):
-- timelines show the thumbnail, the original is a click away; the blurhash picture stands in for a
-- sensitive one until it is opened. NULL for remote attachments (their previews are in remote_media).
ALTER TABLE post_attachments ADD COLUMN thumb_url TEXT;
ALTER TABLE post_attachments ADD COLUMN thumb_width INTEGER;
ALTER TABLE post_attachments ADD COLUMN thumb_height INTEGER;
ALTER TABLE post_attachments ADD COLUMN blur_url TEXT;
ALTER TABLE post_attachments ADD COLUMN blurhash TEXT;
