-- Analytics rollups, written at ingest in the same transaction as the executions and spans they
-- count (see prism-store/src/analytics.rs). One row per bucket (granularity 60, 3600 or 86400
-- seconds; bucket_start in nanoseconds) and dimension; `histogram` is a log-bucketed latency
-- histogram (prism_domain::analytics::LatencyHistogram). request_id is the nil UUID for ad-hoc
-- executions; method is '' for gRPC. A window is one range scan of the primary key.
CREATE TABLE execution_rollups (
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    granularity  BIGINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    request_id   UUID NOT NULL,
    protocol     TEXT NOT NULL,
    method       TEXT NOT NULL,
    endpoint     TEXT NOT NULL,
    status_class TEXT NOT NULL,
    executions   BIGINT NOT NULL,
    failures     BIGINT NOT NULL,
    duration_sum BIGINT NOT NULL,
    duration_max BIGINT NOT NULL,
    histogram    BYTEA NOT NULL,
    PRIMARY KEY (workspace_id, granularity, bucket_start, request_id, protocol, method, endpoint, status_class)
);
CREATE INDEX execution_rollups_by_request
    ON execution_rollups (workspace_id, request_id, granularity, bucket_start);

CREATE TABLE span_rollups (
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    granularity  BIGINT NOT NULL,
    bucket_start BIGINT NOT NULL,
    service      TEXT NOT NULL,
    spans        BIGINT NOT NULL,
    errors       BIGINT NOT NULL,
    duration_sum BIGINT NOT NULL,
    duration_max BIGINT NOT NULL,
    histogram    BYTEA NOT NULL,
    PRIMARY KEY (workspace_id, granularity, bucket_start, service)
);
