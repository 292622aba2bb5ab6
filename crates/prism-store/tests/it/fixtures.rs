//! Small builders for domain values and seeding helpers shared by the conformance tests.

use std::fmt::Debug;
use std::sync::Arc;

use prism_domain::collection::Collection;
use prism_domain::environment::{Environment, Variable};
use prism_domain::execution::{ErrorKind, Execution, ExecutionSource};
use prism_domain::request::{
    Body, GraphqlSpec, GrpcSpec, GrpcTls, HttpSettings, KeyValue, ProtoFile, ProtoSource, Protocol,
    RequestSpec, RestSpec, SavedRequest,
};
use prism_domain::session::{ApiToken, Session};
use prism_domain::trace::{Scope, Span, SpanId, SpanKind, StatusCode, TraceId};
use prism_domain::user::{Email, User};
use prism_domain::workflow::{RunStatus, Workflow, WorkflowRun, WorkflowRunStep, WorkflowStep};
use prism_domain::workspace::Workspace;
use prism_domain::{
    ApiTokenId, CollectionId, EnvironmentId, ExecutionId, RequestId, Timestamp, UserId, WorkflowId,
    WorkflowRunId, WorkflowRunStepId, WorkflowStepId, WorkspaceId,
};
use prism_store::{Conflict, Store, StoreError};
use serde_json::json;

/// A fixed point in time, `offset` seconds after 2023-11-14T22:13:20Z. Tests never read the clock.
pub fn t(offset: i64) -> Timestamp {
    Timestamp::from_secs(1_700_000_000 + offset)
}

/// Asserts that `result` failed with exactly `expected`.
#[track_caller]
pub fn assert_conflict<T: Debug>(result: Result<T, StoreError>, expected: Conflict) {
    match result {
        Err(StoreError::Conflict(found)) => assert_eq!(found, expected),
        other => panic!("expected Conflict({expected:?}), got {other:?}"),
    }
}

/// Asserts that `result` failed with `NotFound`.
#[track_caller]
pub fn assert_not_found<T: Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::NotFound(_))),
        "expected NotFound, got {result:?}"
    );
}

