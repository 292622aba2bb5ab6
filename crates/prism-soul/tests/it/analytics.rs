//! Workspace analytics: what was recorded comes back (counts, failures, percentiles, series, top
//! endpoints, histogram, services), every filter narrows it, bad input is refused with stable
//! codes, and the role matrix.

use prism_testkit::for_each_backend;
use reqwest::Method;

use crate::support::{Call, Cast, Matrix, with_cast};

mod suite {
    use super::*;
    use std::sync::Arc;

    use prism_domain::collection::Collection;
    use prism_domain::execution::{ErrorKind, Execution, ExecutionSource};
    use prism_domain::request::{
        Body, HttpSettings, Protocol, RequestSpec, RestSpec, SavedRequest,
    };
    use prism_domain::trace::{Scope, Span, SpanId, SpanKind, StatusCode, TraceId};
    use prism_domain::{CollectionId, ExecutionId, RequestId, Timestamp, WorkspaceId};
    use prism_store::Store;
    use serde_json::Value;

    use crate::support::now;

    const MS: i64 = 1_000_000;

    async fn collection(
        store: &Arc<dyn Store>,
        ws: WorkspaceId,
        parent: Option<CollectionId>,
    ) -> CollectionId {
        let c = Collection {
            id: CollectionId::new(),
            workspace_id: ws,
            parent_id: parent,
            name: "C".into(),
            position: 0,
            created_by: None,
            created_at: now(),
            updated_at: now(),
        };
        store.insert_collection(&c).await.unwrap().id
    }

    async fn request(store: &Arc<dyn Store>, ws: WorkspaceId, c: CollectionId) -> RequestId {
        let r = SavedRequest {
            id: RequestId::new(),
            workspace_id: ws,
            collection_id: c,
            name: "R".into(),
            position: 0,
            spec: RequestSpec::Rest(RestSpec {
                method: "GET".into(),
                url: "https://api.test/users/1".into(),
                params: vec![],
                headers: vec![],
                body: Body::None,
                settings: HttpSettings::default(),
            }),
            created_by: None,
            created_at: now(),
            updated_at: now(),
        };
        store.insert_request(&r).await.unwrap().id
    }

    fn execution(
        ws: WorkspaceId,
        request: Option<RequestId>,
        endpoint: &str,
        status: Option<i32>,
        ms: i64,
    ) -> Execution {
        Execution {
            id: ExecutionId::new(),
            workspace_id: ws,
            request_id: request,
            protocol: Protocol::Rest,
            method: Some("GET".into()),
            target: "https://api.test".into(),
            endpoint: endpoint.into(),
            status_code: status,
            failed: status.is_none_or(|s| s >= 400),
            error_kind: status.is_none().then_some(ErrorKind::Timeout),
            error_message: None,
            started_at: Timestamp(now().nanos() - 5 * 60_000 * MS),
            duration_ns: ms * MS,
            ttfb_ns: None,
            dns_ns: None,
            connect_ns: None,
            tls_ns: None,
            request_size: 10,
            response_size: 10,
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            source: ExecutionSource::Api,
            created_by: None,
        }
    }

