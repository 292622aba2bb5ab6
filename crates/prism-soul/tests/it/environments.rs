//! Environments: secrets encrypted at rest and masked in answers, saving without revealing,
//! revealing (editors only), keys checked, and the role matrix.

use std::sync::Arc;

use prism_domain::environment::{Environment, Variable};
use prism_domain::{EnvironmentId, WorkspaceId};
use prism_soul::crypto::SecretBox;
use prism_store::Store;
use prism_testkit::for_each_backend;
use reqwest::Method;
use serde_json::{Value, json};

use crate::content::send_raw;
use crate::support::{Call, Cast, Matrix, now, with_cast};

/// An environment stored directly, with one plain and one secret variable (sealed with `secrets`).
async fn seed_environment(
    store: &Arc<dyn Store>,
    ws: WorkspaceId,
    secrets: &SecretBox,
) -> EnvironmentId {
    let at = now();
    let environment = Environment {
        id: EnvironmentId::new(),
        workspace_id: ws,
        name: "Staging".into(),
        variables: vec![
            Variable {
                name: "host".into(),
                value: "staging.example.test".into(),
                secret: false,
                enabled: true,
            },
            Variable {
                name: "token".into(),
                value: secrets.encrypt("s3cret-token"),
                secret: true,
                enabled: true,
            },
        ],
        created_at: at,
        updated_at: at,
    };
    store.insert_environment(&environment).await.unwrap();
    environment.id
}

fn variable<'a>(environment: &'a Value, key: &str) -> &'a Value {
    environment["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["key"] == key)
        .unwrap_or_else(|| panic!("no variable {key} in {environment}"))
}

mod suite {
    use super::*;

