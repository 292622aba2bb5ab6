//! GraphQL against a real GraphQL server (graphql-core, started by the test): variables and
//! operation names reach it, GraphQL errors mark the execution failed while the HTTP status stays,
//! trace context arrives, and introspection returns the server's schema.

use std::process::Stdio;

use prism_domain::request::HttpSettings;
use prism_domain::trace_context::{ClientSpanContext, TraceParent};
use prism_intercept::executor::{ExecutorConfig, HttpExecutor};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{account, client, recorded, serve};

/// The Python GraphQL server, killed when dropped.
struct GraphqlServer {
    _child: Child,
    url: String,
}

/// Starts the server, or says why it cannot (no python3 / graphql-core) and returns `None`.
async fn graphql_server() -> Option<GraphqlServer> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/graphql_server.py");
    let check = Command::new("python3")
        .args(["-c", "import graphql"])
        .output()
        .await;
    match check {
        Ok(out) if out.status.success() => {}
        _ => {
            eprintln!(
                "skipped: python3 with graphql-core is not installed (python3 -m pip install graphql-core)"
            );
            return None;
        }
    }
    let mut child = Command::new("python3")
        .arg(script)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the GraphQL server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = lines
        .next_line()
        .await
        .unwrap()
        .expect("the server prints its port")
        .trim()
        .parse()
        .unwrap();
    Some(GraphqlServer {
        _child: child,
        url: format!("http://127.0.0.1:{port}/graphql"),
    })
}

const DOCUMENT: &str = "
    query One($id: ID!) { user(id: $id) { id name tags } trace: traceparent }
    query Many { users(first: 1) { name } }
";

#[tokio::test]
async fn a_real_graphql_server_sees_variables_operations_and_trace_context() {
    let Some(server) = graphql_server().await else {
        return;
    };
    prism_testkit::on_sqlite(|store| async move {
        let ada = account(&store, "ada@example.test").await;
        let mut plane = serve(store.clone()).await;
        let call = |body: Value| {
            client()
                .post(plane.url("/graphql"))
                .bearer_auth(&ada.token)
                .json(&body)
                .send()
        };

        let response = call(json!({
            "url": server.url, "query": DOCUMENT,
            "variables": {"id": "1"}, "operation_name": "One",
        }))
        .await
        .unwrap();
        assert_eq!(response.status(), 200);
        let one: Value = response.json().await.unwrap();
        assert_eq!(one["graphql_errors"], false, "{one}");
        assert_eq!(one["failed"], false);
        let data: Value = serde_json::from_str(one["body"].as_str().unwrap()).unwrap();
        assert_eq!(data["data"]["user"]["name"], "Ada");
        let seen = TraceParent::parse(data["data"]["trace"].as_str().unwrap()).unwrap();
        assert_eq!(seen.trace_id.to_hex(), one["trace_id"].as_str().unwrap());
        assert_eq!(seen.parent_id.to_hex(), one["span_id"].as_str().unwrap());

        // The operation name picks the other operation of the same document.
        let many: Value = call(json!({"url": server.url, "query": DOCUMENT, "operationName": "Many"}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let data: Value = serde_json::from_str(many["body"].as_str().unwrap()).unwrap();
        assert_eq!(data["data"]["users"], json!([{"name": "Ada"}]));

        // A resolver error: HTTP 200 with an `errors` array is a failed execution.
        let missing: Value = call(json!({
            "url": server.url, "query": DOCUMENT, "variables": {"id": "404"}, "operation_name": "One",
        }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(missing["status"], 200);
        assert_eq!(missing["graphql_errors"], true);
        assert_eq!(missing["failed"], true);

        // A query the server cannot parse is answered with errors too.
        let broken: Value = call(json!({"url": server.url, "query": "query {"}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(broken["graphql_errors"], true, "{broken}");

        plane.flush().await;
        let rows = recorded(&store, ada.workspace).await;
        assert_eq!(rows.len(), 4);
        assert_eq!(rows.iter().filter(|e| e.failed).count(), 2);
        assert!(rows.iter().any(|e| e.endpoint == "One"));
    })
    .await;
}

#[tokio::test]
async fn introspection_returns_the_real_servers_schema() {
    let Some(server) = graphql_server().await else {
        return;
    };
    let executor = HttpExecutor::new(ExecutorConfig::default());
    let schema = executor
        .introspect(
            &server.url,
            &[],
            &HttpSettings::default(),
            &ClientSpanContext::start(None, None),
        )
        .await
        .into_result()
        .unwrap_or_else(|outcome| panic!("no schema: {:?}", outcome.error));
    assert_eq!(schema["queryType"]["name"], "Query");
    let types: Vec<&str> = schema["types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(types.contains(&"User"), "{types:?}");
    let user = schema["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "User")
        .unwrap();
    let fields: Vec<&str> = user["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(fields, ["id", "name", "tags"]);
}
