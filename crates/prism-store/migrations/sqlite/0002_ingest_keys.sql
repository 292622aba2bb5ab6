-- Workspace ingest keys for OpenTelemetry exporters (only the SHA-256 of the secret is stored).
CREATE TABLE ingest_keys (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     BLOB NOT NULL UNIQUE,
    created_by   BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX ingest_keys_by_workspace ON ingest_keys (workspace_id);
