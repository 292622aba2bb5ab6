//! Collections, folders and saved requests: the tree, moves, duplicates, deletes, every protocol,
//! bad input, and the role matrix.

use std::sync::Arc;

use prism_domain::collection::Collection;
use prism_domain::request::{RequestSpec, RestSpec, SavedRequest};
use prism_domain::workflow::{Workflow, WorkflowStep};
use prism_domain::{CollectionId, RequestId, WorkflowId, WorkflowStepId, WorkspaceId};
use prism_store::Store;
use prism_testkit::for_each_backend;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Answer, Call, Cast, Matrix, TestUser, now, with_cast};

/// A collection (a folder when `parent` is set) stored directly.
pub async fn seed_collection(
    store: &Arc<dyn Store>,
    ws: WorkspaceId,
    parent: Option<CollectionId>,
    name: &str,
) -> CollectionId {
    let at = now();
    store
        .insert_collection(&Collection {
            id: CollectionId::new(),
            workspace_id: ws,
            parent_id: parent,
            name: name.into(),
            position: 0,
            created_by: None,
            created_at: at,
            updated_at: at,
        })
        .await
        .unwrap()
        .id
}

/// A GET request to `http://example.test/<name>` stored directly.
pub async fn seed_request(
    store: &Arc<dyn Store>,
    ws: WorkspaceId,
    collection: CollectionId,
    name: &str,
) -> RequestId {
    let at = now();
    store
        .insert_request(&SavedRequest {
            id: RequestId::new(),
            workspace_id: ws,
            collection_id: collection,
            name: name.into(),
            position: 0,
            spec: RequestSpec::Rest(RestSpec {
                method: "GET".into(),
                url: format!("http://example.test/{name}"),
                params: vec![],
                headers: vec![],
                body: Default::default(),
                settings: Default::default(),
            }),
            created_by: None,
            created_at: at,
            updated_at: at,
        })
        .await
        .unwrap()
        .id
}

/// A workflow in `ws` with one step that runs `request`.
pub async fn seed_workflow_using(
    store: &Arc<dyn Store>,
    ws: WorkspaceId,
    request: RequestId,
) -> WorkflowId {
    let at = now();
    let workflow = Workflow {
        id: WorkflowId::new(),
        workspace_id: ws,
        name: "Flow".into(),
        description: None,
        created_by: None,
        created_at: at,
        updated_at: at,
    };
    store.insert_workflow(&workflow).await.unwrap();
    store
        .replace_workflow_steps(
            workflow.id,
            &[WorkflowStep {
                id: WorkflowStepId::new(),
                workflow_id: workflow.id,
                position: 0,
                name: "step".into(),
                request_id: request,
                retry_count: 0,
                retry_backoff_ms: 0,
                timeout_ms: None,
                condition: None,
                extract: json!({}),
                assertions: json!([]),
            }],
        )
        .await
        .unwrap();
    workflow.id
}

/// Sends `body` as it is, as JSON.
pub async fn send_raw(user: &TestUser, method: Method, path: &str, body: Vec<u8>) -> Answer {
    let response = user
        .client
        .request(method, format!("{}{path}", user.base))
        .bearer_auth(&user.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn rest_body(name: &str) -> Value {
    json!({"name": name, "protocol": "rest", "method": "POST", "url": "http://{{host}}/users",
           "params": [{"key": "page", "value": "2", "enabled": false}],
           "headers": [{"key": "X-A", "value": "1", "enabled": true}, {"key": "X-A", "value": "2", "enabled": true}],
           "body": {"kind": "json", "text": "{\"a\": {{n}}}"}})
}

fn graphql_body(name: &str) -> Value {
    json!({"name": name, "protocol": "graphql", "url": "http://h/graphql",
           "query": "query Me { me { id } }", "variables": {"id": "{{id}}"}, "operation_name": "Me"})
}

fn grpc_body(name: &str) -> Value {
    json!({"name": name, "protocol": "grpc", "server_address": "{{grpc}}", "service": "acme.Orders",
           "method": "GetOrder", "proto_files": [{"name": "a.proto", "content": "syntax = \"proto3\";"}],
           "metadata": [{"key": "x-k", "value": "v", "enabled": true}], "body": {"id": 1},
           "use_tls": true})
}

/// `(name, position)` of a JSON list of tree nodes or requests.
fn order(list: &Value) -> Vec<(String, i64)> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_owned(),
                n["position"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, i64)]) -> Vec<(String, i64)> {
    items.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect()
}

