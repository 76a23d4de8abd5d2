-- The host's own tables. Portable SQL: the same file runs on SQLite and PostgreSQL.
-- Times are unix milliseconds (BIGINT) so ordering and arithmetic are backend-neutral;
-- flags are BIGINT 0/1 because sqlx's Any driver cannot read SQLite's BOOLEAN.

-- Every plugin version the host has seen, and which one is live.
CREATE TABLE IF NOT EXISTS plugin_versions (
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    size         BIGINT NOT NULL,
    installed_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE IF NOT EXISTS plugin_state (
    name             TEXT PRIMARY KEY,
    live_version     TEXT,
    migrated_version TEXT,
    updated_at       BIGINT NOT NULL
);

-- Host-held secrets (the JWT signing key when none is configured).
CREATE TABLE IF NOT EXISTS secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Sessions behind access tokens (`sid`) and refresh tokens.
CREATE TABLE IF NOT EXISTS sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    role         TEXT NOT NULL,
    user_agent   TEXT,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);

-- Refresh tokens by hash; a used one presented again revokes its session.
CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash       TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    used       BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS refresh_tokens_session ON refresh_tokens (session_id);

-- The transactional outbox: one row per published event ...
CREATE TABLE IF NOT EXISTS events (
    id         TEXT PRIMARY KEY,
    topic      TEXT NOT NULL,
    payload    TEXT NOT NULL,
    source     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deliver_at BIGINT NOT NULL
);

-- ... and one row per (event, subscriber) with its delivery state.
CREATE TABLE IF NOT EXISTS deliveries (
    event_id        TEXT NOT NULL,
    subscriber      TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT NOT NULL,
    last_error      TEXT,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (event_id, subscriber)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