/// Opens the pool's connections up front: a cold pool connects one caller at a time, which would
/// serialize racing tasks and hide the race a test is after.
pub async fn warm_up_connections(store: &Arc<dyn Store>) {
    for _ in 0..3 {
        for result in futures_util::future::join_all((0..8).map(|_| store.count_users())).await {
            result.expect("warm-up query");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Users and workspaces

pub fn user(email: &str) -> User {
    User {
        id: UserId::new(),
        email: Email::parse(email).expect("valid email"),
        name: format!("Name of {email}"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        is_admin: false,
        created_at: t(0),
        updated_at: t(0),
    }
}

pub async fn seed_user(store: &Arc<dyn Store>, email: &str) -> User {
    store.insert_user(&user(email)).await.expect("insert user")
}

pub fn workspace(name: &str, created_by: Option<UserId>) -> Workspace {
    Workspace {
        id: WorkspaceId::new(),
        name: name.into(),
        created_by,
        created_at: t(10),
        updated_at: t(10),
    }
}

pub async fn seed_workspace(store: &Arc<dyn Store>, owner: UserId, name: &str) -> Workspace {
    let ws = workspace(name, Some(owner));
    store
        .insert_workspace(&ws, owner)
        .await
        .expect("insert workspace");
    ws
}

/// A user and a workspace they own: the starting point of most tests.
pub struct World {
    pub owner: User,
    pub ws: Workspace,
}

pub async fn world(store: &Arc<dyn Store>) -> World {
    let owner = seed_user(store, "owner@example.test").await;
    let ws = seed_workspace(store, owner.id, "Main").await;
    World { owner, ws }
}

// ---------------------------------------------------------------------------------------------
// Collections and requests

pub fn collection(ws: WorkspaceId, parent: Option<CollectionId>, name: &str) -> Collection {
    Collection {
        id: CollectionId::new(),
        workspace_id: ws,
        parent_id: parent,
        name: name.into(),
        // The store decides positions; a bogus one here proves it does.
        position: 99,
        created_by: None,
        created_at: t(20),
        updated_at: t(20),
    }
}

pub async fn seed_collection(
    store: &Arc<dyn Store>,
    ws: WorkspaceId,
    parent: Option<CollectionId>,
    name: &str,
) -> Collection {
    store
        .insert_collection(&collection(ws, parent, name))
        .await
        .expect("insert collection")
}

pub fn kv(name: &str, value: &str) -> KeyValue {
    KeyValue::new(name, value)
}

pub fn disabled(name: &str, value: &str) -> KeyValue {
    KeyValue {
        name: name.into(),
        value: value.into(),
        enabled: false,
    }
}

pub fn rest_spec(body: Body) -> RequestSpec {
    RequestSpec::Rest(RestSpec {
        method: "POST".into(),
        url: "https://api.example.test/users/{{userId}}".into(),
        params: vec![
            kv("page", "2"),
            disabled("debug", "true"),
            kv("tag", "a"),
            kv("tag", "b"),
        ],
        headers: vec![
            kv("Accept", "application/json"),
            kv("Accept", "text/plain"),
            disabled("X-Trace", "off"),
            kv("Authorization", "Bearer {{token}}"),
        ],
        body,
        settings: HttpSettings {
            follow_redirects: Some(false),
            max_redirects: Some(3),
            timeout_ms: Some(u64::MAX),
            verify_tls: Some(true),
        },
    })
}

pub fn simple_rest_spec(url: &str) -> RequestSpec {
    RequestSpec::Rest(RestSpec {
        method: "GET".into(),
        url: url.into(),
        params: vec![],
        headers: vec![],
        body: Body::None,
        settings: HttpSettings::default(),
    })
}

pub fn graphql_spec() -> RequestSpec {
    RequestSpec::Graphql(GraphqlSpec {
        url: "https://api.example.test/graphql".into(),
        query: "query User($id: ID!) {\n  user(id: $id) { name \"quoted\" }\n}".into(),
        variables: Some(r#"{"id": "{{userId}}", "n": 1.50}"#.into()),
        operation_name: Some("User".into()),
        headers: vec![
            kv("X-Api-Key", "{{key}}"),
            disabled("X-Old", "1"),
            kv("X-Api-Key", "second"),
        ],
        settings: HttpSettings {
            follow_redirects: None,
            max_redirects: None,
            timeout_ms: Some(2500),
            verify_tls: Some(false),
        },
    })
}

pub fn grpc_spec() -> RequestSpec {
    RequestSpec::Grpc(GrpcSpec {
        address: "https://orders.example.test:443".into(),
        service: "acme.orders.v1.Orders".into(),
        method: "GetOrder".into(),
        proto: ProtoSource::Files {
            files: vec![
                ProtoFile {
                    name: "acme/orders/v1/orders.proto".into(),
                    content: "syntax = \"proto3\";\npackage acme.orders.v1;\nimport \"acme/common.proto\";\n\
                              service Orders { rpc GetOrder(GetOrderRequest) returns (Order); }\n"
                        .into(),
                },
                ProtoFile { name: "acme/common.proto".into(), content: "syntax = \"proto3\";\npackage acme;\n".into() },
            ],
        },
        tls: GrpcTls {
            enabled: true,
            ca_pem: Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into()),
            verify: Some(false),
        },
        metadata: vec![kv("authorization", "Bearer x"), kv("x-tenant", "a"), disabled("x-tenant", "b")],
        message: r#"{"id": "{{orderId}}"}"#.into(),
        timeout_ms: Some(30_000),
    })
}

pub fn request(
    ws: WorkspaceId,
    collection: CollectionId,
    name: &str,
    spec: RequestSpec,
) -> SavedRequest {
    SavedRequest {
        id: RequestId::new(),
        workspace_id: ws,
        collection_id: collection,
        name: name.into(),
        position: 99,
        spec,
        created_by: None,
        created_at: t(30),
        updated_at: t(30),
    }
}

pub async fn seed_request(
    store: &Arc<dyn Store>,
    ws: WorkspaceId,
    collection: CollectionId,
    name: &str,
) -> SavedRequest {
    let spec = simple_rest_spec(&format!("https://example.test/{name}"));
    store
        .insert_request(&request(ws, collection, name, spec))
        .await
        .expect("insert request")
}

// ---------------------------------------------------------------------------------------------
// Environments

pub fn variable(name: &str, value: &str, secret: bool, enabled: bool) -> Variable {
    Variable {
        name: name.into(),
        value: value.into(),
        secret,
        enabled,
    }
}

pub fn environment(ws: WorkspaceId, name: &str, variables: Vec<Variable>) -> Environment {
    Environment {
        id: EnvironmentId::new(),
        workspace_id: ws,
        name: name.into(),
        variables,
        created_at: t(40),
        updated_at: t(40),
    }
}

// ---------------------------------------------------------------------------------------------
// Executions and spans

/// A successful REST execution in `ws` started at `started_at`.
pub fn execution(ws: WorkspaceId, started_at: Timestamp) -> Execution {
    Execution {
        id: ExecutionId::new(),
        workspace_id: ws,
        request_id: None,
        protocol: Protocol::Rest,
        method: Some("GET".into()),
        target: "https://api.example.test/users/42".into(),
        endpoint: "GET https://api.example.test/users/{id}".into(),
        status_code: Some(200),
        failed: false,
        error_kind: None,
        error_message: None,
        started_at,
        duration_ns: 12_345_678,
        ttfb_ns: Some(10_000_000),
        dns_ns: Some(1_000),
        connect_ns: Some(2_000),
        tls_ns: Some(3_000),
        request_size: 128,
        response_size: 4096,
        trace_id: TraceId::random(),
        span_id: SpanId::random(),
        source: ExecutionSource::Api,
        created_by: None,
    }
}

/// A REST execution that never got an answer.
pub fn transport_failure(ws: WorkspaceId, started_at: Timestamp) -> Execution {
    Execution {
        status_code: None,
        failed: true,
        error_kind: Some(ErrorKind::ConnectionRefused),
        error_message: Some("connection refused (os error 111)".into()),
        ttfb_ns: None,
        dns_ns: Some(500),
        connect_ns: None,
        tls_ns: None,
        response_size: 0,
        ..execution(ws, started_at)
    }
}

/// A gRPC execution with the given status code.
pub fn grpc_execution(ws: WorkspaceId, started_at: Timestamp, code: i32) -> Execution {
    Execution {
        protocol: Protocol::Grpc,
        method: None,
        target: "orders.example.test:443/acme.orders.v1.Orders/GetOrder".into(),
        endpoint: "acme.orders.v1.Orders/GetOrder".into(),
        status_code: Some(code),
        failed: code != 0,
        source: ExecutionSource::DataPlane,
        ..execution(ws, started_at)
    }
}

/// A GraphQL execution answered with `status`.
pub fn graphql_execution(ws: WorkspaceId, started_at: Timestamp, status: i32) -> Execution {
    Execution {
        protocol: Protocol::Graphql,
        method: Some("POST".into()),
        target: "https://api.example.test/graphql".into(),
        endpoint: "POST https://api.example.test/graphql".into(),
        status_code: Some(status),
        failed: status >= 400,
        source: ExecutionSource::Workflow,
        ..execution(ws, started_at)
    }
}

/// A span with every optional part empty.
pub fn span(trace_id: TraceId, service: &str, start: Timestamp) -> Span {
    Span {
        trace_id,
        span_id: SpanId::random(),
        parent_span_id: None,
        workspace_id: None,
        name: format!("{service} span"),
        service: service.into(),
        kind: SpanKind::Server,
        start,
        end: start.plus_nanos(1_000_000),
        status_code: StatusCode::Unset,
        status_message: None,
        attributes: Default::default(),
        events: vec![],
        links: vec![],
        resource_attributes: Default::default(),
        scope: Scope::default(),
        trace_state: None,
        flags: 1,
    }
}

/// A JSON object for attributes.
pub fn attrs(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

pub fn sample_attrs() -> serde_json::Map<String, serde_json::Value> {
    attrs(json!({
        "http.method": "GET",
        "http.status_code": 200,
        "net.peer.port": -1,
        "ratio": 0.25,
        "big": u64::MAX,
        "ok": true,
        "tags": ["a", "b", 3],
        "nested": {"k": null, "ü": "ünïcödé ✓"},
    }))
}

// ---------------------------------------------------------------------------------------------
// Workflows

pub fn workflow(ws: WorkspaceId, name: &str, created_at: Timestamp) -> Workflow {
    Workflow {
        id: WorkflowId::new(),
        workspace_id: ws,
        name: name.into(),
        description: Some(format!("What {name} does")),
        created_by: None,
        created_at,
        updated_at: created_at,
    }
}

pub fn step(workflow: WorkflowId, request: RequestId, name: &str) -> WorkflowStep {
    WorkflowStep {
        id: WorkflowStepId::new(),
        workflow_id: workflow,
        position: 42,
        name: name.into(),
        request_id: request,
        retry_count: 2,
        retry_backoff_ms: 250,
        timeout_ms: Some(5_000),
        condition: Some("steps.login.status == 200".into()),
        extract: json!({"token": "$.body.token", "ids": ["$.a", "$.b"]}),
        assertions: json!([{"path": "status", "equals": 200}]),
    }
}

pub fn run(workflow: &Workflow, status: RunStatus, created_at: Timestamp) -> WorkflowRun {
    WorkflowRun {
        id: WorkflowRunId::new(),
        workflow_id: workflow.id,
        workspace_id: workflow.workspace_id,
        status,
        trigger: "manual".into(),
        triggered_by: None,
        created_at,
        started_at: None,
        ended_at: None,
        error: None,
    }
}

pub fn run_step(
    run: WorkflowRunId,
    step: Option<WorkflowStepId>,
    position: i64,
    status: RunStatus,
) -> WorkflowRunStep {
    WorkflowRunStep {
        id: WorkflowRunStepId::new(),
        run_id: run,
        step_id: step,
        position,
        status,
        attempts: 0,
        execution_id: None,
        started_at: None,
        ended_at: None,
        error: None,
        outputs: json!({}),
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions and tokens

pub fn session(user: UserId, token_hash: &[u8], expires_at: Timestamp) -> Session {
    Session {
        token_hash: token_hash.to_vec(),
        user_id: user,
        csrf_hash: [token_hash, b"-csrf"].concat(),
        created_at: t(0),
        expires_at,
        last_seen_at: t(0),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
    }
}

pub fn api_token(user: UserId, token_hash: &[u8], created_at: Timestamp) -> ApiToken {
    ApiToken {
        id: ApiTokenId::new(),
        user_id: user,
        name: "ci".into(),
        prefix: "prism_ab12".into(),
        token_hash: token_hash.to_vec(),
        created_at,
        last_used_at: None,
        expires_at: None,
        revoked_at: None,
    }
}
