//! API tokens and workspace ingest keys: secrets shown once, listing without secrets, revocation
//! and expiry, use on the data plane, and the ingest keys' role matrix.

use prism_testkit::for_each_backend;
use reqwest::Method;
use serde_json::{Value, json};

use crate::accounts::{Browser, PASSWORD};
use crate::support::{Call, Cast, Matrix, Soul, client, now, with_cast};

/// `GET path` with a bearer token: the status.
async fn status_with(soul: &Soul, token: &str, path: &str) -> u16 {
    client()
        .get(soul.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

mod suite {
    use super::*;
    use std::sync::Arc;

    use prism_domain::session::{ApiToken, hash_secret};
    use prism_domain::{ApiTokenId, Timestamp};
    use prism_store::Store;

    pub async fn token_lifecycle(store: Arc<dyn Store>) {
        let soul = Soul::start(store).await;
        let ada = soul.user("ada@example.test").await;

        let created = ada
            .post("/api/tokens", json!({"name": "  CI deploys "}))
            .await
            .expect(201);
        let secret = created.body["token"].as_str().unwrap().to_owned();
        assert!(
            secret.starts_with("prism_pat_") && secret.len() == 74,
            "{secret}"
        );
        assert_eq!(created.body["name"], "CI deploys");
        assert_eq!(created.body["prefix"], &secret[..16]);
        assert_eq!(created.body["expires_at"], Value::Null);
        let id = created.id();

        let dated = ada
            .post(
                "/api/tokens",
                json!({"name": "month", "expires_in_days": 30}),
            )
            .await
            .expect(201);
        let created_at =
            Timestamp::parse_rfc3339(dated.body["created_at"].as_str().unwrap()).unwrap();
        let expires_at =
            Timestamp::parse_rfc3339(dated.body["expires_at"].as_str().unwrap()).unwrap();
        assert_eq!(
            expires_at.nanos() - created_at.nanos(),
            30 * 24 * 3600 * 1_000_000_000
        );

        // The new token authenticates, on any endpoint, as its owner.
        let me = client()
            .get(soul.url("/api/me"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200);
        let me: Value = me.json().await.unwrap();
        assert_eq!(
            (me["email"].as_str(), me["via"].as_str()),
            (Some("ada@example.test"), Some("api_token"))
        );

        // Listed newest first, never with a secret.
        let listed = ada.get("/api/tokens").await.expect(200);
        let names: Vec<_> = listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["month", "CI deploys", "tests"]);
        let text = listed.body.to_string();
        assert!(!text.contains(&secret) && !text.contains(&ada.token));
        assert!(
            listed
                .body
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t.get("token").is_none())
        );
        let entry = &listed.body[1];
        assert_eq!(entry["id"], id.as_str());
        assert_eq!(entry["prefix"], &secret[..16]);
        assert_eq!(entry["revoked_at"], Value::Null);
        assert!(entry.get("last_used_at").is_some());

        // Others can neither see nor revoke it.
        let bob = soul.user("bob@example.test").await;
        assert_eq!(
            bob.get("/api/tokens").await.body.as_array().unwrap().len(),
            1
        );
        let foreign = bob.delete(&format!("/api/tokens/{id}")).await.expect(404);
        assert_eq!(foreign.code(), "token_not_found");
        assert_eq!(status_with(&soul, &secret, "/api/me").await, 200);

        ada.delete(&format!("/api/tokens/{id}")).await.expect(204);
        for path in ["/api/me", "/api/tokens", "/api/workspaces"] {
            assert_eq!(status_with(&soul, &secret, path).await, 401, "{path}");
        }
        let listed = ada.get("/api/tokens").await.expect(200);
        assert!(listed.body[1]["revoked_at"].is_string(), "{}", listed.body);
        ada.delete(&format!("/api/tokens/{id}")).await.expect(204);
        let missing = ada
            .delete(&format!("/api/tokens/{}", ApiTokenId::new()))
            .await
            .expect(404);
        assert_eq!(missing.code(), "token_not_found");
        assert_eq!(
            ada.delete("/api/tokens/nope").await.expect(400).code(),
            "invalid_id"
        );
    }

    pub async fn token_input_is_validated(store: Arc<dyn Store>) {
        let soul = Soul::start(store).await;
        let ada = soul.user("ada@example.test").await;
        for days in [json!(0), json!(-1), json!(3651), json!(1.5), json!("7")] {
            let bad = ada
                .post("/api/tokens", json!({"name": "t", "expires_in_days": days}))
                .await
                .expect(422);
            assert_eq!(bad.body["field"], "expires_in_days", "{days}");
        }
        for edge in [1, 3650] {
            ada.post("/api/tokens", json!({"name": "t", "expires_in_days": edge}))
                .await
                .expect(201);
        }
        let blank = ada
            .post("/api/tokens", json!({"name": ""}))
            .await
            .expect(422);
        assert_eq!(blank.body["field"], "name");
        let extra = ada
            .post("/api/tokens", json!({"name": "t", "scope": "all"}))
            .await
            .expect(422);
        assert_eq!(extra.code(), "invalid_field");
        assert_eq!(
            ada.get("/api/tokens").await.body.as_array().unwrap().len(),
            3
        );
        let anonymous = client()
            .post(soul.url("/api/tokens"))
            .json(&json!({"name": "t"}))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);
    }

    pub async fn expired_tokens_are_refused(store: Arc<dyn Store>) {
        let soul = Soul::start(store.clone()).await;
        let ada = soul.user("ada@example.test").await;
        // The API only makes tokens that expire in a day or more, so this one is stored directly.
        let secret =
            prism_domain::session::generate_secret(prism_domain::session::SecretKind::ApiToken);
        let issued = now();
        store
            .insert_api_token(&ApiToken {
                id: ApiTokenId::new(),
                user_id: ada.id,
                name: "old".into(),
                prefix: secret[..16].to_owned(),
                token_hash: hash_secret(&secret),
                created_at: Timestamp(issued.nanos() - 10_000_000_000),
                last_used_at: None,
                expires_at: Some(Timestamp(issued.nanos() - 1_000_000_000)),
                revoked_at: None,
            })
            .await
            .unwrap();
        for path in ["/api/me", "/api/tokens"] {
            assert_eq!(status_with(&soul, &secret, path).await, 401, "{path}");
        }
        let listed = ada.get("/api/tokens").await.expect(200);
        let old = listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "old")
            .expect("expired tokens are still listed");
        assert!(old["expires_at"].is_string());
        // The owner's other token is unaffected.
        assert_eq!(status_with(&soul, &ada.token, "/api/me").await, 200);
    }

    pub async fn a_token_made_here_runs_requests_on_the_data_plane(store: Arc<dyn Store>) {
        let soul = Soul::start(store).await;
        let mut ada = Browser::new(&soul);
        ada.signup("ada@example.test", PASSWORD).await.expect(201);
        ada.call(
            Method::POST,
            "/api/workspaces",
            Some(json!({"name": "Team"})),
        )
        .await
        .expect(201);
        let token = ada
            .call(Method::POST, "/api/tokens", Some(json!({"name": "cli"})))
            .await
            .expect(201)
            .body["token"]
            .as_str()
            .unwrap()
            .to_owned();

        let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target_addr = target.local_addr().unwrap();
        let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "hi" }));
        tokio::spawn(async move { axum::serve(target, app).await.unwrap() });
        let plane = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plane_addr = plane.local_addr().unwrap();
        let app = prism_intercept::router(soul.intercept.clone())
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(plane, app).await.unwrap() });

        let run = |token: String| {
            client()
                .post(format!("http://{plane_addr}/rest"))
                .bearer_auth(token)
                .json(&json!({"method": "GET", "url": format!("http://{target_addr}/hello")}))
                .send()
        };
        let answer = run(token.clone()).await.unwrap();
        assert_eq!(answer.status(), 200);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["status"], 200, "{body}");
        assert!(
            body["execution_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "{body}"
        );
        let refused = run("prism_pat_not-a-token".into()).await.unwrap();
        assert_eq!(refused.status(), 401);
    }

    pub async fn ingest_key_lifecycle(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let ws = c.ws();
            let created = c
                .admin
                .post(
                    &format!("/api/workspaces/{ws}/ingest-keys"),
                    json!({"name": "checkout service"}),
                )
                .await
                .expect(201);
            let key = created.body["key"].as_str().unwrap().to_owned();
            assert!(key.starts_with("prism_ik_"), "{key}");
            assert_eq!(created.body["prefix"], &key[..16]);
            let id = created.id();
            let stored = c
                .soul
                .store
                .find_active_ingest_key(&hash_secret(&key))
                .await
                .unwrap()
                .expect("the key is stored by its hash");
            assert_eq!(stored.workspace_id, c.workspace);
            assert_eq!(stored.created_by, Some(c.admin.id));

            let listed = c
                .admin
                .get(&format!("/api/workspaces/{ws}/ingest-keys"))
                .await
                .expect(200);
            assert_eq!(listed.body.as_array().unwrap().len(), 1);
            assert!(!listed.body.to_string().contains(&key));
            assert!(listed.body[0].get("key").is_none());
            assert_eq!(listed.body[0]["name"], "checkout service");
            assert_eq!(
                listed.body[0]["created_by"],
                c.admin.id.to_string().as_str()
            );

            // A key is revoked only through its own workspace.
            let other = c.soul.workspace(&c.admin, "Other").await;
            let wrong = c
                .admin
                .delete(&format!("/api/workspaces/{other}/ingest-keys/{id}"))
                .await
                .expect(404);
            assert_eq!(wrong.code(), "ingest_key_not_found");
            c.admin
                .delete(&format!("/api/workspaces/{ws}/ingest-keys/{id}"))
                .await
                .expect(204);
            assert!(
                c.soul
                    .store
                    .find_active_ingest_key(&hash_secret(&key))
                    .await
                    .unwrap()
                    .is_none(),
                "a revoked key no longer ingests"
            );
            let listed = c
                .admin
                .get(&format!("/api/workspaces/{ws}/ingest-keys"))
                .await
                .expect(200);
            assert!(listed.body[0]["revoked_at"].is_string());
            let blank = c
                .admin
                .post(
                    &format!("/api/workspaces/{ws}/ingest-keys"),
                    json!({"name": ""}),
                )
                .await
                .expect(422);
            assert_eq!(blank.body["field"], "name");
            let bad = c
                .admin
                .delete(&format!("/api/workspaces/{ws}/ingest-keys/nope"))
                .await
                .expect(400);
            assert_eq!(bad.code(), "invalid_id");
        })
        .await;
    }

    pub async fn ingest_key_role_matrix(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let mut m = Matrix::default();
            m.row(
                "POST ingest-keys",
                [201, 403, 403, 404],
                c.statuses(async |c: &Cast| {
                    Call::new(
                        Method::POST,
                        format!("/api/workspaces/{}/ingest-keys", c.ws()),
                        Some(json!({"name": "exporter"})),
                    )
                })
                .await,
            );
            m.row(
                "GET ingest-keys",
                [200, 403, 403, 404],
                c.statuses(async |c: &Cast| {
                    Call::new(
                        Method::GET,
                        format!("/api/workspaces/{}/ingest-keys", c.ws()),
                        None,
                    )
                })
                .await,
            );
            m.row(
                "DELETE ingest-key",
                [204, 403, 403, 404],
                c.statuses(async |c: &Cast| {
                    let fresh = c
                        .admin
                        .post(
                            &format!("/api/workspaces/{}/ingest-keys", c.ws()),
                            json!({"name": "doomed"}),
                        )
                        .await
                        .expect(201)
                        .id();
                    Call::new(
                        Method::DELETE,
                        format!("/api/workspaces/{}/ingest-keys/{fresh}", c.ws()),
                        None,
                    )
                })
                .await,
            );
            m.assert();
            // Only the admin's deletion happened: three of the four "doomed" keys are live.
            let keys = c.soul.store.list_ingest_keys(c.workspace).await.unwrap();
            let live = keys
                .iter()
                .filter(|k| k.name == "doomed" && k.revoked_at.is_none())
                .count();
            assert_eq!(live, 3);
        })
        .await;
    }
}

for_each_backend!(super::suite =>
    token_lifecycle,
    token_input_is_validated,
    expired_tokens_are_refused,
    a_token_made_here_runs_requests_on_the_data_plane,
    ingest_key_lifecycle,
    ingest_key_role_matrix,
);
