//! The OpenAPI document: served without credentials, lists every route the data plane serves
//! (and only those), and matches the copy checked in at `docs/openapi/intercept.json`
//! (regenerate with `PRISM_UPDATE_OPENAPI=1 cargo test -p prism-intercept --test it openapi`).

use std::path::PathBuf;

use serde_json::Value;

use crate::support::{client, serve};

/// Every route the router serves, with its method.
const SERVED: &[(&str, &str)] = &[
    ("post", "/rest"),
    ("post", "/graphql"),
    ("post", "/grpc"),
    ("post", "/grpc/services"),
    ("post", "/run"),
    ("get", "/traces/stream"),
    ("post", "/v1/traces"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn the_document_is_served_complete_and_checked_in() {
    prism_testkit::on_sqlite(|store| async move {
        let plane = serve(store).await;
        let response = client()
            .get(plane.url("/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let doc: Value = response.json().await.unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().unwrap();
        for (method, path) in SERVED {
            assert!(
                paths.get(*path).and_then(|p| p.get(*method)).is_some(),
                "{method} {path} is served but not documented"
            );
        }
        for (path, operations) in paths {
            for method in operations.as_object().unwrap().keys() {
                assert!(
                    SERVED.contains(&(method.as_str(), path.as_str())),
                    "{method} {path} is documented but not in SERVED"
                );
                // And the router really serves it: anything but 404/405.
                let request = match method.as_str() {
                    "get" => client().get(plane.url(path)),
                    _ => client().post(plane.url(path)).body("{}"),
                };
                let status = request.send().await.unwrap().status().as_u16();
                assert!(status != 404 && status != 405, "{method} {path}: {status}");
            }
        }
        let rest = &doc["components"]["schemas"]["RestCall"];
        // The link fields are flattened in: `allOf` of `Link` and the call's own fields.
        let own = &rest["allOf"][1];
        assert!(
            own["required"].as_array().unwrap().contains(&"url".into()),
            "{rest}"
        );
        assert!(own["properties"]["headers"].is_object(), "{rest}");
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

        let file =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi/intercept.json");
        let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
        if std::env::var_os("PRISM_UPDATE_OPENAPI").is_some() {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &pretty).unwrap();
        }
        let checked_in = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            checked_in == pretty,
            "docs/openapi/intercept.json is stale: regenerate it with PRISM_UPDATE_OPENAPI=1"
        );
    })
    .await;
}
