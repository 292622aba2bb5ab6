//! Sending saved and ad-hoc requests through the data plane, in process and split: variable
//! resolution end to end, what is recorded, who may send, and the data plane's failures.

use prism_testkit::for_each_backend;
use reqwest::Method;
use serde_json::json;

use crate::support::{Call, Cast, Echo, Matrix, Soul, echoed, rest_spec, with_cast};

mod suite {
    use super::*;
    use std::sync::Arc;

    use prism_domain::environment::Variable;
    use prism_domain::execution::{Execution, ExecutionSource};
    use prism_domain::request::{Body, HttpSettings, KeyValue, RequestSpec, RestSpec};
    use prism_domain::{ExecutionId, RequestId, Role, WorkspaceId};
    use prism_soul::crypto::SecretBox;
    use prism_store::{ExecutionFilter, Store};

    /// A saved POST to the echo server using every kind of variable: plain, secret, nested.
    fn templated() -> RequestSpec {
        RequestSpec::Rest(RestSpec {
            method: "POST".into(),
            url: "{{base}}/items/{{ item }}".into(),
            params: vec![KeyValue::new("token", "{{token}}")],
            headers: vec![
                KeyValue::new("X-Auth", "{{auth}}"),
                KeyValue::new("X-{{hname}}", "{{$timestamp}}"),
            ],
            body: Body::Json {
                text: "{\"n\": {{n}}, \"who\": \"{{auth}}\"}".into(),
            },
            settings: HttpSettings::default(),
        })
    }

    async fn executions(store: &Arc<dyn Store>, ws: WorkspaceId) -> Vec<Execution> {
        store
            .list_executions(
                ws,
                &ExecutionFilter {
                    limit: 1000,
                    ..ExecutionFilter::default()
                },
            )
            .await
            .unwrap()
    }

