-- Web Push (Mastodon's /api/v1/push/subscription): the instance's VAPID key pair, each access
-- token's push subscription, and the durable queue of pushes to send.

-- One row (id 1): generated on first need, kept for the life of the instance, because every
-- app's subscription is bound to this public key (RFC 8292 §3.2); a new key would silently
-- break them all.
CREATE TABLE vapid_keys (
    id INTEGER PRIMARY KEY,
    private_key_pem TEXT NOT NULL,
    public_key TEXT NOT NULL,      -- base64url of the uncompressed P-256 point, as apps read it
    created_at TEXT NOT NULL
);

-- One subscription per access token (Mastodon's rule), gone with the token. access_token is the
-- one place a token is kept readable: the push payload must carry it (Mastodon's
-- Web::NotificationSerializer) so that a phone knows which of its accounts a push is for.
CREATE TABLE push_subscriptions (
    id INTEGER PRIMARY KEY,
    token_id INTEGER NOT NULL UNIQUE REFERENCES oauth_tokens (id) ON DELETE CASCADE,
    actor_id INTEGER NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    access_token TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    key_p256dh TEXT NOT NULL,      -- base64url, the subscriber's P-256 public key
    key_auth TEXT NOT NULL,        -- base64url, the 16-byte auth secret
    alerts TEXT NOT NULL,          -- space-separated Mastodon notification types switched on
    policy TEXT NOT NULL CHECK (policy IN ('all', 'followed', 'follower', 'none')),
    standard INTEGER NOT NULL DEFAULT 0,  -- 1: RFC 8291 aes128gcm; 0: Mastodon's legacy aesgcm
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- Queueing a notification's pushes: the recipient's subscriptions.
CREATE INDEX push_subscriptions_actor ON push_subscriptions (actor_id);

-- One row per push to send; deleted when sent, dropped or given up (nothing to keep).
CREATE TABLE push_deliveries (
    id INTEGER PRIMARY KEY,
    subscription_id INTEGER NOT NULL REFERENCES push_subscriptions (id) ON DELETE CASCADE,
    notification_id INTEGER NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,  -- epoch ms
    locked_until INTEGER,              -- epoch ms: leased to a worker until then
    last_error TEXT,
    created_at TEXT NOT NULL
);
-- The worker's claim: due rows in order.
CREATE INDEX push_deliveries_due ON push_deliveries (next_attempt_at, id);
-- ON DELETE CASCADE from subscriptions and notifications.
CREATE INDEX push_deliveries_subscription ON push_deliveries (subscription_id);
CREATE INDEX push_deliveries_notification ON push_deliveries (notification_id);