    fn span(ws: WorkspaceId, service: &str, ms: i64, error: bool) -> Span {
        let start = Timestamp(now().nanos() - 3 * 60_000 * MS);
        Span {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            parent_span_id: None,
            workspace_id: Some(ws),
            name: "op".into(),
            service: service.into(),
            kind: SpanKind::Server,
            start,
            end: start.plus_nanos(ms * MS),
            status_code: if error {
                StatusCode::Error
            } else {
                StatusCode::Ok
            },
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

    /// Within the documented percentile bound of `exact`.
    #[track_caller]
    fn close(got: &Value, exact: f64) {
        let got = got.as_f64().unwrap();
        assert!(
            (got - exact).abs() / exact <= prism_domain::analytics::RELATIVE_ERROR,
            "{got} vs {exact}"
        );
    }

    pub async fn analytics_report_what_was_recorded(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let store = c.soul.store.clone();
            let ws = c.workspace;
            let top = collection(&store, ws, None).await;
            let folder = collection(&store, ws, Some(top)).await;
            let elsewhere = collection(&store, ws, None).await;
            let in_folder = request(&store, ws, folder).await;
            let outside = request(&store, ws, elsewhere).await;
            // 100 OK executions of 1..=100 ms on /users/{id} (in the folder), 10 that failed with
            // 503 at 500 ms and 5 without an answer on /orders (outside), one ad-hoc.
            let mut rows: Vec<Execution> = (1..=100)
                .map(|ms| execution(ws, Some(in_folder), "/users/{id}", Some(200), ms))
                .collect();
            rows.extend((0..10).map(|_| execution(ws, Some(outside), "/orders", Some(503), 500)));
            rows.extend((0..5).map(|_| execution(ws, Some(outside), "/orders", None, 2_000)));
            rows.push(execution(ws, None, "/health", Some(204), 3));
            store.insert_executions(&rows).await.unwrap();
            let spans: Vec<Span> = (1..=20)
                .map(|i| span(ws, if i % 2 == 0 { "api" } else { "db" }, i, i == 4))
                .collect();
            store.insert_spans(&spans).await.unwrap();

            let path = format!("/api/workspaces/{ws}/analytics");
            let all = c.viewer.get(&format!("{path}?window=1h")).await.expect(200);
            let b = &all.body;
            assert_eq!(b["count"], 116);
            assert_eq!(b["failures"], 15);
            assert_eq!(b["successes"], 101);
            assert_eq!(b["bucket_seconds"], 60);
            assert_eq!(b["latency_ms"]["max"], 2_000.0);
            // Sorted: 1, 2, 3, 3, 4 … 100 (101 values), then 10 × 500, then 5 × 2000.
            close(&b["latency_ms"]["p50"], 57.0);
            close(&b["latency_ms"]["p90"], 500.0);
            close(&b["latency_ms"]["p99"], 2_000.0);
            let series = b["series"].as_array().unwrap();
            assert_eq!(series.len(), 1);
            assert_eq!(series[0]["count"], 116);
            assert_eq!(series[0]["failures"], 15);
            let by_count = b["top_endpoints"]["by_count"].as_array().unwrap();
            assert_eq!(by_count[0]["endpoint"], "/users/{id}");
            assert_eq!(by_count[0]["count"], 100);
            assert_eq!(by_count[0]["method"], "GET");
            let by_error = b["top_endpoints"]["by_error_rate"].as_array().unwrap();
            assert_eq!(by_error[0]["endpoint"], "/orders");
            assert_eq!(by_error[0]["error_rate"], 1.0);
            let by_p99 = b["top_endpoints"]["by_p99"].as_array().unwrap();
            assert_eq!(by_p99[0]["endpoint"], "/orders");
            let histogram = b["histogram"].as_array().unwrap();
            let counted: u64 = histogram.iter().map(|h| h["count"].as_u64().unwrap()).sum();
            assert_eq!(counted, 116);
            assert!(histogram.last().unwrap()["le_ms"].as_f64().unwrap() >= 2_000.0);
            let services = b["services"].as_array().unwrap();
            assert_eq!(services.len(), 2);
            assert_eq!(services[0]["service"], "api");
            assert_eq!(services[0]["spans"], 10);
            assert_eq!(services[0]["errors"], 1);
            close(&services[0]["p95_ms"], 20.0);

            // Filters: the collection covers its folder; each narrows to exactly its rows.
            for (query, count, failures) in [
                (format!("collection_id={top}"), 100, 0),
                (format!("collection_id={elsewhere}"), 15, 15),
                (format!("request_id={outside}&status=5xx"), 10, 10),
                (format!("collection_id={top}&request_id={outside}"), 0, 0),
                ("status=no_response".to_owned(), 5, 5),
                ("method=GET&endpoint=/health".to_owned(), 1, 0),
                ("protocol=grpc".to_owned(), 0, 0),
            ] {
                let got = c
                    .viewer
                    .get(&format!("{path}?window=24h&{query}"))
                    .await
                    .expect(200);
                assert_eq!(
                    (got.body["count"].as_u64(), got.body["failures"].as_u64()),
                    (Some(count), Some(failures)),
                    "{query}"
                );
            }

            // A window without executions: zeros and empty lists.
            let empty = c
                .viewer
                .get(&format!(
                    "{path}?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z"
                ))
                .await
                .expect(200);
            assert_eq!(empty.body["count"], 0);
            assert_eq!(empty.body["latency_ms"]["p99"], 0.0);
            assert_eq!(empty.body["series"], serde_json::json!([]));
            assert_eq!(empty.body["histogram"], serde_json::json!([]));
            assert_eq!(empty.body["services"], serde_json::json!([]));
            assert_eq!(empty.body["bucket_seconds"], 3_600);
        })
        .await;
    }