    pub async fn secrets_are_stored_encrypted_and_answered_masked(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let created = c
                .editor
                .post(
                    &format!("/api/workspaces/{}/environments", c.ws()),
                    json!({"name": "Production", "variables": [
                        {"key": "base_url", "value": "https://api.example.test", "secret": false},
                        {"key": "API_KEY", "value": "hunter2-very-secret", "secret": true, "enabled": false},
                    ]}),
                )
                .await
                .expect(201)
                .body;
            assert_eq!(
                created["variables"],
                json!([
                    {"key": "base_url", "value": "https://api.example.test", "secret": false, "enabled": true, "masked": false},
                    {"key": "API_KEY", "value": null, "secret": true, "enabled": false, "masked": true},
                ])
            );
            assert!(!created.to_string().contains("hunter2"));
            let id: EnvironmentId = created["id"].as_str().unwrap().parse().unwrap();

            // At rest: the secret is `enc:v1:…`, not the plain text, and decrypts to it.
            let raw = c.soul.store.get_environment(id).await.unwrap();
            assert_eq!(raw.variables[0].value, "https://api.example.test");
            let sealed = &raw.variables[1].value;
            assert!(sealed.starts_with("enc:v1:"), "{sealed}");
            assert!(!sealed.contains("hunter2"));
            assert_eq!(
                c.soul.state.secrets.decrypt(sealed).unwrap(),
                "hunter2-very-secret"
            );

            // Every read masks it.
            let read = c
                .viewer
                .get(&format!("/api/environments/{id}"))
                .await
                .expect(200)
                .body;
            assert_eq!(read, created);
            let listed = c
                .viewer
                .get(&format!("/api/workspaces/{}/environments", c.ws()))
                .await
                .expect(200)
                .body;
            assert_eq!(listed, json!([created]));
            assert!(!listed.to_string().contains("hunter2"));
        })
        .await;
    }

    pub async fn saving_a_masked_secret_keeps_its_value(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let id = seed_environment(&c.soul.store, c.workspace, &c.soul.state.secrets).await;
            let path = format!("/api/environments/{id}");
            // Send back what was shown (value null, masked true), renamed, with a new variable.
            let mut shown = c.editor.get(&path).await.expect(200).body;
            let variables = shown["variables"].as_array_mut().unwrap();
            variables.push(json!({"key": "extra", "value": "1"}));
            let saved = c
                .editor
                .put(
                    &path,
                    json!({"name": "Staging 2", "variables": shown["variables"]}),
                )
                .await
                .expect(200)
                .body;
            assert_eq!(saved["name"], "Staging 2");
            assert_eq!(variable(&saved, "token")["masked"], true);
            let raw = c.soul.store.get_environment(id).await.unwrap();
            assert_eq!(
                c.soul.state.secrets.decrypt(&raw.variables[1].value).unwrap(),
                "s3cret-token"
            );
            assert_eq!(raw.variables[2].value, "1");

            // A new value replaces it, still encrypted.
            c.editor
                .patch(
                    &path,
                    json!({"variables": [{"key": "token", "value": "rotated", "secret": true}]}),
                )
                .await
                .expect(200);
            let raw = c.soul.store.get_environment(id).await.unwrap();
            assert_eq!(raw.name, "Staging 2", "PATCH without a name keeps it");
            assert_eq!(raw.variables.len(), 1);
            assert!(!raw.variables[0].value.contains("rotated"));
            assert_eq!(
                c.soul.state.secrets.decrypt(&raw.variables[0].value).unwrap(),
                "rotated"
            );

            // Un-secreting without a value stores the plain text; making it secret encrypts again.
            let plain = c
                .editor
                .patch(
                    &path,
                    json!({"variables": [{"key": "token", "secret": false}]}),
                )
                .await
                .expect(200)
                .body;
            assert_eq!(
                variable(&plain, "token"),
                &json!({"key": "token", "value": "rotated", "secret": false, "enabled": true, "masked": false})
            );
            c.editor
                .patch(
                    &path,
                    json!({"variables": [{"key": "token", "value": null, "secret": true}]}),
                )
                .await
                .expect(200);
            let raw = c.soul.store.get_environment(id).await.unwrap();
            assert!(SecretBox::is_encrypted(&raw.variables[0].value));
            assert_eq!(
                c.soul.state.secrets.decrypt(&raw.variables[0].value).unwrap(),
                "rotated"
            );
            // A rename alone keeps the variables.
            c.editor
                .patch(&path, json!({"name": "Renamed"}))
                .await
                .expect(200);
            assert_eq!(
                c.soul.store.get_environment(id).await.unwrap().variables,
                raw.variables
            );
            c.editor.delete(&path).await.expect(204);
            assert_eq!(
                c.editor.get(&path).await.expect(404).code(),
                "environment_not_found"
            );
        })
        .await;
    }

    pub async fn editors_reveal_secrets_and_undecryptable_ones_are_named(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let id = seed_environment(&c.soul.store, c.workspace, &c.soul.state.secrets).await;
            let reveal = format!("/api/environments/{id}/reveal");
            let revealed = c
                .editor
                .call(Method::POST, &reveal, None)
                .await
                .expect(200)
                .body;
            assert_eq!(
                variable(&revealed, "token"),
                &json!({"key": "token", "value": "s3cret-token", "secret": true, "enabled": true, "masked": false})
            );
            assert_eq!(
                variable(&revealed, "host")["value"],
                "staging.example.test"
            );
            let denied = c.viewer.call(Method::POST, &reveal, None).await.expect(403);
            assert_eq!(denied.code(), "forbidden");
            assert!(!denied.body.to_string().contains("s3cret"));
            c.outsider.call(Method::POST, &reveal, None).await.expect(404);

            // Sealed under another instance key: masked reads still work; reveal names the variable.
            let other = seed_environment(&c.soul.store, c.workspace, &SecretBox::new("other key")).await;
            c.viewer
                .get(&format!("/api/environments/{other}"))
                .await
                .expect(200);
            let broken = c
                .editor
                .call(Method::POST, &format!("/api/environments/{other}/reveal"), None)
                .await
                .expect(409);
            assert_eq!(broken.code(), "secret_undecryptable");
            assert_eq!(broken.body["field"], "variables[1].value");
            assert!(broken.body["message"].as_str().unwrap().contains("token"));
            // Saving it masked keeps it; un-secreting it cannot, and says why.
            let path = format!("/api/environments/{other}");
            c.editor
                .put(&path, json!({"name": "Kept", "variables": [{"key": "token", "value": null, "secret": true}]}))
                .await
                .expect(200);
            let refused = c
                .editor
                .put(&path, json!({"name": "Kept", "variables": [{"key": "token", "secret": false}]}))
                .await
                .expect(409);
            assert_eq!(refused.code(), "secret_undecryptable");
            // Setting a new value repairs it.
            c.editor
                .put(&path, json!({"name": "Kept", "variables": [{"key": "token", "value": "new", "secret": true}]}))
                .await
                .expect(200);
            let fixed = c
                .editor
                .call(Method::POST, &format!("/api/environments/{other}/reveal"), None)
                .await
                .expect(200)
                .body;
            assert_eq!(variable(&fixed, "token")["value"], "new");

            // The API document describes the masked shape and the reveal action.
            let doc = c.viewer.get("/api/openapi.json").await.expect(200).body;
            assert!(doc["paths"]["/api/environments/{id}/reveal"]["post"].is_object());
            assert!(doc["components"]["schemas"]["VariableView"]["properties"]["masked"].is_object());
        })
        .await;
    }

    pub async fn environment_bad_input_names_the_variable(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let ws = c.ws();
            let create = format!("/api/workspaces/{ws}/environments");
            let existing = seed_environment(&c.soul.store, c.workspace, &c.soul.state.secrets).await;
            let before = c.soul.store.list_environments(c.workspace).await.unwrap();
            let ok = |key: &str| json!({"key": key, "value": "v"});
            let cases = [
                (json!({"variables": []}), "name"),
                (json!({"name": "x".repeat(201)}), "name"),
                (json!({"name": "E", "variables": [ok("a"), ok("b"), ok("c"), ok("has space")]}), "variables[3].key"),
                (json!({"name": "E", "variables": [ok("a"), ok("")]}), "variables[1].key"),
                (json!({"name": "E", "variables": [ok(&"k".repeat(129))]}), "variables[0].key"),
                (json!({"name": "E", "variables": [ok("{{x}}")]}), "variables[0].key"),
                (json!({"name": "E", "variables": [ok("a"), ok("b"), ok("a")]}), "variables[2].key"),
                (json!({"name": "E", "variables": [{"key": "a", "secret": true}]}), "variables[0].value"),
                (json!({"name": "E", "variables": [{"value": "v"}]}), "variables[0].key"),
                (json!({"name": "E", "variables": [{"key": "a", "value": 5}]}), "variables[0].value"),
                (json!({"name": "E", "variables": [{"key": "a", "value": "v", "colour": "red"}]}), "variables[0].colour"),
                (json!({"name": "E", "variables": {"a": "b"}}), "variables"),
            ];
            for (body, field) in cases {
                let answer = c.editor.post(&create, body.clone()).await;
                assert_eq!(answer.status, 422, "{body}: {}", answer.body);
                assert_eq!(answer.body["field"], field, "{body}: {}", answer.body);
            }
            let put = format!("/api/environments/{existing}");
            let answer = c
                .editor
                .put(&put, json!({"name": "E", "variables": [ok("ok"), ok("bad key")]}))
                .await
                .expect(422);
            assert_eq!(answer.body["field"], "variables[1].key");
            let broken = send_raw(&c.editor, Method::POST, &create, b"{\"name\": \"E\",".to_vec()).await;
            assert_eq!((broken.status, broken.code()), (400, "invalid_json"));
            let broken = send_raw(&c.editor, Method::PUT, &put, b"[".to_vec()).await;
            assert_eq!((broken.status, broken.code()), (400, "invalid_json"));
            for path in [
                "/api/environments/nope".to_owned(),
                "/api/workspaces/nope/environments".to_owned(),
            ] {
                assert_eq!(c.editor.get(&path).await.expect(400).code(), "invalid_id");
            }
            let missing = c
                .editor
                .get(&format!("/api/environments/{}", EnvironmentId::new()))
                .await
                .expect(404);
            assert_eq!(missing.code(), "environment_not_found");
            assert_eq!(
                c.soul.store.list_environments(c.workspace).await.unwrap(),
                before,
                "nothing was written"
            );
        })
        .await;
    }

    pub async fn environment_role_matrix(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let mut m = Matrix::default();
            let fresh = async |c: &Cast| {
                seed_environment(&c.soul.store, c.workspace, &c.soul.state.secrets).await
            };
            let body = json!({"name": "Env", "variables": [{"key": "token", "value": "x", "secret": true}]});
            m.row(
                "GET environments",
                [200, 200, 200, 404],
                c.statuses(async |c: &Cast| {
                    Call::new(Method::GET, format!("/api/workspaces/{}/environments", c.ws()), None)
                })
                .await,
            );
            m.row(
                "POST environments",
                [201, 201, 403, 404],
                c.statuses(async |c: &Cast| {
                    Call::new(
                        Method::POST,
                        format!("/api/workspaces/{}/environments", c.ws()),
                        Some(body.clone()),
                    )
                })
                .await,
            );
            m.row(
                "GET environment",
                [200, 200, 200, 404],
                c.statuses(async |c: &Cast| {
                    let id = fresh(c).await;
                    Call::new(Method::GET, format!("/api/environments/{id}"), None)
                })
                .await,
            );
            m.row(
                "PUT environment",
                [200, 200, 403, 404],
                c.statuses(async |c: &Cast| {
                    let id = fresh(c).await;
                    Call::new(Method::PUT, format!("/api/environments/{id}"), Some(body.clone()))
                })
                .await,
            );
            m.row(
                "PATCH environment",
                [200, 200, 403, 404],
                c.statuses(async |c: &Cast| {
                    let id = fresh(c).await;
                    Call::new(
                        Method::PATCH,
                        format!("/api/environments/{id}"),
                        Some(json!({"name": "Renamed"})),
                    )
                })
                .await,
            );
            m.row(
                "DELETE environment",
                [204, 204, 403, 404],
                c.statuses(async |c: &Cast| {
                    let id = fresh(c).await;
                    Call::new(Method::DELETE, format!("/api/environments/{id}"), None)
                })
                .await,
            );
            m.row(
                "POST environment reveal",
                [200, 200, 403, 404],
                c.statuses(async |c: &Cast| {
                    let id = fresh(c).await;
                    Call::new(Method::POST, format!("/api/environments/{id}/reveal"), None)
                })
                .await,
            );
            m.assert();
        })
        .await;
    }
}

for_each_backend!(super::suite =>
    secrets_are_stored_encrypted_and_answered_masked,
    saving_a_masked_secret_keeps_its_value,
    editors_reveal_secrets_and_undecryptable_ones_are_named,
    environment_bad_input_names_the_variable,
    environment_role_matrix,
);
