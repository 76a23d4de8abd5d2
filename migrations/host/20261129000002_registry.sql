-- The versioned plugin registry: every installed version keeps its component bytes
-- (stored once per sha256) and its manifest; plugin_state says which version is live,
-- which was live before it (for rollback) and whether the plugin is disabled;
-- plugin_history records every operator action.
ALTER TABLE plugin_versions ADD COLUMN installed_by TEXT;
ALTER TABLE plugin_versions ADD COLUMN manifest TEXT;

CREATE TABLE IF NOT EXISTS plugin_components (
    sha256 TEXT PRIMARY KEY,
    bytes  BYTEA NOT NULL
);

ALTER TABLE plugin_state ADD COLUMN state TEXT NOT NULL DEFAULT 'live';
ALTER TABLE plugin_state ADD COLUMN previous_version TEXT;

CREATE TABLE IF NOT EXISTS plugin_history (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    action  TEXT NOT NULL,
    version TEXT,
    actor   TEXT,
    detail  TEXT,
    at      BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS plugin_history_name ON plugin_history (name, at);
