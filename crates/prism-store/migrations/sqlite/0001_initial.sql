-- PRISM schema, version 1 (SQLite). Timestamps are integer nanoseconds since the Unix epoch.
-- Keep in step with migrations/postgres/0001_initial.sql (same tables, columns and indexes).

CREATE TABLE users (
    id            BLOB PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE workspaces (
    id         BLOB PRIMARY KEY,
    name       TEXT NOT NULL,
    created_by BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE memberships (
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    joined_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
) STRICT;
CREATE INDEX memberships_by_user ON memberships (user_id);

CREATE TABLE collections (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    parent_id    BLOB REFERENCES collections (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    position     INTEGER NOT NULL,
    created_by   BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX collections_by_workspace ON collections (workspace_id, parent_id, position);
CREATE INDEX collections_by_parent ON collections (parent_id);

CREATE TABLE requests (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    collection_id BLOB NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    position      INTEGER NOT NULL,
    protocol      TEXT NOT NULL CHECK (protocol IN ('rest', 'graphql', 'grpc')),
    spec          TEXT NOT NULL,
    created_by    BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX requests_by_collection ON requests (collection_id, position);
CREATE INDEX requests_by_workspace ON requests (workspace_id);

CREATE TABLE environments (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    variables    TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX environments_by_workspace ON environments (workspace_id);

CREATE TABLE executions (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    request_id    BLOB REFERENCES requests (id) ON DELETE SET NULL,
    protocol      TEXT NOT NULL CHECK (protocol IN ('rest', 'graphql', 'grpc')),
    method        TEXT,
    target        TEXT NOT NULL,
    endpoint      TEXT NOT NULL,
    status_code   INTEGER,
    failed        INTEGER NOT NULL,
    error_kind    TEXT,
    error_message TEXT,
    started_at    INTEGER NOT NULL,
    duration_ns   INTEGER NOT NULL,
    ttfb_ns       INTEGER,
    dns_ns        INTEGER,
    connect_ns    INTEGER,
    tls_ns        INTEGER,
    request_size  INTEGER NOT NULL,
    response_size INTEGER NOT NULL,
    trace_id      BLOB NOT NULL,
    span_id       BLOB NOT NULL,
    source        TEXT NOT NULL,
    created_by    BLOB REFERENCES users (id) ON DELETE SET NULL
) STRICT;
CREATE INDEX executions_by_workspace_time ON executions (workspace_id, started_at);
CREATE INDEX executions_by_request_time ON executions (request_id, started_at);
CREATE INDEX executions_by_trace ON executions (trace_id);

CREATE TABLE execution_details (
    execution_id BLOB PRIMARY KEY REFERENCES executions (id) ON DELETE CASCADE,
    request      TEXT NOT NULL,
    response     TEXT NOT NULL
) STRICT;

CREATE TABLE spans (
    trace_id            BLOB NOT NULL,
    span_id             BLOB NOT NULL,
    parent_span_id      BLOB,
    workspace_id        BLOB REFERENCES workspaces (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    service             TEXT NOT NULL,
    kind                INTEGER NOT NULL,
    start_ns            INTEGER NOT NULL,
    end_ns              INTEGER NOT NULL,
    status_code         INTEGER NOT NULL,
    status_message      TEXT,
    attributes          TEXT NOT NULL,
    events              TEXT NOT NULL,
    links               TEXT NOT NULL,
    resource_attributes TEXT NOT NULL,
    scope               TEXT NOT NULL,
    trace_state         TEXT,
    flags               INTEGER NOT NULL,
    PRIMARY KEY (trace_id, span_id)
) STRICT;
CREATE INDEX spans_by_service_time ON spans (service, start_ns);
CREATE INDEX spans_by_workspace_time ON spans (workspace_id, start_ns);

CREATE TABLE workflows (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT,
    created_by   BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX workflows_by_workspace ON workflows (workspace_id);

CREATE TABLE workflow_steps (
    id               BLOB PRIMARY KEY,
    workflow_id      BLOB NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    name             TEXT NOT NULL,
    request_id       BLOB NOT NULL REFERENCES requests (id),
    retry_count      INTEGER NOT NULL,
    retry_backoff_ms INTEGER NOT NULL,
    timeout_ms       INTEGER,
    condition        TEXT,
    extract          TEXT NOT NULL,
    assertions       TEXT NOT NULL,
    UNIQUE (workflow_id, position)
) STRICT;
CREATE INDEX workflow_steps_by_request ON workflow_steps (request_id);

CREATE TABLE workflow_runs (
    id           BLOB PRIMARY KEY,
    workflow_id  BLOB NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'running', 'success', 'failed', 'skipped', 'cancelled')),
    trigger      TEXT NOT NULL,
    triggered_by BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    ended_at     INTEGER,
    error        TEXT
) STRICT;
CREATE INDEX workflow_runs_by_workflow ON workflow_runs (workflow_id, created_at);
CREATE INDEX workflow_runs_by_status ON workflow_runs (status);

-- execution_id has no foreign key: executions are written behind, and may land after the step.
CREATE TABLE workflow_run_steps (
    id           BLOB PRIMARY KEY,
    run_id       BLOB NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    step_id      BLOB REFERENCES workflow_steps (id) ON DELETE SET NULL,
    position     INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'running', 'success', 'failed', 'skipped', 'cancelled')),
    attempts     INTEGER NOT NULL,
    execution_id BLOB,
    started_at   INTEGER,
    ended_at     INTEGER,
    error        TEXT,
    outputs      TEXT NOT NULL
) STRICT;
CREATE INDEX workflow_run_steps_by_run ON workflow_run_steps (run_id, position);

CREATE TABLE sessions (
    token_hash   BLOB PRIMARY KEY,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_hash    BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    user_agent   TEXT
) STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE api_tokens (
    id           BLOB PRIMARY KEY,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    token_hash   BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    expires_at   INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
