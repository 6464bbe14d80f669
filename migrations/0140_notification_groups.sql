-- Grouped notifications (client API v2, Mastodon 4.3): likes of one post, boosts of one post, and
-- follows, that arrive within the same 12-hour slot share a key and are shown as one group
-- ("alice and 3 others liked your post"). Set when the notification is written; NULL for kinds
-- that are never grouped (and for notifications written before this migration): those are groups
-- of one, keyed ungrouped-<id>.
ALTER TABLE notifications ADD COLUMN group_key TEXT;
-- store.interactions.group_notifications and delete_notification_group:
-- WHERE recipient_id = ? AND group_key = ? ORDER BY id DESC
CREATE INDEX notifications_group ON notifications (recipient_id, group_key, id);
