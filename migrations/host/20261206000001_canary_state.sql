-- A running canary is registry state every replica serves alike: its version and the
-- share of requests it takes. A start clears it (a restart ends a canary).
ALTER TABLE plugin_state ADD COLUMN canary_version TEXT;
ALTER TABLE plugin_state ADD COLUMN canary_percent BIGINT;
