//! The floor under `bench/proxy`: what the data plane's own stack (an axum server and a reqwest
//! client on tokio, as PRISM uses them) costs before PRISM does any work of its own.
//!
//! `proxy_floor <listen> <upstream-url> <mode>` serves `POST /rest` and, for every call, fetches
//! `<upstream-url>` with one shared reqwest client:
//! - `bytes`: answers the upstream's body as is (no JSON, no trace context, no recording);
//! - `json`: parses the call as JSON, takes `method` and `url` from it, and answers a JSON envelope
//!   with status, headers and body, as `POST /rest` does (still no trace context and no recording);
//! - `hyper`: like `bytes`, but with hyper-util's client directly instead of reqwest (the layer
//!   reqwest is built on), to show how much of the floor is reqwest's.
//!
//! Not part of PRISM: `bench/proxy/run.sh` runs it beside nginx and `prism up` to show which part
//! of PRISM's overhead the libraries already impose.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

#[derive(PartialEq)]
enum Mode {
    Bytes,
    Json,
    Hyper,
}

type HyperClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Empty<Bytes>,
>;

struct Floor {
    client: reqwest::Client,
    hyper: HyperClient,
    upstream: String,
    upstream_uri: axum::http::Uri,
    mode: Mode,
}

fn bad_gateway(err: impl std::fmt::Display) -> Response {
    (axum::http::StatusCode::BAD_GATEWAY, err.to_string()).into_response()
}

async fn rest(State(floor): State<Arc<Floor>>, body: Bytes) -> Response {
    use http_body_util::BodyExt;
    match floor.mode {
        Mode::Bytes => {
            return match floor.client.get(&floor.upstream).send().await {
                Ok(response) => match response.bytes().await {
                    Ok(bytes) => bytes.into_response(),
                    Err(err) => bad_gateway(err),
                },
                Err(err) => bad_gateway(err),
            };
        }
        Mode::Hyper => {
            return match floor.hyper.get(floor.upstream_uri.clone()).await {
                Ok(response) => match response.into_body().collect().await {
                    Ok(collected) => collected.to_bytes().into_response(),
                    Err(err) => bad_gateway(err),
                },
                Err(err) => bad_gateway(err),
            };
        }
        Mode::Json => {}
    }
    let call: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(call) => call,
        Err(err) => return (axum::http::StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    };
    let method = call["method"].as_str().unwrap_or("GET");
    let url = call["url"].as_str().unwrap_or(&floor.upstream);
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let answer = match floor.client.request(method, url).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let headers: Vec<serde_json::Value> = response
                .headers()
                .iter()
                .map(|(name, value)| {
                    serde_json::json!({"name": name.as_str(), "value": value.to_str().unwrap_or("")})
                })
                .collect();
            let body = response.text().await.unwrap_or_default();
            serde_json::json!({"status": status, "headers": headers, "body": body})
        }
        Err(err) => serde_json::json!({"error": err.to_string()}),
    };
    axum::Json(answer).into_response()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, upstream, mode] = args.as_slice() else {
        eprintln!("usage: proxy_floor <listen> <upstream-url> bytes|json|hyper");
        std::process::exit(2);
    };
    // reqwest is built without a default TLS provider; PRISM installs ring at start-up too.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let floor = Arc::new(Floor {
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        hyper: hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http(),
        upstream: upstream.clone(),
        upstream_uri: upstream.parse().expect("upstream URL"),
        mode: match mode.as_str() {
            "bytes" => Mode::Bytes,
            "json" => Mode::Json,
            "hyper" => Mode::Hyper,
            other => {
                eprintln!("unknown mode {other:?}: bytes, json or hyper");
                std::process::exit(2);
            }
        },
    });
    let app = Router::new().route("/rest", post(rest)).with_state(floor);
    let listener = tokio::net::TcpListener::bind(listen.as_str())
        .await
        .expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
