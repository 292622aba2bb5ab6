//! `POST /api/workspaces/{id}/grpc/services`: the gRPC pickers' source, listed by the data plane
//! (in process and split) from pasted `.proto` files or by reflection against a real tonic
//! server; who may list, variables, and the data plane's refusals.

use prism_testkit::for_each_backend;

mod suite {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use prism_domain::{Role, WorkspaceId};
    use prism_store::{ExecutionFilter, Store};
    use reqwest::Method;
    use serde_json::{Value, json};

    use crate::grpc_server::{COMMON_PROTO, Reflection, TESTER_PROTO, TestServer};
    use crate::support::{Call, Matrix, Soul, TestUser, with_cast};

    fn path(ws: impl std::fmt::Display) -> String {
        format!("/api/workspaces/{ws}/grpc/services")
    }

    fn proto_files() -> Value {
        json!([
            {"name": "prism/test/v1/tester.proto", "content": TESTER_PROTO},
            {"name": "prism/test/v1/common.proto", "content": COMMON_PROTO},
        ])
    }

    /// The test service's methods as listed: `(name, client_streaming, server_streaming, input)`.
    fn tester(answer: &Value) -> Vec<(String, bool, bool, String)> {
        let services = answer["services"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"));
        let tester = services
            .iter()
            .find(|s| s["name"] == "prism.test.v1.Tester")
            .unwrap_or_else(|| panic!("Tester is listed: {answer}"));
        tester["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap().to_owned(),
                    m["client_streaming"].as_bool().unwrap(),
                    m["server_streaming"].as_bool().unwrap(),
                    m["input_type"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn expected() -> Vec<(String, bool, bool, String)> {
        [
            ("Echo", false, false, "prism.test.v1.EchoRequest"),
            ("Count", false, true, "prism.test.v1.CountRequest"),
            ("Sum", true, false, "prism.test.v1.Number"),
            ("Chat", true, true, "prism.test.v1.EchoRequest"),
            ("Fail", false, false, "prism.test.v1.FailRequest"),
            ("Hang", false, false, "google.protobuf.Empty"),
        ]
        .into_iter()
        .map(|(n, c, s, i)| (n.to_owned(), c, s, i.to_owned()))
        .collect()
    }

    async fn recorded(store: &Arc<dyn Store>, ws: WorkspaceId) -> usize {
        store
            .list_executions(
                ws,
                &ExecutionFilter {
                    limit: 100,
                    ..ExecutionFilter::default()
                },
            )
            .await
            .unwrap()
            .len()
    }

    pub async fn pasted_files_and_reflection_list_the_services(store: Arc<dyn Store>) {
        let server = TestServer::start(Reflection::Both).await;
        let mut soul = Soul::start(store.clone()).await;
        let owner = soul.user("owner@example.test").await;
        let ws = soul.workspace(&owner, "Team").await;

        // Pasted files: the schema is the files'; the server is not asked.
        let pasted = owner
            .post(
                &path(ws),
                json!({"protocol": "grpc", "server_address": server.address(),
                       "proto_files": proto_files(), "service": "", "method": ""}),
            )
            .await
            .expect(200);
        assert_eq!(pasted.body["services"].as_array().unwrap().len(), 1);
        assert_eq!(tester(&pasted.body), expected());
        assert_eq!(server.reflection_calls.load(Ordering::SeqCst), 0);

        // Reflection, with the address and a metadata value from the environment.
        let env = soul
            .environment(ws, &[("grpc", &server.address(), false), ("k", "v", true)])
            .await;
        let reflected = owner
            .post(
                &path(ws),
                json!({"server_address": "{{grpc}}", "metadata": [{"key": "x-k", "value": "{{k}}"}],
                       "environment_id": env.to_string(), "timeout_ms": 10000}),
            )
            .await
            .expect(200);
        assert_eq!(tester(&reflected.body), expected());
        assert!(server.reflection_calls.load(Ordering::SeqCst) > 0);

        // Listing is not an execution.
        soul.flush().await;
        assert_eq!(recorded(&store, ws).await, 0);
    }

    pub async fn only_editors_may_list(store: Arc<dyn Store>) {
        with_cast(store, async |cast| {
            let mut matrix = Matrix::default();
            let got = cast
                .statuses(async |c| {
                    Call::new(
                        Method::POST,
                        path(c.ws()),
                        Some(
                            json!({"server_address": "127.0.0.1:1", "proto_files": proto_files()}),
                        ),
                    )
                })
                .await;
            matrix.row("list gRPC services", [200, 200, 403, 404], got);
            matrix.assert();
            let viewer = cast
                .viewer
                .post(&path(cast.ws()), json!({"server_address": "127.0.0.1:1"}))
                .await;
            assert_eq!((viewer.status, viewer.code()), (403, "forbidden"));
            let outsider = cast
                .outsider
                .post(&path(cast.ws()), json!({"server_address": "127.0.0.1:1"}))
                .await;
            assert_eq!(
                (outsider.status, outsider.code()),
                (404, "workspace_not_found")
            );
        })
        .await;
    }

    /// The refusals of one control plane, in process or split.
    async fn refusals(soul: &Soul, owner: &TestUser, ws: WorkspaceId, other_ws: WorkspaceId) {
        let plain = TestServer::start(Reflection::None).await;
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let broken = "syntax = \"proto3\";\nservice S {\n  rpc M(In) returns (Out)\n}\n";
        let other_env = soul.environment(other_ws, &[("grpc", "h:1", false)]).await;
        let cases = [
            (
                json!({"server_address": plain.address(),
                       "proto_files": [{"name": "a.proto", "content": broken}]}),
                400,
                "invalid_proto",
                None,
            ),
            (
                json!({"server_address": plain.address()}),
                400,
                "reflection_failed",
                None,
            ),
            (
                json!({"server_address": "not an address"}),
                400,
                "invalid_address",
                None,
            ),
            (json!({"server_address": closed}), 502, "unreachable", None),
            (
                json!({"proto_files": proto_files()}),
                422,
                "invalid_field",
                Some("server_address"),
            ),
            (
                json!({"protocol": "rest", "server_address": plain.address()}),
                422,
                "invalid_field",
                Some("protocol"),
            ),
            (
                json!({"server_address": "{{nope}}"}),
                422,
                "unknown_variables",
                None,
            ),
            (
                json!({"server_address": "{{grpc}}", "environment_id": other_env.to_string()}),
                404,
                "environment_not_found",
                None,
            ),
        ];
        for (body, status, code, field) in cases {
            let answer = owner.post(&path(ws), body.clone()).await;
            assert_eq!(
                (answer.status, answer.code(), answer.body["field"].as_str()),
                (status, code, field),
                "{body}: {}",
                answer.body
            );
        }
        let answer = owner
            .post(
                &path(ws),
                json!({"server_address": plain.address(),
                       "proto_files": [{"name": "a.proto", "content": broken}]}),
            )
            .await;
        let message = answer.body["message"].as_str().unwrap();
        assert!(
            message.starts_with("a.proto:4:1"),
            "file:line:column: {message}"
        );
    }

    pub async fn bad_input_and_unreachable_servers_are_refused(store: Arc<dyn Store>) {
        let mut soul = Soul::start(store.clone()).await;
        let owner = soul.user("owner@example.test").await;
        let ws = soul.workspace(&owner, "Team").await;
        let other = soul.workspace(&owner, "Other").await;
        refusals(&soul, &owner, ws, other).await;
        soul.flush().await;
        assert_eq!(recorded(&store, ws).await, 0);
    }

    pub async fn split_planes_list_through_the_remote_data_plane(store: Arc<dyn Store>) {
        let server = TestServer::start(Reflection::Both).await;
        let mut soul = Soul::start_remote(store.clone(), "shared-key", "shared-key").await;
        let owner = soul.user("owner@example.test").await;
        let editor = soul.user("editor@example.test").await;
        let ws = soul.workspace(&owner, "Split").await;
        soul.add_member(ws, &editor, Role::Editor).await;
        let other = soul.workspace(&owner, "Other").await;

        let reflected = editor
            .post(&path(ws), json!({"server_address": server.address()}))
            .await
            .expect(200);
        assert_eq!(tester(&reflected.body), expected());
        let pasted = editor
            .post(
                &path(ws),
                json!({"server_address": server.address(), "proto_files": proto_files()}),
            )
            .await
            .expect(200);
        assert_eq!(tester(&pasted.body), expected());
        refusals(&soul, &owner, ws, other).await;
        soul.flush().await;
        assert_eq!(recorded(&store, ws).await, 0);

        // A data plane that does not accept the control plane's credential: an operator problem.
        let mismatched = Soul::start_remote(store, "data-plane-key", "soul-key").await;
        let owner = mismatched.user("owner2@example.test").await;
        let ws = mismatched.workspace(&owner, "Split").await;
        let answer = owner
            .post(&path(ws), json!({"server_address": server.address()}))
            .await;
        assert_eq!(answer.status, 502, "{}", answer.body);
    }
}

for_each_backend!(super::suite =>
    pasted_files_and_reflection_list_the_services,
    only_editors_may_list,
    bad_input_and_unreachable_servers_are_refused,
    split_planes_list_through_the_remote_data_plane,
);
