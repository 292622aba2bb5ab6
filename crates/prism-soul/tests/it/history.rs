//! History and traces: execution filters and pages, one execution with its snapshot, a trace for
//! members only, and trace search.

use prism_testkit::for_each_backend;
use reqwest::Method;
use serde_json::json;

use crate::support::{Call, Cast, Echo, Matrix, rest_spec, with_cast};

mod suite {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    use prism_domain::execution::{ErrorKind, Execution, ExecutionSource};
    use prism_domain::request::Protocol;
    use prism_domain::trace::{Span, SpanId, SpanKind, StatusCode, TraceId};
    use prism_domain::{ExecutionId, Timestamp, WorkspaceId};
    use prism_store::Store;
    use serde_json::Value;

    /// 2023-11-14T22:13:20Z plus `secs`.
    fn t(secs: i64) -> Timestamp {
        Timestamp::from_secs(1_700_000_000 + secs)
    }

    fn execution(ws: WorkspaceId, started_at: Timestamp) -> Execution {
        Execution {
            id: ExecutionId::new(),
            workspace_id: ws,
            request_id: None,
            protocol: Protocol::Rest,
            method: Some("GET".into()),
            target: "https://api.example.test/users/42".into(),
            endpoint: "/users/{id}".into(),
            status_code: Some(200),
            failed: false,
            error_kind: None,
            error_message: None,
            started_at,
            duration_ns: 12_345_678,
            ttfb_ns: Some(10_000_000),
            dns_ns: None,
            connect_ns: Some(2_500_000),
            tls_ns: None,
            request_size: 128,
            response_size: 4096,
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            source: ExecutionSource::Api,
            created_by: None,
        }
    }

    fn ids(answer: &Value) -> Vec<String> {
        answer["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no items in {answer}"))
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Ids of `all` (newest first) that satisfy `keep`.
    fn expected(all: &[Execution], keep: impl Fn(&Execution) -> bool) -> Vec<String> {
        let mut kept: Vec<&Execution> = all.iter().filter(|e| keep(e)).collect();
        kept.sort_by_key(|e| std::cmp::Reverse((e.started_at, e.id)));
        kept.iter().map(|e| e.id.to_string()).collect()
    }

