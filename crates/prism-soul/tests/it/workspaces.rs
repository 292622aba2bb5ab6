//! Workspaces and members: the lifecycle, the last-admin rule, and the role matrix.

use prism_testkit::for_each_backend;
use reqwest::Method;
use serde_json::json;

use crate::support::{Call, Cast, Matrix, with_cast};

mod suite {
    use super::*;
    use std::sync::Arc;

    use prism_store::Store;

    pub async fn workspace_lifecycle(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let created = c
                .editor
                .post("/api/workspaces", json!({"name": "  Payments "}))
                .await
                .expect(201);
            assert_eq!(created.body["name"], "Payments");
            assert_eq!(created.body["role"], "admin");
            let id = created.id();
            let listed = c.editor.get("/api/workspaces").await.expect(200);
            let names: Vec<_> = listed
                .body
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["name"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(names, ["Payments", "Team"]);
            let renamed = c
                .editor
                .patch(&format!("/api/workspaces/{id}"), json!({"name": "Billing"}))
                .await
                .expect(200);
            assert_eq!(renamed.body["name"], "Billing");
            c.editor
                .delete(&format!("/api/workspaces/{id}"))
                .await
                .expect(204);
            let gone = c
                .editor
                .get(&format!("/api/workspaces/{id}"))
                .await
                .expect(404);
            assert_eq!(gone.code(), "workspace_not_found");
            assert!(
                gone.body["request_id"]
                    .as_str()
                    .is_some_and(|r| !r.is_empty())
            );
        })
        .await;
    }

    pub async fn bad_input_names_the_field(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let blank = c
                .admin
                .post("/api/workspaces", json!({"name": "  "}))
                .await
                .expect(422);
            assert_eq!(blank.body["field"], "name");
            let long = c
                .admin
                .post("/api/workspaces", json!({"name": "x".repeat(201)}))
                .await
                .expect(422);
            assert_eq!(long.code(), "invalid_field");
            let wrong_type = c
                .admin
                .post("/api/workspaces", json!({"name": 5}))
                .await
                .expect(422);
            assert_eq!(wrong_type.body["field"], "name");
            let missing = c.admin.post("/api/workspaces", json!({})).await.expect(422);
            assert_eq!(missing.code(), "invalid_field");
            let broken = c
                .admin
                .client
                .post(format!("{}/api/workspaces", c.admin.base))
                .bearer_auth(&c.admin.token)
                .header("content-type", "application/json")
                .body("{\"name\": ")
                .send()
                .await
                .unwrap();
            assert_eq!(broken.status(), 400);
            let body: serde_json::Value = broken.json().await.unwrap();
            assert_eq!(body["code"], "invalid_json");
            let bad_id = c.admin.get("/api/workspaces/not-an-id").await.expect(400);
            assert_eq!(bad_id.code(), "invalid_id");
            let anonymous = crate::support::client()
                .get(c.soul.url("/api/workspaces"))
                .send()
                .await
                .unwrap();
            assert_eq!(anonymous.status(), 401);
            let nowhere = c.admin.get("/api/nothing-here").await.expect(404);
            assert_eq!(nowhere.code(), "route_not_found");
        })
        .await;
    }

    pub async fn members_and_the_last_admin(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let ws = c.ws();
            let members = c
                .viewer
                .get(&format!("/api/workspaces/{ws}/members"))
                .await
                .expect(200);
            assert_eq!(members.body.as_array().unwrap().len(), 3);
            let added = c
                .admin
                .post(
                    &format!("/api/workspaces/{ws}/members"),
                    json!({"email": "OUTSIDER@example.test", "role": "viewer"}),
                )
                .await
                .expect(201);
            assert_eq!(added.body["role"], "viewer");
            let again = c
                .admin
                .post(
                    &format!("/api/workspaces/{ws}/members"),
                    json!({"email": "outsider@example.test", "role": "viewer"}),
                )
                .await
                .expect(409);
            assert_eq!(again.code(), "already_member");
            let unknown = c
                .admin
                .post(
                    &format!("/api/workspaces/{ws}/members"),
                    json!({"email": "nobody@example.test", "role": "viewer"}),
                )
                .await
                .expect(422);
            assert_eq!(
                (unknown.code(), unknown.body["field"].as_str()),
                ("unknown_user", Some("email"))
            );
            let bad_role = c
                .admin
                .post(
                    &format!("/api/workspaces/{ws}/members"),
                    json!({"email": "outsider@example.test", "role": "owner"}),
                )
                .await
                .expect(422);
            assert_eq!(bad_role.body["field"], "role");
            // The only admin can neither be demoted nor leave.
            let admin = c.admin.id;
            let demote = c
                .admin
                .patch(
                    &format!("/api/workspaces/{ws}/members/{admin}"),
                    json!({"role": "editor"}),
                )
                .await
                .expect(409);
            assert_eq!(demote.code(), "last_admin");
            c.admin
                .post(&format!("/api/workspaces/{ws}/leave"), json!({}))
                .await
                .expect(409);
            // With a second admin, the first may leave.
            let editor = c.editor.id;
            let promoted = c
                .admin
                .patch(
                    &format!("/api/workspaces/{ws}/members/{editor}"),
                    json!({"role": "admin"}),
                )
                .await
                .expect(200);
            assert_eq!(promoted.body["role"], "admin");
            c.admin
                .post(&format!("/api/workspaces/{ws}/leave"), json!({}))
                .await
                .expect(204);
            c.admin
                .get(&format!("/api/workspaces/{ws}"))
                .await
                .expect(404);
            // Members may remove themselves; removing someone else needs admin.
            let outsider = c.outsider.id;
            c.viewer
                .delete(&format!("/api/workspaces/{ws}/members/{outsider}"))
                .await
                .expect(403);
            c.outsider
                .delete(&format!("/api/workspaces/{ws}/members/{outsider}"))
                .await
                .expect(204);
            c.outsider
                .get(&format!("/api/workspaces/{ws}"))
                .await
                .expect(404);
        })
        .await;
    }

    pub async fn role_matrix(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let mut m = Matrix::default();
            let ws = c.ws();
            m.row(
                "GET workspace",
                [200, 200, 200, 404],
                c.statuses(async |c: &Cast| {
                    Call::new(Method::GET, format!("/api/workspaces/{}", c.ws()), None)
                })
                .await,
            );
            m.row(
                "GET members",
                [200, 200, 200, 404],
                c.statuses(async |c: &Cast| {
                    Call::new(
                        Method::GET,
                        format!("/api/workspaces/{}/members", c.ws()),
                        None,
                    )
                })
                .await,
            );
            m.row(
                "PATCH workspace",
                [200, 403, 403, 404],
                c.statuses(async |c: &Cast| {
                    Call::new(
                        Method::PATCH,
                        format!("/api/workspaces/{}", c.ws()),
                        Some(json!({"name": "Renamed"})),
                    )
                })
                .await,
            );
            m.row(
                "POST members",
                [201, 403, 403, 404],
                c.statuses(async |c: &Cast| {
                    let fresh = c
                        .soul
                        .user(&format!("m{}@example.test", prism_domain::UserId::new()))
                        .await;
                    Call::new(
                        Method::POST,
                        format!("/api/workspaces/{}/members", c.ws()),
                        Some(json!({"email": fresh.email, "role": "viewer"})),
                    )
                })
                .await,
            );
            m.row(
                "PATCH member",
                [200, 403, 403, 404],
                c.statuses(async |c: &Cast| {
                    let fresh = c
                        .soul
                        .user(&format!("p{}@example.test", prism_domain::UserId::new()))
                        .await;
                    c.soul
                        .add_member(c.workspace, &fresh, prism_domain::Role::Viewer)
                        .await;
                    Call::new(
                        Method::PATCH,
                        format!("/api/workspaces/{}/members/{}", c.ws(), fresh.id),
                        Some(json!({"role": "editor"})),
                    )
                })
                .await,
            );
            m.row(
                "DELETE member",
                [204, 403, 403, 404],
                c.statuses(async |c: &Cast| {
                    let fresh = c
                        .soul
                        .user(&format!("d{}@example.test", prism_domain::UserId::new()))
                        .await;
                    c.soul
                        .add_member(c.workspace, &fresh, prism_domain::Role::Viewer)
                        .await;
                    Call::new(
                        Method::DELETE,
                        format!("/api/workspaces/{}/members/{}", c.ws(), fresh.id),
                        None,
                    )
                })
                .await,
            );
            m.row(
                "DELETE workspace",
                [204, 403, 403, 404],
                c.statuses(async |c: &Cast| {
                    // A fresh workspace per role, with the same cast of members.
                    let ws = c.soul.workspace(&c.admin, "Doomed").await;
                    c.soul
                        .add_member(ws, &c.editor, prism_domain::Role::Editor)
                        .await;
                    c.soul
                        .add_member(ws, &c.viewer, prism_domain::Role::Viewer)
                        .await;
                    Call::new(Method::DELETE, format!("/api/workspaces/{ws}"), None)
                })
                .await,
            );
            m.assert();
            let _ = ws;
        })
        .await;
    }
}

for_each_backend!(super::suite => workspace_lifecycle, bad_input_names_the_field, members_and_the_last_admin, role_matrix);