    pub async fn saved_request_is_sent_resolved_and_recorded(store: Arc<dyn Store>) {
        let echo = Echo::start().await;
        with_cast(store.clone(), async |c: &mut Cast| {
            let env = c
                .soul
                .environment(
                    c.workspace,
                    &[
                        ("base", &echo.url, false),
                        ("item", "42", false),
                        ("token", "s3cr3t", true),
                        ("auth", "Bearer {{token}}", false),
                        ("hname", "Sent-At", false),
                        ("n", "5", false),
                    ],
                )
                .await;
            let request = c.soul.saved_request(c.workspace, templated()).await;
            let answer = c
                .viewer
                .post(
                    &format!("/api/requests/{request}/send"),
                    json!({"environment_id": env.to_string()}),
                )
                .await
                .expect(200);
            assert_eq!(answer.body["status"], 200);
            assert_eq!(answer.body["request_id"], request.to_string());
            let trace_id = answer.body["trace_id"].as_str().unwrap();
            assert_eq!(trace_id.len(), 32);
            assert!(
                answer.body["traceparent"]
                    .as_str()
                    .unwrap()
                    .contains(trace_id)
            );
            let seen = echoed(&answer);
            assert_eq!(seen["method"], "POST");
            assert_eq!(seen["path"], "/items/42");
            assert_eq!(seen["query"], "token=s3cr3t");
            assert_eq!(seen["headers"]["x-auth"], "Bearer s3cr3t");
            let sent_at: i64 = seen["headers"]["x-sent-at"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            let now = crate::support::now().nanos() / 1_000_000_000;
            assert!(
                (sent_at - now).abs() < 600,
                "{{$timestamp}} is Unix seconds"
            );
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(seen["body"].as_str().unwrap()).unwrap(),
                json!({"n": 5, "who": "Bearer s3cr3t"})
            );
            // Also without an environment when the request needs none, with an empty body.
            let plain = c
                .soul
                .saved_request(
                    c.workspace,
                    rest_spec("GET", &format!("{}/plain", echo.url)),
                )
                .await;
            let response = c
                .viewer
                .client
                .post(c.soul.url(&format!("/api/requests/{plain}/send")))
                .bearer_auth(&c.viewer.token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(echo.hits(), 2);

            c.soul.flush().await;
            let recorded = executions(&c.soul.store, c.workspace).await;
            assert_eq!(recorded.len(), 2);
            let first = recorded
                .iter()
                .find(|e| e.request_id == Some(request))
                .expect("the send is linked to its request");
            assert_eq!(first.id.to_string(), answer.body["execution_id"]);
            assert_eq!(first.source, ExecutionSource::Api);
            assert_eq!(first.created_by, Some(c.viewer.id));
            assert_eq!(first.status_code, Some(200));
            assert_eq!(first.trace_id.to_string(), trace_id);
        })
        .await;
    }

    pub async fn unresolvable_variables_send_and_record_nothing(store: Arc<dyn Store>) {
        let echo = Echo::start().await;
        with_cast(store, async |c: &mut Cast| {
            let env = c
                .soul
                .environment(
                    c.workspace,
                    &[("base", &echo.url, false), ("n", "{{deeper}}", false)],
                )
                .await;
            let spec = RequestSpec::Rest(RestSpec {
                method: "GET".into(),
                url: "{{base}}/{{missing}}/{{n}}".into(),
                params: vec![
                    KeyValue::new("a", "{{other}}"),
                    KeyValue::new("b", "{{missing}}"),
                ],
                headers: vec![KeyValue::new("{{zeta}}", "x")],
                body: Body::None,
                settings: HttpSettings::default(),
            });
            let request = c.soul.saved_request(c.workspace, spec).await;
            let path = format!("/api/requests/{request}/send");
            let unknown = c
                .viewer
                .post(&path, json!({"environment_id": env.to_string()}))
                .await
                .expect(422);
            assert_eq!(unknown.code(), "unknown_variables");
            assert_eq!(
                unknown.body["details"]["variables"],
                json!(["deeper", "missing", "other", "zeta"])
            );
            for name in ["deeper", "missing", "other", "zeta"] {
                assert!(unknown.body["message"].as_str().unwrap().contains(name));
            }
            // Without the environment every name is unknown.
            let none = c.viewer.post(&path, json!({})).await.expect(422);
            assert_eq!(
                none.body["details"]["variables"],
                json!(["base", "missing", "n", "other", "zeta"])
            );

            let cyclic = c
                .soul
                .environment(
                    c.workspace,
                    &[("a", "{{b}}", false), ("b", "x{{a}}", false)],
                )
                .await;
            let looping = c
                .soul
                .saved_request(c.workspace, rest_spec("GET", "http://h/{{a}}"))
                .await;
            let cycle = c
                .viewer
                .post(
                    &format!("/api/requests/{looping}/send"),
                    json!({"environment_id": cyclic.to_string()}),
                )
                .await
                .expect(422);
            assert_eq!(cycle.code(), "variable_cycle");
            assert_eq!(cycle.body["details"]["cycle"], json!(["a", "b", "a"]));

            // A secret encrypted under another key cannot be used.
            let stale = c
                .soul
                .environment_with(
                    c.workspace,
                    vec![
                        Variable {
                            name: "base".into(),
                            value: echo.url.clone(),
                            secret: false,
                            enabled: true,
                        },
                        Variable {
                            name: "token".into(),
                            value: SecretBox::new("another key").encrypt("old"),
                            secret: true,
                            enabled: true,
                        },
                    ],
                )
                .await;
            let secretive = c
                .soul
                .saved_request(c.workspace, rest_spec("GET", "{{base}}/?t={{token}}"))
                .await;
            let undecryptable = c
                .viewer
                .post(
                    &format!("/api/requests/{secretive}/send"),
                    json!({"environment_id": stale.to_string()}),
                )
                .await
                .expect(409);
            assert_eq!(undecryptable.code(), "secret_undecryptable");
            assert_eq!(undecryptable.body["details"]["variables"], json!(["token"]));

            assert_eq!(echo.hits(), 0, "nothing was sent");
            c.soul.flush().await;
            assert!(
                executions(&c.soul.store, c.workspace).await.is_empty(),
                "nothing was recorded"
            );
        })
        .await;
    }

    pub async fn environment_and_request_must_be_the_callers(store: Arc<dyn Store>) {
        let echo = Echo::start().await;
        with_cast(store, async |c: &mut Cast| {
            let request = c
                .soul
                .saved_request(c.workspace, rest_spec("GET", &format!("{}/x", echo.url)))
                .await;
            let path = format!("/api/requests/{request}/send");
            let elsewhere = c.soul.workspace(&c.admin, "Elsewhere").await;
            let foreign_env = c.soul.environment(elsewhere, &[("a", "1", false)]).await;
            for env in [
                foreign_env.to_string(),
                prism_domain::EnvironmentId::new().to_string(),
            ] {
                let answer = c
                    .admin
                    .post(&path, json!({"environment_id": env}))
                    .await
                    .expect(404);
                assert_eq!(answer.code(), "environment_not_found");
            }
            let malformed = c
                .admin
                .post(&path, json!({"environment_id": "nope"}))
                .await
                .expect(422);
            assert_eq!(malformed.body["field"], "environment_id");
            let unknown_field = c.admin.post(&path, json!({"env": "x"})).await.expect(422);
            assert_eq!(unknown_field.code(), "invalid_field");
            let outsider = c.outsider.post(&path, json!({})).await.expect(404);
            assert_eq!(outsider.code(), "request_not_found");
            let missing = c
                .admin
                .post(
                    &format!("/api/requests/{}/send", RequestId::new()),
                    json!({}),
                )
                .await
                .expect(404);
            assert_eq!(missing.code(), "request_not_found");
            let bad_id = c
                .admin
                .post("/api/requests/xyz/send", json!({}))
                .await
                .expect(400);
            assert_eq!(bad_id.code(), "invalid_id");
            assert_eq!(echo.hits(), 0);
        })
        .await;
    }

    pub async fn ad_hoc_send_needs_an_editor(store: Arc<dyn Store>) {
        let echo = Echo::start().await;
        with_cast(store, async |c: &mut Cast| {
            let env = c
                .soul
                .environment(c.workspace, &[("base", &echo.url, false), ("key", "k-1", true)])
                .await;
            let linked = c
                .soul
                .saved_request(c.workspace, rest_spec("GET", "http://unused.test"))
                .await;
            let path = format!("/api/workspaces/{}/send", c.ws());
            let body = json!({
                "protocol": "rest", "method": "PUT", "url": "{{base}}/things",
                "headers": [{"key": "X-Key", "value": "{{key}}"}],
                "body": {"kind": "raw", "text": "key={{key}}"},
                "environment_id": env.to_string(),
                "request_id": linked.to_string(),
            });
            let denied = c.viewer.post(&path, body.clone()).await.expect(403);
            assert_eq!(denied.code(), "forbidden");
            let outsider = c.outsider.post(&path, body.clone()).await.expect(404);
            assert_eq!(outsider.code(), "workspace_not_found");
            assert_eq!(echo.hits(), 0);

            let answer = c.editor.post(&path, body.clone()).await.expect(200);
            let seen = echoed(&answer);
            assert_eq!(seen["method"], "PUT");
            assert_eq!(seen["path"], "/things");
            assert_eq!(seen["headers"]["x-key"], "k-1");
            assert_eq!(seen["body"], "key=k-1");
            assert_eq!(answer.body["request_id"], linked.to_string());

            // A request of another workspace cannot be linked.
            let elsewhere = c.soul.workspace(&c.editor, "Mine").await;
            let foreign = c
                .soul
                .saved_request(elsewhere, rest_spec("GET", "http://unused.test"))
                .await;
            let mut other = body.clone();
            other["request_id"] = json!(foreign.to_string());
            let refused = c.editor.post(&path, other).await.expect(404);
            assert_eq!(refused.code(), "request_not_found");

            // Bad input names the field; what the data plane refuses comes back as it said.
            let no_url = c
                .editor
                .post(&path, json!({"protocol": "rest"}))
                .await
                .expect(422);
            assert_eq!(no_url.body["field"], "url");
            let not_a_url = c
                .editor
                .post(
                    &path,
                    json!({"protocol": "rest", "url": "{{key}}", "environment_id": env.to_string()}),
                )
                .await
                .expect(400);
            assert_eq!(not_a_url.code(), "invalid_url");

            // Without request_id the execution stands alone.
            let adhoc = c
                .editor
                .post(
                    &path,
                    json!({"protocol": "rest", "url": format!("{}/alone", echo.url)}),
                )
                .await
                .expect(200);
            assert!(adhoc.body.get("request_id").is_none());
            assert_eq!(echo.hits(), 2);

            c.soul.flush().await;
            let recorded = executions(&c.soul.store, c.workspace).await;
            assert_eq!(recorded.len(), 2);
            let linked_run: ExecutionId = answer.body["execution_id"].as_str().unwrap().parse().unwrap();
            let row = recorded.iter().find(|e| e.id == linked_run).unwrap();
            assert_eq!(row.request_id, Some(linked));
            assert_eq!(row.created_by, Some(c.editor.id));
            assert_eq!(row.source, ExecutionSource::Api);
        })
        .await;
    }

    pub async fn role_matrix(store: Arc<dyn Store>) {
        let echo = Echo::start().await;
        with_cast(store, async |c: &mut Cast| {
            let mut m = Matrix::default();
            let url = format!("{}/matrix", echo.url);
            let request = c
                .soul
                .saved_request(c.workspace, rest_spec("GET", &url))
                .await;
            m.row(
                "POST request send",
                [200, 200, 200, 404],
                c.statuses(async |_c: &Cast| {
                    Call::new(
                        Method::POST,
                        format!("/api/requests/{request}/send"),
                        Some(json!({})),
                    )
                })
                .await,
            );
            m.row(
                "POST workspace send",
                [200, 200, 403, 404],
                c.statuses(async |c: &Cast| {
                    Call::new(
                        Method::POST,
                        format!("/api/workspaces/{}/send", c.ws()),
                        Some(json!({"protocol": "rest", "url": url})),
                    )
                })
                .await,
            );
            m.assert();
            assert_eq!(echo.hits(), 5);
        })
        .await;
    }

    pub async fn split_planes_send_and_record(store: Arc<dyn Store>) {
        let echo = Echo::start().await;
        let mut soul = Soul::start_remote(store.clone(), "shared-key", "shared-key").await;
        let user = soul.user("viewer@example.test").await;
        let owner = soul.user("owner@example.test").await;
        let ws = soul.workspace(&owner, "Split").await;
        soul.add_member(ws, &user, Role::Viewer).await;
        let env = soul
            .environment(ws, &[("base", &echo.url, false), ("t", "tok", true)])
            .await;
        let request = soul
            .saved_request(ws, rest_spec("GET", "{{base}}/split?t={{t}}"))
            .await;
        let answer = user
            .post(
                &format!("/api/requests/{request}/send"),
                json!({"environment_id": env.to_string()}),
            )
            .await
            .expect(200);
        assert_eq!(echoed(&answer)["query"], "t=tok");
        let trace_id = answer.body["trace_id"].as_str().unwrap().to_owned();
        assert_eq!(trace_id.len(), 32);
        soul.flush().await;
        let recorded = executions(&store, ws).await;
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].request_id, Some(request));
        assert_eq!(recorded[0].source, ExecutionSource::Api);
        assert_eq!(recorded[0].created_by, Some(user.id));
        assert_eq!(recorded[0].trace_id.to_string(), trace_id);
    }

    pub async fn split_planes_with_different_keys_fail_as_bad_gateway(store: Arc<dyn Store>) {
        let echo = Echo::start().await;
        let mut soul = Soul::start_remote(store.clone(), "data-plane-key", "soul-key").await;
        let owner = soul.user("owner@example.test").await;
        let ws = soul.workspace(&owner, "Split").await;
        let request = soul
            .saved_request(ws, rest_spec("GET", &format!("{}/x", echo.url)))
            .await;
        let answer = owner
            .post(&format!("/api/requests/{request}/send"), json!({}))
            .await
            .expect(502);
        assert_eq!(answer.code(), "invalid_credentials");
        assert_eq!(echo.hits(), 0);
        soul.flush().await;
        assert!(executions(&store, ws).await.is_empty());
    }

    pub async fn unreachable_data_plane_is_reported(store: Arc<dyn Store>) {
        // A port nothing listens on: bound, then released.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let soul = Soul::start_remote_at(store, &base, "key").await;
        let owner = soul.user("owner@example.test").await;
        let ws = soul.workspace(&owner, "Split").await;
        let request = soul
            .saved_request(ws, rest_spec("GET", "http://unused.test"))
            .await;
        let answer = owner
            .post(&format!("/api/requests/{request}/send"), json!({}))
            .await
            .expect(502);
        assert_eq!(answer.code(), "data_plane_unavailable");
    }
}

for_each_backend!(super::suite =>
    saved_request_is_sent_resolved_and_recorded,
    unresolvable_variables_send_and_record_nothing,
    environment_and_request_must_be_the_callers,
    ad_hoc_send_needs_an_editor,
    role_matrix,
    split_planes_send_and_record,
    split_planes_with_different_keys_fail_as_bad_gateway,
    unreachable_data_plane_is_reported,
);
