//! The control plane's OpenAPI document: served without credentials, every documented operation
//! is routed, and it matches the copy checked in at `docs/openapi/soul.json` (regenerate with
//! `PRISM_UPDATE_OPENAPI=1 cargo test -p prism-soul --test it openapi`). That no route is served
//! without being documented is checked by `prism_soul::api`'s unit test (routes are only added
//! through `utoipa_axum::routes!`).

use std::path::PathBuf;

use serde_json::Value;

use crate::support::{Soul, client};

#[tokio::test]
async fn the_document_is_served_complete_and_checked_in() {
    prism_testkit::on_sqlite(|store| async move {
        let soul = Soul::start(store).await;
        let response = client()
            .get(soul.url("/api/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let doc: Value = response.json().await.unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "{}",
            doc["openapi"]
        );
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        assert!(doc["components"]["securitySchemes"]["session"].is_object());
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.contains_key("/api/workspaces"), "{paths:?}");
        let id = uuid_like();
        for (path, operations) in paths {
            let concrete = fill_placeholders(path, &id);
            for method in operations.as_object().unwrap().keys() {
                let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let response = client()
                    .request(method.clone(), soul.url(&concrete))
                    .header("content-type", "application/json")
                    .body("{}")
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                assert!(
                    status != 405 && body["code"] != "route_not_found",
                    "{method} {path} is documented but not routed ({status} {body})"
                );
                // Everything but the sign-up/sign-in operations needs credentials.
                if !path.starts_with("/api/auth/") {
                    assert_eq!(
                        status, 401,
                        "{method} {path} answered without credentials: {body}"
                    );
                }
            }
        }
        let docs = client().get(soul.url("/api/docs")).send().await.unwrap();
        assert_eq!(docs.status(), 200);
        let page = docs.text().await.unwrap();
        assert!(page.contains("/api/workspaces/{id}/members"), "{page}");

        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi/soul.json");
        let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
        if std::env::var_os("PRISM_UPDATE_OPENAPI").is_some() {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &pretty).unwrap();
        }
        let checked_in = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            checked_in == pretty,
            "docs/openapi/soul.json is stale: regenerate it with PRISM_UPDATE_OPENAPI=1"
        );
    })
    .await;
}

fn uuid_like() -> String {
    prism_domain::WorkspaceId::new().to_string()
}

/// `/api/workspaces/{id}/members/{user_id}` with every `{…}` replaced by an id-shaped value.
fn fill_placeholders(path: &str, id: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        out.push_str(id);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}
