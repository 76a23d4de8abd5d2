-- Grants the operator approved for a plugin at enable (`--grant`), beyond the ones its
-- configuration lists. A version goes live only if everything it asks for is approved.
CREATE TABLE IF NOT EXISTS plugin_grants (
    name        TEXT NOT NULL,
    capability  TEXT NOT NULL,
    approved_by TEXT,
    approved_at BIGINT NOT NULL,
    PRIMARY KEY (name, capability)
);