    pub async fn bad_input_is_refused_with_stable_codes(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let store = c.soul.store.clone();
            // A collection and request of the outsider's workspace.
            let theirs = c.soul.workspace(&c.outsider, "Theirs").await;
            let their_collection = collection(&store, theirs, None).await;
            let their_request = request(&store, theirs, their_collection).await;
            let path = format!("/api/workspaces/{}/analytics", c.ws());
            for (query, status, code, field) in [
                ("window=2d", 422, "invalid_window", Some("window")),
                (
                    "window=1h&from=2024-01-01T00:00:00Z",
                    422,
                    "invalid_range",
                    Some("window"),
                ),
                (
                    "from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z",
                    422,
                    "invalid_range",
                    Some("from"),
                ),
                (
                    "to=2024-01-01T00:00:00Z",
                    422,
                    "invalid_range",
                    Some("from"),
                ),
                (
                    "from=2023-01-01T00:00:00Z&to=2024-03-01T00:00:00Z",
                    422,
                    "range_too_large",
                    Some("from"),
                ),
                ("from=yesterday", 422, "invalid_field", Some("from")),
                ("protocol=soap", 422, "invalid_field", Some("protocol")),
                ("status=6xx", 422, "invalid_field", Some("status")),
                ("request_id=nope", 422, "invalid_field", Some("request_id")),
                ("dimension=region", 400, "invalid_query", None),
            ] {
                let got = c.viewer.get(&format!("{path}?{query}")).await;
                assert_eq!(got.status, status, "{query}: {}", got.body);
                assert_eq!(got.code(), code, "{query}");
                assert_eq!(got.body["field"].as_str(), field, "{query}");
            }
            let other_request = c
                .viewer
                .get(&format!("{path}?request_id={their_request}"))
                .await
                .expect(422);
            assert_eq!(other_request.code(), "request_not_found");
            let other_collection = c
                .viewer
                .get(&format!("{path}?collection_id={their_collection}"))
                .await
                .expect(422);
            assert_eq!(other_collection.code(), "collection_not_found");
        })
        .await;
    }

    pub async fn analytics_role_matrix(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let mut matrix = Matrix::default();
            let got = c
                .statuses(async |c| {
                    Call::new(
                        Method::GET,
                        format!("/api/workspaces/{}/analytics?window=7d", c.ws()),
                        None,
                    )
                })
                .await;
            matrix.row("GET analytics", [200, 200, 200, 404], got);
            matrix.assert();
            // Documented in OpenAPI, with its filters.
            let doc = c.viewer.get("/api/openapi.json").await.expect(200);
            let op = &doc.body["paths"]["/api/workspaces/{id}/analytics"]["get"];
            assert_eq!(op["tags"][0], "analytics");
            let params: Vec<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            for name in [
                "window",
                "from",
                "to",
                "collection_id",
                "request_id",
                "status",
            ] {
                assert!(params.contains(&name), "{name} in {params:?}");
            }
        })
        .await;
    }
}

for_each_backend!(crate::analytics::suite =>
    analytics_report_what_was_recorded,
    bad_input_is_refused_with_stable_codes,
    analytics_role_matrix,
);