mod suite {
    use super::*;

    pub async fn collection_tree_nests_folders_and_requests_in_order(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let ws = c.ws();
            let path = format!("/api/workspaces/{ws}/collections");
            let users = c
                .editor
                .post(&path, json!({"name": " Users "}))
                .await
                .expect(201);
            assert_eq!(users.body["name"], "Users");
            assert_eq!(users.body["parent_id"], Value::Null);
            assert_eq!(users.body["position"], 0);
            assert_eq!(users.body["folders"], json!([]));
            let users = users.id();
            let orders = c
                .editor
                .post(&path, json!({"name": "Orders"}))
                .await
                .expect(201);
            assert_eq!(orders.body["position"], 1);
            let admin = c
                .editor
                .post(&path, json!({"name": "Admin", "parent_id": users}))
                .await
                .expect(201);
            assert_eq!(admin.body["parent_id"], users.as_str());
            assert_eq!(admin.body["position"], 0);
            let admin = admin.id();
            c.editor
                .post(&path, json!({"name": "Public", "parent_id": users}))
                .await
                .expect(201);
            let deep = c
                .editor
                .post(&path, json!({"name": "Deep", "parent_id": admin}))
                .await
                .expect(201)
                .id();
            for body in [rest_body("create"), graphql_body("me"), grpc_body("order")] {
                c.editor
                    .post(&format!("/api/collections/{users}/requests"), body)
                    .await
                    .expect(201);
            }
            c.editor
                .post(
                    &format!("/api/collections/{deep}/requests"),
                    rest_body("deep one"),
                )
                .await
                .expect(201);

            let tree = c.viewer.get(&path).await.expect(200).body;
            assert_eq!(order(&tree), pairs(&[("Users", 0), ("Orders", 1)]));
            let top = &tree[0];
            assert_eq!(order(&top["folders"]), pairs(&[("Admin", 0), ("Public", 1)]));
            assert_eq!(
                top["requests"],
                json!([
                    {"id": top["requests"][0]["id"], "name": "create", "protocol": "rest", "method": "POST", "position": 0},
                    {"id": top["requests"][1]["id"], "name": "me", "protocol": "graphql", "method": "POST", "position": 1},
                    {"id": top["requests"][2]["id"], "name": "order", "protocol": "grpc", "method": "GetOrder", "position": 2},
                ])
            );
            let deep_node = &top["folders"][0]["folders"][0];
            assert_eq!(deep_node["name"], "Deep");
            assert_eq!(deep_node["parent_id"], admin.as_str());
            assert_eq!(order(&deep_node["requests"]), pairs(&[("deep one", 0)]));
            assert_eq!(tree[1]["folders"], json!([]));
            assert!(tree[1]["created_at"].as_str().unwrap().ends_with('Z'));

            // One node answers with its own subtree.
            let node = c
                .viewer
                .get(&format!("/api/collections/{admin}"))
                .await
                .expect(200)
                .body;
            assert_eq!(node["name"], "Admin");
            assert_eq!(order(&node["folders"]), pairs(&[("Deep", 0)]));
            assert_eq!(node["folders"][0]["requests"][0]["name"], "deep one");
            let listed = c
                .viewer
                .get(&format!("/api/collections/{users}/requests"))
                .await
                .expect(200)
                .body;
            assert_eq!(
                order(&listed),
                pairs(&[("create", 0), ("me", 1), ("order", 2)])
            );
            assert_eq!(listed[1]["query"], "query Me { me { id } }");
            assert_eq!(listed[0]["collection_id"], users.as_str());
        })
        .await;
    }

    pub async fn collections_are_renamed_reordered_and_moved(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let ws = c.workspace;
            let store = c.soul.store.clone();
            let a = seed_collection(&store, ws, None, "A").await;
            let b = seed_collection(&store, ws, None, "B").await;
            let cc = seed_collection(&store, ws, None, "C").await;
            let a0 = seed_collection(&store, ws, Some(a), "a0").await;
            let a00 = seed_collection(&store, ws, Some(a0), "a00").await;
            let tree_path = format!("/api/workspaces/{ws}/collections");

            // Rename only: the place stays.
            let renamed = c
                .editor
                .patch(&format!("/api/collections/{b}"), json!({"name": "Billing"}))
                .await
                .expect(200);
            assert_eq!(
                (&renamed.body["name"], &renamed.body["position"]),
                (&json!("Billing"), &json!(1))
            );
            // Reorder among siblings.
            c.editor
                .patch(&format!("/api/collections/{cc}"), json!({"position": 0}))
                .await
                .expect(200);
            let tree = c.editor.get(&tree_path).await.expect(200).body;
            assert_eq!(order(&tree), pairs(&[("C", 0), ("A", 1), ("Billing", 2)]));
            // Into a folder (last there), renamed in the same call.
            let moved = c
                .editor
                .patch(
                    &format!("/api/collections/{cc}"),
                    json!({"parent_id": a0.to_string(), "name": "Cc"}),
                )
                .await
                .expect(200);
            assert_eq!(moved.body["parent_id"], a0.to_string());
            assert_eq!(moved.body["name"], "Cc");
            let node = c
                .editor
                .get(&format!("/api/collections/{a0}"))
                .await
                .expect(200)
                .body;
            assert_eq!(order(&node["folders"]), pairs(&[("a00", 0), ("Cc", 1)]));
            // An explicit null moves to the top level, here at the front.
            let top = c
                .editor
                .patch(
                    &format!("/api/collections/{a00}"),
                    json!({"parent_id": null, "position": 0}),
                )
                .await
                .expect(200);
            assert_eq!(top.body["parent_id"], Value::Null);
            let tree = c.editor.get(&tree_path).await.expect(200).body;
            assert_eq!(order(&tree), pairs(&[("a00", 0), ("A", 1), ("Billing", 2)]));
            // Into itself or its own folder: a cycle.
            for target in [a, a0] {
                let cycle = c
                    .editor
                    .patch(
                        &format!("/api/collections/{a}"),
                        json!({"parent_id": target.to_string()}),
                    )
                    .await
                    .expect(409);
                assert_eq!(cycle.code(), "move_cycle");
            }
            assert_eq!(c.editor.get(&tree_path).await.body, tree, "nothing moved");
        })
        .await;
    }

    pub async fn folders_nest_at_most_32_deep(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let ws = c.workspace;
            let store = c.soul.store.clone();
            let mut parent = seed_collection(&store, ws, None, "level 1").await;
            for level in 2..=32 {
                parent = seed_collection(&store, ws, Some(parent), &format!("level {level}")).await;
            }
            let too_deep = c
                .editor
                .post(
                    &format!("/api/workspaces/{ws}/collections"),
                    json!({"name": "level 33", "parent_id": parent.to_string()}),
                )
                .await
                .expect(422);
            assert_eq!(too_deep.body["field"], "parent_id");
            // Moving a two-level subtree under level 31 would make 33 levels as well.
            let other = seed_collection(&store, ws, None, "Other").await;
            seed_collection(&store, ws, Some(other), "inner").await;
            let level_31 = store
                .get_collection(parent)
                .await
                .unwrap()
                .parent_id
                .unwrap();
            let refused = c
                .editor
                .patch(
                    &format!("/api/collections/{other}"),
                    json!({"parent_id": level_31.to_string()}),
                )
                .await
                .expect(422);
            assert_eq!(refused.body["field"], "parent_id");
            assert_eq!(store.get_collection(other).await.unwrap().parent_id, None);
            // The whole chain still answers as a tree.
            let tree = c
                .viewer
                .get(&format!("/api/workspaces/{ws}/collections"))
                .await
                .expect(200)
                .body;
            let mut node = &tree[0];
            for _ in 1..32 {
                node = &node["folders"][0];
            }
            assert_eq!(node["name"], "level 32");
        })
        .await;
    }

    pub async fn duplicating_a_collection_copies_everything_right_after_it(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let ws = c.workspace;
            let store = c.soul.store.clone();
            let a = seed_collection(&store, ws, None, "A").await;
            seed_collection(&store, ws, None, "B").await;
            let f = seed_collection(&store, ws, Some(a), "f").await;
            let original_request = c
                .editor
                .post(
                    &format!("/api/collections/{f}/requests"),
                    grpc_body("order"),
                )
                .await
                .expect(201)
                .body;
            // No body at all: the default name.
            let copy = c
                .editor
                .call(
                    Method::POST,
                    &format!("/api/collections/{a}/duplicate"),
                    None,
                )
                .await
                .expect(201)
                .body;
            assert_eq!(copy["name"], "A (copy)");
            assert_eq!(copy["position"], 1);
            assert_ne!(copy["id"], a.to_string());
            let copied_folder = &copy["folders"][0];
            assert_eq!(copied_folder["name"], "f");
            assert_ne!(copied_folder["id"], f.to_string());
            let copied_request_id = copied_folder["requests"][0]["id"].as_str().unwrap();
            assert_ne!(copied_request_id, original_request["id"].as_str().unwrap());
            let copied_request = c
                .editor
                .get(&format!("/api/requests/{copied_request_id}"))
                .await
                .expect(200)
                .body;
            for field in [
                "protocol",
                "server_address",
                "service",
                "method",
                "proto_files",
                "metadata",
                "body",
                "use_tls",
            ] {
                assert_eq!(copied_request[field], original_request[field], "{field}");
            }
            assert_eq!(copied_request["collection_id"], copied_folder["id"]);
            let tree = c
                .editor
                .get(&format!("/api/workspaces/{ws}/collections"))
                .await
                .expect(200)
                .body;
            assert_eq!(order(&tree), pairs(&[("A", 0), ("A (copy)", 1), ("B", 2)]));
            assert_eq!(
                tree[0]["folders"][0]["id"],
                f.to_string(),
                "the original stays"
            );
            // A folder with a chosen name stays under its parent.
            let named = c
                .editor
                .post(
                    &format!("/api/collections/{f}/duplicate"),
                    json!({"name": "f, again"}),
                )
                .await
                .expect(201)
                .body;
            assert_eq!(
                (&named["name"], &named["parent_id"], &named["position"]),
                (&json!("f, again"), &json!(a.to_string()), &json!(1))
            );
        })
        .await;
    }

    pub async fn deleting_a_collection_takes_its_contents_unless_a_workflow_uses_them(
        store: Arc<dyn Store>,
    ) {
        with_cast(store, async |c: &mut Cast| {
            let ws = c.workspace;
            let store = c.soul.store.clone();
            let a = seed_collection(&store, ws, None, "A").await;
            let f = seed_collection(&store, ws, Some(a), "f").await;
            let used = seed_request(&store, ws, f, "used").await;
            let loose = seed_request(&store, ws, a, "loose").await;
            let workflow = seed_workflow_using(&store, ws, used).await;

            let in_use = c
                .editor
                .delete(&format!("/api/collections/{a}"))
                .await
                .expect(409);
            assert_eq!(in_use.code(), "in_use");
            let in_use = c
                .editor
                .delete(&format!("/api/requests/{used}"))
                .await
                .expect(409);
            assert_eq!(in_use.code(), "in_use");
            for path in [
                format!("/api/collections/{a}"),
                format!("/api/collections/{f}"),
                format!("/api/requests/{used}"),
                format!("/api/requests/{loose}"),
            ] {
                c.editor.get(&path).await.expect(200);
            }

            store.delete_workflow(workflow).await.unwrap();
            c.editor
                .delete(&format!("/api/collections/{a}"))
                .await
                .expect(204);
            for (path, code) in [
                (format!("/api/collections/{a}"), "collection_not_found"),
                (format!("/api/collections/{f}"), "collection_not_found"),
                (format!("/api/requests/{used}"), "request_not_found"),
                (format!("/api/requests/{loose}"), "request_not_found"),
            ] {
                assert_eq!(c.editor.get(&path).await.expect(404).code(), code);
            }
            assert_eq!(
                c.editor
                    .get(&format!("/api/workspaces/{ws}/collections"))
                    .await
                    .body,
                json!([])
            );
        })
        .await;
    }

    pub async fn saved_requests_of_every_protocol_round_trip(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let col = seed_collection(&c.soul.store, c.workspace, None, "C").await;
            for (position, body) in [rest_body("r"), graphql_body("g"), grpc_body("o")]
                .into_iter()
                .enumerate()
            {
                let created = c
                    .editor
                    .post(&format!("/api/collections/{col}/requests"), body.clone())
                    .await
                    .expect(201)
                    .body;
                assert_eq!(created["workspace_id"], c.ws());
                assert_eq!(created["collection_id"], col.to_string());
                assert_eq!(created["position"], position);
                let id = created["id"].as_str().unwrap().to_owned();
                let read = c
                    .viewer
                    .get(&format!("/api/requests/{id}"))
                    .await
                    .expect(200)
                    .body;
                assert_eq!(read, created);
                for (field, value) in body.as_object().unwrap() {
                    assert_eq!(&read[field], value, "{field} of {body}");
                }
            }
            // The REST defaults are filled in.
            let minimal = c
                .editor
                .post(
                    &format!("/api/collections/{col}/requests"),
                    json!({"name": "m", "protocol": "rest", "url": "http://h/"}),
                )
                .await
                .expect(201)
                .body;
            assert_eq!(minimal["method"], "GET");
            assert_eq!(minimal["body"], json!({"kind": "none"}));
        })
        .await;
    }

    pub async fn requests_are_replaced_moved_and_duplicated(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let ws = c.workspace;
            let store = c.soul.store.clone();
            let one = seed_collection(&store, ws, None, "One").await;
            let two = seed_collection(&store, ws, None, "Two").await;
            let first = seed_request(&store, ws, one, "first").await;
            let second = seed_request(&store, ws, one, "second").await;
            seed_request(&store, ws, two, "other").await;

            // PUT replaces everything, protocol included.
            let replaced = c
                .editor
                .put(
                    &format!("/api/requests/{first}"),
                    graphql_body("First, as GraphQL"),
                )
                .await
                .expect(200)
                .body;
            assert_eq!(replaced["protocol"], "graphql");
            assert_eq!(replaced["name"], "First, as GraphQL");
            assert_eq!(replaced["method"], Value::Null, "REST fields are gone");
            assert_eq!(replaced["position"], 0);
            // Reorder inside the collection.
            let moved = c
                .editor
                .patch(&format!("/api/requests/{second}"), json!({"position": 0}))
                .await
                .expect(200)
                .body;
            assert_eq!(moved["position"], 0);
            let listed = c
                .editor
                .get(&format!("/api/collections/{one}/requests"))
                .await
                .body;
            assert_eq!(
                order(&listed),
                pairs(&[("second", 0), ("First, as GraphQL", 1)])
            );
            // Into another collection at the front, renamed; the spec stays.
            let moved = c
                .editor
                .patch(
                    &format!("/api/requests/{first}"),
                    json!({"collection_id": two.to_string(), "position": 0, "name": "Moved"}),
                )
                .await
                .expect(200)
                .body;
            assert_eq!(moved["collection_id"], two.to_string());
            assert_eq!(moved["query"], replaced["query"]);
            let listed = c
                .editor
                .get(&format!("/api/collections/{two}/requests"))
                .await
                .body;
            assert_eq!(order(&listed), pairs(&[("Moved", 0), ("other", 1)]));
            let listed = c
                .editor
                .get(&format!("/api/collections/{one}/requests"))
                .await
                .body;
            assert_eq!(order(&listed), pairs(&[("second", 0)]));
            // Rename only keeps the place.
            let renamed = c
                .editor
                .patch(
                    &format!("/api/requests/{first}"),
                    json!({"name": "Renamed"}),
                )
                .await
                .expect(200)
                .body;
            assert_eq!(
                (&renamed["name"], &renamed["position"]),
                (&json!("Renamed"), &json!(0))
            );

            // A duplicate lands right after the original.
            let copy = c
                .editor
                .call(
                    Method::POST,
                    &format!("/api/requests/{first}/duplicate"),
                    None,
                )
                .await
                .expect(201)
                .body;
            assert_eq!(copy["name"], "Renamed (copy)");
            assert_eq!(copy["position"], 1);
            assert_eq!(copy["query"], replaced["query"]);
            assert_ne!(copy["id"], first.to_string());
            let listed = c
                .editor
                .get(&format!("/api/collections/{two}/requests"))
                .await
                .body;
            assert_eq!(
                order(&listed),
                pairs(&[("Renamed", 0), ("Renamed (copy)", 1), ("other", 2)])
            );
            let named = c
                .editor
                .post(
                    &format!("/api/requests/{second}/duplicate"),
                    json!({"name": "Twin"}),
                )
                .await
                .expect(201);
            assert_eq!(named.body["name"], "Twin");

            c.editor
                .delete(&format!("/api/requests/{first}"))
                .await
                .expect(204);
            c.editor
                .get(&format!("/api/requests/{first}"))
                .await
                .expect(404);
            let listed = c
                .editor
                .get(&format!("/api/collections/{two}/requests"))
                .await
                .body;
            assert_eq!(listed.as_array().unwrap().len(), 2);
        })
        .await;
    }

    pub async fn bad_input_is_refused_and_nothing_is_half_written(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let ws = c.workspace;
            let store = c.soul.store.clone();
            let col = seed_collection(&store, ws, None, "C").await;
            let req = seed_request(&store, ws, col, "r").await;
            // Another workspace's collection and request, where the editor is also admin.
            let elsewhere = c.soul.workspace(&c.editor, "Elsewhere").await;
            let foreign_col = seed_collection(&store, elsewhere, None, "Foreign").await;
            let foreign_req = seed_request(&store, elsewhere, foreign_col, "foreign").await;
            let snapshot = async || {
                (
                    store.list_collections(ws).await.unwrap(),
                    store.list_workspace_requests(ws).await.unwrap(),
                    store.list_collections(elsewhere).await.unwrap(),
                    store.list_workspace_requests(elsewhere).await.unwrap(),
                )
            };
            let before = snapshot().await;
            let collections = format!("/api/workspaces/{ws}/collections");
            let requests = format!("/api/collections/{col}/requests");
            let field = |a: &Answer| a.body["field"].as_str().unwrap_or_default().to_owned();

            for (path, method) in [
                (collections.clone(), Method::POST),
                (requests.clone(), Method::POST),
                (format!("/api/collections/{col}"), Method::PATCH),
                (format!("/api/requests/{req}"), Method::PUT),
                (format!("/api/requests/{req}"), Method::PATCH),
                (format!("/api/collections/{col}/duplicate"), Method::POST),
            ] {
                let broken =
                    send_raw(&c.editor, method.clone(), &path, b"{\"name\": ".to_vec()).await;
                assert_eq!((broken.status, broken.code()), (400, "invalid_json"), "{method} {path}");
            }
            // Missing and over-long fields name the field.
            let cases: Vec<(Method, String, Value, &str)> = vec![
                (Method::POST, collections.clone(), json!({}), "name"),
                (Method::POST, collections.clone(), json!({"name": "x".repeat(201)}), "name"),
                (Method::POST, collections.clone(), json!({"name": "x", "parent_id": "nope"}), "parent_id"),
                (Method::POST, collections.clone(), json!({"name": "x", "colour": "red"}), "colour"),
                (Method::PATCH, format!("/api/collections/{col}"), json!({"position": -1}), "position"),
                (Method::PATCH, format!("/api/collections/{col}"), json!({"name": ""}), "name"),
                (Method::POST, requests.clone(), json!({"protocol": "rest", "url": "http://h"}), "name"),
                (Method::POST, requests.clone(), json!({"name": 5, "protocol": "rest", "url": "http://h"}), "name"),
                (Method::POST, requests.clone(), json!({"name": "x".repeat(201), "protocol": "rest", "url": "http://h"}), "name"),
                (Method::POST, requests.clone(), json!({"name": "n", "protocol": "soap", "url": "http://h"}), "protocol"),
                (Method::POST, requests.clone(), json!({"name": "n", "url": "http://h"}), "protocol"),
                (Method::POST, requests.clone(), json!({"name": "n", "protocol": "rest"}), "url"),
                (Method::POST, requests.clone(), json!({"name": "n", "protocol": "rest", "url": format!("http://h/{}", "a".repeat(16 * 1024))}), "url"),
                (Method::POST, requests.clone(), json!({"name": "n", "protocol": "rest", "url": "http://h", "headers": [{"key": "a"}]}), "headers[0].value"),
                (Method::POST, requests.clone(), json!({"name": "n", "protocol": "graphql", "url": "http://h"}), "query"),
                (Method::POST, requests.clone(), json!({"name": "n", "protocol": "grpc", "server_address": "h:1", "method": "M"}), "service"),
                (Method::POST, requests.clone(), json!(["not", "an", "object"]), "body"),
                (Method::PUT, format!("/api/requests/{req}"), json!({"name": "n", "protocol": "soap"}), "protocol"),
                (Method::PATCH, format!("/api/requests/{req}"), json!({"position": -2}), "position"),
                (Method::PATCH, format!("/api/requests/{req}"), json!({"collection_id": 7}), "collection_id"),
                (Method::POST, format!("/api/requests/{req}/duplicate"), json!({"name": " "}), "name"),
            ];
            for (method, path, body, expected) in cases {
                let answer = c.editor.call(method.clone(), &path, Some(body.clone())).await;
                assert_eq!(answer.status, 422, "{method} {path} {body}: {}", answer.body);
                assert!(
                    field(&answer).starts_with(expected),
                    "{method} {path} {body}: expected field {expected}, got {}",
                    answer.body
                );
            }
            // Bad ids in the path.
            for path in [
                "/api/workspaces/nope/collections".to_owned(),
                "/api/collections/nope".to_owned(),
                "/api/collections/123/requests".to_owned(),
                "/api/requests/nope".to_owned(),
                "/api/requests/nope/duplicate".to_owned(),
            ] {
                let answer = c.editor.get(&path).await;
                let answer = if answer.status == 405 {
                    c.editor.post(&path, json!({})).await
                } else {
                    answer
                };
                assert_eq!((answer.status, answer.code()), (400, "invalid_id"), "{path}");
            }
            // Ids of another workspace answer like missing ones, even to its admin.
            let foreign_parent = c
                .editor
                .post(&collections, json!({"name": "x", "parent_id": foreign_col.to_string()}))
                .await
                .expect(404);
            assert_eq!(foreign_parent.code(), "collection_not_found");
            let foreign_move = c
                .editor
                .patch(
                    &format!("/api/collections/{col}"),
                    json!({"parent_id": foreign_col.to_string()}),
                )
                .await
                .expect(404);
            assert_eq!(foreign_move.code(), "collection_not_found");
            let foreign_move = c
                .editor
                .patch(
                    &format!("/api/requests/{req}"),
                    json!({"collection_id": foreign_col.to_string(), "name": "Never"}),
                )
                .await
                .expect(404);
            assert_eq!(foreign_move.code(), "collection_not_found");
            let missing_parent = c
                .editor
                .post(&collections, json!({"name": "x", "parent_id": CollectionId::new().to_string()}))
                .await
                .expect(404);
            assert_eq!(missing_parent.code(), "collection_not_found");
            // The viewer of this workspace cannot reach the editor's other workspace at all.
            for path in [
                format!("/api/collections/{foreign_col}"),
                format!("/api/requests/{foreign_req}"),
            ] {
                c.viewer.get(&path).await.expect(404);
            }
            // Duplicates of missing things write nothing.
            for path in [
                format!("/api/collections/{}/duplicate", CollectionId::new()),
                format!("/api/requests/{}/duplicate", RequestId::new()),
            ] {
                c.editor.post(&path, json!({})).await.expect(404);
            }
            // A body over 8 MiB is refused as a whole; one under it is accepted.
            let huge = json!({"name": "big", "protocol": "grpc", "server_address": "h:1",
                "service": "S", "method": "M",
                "proto_files": [{"name": "big.proto", "content": "/".repeat(9 * 1024 * 1024)}]});
            let sent = c
                .editor
                .client
                .post(c.soul.url(&requests))
                .bearer_auth(&c.editor.token)
                .json(&huge)
                .send()
                .await;
            // The server may answer before the client has finished writing, and close.
            if let Ok(response) = sent {
                assert_eq!(response.status(), 413);
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["code"], "body_too_large");
            }
            assert_eq!(snapshot().await, before, "nothing was written");
            let big = json!({"name": "big", "protocol": "grpc", "server_address": "h:1",
                "service": "S", "method": "M",
                "proto_files": [{"name": "big.proto", "content": "/".repeat(3 * 1024 * 1024)}]});
            c.editor.post(&requests, big).await.expect(201);
        })
        .await;
    }

    pub async fn content_role_matrix(store: Arc<dyn Store>) {
        with_cast(store, async |c: &mut Cast| {
            let mut m = Matrix::default();
            let read = [200, 200, 200, 404];
            let fresh_collection =
                async |c: &Cast| seed_collection(&c.soul.store, c.workspace, None, "Fresh").await;
            let fresh_request = async |c: &Cast| {
                let col = seed_collection(&c.soul.store, c.workspace, None, "Holder").await;
                seed_request(&c.soul.store, c.workspace, col, "fresh").await
            };
            m.row(
                "GET collections",
                read,
                c.statuses(async |c: &Cast| {
                    Call::new(
                        Method::GET,
                        format!("/api/workspaces/{}/collections", c.ws()),
                        None,
                    )
                })
                .await,
            );
            m.row(
                "POST collections",
                [201, 201, 403, 404],
                c.statuses(async |c: &Cast| {
                    Call::new(
                        Method::POST,
                        format!("/api/workspaces/{}/collections", c.ws()),
                        Some(json!({"name": "New"})),
                    )
                })
                .await,
            );
            m.row(
                "GET collection",
                read,
                c.statuses(async |c: &Cast| {
                    let id = fresh_collection(c).await;
                    Call::new(Method::GET, format!("/api/collections/{id}"), None)
                })
                .await,
            );
            m.row(
                "PATCH collection",
                [200, 200, 403, 404],
                c.statuses(async |c: &Cast| {
                    let id = fresh_collection(c).await;
                    Call::new(
                        Method::PATCH,
                        format!("/api/collections/{id}"),
                        Some(json!({"name": "Renamed", "position": 0})),
                    )
                })
                .await,
            );
            m.row(
                "DELETE collection",
                [204, 204, 403, 404],
                c.statuses(async |c: &Cast| {
                    let id = fresh_collection(c).await;
                    Call::new(Method::DELETE, format!("/api/collections/{id}"), None)
                })
                .await,
            );
            m.row(
                "POST collection duplicate",
                [201, 201, 403, 404],
                c.statuses(async |c: &Cast| {
                    let id = fresh_collection(c).await;
                    Call::new(
                        Method::POST,
                        format!("/api/collections/{id}/duplicate"),
                        None,
                    )
                })
                .await,
            );
            m.row(
                "GET collection requests",
                read,
                c.statuses(async |c: &Cast| {
                    let id = fresh_collection(c).await;
                    Call::new(Method::GET, format!("/api/collections/{id}/requests"), None)
                })
                .await,
            );
            m.row(
                "POST collection requests",
                [201, 201, 403, 404],
                c.statuses(async |c: &Cast| {
                    let id = fresh_collection(c).await;
                    Call::new(
                        Method::POST,
                        format!("/api/collections/{id}/requests"),
                        Some(rest_body("new")),
                    )
                })
                .await,
            );
            m.row(
                "GET request",
                read,
                c.statuses(async |c: &Cast| {
                    let id = fresh_request(c).await;
                    Call::new(Method::GET, format!("/api/requests/{id}"), None)
                })
                .await,
            );
            m.row(
                "PUT request",
                [200, 200, 403, 404],
                c.statuses(async |c: &Cast| {
                    let id = fresh_request(c).await;
                    Call::new(
                        Method::PUT,
                        format!("/api/requests/{id}"),
                        Some(grpc_body("g")),
                    )
                })
                .await,
            );
            m.row(
                "PATCH request",
                [200, 200, 403, 404],
                c.statuses(async |c: &Cast| {
                    let id = fresh_request(c).await;
                    let to = fresh_collection(c).await;
                    Call::new(
                        Method::PATCH,
                        format!("/api/requests/{id}"),
                        Some(json!({"name": "Moved", "collection_id": to.to_string()})),
                    )
                })
                .await,
            );
            m.row(
                "DELETE request",
                [204, 204, 403, 404],
                c.statuses(async |c: &Cast| {
                    let id = fresh_request(c).await;
                    Call::new(Method::DELETE, format!("/api/requests/{id}"), None)
                })
                .await,
            );
            m.row(
                "POST request duplicate",
                [201, 201, 403, 404],
                c.statuses(async |c: &Cast| {
                    let id = fresh_request(c).await;
                    Call::new(Method::POST, format!("/api/requests/{id}/duplicate"), None)
                })
                .await,
            );
            m.assert();
        })
        .await;
    }
}

for_each_backend!(super::suite =>
    collection_tree_nests_folders_and_requests_in_order,
    collections_are_renamed_reordered_and_moved,
    folders_nest_at_most_32_deep,
    duplicating_a_collection_copies_everything_right_after_it,
    deleting_a_collection_takes_its_contents_unless_a_workflow_uses_them,
    saved_requests_of_every_protocol_round_trip,
    requests_are_replaced_moved_and_duplicated,
    bad_input_is_refused_and_nothing_is_half_written,
    content_role_matrix,
);
