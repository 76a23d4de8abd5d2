-- Plugin files when `[files] backend` is the database (the default on PostgreSQL, where
-- every replica must serve the same files). BYTEA is PostgreSQL's byte string; SQLite
-- stores the blob as it is under any declared type.
CREATE TABLE plugin_files (
    plugin TEXT NOT NULL,
    path TEXT NOT NULL,
    data BYTEA NOT NULL,
    size BIGINT NOT NULL,
    modified_at BIGINT NOT NULL,
    PRIMARY KEY (plugin, path)
);

-- Bytes each plugin stores, against its files:MiB quota. A write's transaction takes
-- this row first, which serialises one plugin's writes on every replica.
CREATE TABLE plugin_file_usage (
    plugin TEXT PRIMARY KEY,
    used BIGINT NOT NULL
);
