-- Analytics rollups, written at ingest in the same transaction as the executions and spans they
-- count (see prism-store/src/analytics.rs). One row per bucket (granularity 60, 3600 or 86400
-- seconds; bucket_start in nanoseconds) and dimension; `histogram` is a log-bucketed latency
-- histogram (prism_domain::analytics::LatencyHistogram). request_id is the nil UUID for ad-hoc
-- executions; method is '' for gRPC. Clustered by key, so a window is one range scan.
CREATE TABLE execution_rollups (
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    granularity  INTEGER NOT NULL,
    bucket_start INTEGER NOT NULL,
    request_id   BLOB NOT NULL,
    protocol     TEXT NOT NULL,
    method       TEXT NOT NULL,
    endpoint     TEXT NOT NULL,
    status_class TEXT NOT NULL,
    executions   INTEGER NOT NULL,
    failures     INTEGER NOT NULL,
    duration_sum INTEGER NOT NULL,
    duration_max INTEGER NOT NULL,
    histogram    BLOB NOT NULL,
    PRIMARY KEY (workspace_id, granularity, bucket_start, request_id, protocol, method, endpoint, status_class)
) STRICT, WITHOUT ROWID;
CREATE INDEX execution_rollups_by_request
    ON execution_rollups (workspace_id, request_id, granularity, bucket_start);

CREATE TABLE span_rollups (
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    granularity  INTEGER NOT NULL,
    bucket_start INTEGER NOT NULL,
    service      TEXT NOT NULL,
    spans        INTEGER NOT NULL,
    errors       INTEGER NOT NULL,
    duration_sum INTEGER NOT NULL,
    duration_max INTEGER NOT NULL,
    histogram    BLOB NOT NULL,
    PRIMARY KEY (workspace_id, granularity, bucket_start, service)
) STRICT, WITHOUT ROWID;