    pub async fn executions_are_filtered_and_paged(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let ws = c.workspace;
            let request = c
                .soul
                .saved_request(ws, rest_spec("GET", "http://unused.test"))
                .await;
            let mut all = vec![
                Execution {
                    request_id: Some(request),
                    ..execution(ws, t(10))
                },
                Execution {
                    status_code: Some(404),
                    failed: true,
                    ..execution(ws, t(20))
                },
                Execution {
                    status_code: Some(503),
                    failed: true,
                    request_id: Some(request),
                    ..execution(ws, t(30))
                },
                Execution {
                    status_code: Some(302),
                    ..execution(ws, t(40))
                },
                Execution {
                    protocol: Protocol::Graphql,
                    method: Some("POST".into()),
                    ..execution(ws, t(50))
                },
                Execution {
                    protocol: Protocol::Grpc,
                    method: None,
                    status_code: Some(14),
                    failed: true,
                    ..execution(ws, t(60))
                },
                Execution {
                    status_code: None,
                    failed: true,
                    error_kind: Some(ErrorKind::ConnectionRefused),
                    error_message: Some("connection refused".into()),
                    ..execution(ws, t(70))
                },
            ];
            // Two at the same instant: the id breaks the tie, and paging must not lose either.
            all.push(execution(ws, t(70)));
            let elsewhere = c.soul.workspace(&c.admin, "Elsewhere").await;
            let foreign = execution(elsewhere, t(65));
            let mut batch = all.clone();
            batch.push(foreign.clone());
            c.soul.store.insert_executions(&batch).await.unwrap();

            let list = async |query: &str| {
                c.viewer
                    .get(&format!("/api/workspaces/{}/executions{query}", c.ws()))
                    .await
                    .expect(200)
                    .body
            };
            let everything = list("").await;
            assert_eq!(ids(&everything), expected(&all, |_| true));
            assert_eq!(everything["next_cursor"], Value::Null);

            // The item shape: times in RFC 3339, durations in milliseconds.
            let first = &all[0];
            let shown = everything["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["id"] == first.id.to_string())
                .unwrap();
            assert_eq!(
                *shown,
                json!({
                    "id": first.id.to_string(),
                    "workspace_id": ws.to_string(),
                    "request_id": request.to_string(),
                    "protocol": "rest",
                    "method": "GET",
                    "target": "https://api.example.test/users/42",
                    "endpoint": "/users/{id}",
                    "status_code": 200,
                    "failed": false,
                    "error_kind": null,
                    "error_message": null,
                    "started_at": "2023-11-14T22:13:30Z",
                    "duration_ms": 12.345678,
                    "ttfb_ms": 10.0,
                    "dns_ms": null,
                    "connect_ms": 2.5,
                    "tls_ms": null,
                    "request_size": 128,
                    "response_size": 4096,
                    "trace_id": first.trace_id.to_string(),
                    "span_id": first.span_id.to_string(),
                    "source": "api",
                    "created_by": null,
                })
            );

            let cases: Vec<(String, Vec<String>)> = vec![
                (
                    format!("?request_id={request}"),
                    expected(&all, |e| e.request_id == Some(request)),
                ),
                (
                    "?protocol=rest".into(),
                    expected(&all, |e| e.protocol == Protocol::Rest),
                ),
                (
                    "?protocol=grpc".into(),
                    expected(&all, |e| e.protocol == Protocol::Grpc),
                ),
                (
                    "?status=2xx".into(),
                    expected(&all, |e| {
                        e.status_code.is_some_and(|s| (200..300).contains(&s))
                    }),
                ),
                (
                    "?status=3xx".into(),
                    expected(&all, |e| e.status_code == Some(302)),
                ),
                (
                    "?status=4xx".into(),
                    expected(&all, |e| e.status_code == Some(404)),
                ),
                (
                    "?status=5xx".into(),
                    expected(&all, |e| e.status_code == Some(503)),
                ),
                ("?status=failed".into(), expected(&all, |e| e.failed)),
                ("?status=ok".into(), expected(&all, |e| !e.failed)),
                (
                    "?from=2023-11-14T22:13:50Z&to=2023-11-14T22:14:10Z".into(),
                    expected(&all, |e| e.started_at >= t(30) && e.started_at < t(50)),
                ),
                (
                    "?protocol=rest&status=failed&from=2023-11-14T23:13:40%2B01:00".into(),
                    expected(&all, |e| {
                        e.protocol == Protocol::Rest && e.failed && e.started_at >= t(20)
                    }),
                ),
            ];
            for (query, want) in cases {
                assert_eq!(ids(&list(&query).await), want, "{query}");
            }

            // Pages of three cover everything once, newest first.
            let mut paged = Vec::new();
            let mut cursor: Option<String> = None;
            let mut pages = 0;
            loop {
                let query = match &cursor {
                    Some(c) => format!("?limit=3&cursor={c}"),
                    None => "?limit=3".into(),
                };
                let page = list(&query).await;
                pages += 1;
                let got = ids(&page);
                assert!(got.len() <= 3);
                paged.extend(got);
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            assert_eq!(pages, 3);
            assert_eq!(paged, expected(&all, |_| true));
            // Filters and pages combine.
            let failed_page = list("?status=failed&limit=2").await;
            let next = failed_page["next_cursor"].as_str().unwrap();
            let mut failed = ids(&failed_page);
            failed.extend(ids(
                &list(&format!("?status=failed&limit=2&cursor={next}")).await
            ));
            assert_eq!(failed, expected(&all, |e| e.failed));
            assert!(!paged.contains(&foreign.id.to_string()));
        })
        .await;
    }

