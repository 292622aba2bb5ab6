-- Workspace ingest keys for OpenTelemetry exporters (only the SHA-256 of the secret is stored).
CREATE TABLE ingest_keys (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     BYTEA NOT NULL UNIQUE,
    created_by   UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX ingest_keys_by_workspace ON ingest_keys (workspace_id);
