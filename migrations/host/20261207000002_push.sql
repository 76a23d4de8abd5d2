-- Web Push subscriptions browsers registered for a user (the `push` mail channel).
-- Keys are base64url as the browser gives them; an endpoint belongs to one user.
CREATE TABLE IF NOT EXISTS push_subscriptions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    endpoint   TEXT NOT NULL UNIQUE,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS push_subscriptions_user ON push_subscriptions (user_id, created_at);

-- A push message is one outbox row per subscription: the one it is delivered to.
ALTER TABLE mail_outbox ADD COLUMN subscription_id TEXT;
