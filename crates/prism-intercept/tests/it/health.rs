//! Liveness and readiness of the data plane, on both database backends.

use std::sync::Arc;

use prism_store::Store;

async fn serve(store: Arc<dyn Store>) -> std::net::SocketAddr {
    crate::support::serve(store).await.addr
}

async fn get(url: String) -> (u16, serde_json::Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resp = reqwest::get(&url).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

pub async fn ready_while_the_database_answers_then_503(store: Arc<dyn Store>) {
    let addr = serve(store.clone()).await;
    let (status, body) = get(format!("http://{addr}/readyz")).await;
    assert_eq!(status, 200);
    assert_eq!(body["database"], "ok");

    store.close().await;
    let (status, body) = get(format!("http://{addr}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "database_unavailable");
    // Liveness does not depend on the database.
    let (status, _) = get(format!("http://{addr}/healthz")).await;
    assert_eq!(status, 200);
}

mod on {
    prism_testkit::for_each_backend!(crate::health => ready_while_the_database_answers_then_503);
}