    pub async fn bad_history_parameters_are_named(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let base = format!("/api/workspaces/{}/executions", c.ws());
            for (query, field) in [
                ("status=6xx", "status"),
                ("protocol=soap", "protocol"),
                ("from=yesterday", "from"),
                ("to=2023-13-01T00:00:00Z", "to"),
                ("from=2023-11-15T00:00:00Z&to=2023-11-14T00:00:00Z", "to"),
                ("limit=0", "limit"),
                ("limit=1001", "limit"),
                ("limit=ten", "limit"),
                ("cursor=garbage", "cursor"),
                ("request_id=nope", "request_id"),
            ] {
                let answer = c.viewer.get(&format!("{base}?{query}")).await.expect(422);
                assert_eq!(answer.body["field"], field, "{query}");
                assert_eq!(answer.code(), "invalid_field");
            }
            let unknown = c
                .viewer
                .get(&format!("{base}?colour=red"))
                .await
                .expect(400);
            assert_eq!(unknown.code(), "invalid_query");

            let elsewhere = c.soul.workspace(&c.admin, "Elsewhere").await;
            let foreign = c
                .soul
                .saved_request(elsewhere, rest_spec("GET", "http://unused.test"))
                .await;
            for id in [foreign, prism_domain::RequestId::new()] {
                let answer = c
                    .viewer
                    .get(&format!("{base}?request_id={id}"))
                    .await
                    .expect(404);
                assert_eq!(answer.code(), "request_not_found");
            }
            let outsider = c.outsider.get(&base).await.expect(404);
            assert_eq!(outsider.code(), "workspace_not_found");

            let traces = format!("/api/workspaces/{}/traces", c.ws());
            for (query, field) in [
                ("error=maybe", "error"),
                ("min_duration_ms=-1", "min_duration_ms"),
                ("max_duration_ms=soon", "max_duration_ms"),
                ("min_duration_ms=10&max_duration_ms=5", "max_duration_ms"),
                ("limit=0", "limit"),
                ("from=noon", "from"),
            ] {
                let answer = c.viewer.get(&format!("{traces}?{query}")).await.expect(422);
                assert_eq!(answer.body["field"], field, "{query}");
            }
            c.viewer.get(&format!("{traces}?tag=x")).await.expect(400);
            let outsider = c.outsider.get(&traces).await.expect(404);
            assert_eq!(outsider.code(), "workspace_not_found");
        })
        .await;
    }

    pub async fn sent_execution_and_its_trace_are_shown_to_members(store: Arc<dyn Store>) {
        let echo = Echo::start().await;
        with_cast(store, async |c: &mut Cast| {
            let request = c
                .soul
                .saved_request(
                    c.workspace,
                    rest_spec("GET", &format!("{}/hello", echo.url)),
                )
                .await;
            let sent = c
                .viewer
                .post(&format!("/api/requests/{request}/send"), json!({}))
                .await
                .expect(200);
            let execution_id = sent.body["execution_id"].as_str().unwrap().to_owned();
            let trace_id = sent.body["trace_id"].as_str().unwrap().to_owned();
            let span_id = sent.body["span_id"].as_str().unwrap().to_owned();
            // A span the traced service reported into the workspace, in the same trace.
            let trace: TraceId = trace_id.parse().unwrap();
            let now = crate::support::now();
            c.soul
                .store
                .insert_spans(&[Span {
                    trace_id: trace,
                    span_id: SpanId::random(),
                    parent_span_id: Some(span_id.parse().unwrap()),
                    workspace_id: Some(c.workspace),
                    name: "GET /hello".into(),
                    service: "echo".into(),
                    kind: SpanKind::Server,
                    start: now,
                    end: now.plus_nanos(1_500_000),
                    status_code: StatusCode::Ok,
                    status_message: None,
                    attributes: Default::default(),
                    events: vec![],
                    links: vec![],
                    resource_attributes: Default::default(),
                    scope: Default::default(),
                    trace_state: None,
                    flags: 1,
                }])
                .await
                .unwrap();
            c.soul.flush().await;

            let shown = c
                .viewer
                .get(&format!("/api/executions/{execution_id}"))
                .await
                .expect(200);
            assert_eq!(shown.body["id"], execution_id);
            assert_eq!(shown.body["request_id"], request.to_string());
            assert_eq!(shown.body["trace_id"], trace_id);
            assert_eq!(shown.body["status_code"], 200);
            assert_eq!(shown.body["source"], "api");
            assert_eq!(shown.body["created_by"], c.viewer.id.to_string());
            assert_eq!(shown.body["detail"]["request"]["method"], "GET");
            assert_eq!(
                shown.body["detail"]["request"]["url"],
                format!("{}/hello", echo.url)
            );
            assert!(shown.body["detail"]["response"].is_object());
            for path in [
                format!("/api/executions/{execution_id}"),
                format!("/api/executions/{}", ExecutionId::new()),
            ] {
                let answer = c.outsider.get(&path).await.expect(404);
                assert_eq!(answer.code(), "execution_not_found");
            }
            let bad = c.viewer.get("/api/executions/xyz").await.expect(400);
            assert_eq!(bad.code(), "invalid_id");

            let whole = c
                .viewer
                .get(&format!("/api/traces/{trace_id}"))
                .await
                .expect(200);
            assert_eq!(whole.body["trace_id"], trace_id);
            let spans = whole.body["spans"].as_array().unwrap();
            assert_eq!(spans.len(), 2);
            let client = spans.iter().find(|s| s["span_id"] == span_id).unwrap();
            assert_eq!(client["service"], "prism");
            assert_eq!(client["kind"], "client");
            assert_eq!(client["workspace_id"], c.ws());
            let server = spans.iter().find(|s| s["service"] == "echo").unwrap();
            assert_eq!(server["parent_span_id"], span_id);
            assert_eq!(server["status_code"], "ok");
            assert_eq!(server["duration_ms"], 1.5);
            assert_eq!(server["start_time"], now.to_rfc3339());
            assert_eq!(whole.body["services"], json!(["echo", "prism"]));
            assert_eq!(whole.body["executions"][0]["id"], execution_id);

            let hidden = c
                .outsider
                .get(&format!("/api/traces/{trace_id}"))
                .await
                .expect(404);
            assert_eq!(hidden.code(), "trace_not_found");
            let unknown = c
                .viewer
                .get(&format!("/api/traces/{}", TraceId::random()))
                .await
                .expect(404);
            assert_eq!(unknown.code(), "trace_not_found");
            for malformed in [
                "xyz",
                "4BF92F3577B34DA6A3CE929D0E0E4736",
                "00000000000000000000000000000000",
            ] {
                let answer = c
                    .viewer
                    .get(&format!("/api/traces/{malformed}"))
                    .await
                    .expect(400);
                assert_eq!(answer.code(), "invalid_id");
            }

            // The same trace through the search.
            let found = c
                .viewer
                .get(&format!("/api/workspaces/{}/traces?service=echo", c.ws()))
                .await
                .expect(200);
            assert_eq!(found.body[0]["trace_id"], trace_id);
            assert_eq!(found.body[0]["root_service"], "prism");
            assert_eq!(found.body[0]["span_count"], 2);
            assert_eq!(found.body[0]["services"], json!(["echo", "prism"]));
        })
        .await;
    }

    /// A span of `service` named `name` starting at `start` and lasting `ms` milliseconds.
    fn span(
        trace: TraceId,
        ws: Option<WorkspaceId>,
        service: &str,
        name: &str,
        start: Timestamp,
        ms: i64,
    ) -> Span {
        Span {
            trace_id: trace,
            span_id: SpanId::random(),
            parent_span_id: None,
            workspace_id: ws,
            name: name.into(),
            service: service.into(),
            kind: SpanKind::Server,
            start,
            end: start.plus_nanos(ms * 1_000_000),
            status_code: StatusCode::Unset,
            status_message: None,
            attributes: Default::default(),
            events: vec![],
            links: vec![],
            resource_attributes: Default::default(),
            scope: Default::default(),
            trace_state: None,
            flags: 1,
        }
    }

    pub async fn traces_are_searched_like_jaeger(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let ws = Some(c.workspace);
            let (slow, failing, quick) = (TraceId::random(), TraceId::random(), TraceId::random());
            let root = span(slow, ws, "gateway", "GET /orders", t(100), 250);
            let child = Span {
                parent_span_id: Some(root.span_id),
                ..span(
                    slow,
                    None,
                    "orders",
                    "SELECT orders",
                    t(100).plus_nanos(5_000_000),
                    100,
                )
            };
            let broken = Span {
                status_code: StatusCode::Error,
                ..span(failing, ws, "payments", "charge", t(200), 40)
            };
            let fast = span(quick, ws, "gateway", "GET /health", t(300), 2);
            let elsewhere = c.soul.workspace(&c.outsider, "Theirs").await;
            let theirs = span(
                TraceId::random(),
                Some(elsewhere),
                "gateway",
                "GET /orders",
                t(150),
                5,
            );
            c.soul
                .store
                .insert_spans(&[root, child, broken, fast, theirs])
                .await
                .unwrap();

            let search = async |query: &str| {
                let answer = c
                    .viewer
                    .get(&format!("/api/workspaces/{}/traces{query}", c.ws()))
                    .await
                    .expect(200);
                answer
                    .body
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["trace_id"].as_str().unwrap().parse::<TraceId>().unwrap())
                    .collect::<Vec<_>>()
            };
            assert_eq!(search("").await, vec![quick, failing, slow]);
            assert_eq!(search("?service=gateway").await, vec![quick, slow]);
            assert_eq!(
                search("?service=orders&operation=SELECT%20orders").await,
                vec![slow]
            );
            assert_eq!(
                search("?service=gateway&operation=SELECT%20orders").await,
                vec![]
            );
            assert_eq!(search("?min_duration_ms=40").await, vec![failing, slow]);
            assert_eq!(
                search("?min_duration_ms=2&max_duration_ms=40").await,
                vec![quick, failing]
            );
            assert_eq!(search("?max_duration_ms=1.5").await, vec![]);
            assert_eq!(search("?error=true").await, vec![failing]);
            assert_eq!(search("?error=false").await, vec![quick, slow]);
            assert_eq!(
                search("?from=2023-11-14T22:15:00Z&to=2023-11-14T22:18:20Z").await,
                vec![failing, slow]
            );
            assert_eq!(search("?limit=1").await, vec![quick]);

            let summary = c
                .viewer
                .get(&format!("/api/workspaces/{}/traces?service=orders", c.ws()))
                .await
                .expect(200);
            assert_eq!(
                summary.body,
                json!([{
                    "trace_id": slow.to_string(),
                    "root_service": "gateway",
                    "root_operation": "GET /orders",
                    "started_at": "2023-11-14T22:15:00Z",
                    "duration_ms": 250.0,
                    "span_count": 2,
                    "error_count": 0,
                    "services": ["gateway", "orders"],
                }])
            );
            let seen: HashSet<TraceId> = search("").await.into_iter().collect();
            assert_eq!(seen.len(), 3, "the other workspace's trace is not listed");
        })
        .await;
    }

    pub async fn role_matrix(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let execution = execution(c.workspace, t(1));
            c.soul
                .store
                .insert_executions(std::slice::from_ref(&execution))
                .await
                .unwrap();
            let mut m = Matrix::default();
            for (name, path) in [
                (
                    "GET executions",
                    format!("/api/workspaces/{}/executions", c.ws()),
                ),
                ("GET execution", format!("/api/executions/{}", execution.id)),
                ("GET traces", format!("/api/workspaces/{}/traces", c.ws())),
                ("GET trace", format!("/api/traces/{}", execution.trace_id)),
            ] {
                m.row(
                    name,
                    [200, 200, 200, 404],
                    c.statuses(async |_c: &Cast| Call::new(Method::GET, path.clone(), None))
                        .await,
                );
            }
            m.assert();
        })
        .await;
    }
}

for_each_backend!(super::suite =>
    executions_are_filtered_and_paged,
    bad_history_parameters_are_named,
    sent_execution_and_its_trace_are_shown_to_members,
    traces_are_searched_like_jaeger,
    role_matrix,
);
