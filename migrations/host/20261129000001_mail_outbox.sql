-- Every email and SMS a plugin sent. Always written; `status` says what happened:
-- recorded (no transport for the channel), pending (SMTP delivery due), sent, failed.
CREATE TABLE IF NOT EXISTS mail_outbox (
    id              TEXT PRIMARY KEY,
    plugin          TEXT NOT NULL,
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX IF NOT EXISTS mail_outbox_plugin ON mail_outbox (plugin, created_at);
CREATE INDEX IF NOT EXISTS mail_outbox_due ON mail_outbox (status, next_attempt_at);
