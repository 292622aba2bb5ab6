-- PRISM schema, version 1 (PostgreSQL). Timestamps are integer nanoseconds since the Unix epoch.
-- Keep in step with migrations/sqlite/0001_initial.sql (same tables, columns and indexes).

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE workspaces (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL,
    created_by UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE memberships (
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    joined_at    BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

CREATE TABLE collections (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    parent_id    UUID REFERENCES collections (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    position     BIGINT NOT NULL,
    created_by   UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX collections_by_workspace ON collections (workspace_id, parent_id, position);
CREATE INDEX collections_by_parent ON collections (parent_id);

CREATE TABLE requests (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    collection_id UUID NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    position      BIGINT NOT NULL,
    protocol      TEXT NOT NULL CHECK (protocol IN ('rest', 'graphql', 'grpc')),
    spec          JSONB NOT NULL,
    created_by    UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX requests_by_collection ON requests (collection_id, position);
CREATE INDEX requests_by_workspace ON requests (workspace_id);

CREATE TABLE environments (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    variables    JSONB NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX environments_by_workspace ON environments (workspace_id);

CREATE TABLE executions (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    request_id    UUID REFERENCES requests (id) ON DELETE SET NULL,
    protocol      TEXT NOT NULL CHECK (protocol IN ('rest', 'graphql', 'grpc')),
    method        TEXT,
    target        TEXT NOT NULL,
    endpoint      TEXT NOT NULL,
    status_code   INTEGER,
    failed        BOOLEAN NOT NULL,
    error_kind    TEXT,
    error_message TEXT,
    started_at    BIGINT NOT NULL,
    duration_ns   BIGINT NOT NULL,
    ttfb_ns       BIGINT,
    dns_ns        BIGINT,
    connect_ns    BIGINT,
    tls_ns        BIGINT,
    request_size  BIGINT NOT NULL,
    response_size BIGINT NOT NULL,
    trace_id      BYTEA NOT NULL,
    span_id       BYTEA NOT NULL,
    source        TEXT NOT NULL,
    created_by    UUID REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX executions_by_workspace_time ON executions (workspace_id, started_at);
CREATE INDEX executions_by_request_time ON executions (request_id, started_at);
CREATE INDEX executions_by_trace ON executions (trace_id);

CREATE TABLE execution_details (
    execution_id UUID PRIMARY KEY REFERENCES executions (id) ON DELETE CASCADE,
    request      JSONB NOT NULL,
    response     JSONB NOT NULL
);

CREATE TABLE spans (
    trace_id            BYTEA NOT NULL,
    span_id             BYTEA NOT NULL,
    parent_span_id      BYTEA,
    workspace_id        UUID REFERENCES workspaces (id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    service             TEXT NOT NULL,
    kind                INTEGER NOT NULL,
    start_ns            BIGINT NOT NULL,
    end_ns              BIGINT NOT NULL,
    status_code         INTEGER NOT NULL,
    status_message      TEXT,
    attributes          JSONB NOT NULL,
    events              JSONB NOT NULL,
    links               JSONB NOT NULL,
    resource_attributes JSONB NOT NULL,
    scope               JSONB NOT NULL,
    trace_state         TEXT,
    flags               BIGINT NOT NULL,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX spans_by_service_time ON spans (service, start_ns);
CREATE INDEX spans_by_workspace_time ON spans (workspace_id, start_ns);

CREATE TABLE workflows (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT,
    created_by   UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX workflows_by_workspace ON workflows (workspace_id);

CREATE TABLE workflow_steps (
    id               UUID PRIMARY KEY,
    workflow_id      UUID NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    position         BIGINT NOT NULL,
    name             TEXT NOT NULL,
    request_id       UUID NOT NULL REFERENCES requests (id),
    retry_count      INTEGER NOT NULL,
    retry_backoff_ms BIGINT NOT NULL,
    timeout_ms       BIGINT,
    condition        TEXT,
    extract          JSONB NOT NULL,
    assertions       JSONB NOT NULL,
    UNIQUE (workflow_id, position)
);
CREATE INDEX workflow_steps_by_request ON workflow_steps (request_id);

CREATE TABLE workflow_runs (
    id           UUID PRIMARY KEY,
    workflow_id  UUID NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'running', 'success', 'failed', 'skipped', 'cancelled')),
    trigger      TEXT NOT NULL,
    triggered_by UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at   BIGINT NOT NULL,
    started_at   BIGINT,
    ended_at     BIGINT,
    error        TEXT
);
CREATE INDEX workflow_runs_by_workflow ON workflow_runs (workflow_id, created_at);
CREATE INDEX workflow_runs_by_status ON workflow_runs (status);

-- execution_id has no foreign key: executions are written behind, and may land after the step.
CREATE TABLE workflow_run_steps (
    id           UUID PRIMARY KEY,
    run_id       UUID NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    step_id      UUID REFERENCES workflow_steps (id) ON DELETE SET NULL,
    position     BIGINT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'running', 'success', 'failed', 'skipped', 'cancelled')),
    attempts     INTEGER NOT NULL,
    execution_id UUID,
    started_at   BIGINT,
    ended_at     BIGINT,
    error        TEXT,
    outputs      JSONB NOT NULL
);
CREATE INDEX workflow_run_steps_by_run ON workflow_run_steps (run_id, position);

CREATE TABLE sessions (
    token_hash   BYTEA PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_hash    BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    user_agent   TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE api_tokens (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    token_hash   BYTEA NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    expires_at   BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
