//! Saved requests: exact round-trips of every protocol and body kind, positions, listing, updates, moves and deletes.

use std::sync::Arc;

use futures_util::future::join_all;

use prism_domain::RequestId;
use prism_domain::request::{
    Body, GrpcSpec, MultipartPart, MultipartValue, ProtoSource, RequestSpec, SavedRequest,
};
use prism_store::{Conflict, Store};

use crate::fixtures::{
    assert_conflict, assert_not_found, disabled, graphql_spec, grpc_spec, kv, request, rest_spec,
    seed_collection, seed_request, seed_workspace, simple_rest_spec, step, t, warm_up_connections,
    workflow, world,
};

/// `(name, position)` of the requests of a collection, as listed.
async fn names(
    store: &Arc<dyn Store>,
    collection: prism_domain::CollectionId,
) -> Vec<(String, i64)> {
    store
        .list_requests(collection)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.position))
        .collect()
}

fn named(entries: &[(&str, i64)]) -> Vec<(String, i64)> {
    entries
        .iter()
        .map(|(name, position)| ((*name).to_owned(), *position))
        .collect()
}

fn every_body() -> Vec<Body> {
    vec![
        Body::None,
        Body::Raw {
            text: "plain text\nwith \"quotes\", tabs\t and ünïcödé ✓".into(),
            content_type: Some("text/plain".into()),
        },
        Body::Raw {
            text: "<xml/>".into(),
            content_type: None,
        },
        Body::Json {
            text: "{\n  \"id\": \"{{userId}}\",\n  \"amount\": 10.50\n}".into(),
        },
        Body::Form {
            fields: vec![kv("a", "1"), kv("a", "2"), disabled("b", "off"), kv("", "")],
        },
        Body::Multipart {
            parts: vec![
                MultipartPart {
                    name: "meta".into(),
                    value: MultipartValue::Text { value: "{}".into() },
                    enabled: true,
                },
                MultipartPart {
                    name: "file".into(),
                    value: MultipartValue::File {
                        filename: "logo.png".into(),
                        content_type: Some("image/png".into()),
                        base64: "iVBORw0KGgo=".into(),
                    },
                    enabled: true,
                },
                MultipartPart {
                    name: "file".into(),
                    value: MultipartValue::File {
                        filename: "old.bin".into(),
                        content_type: None,
                        base64: "AA==".into(),
                    },
                    enabled: false,
                },
            ],
        },
    ]
}

pub async fn rest_requests_round_trip_exactly(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let c = seed_collection(&store, w.ws.id, None, "REST").await;
    for (position, body) in every_body().into_iter().enumerate() {
        let input = request(w.ws.id, c.id, &format!("body {position}"), rest_spec(body));
        let stored = store.insert_request(&input).await.unwrap();
        assert_eq!(
            stored,
            SavedRequest {
                position: position as i64,
                ..input.clone()
            }
        );
        assert_eq!(store.get_request(input.id).await.unwrap(), stored);
    }
    // Method tokens are kept as given, custom and lower-case ones included.
    let mut spec = rest_spec(Body::None);
    if let RequestSpec::Rest(rest) = &mut spec {
        rest.method = "purge".into();
        rest.params.clear();
        rest.headers.clear();
        rest.settings = Default::default();
    }
    let input = request(w.ws.id, c.id, "custom method", spec);
    store.insert_request(&input).await.unwrap();
    assert_eq!(store.get_request(input.id).await.unwrap().spec, input.spec);
}

pub async fn graphql_request_round_trips_exactly(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let c = seed_collection(&store, w.ws.id, None, "GraphQL").await;
    let input = request(w.ws.id, c.id, "user query", graphql_spec());
    let stored = store.insert_request(&input).await.unwrap();
    assert_eq!(
        stored,
        SavedRequest {
            position: 0,
            ..input.clone()
        }
    );
    assert_eq!(store.get_request(input.id).await.unwrap(), stored);
    // The variables text is kept byte for byte, not re-serialized as JSON.
    let RequestSpec::Graphql(spec) = store.get_request(input.id).await.unwrap().spec else {
        panic!("not GraphQL")
    };
    assert_eq!(
        spec.variables.as_deref(),
        Some(r#"{"id": "{{userId}}", "n": 1.50}"#)
    );
}

pub async fn grpc_requests_round_trip_exactly(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let c = seed_collection(&store, w.ws.id, None, "gRPC").await;
    let with_files = request(w.ws.id, c.id, "with files", grpc_spec());
    let reflection = request(
        w.ws.id,
        c.id,
        "reflection",
        RequestSpec::Grpc(GrpcSpec {
            address: "localhost:50051".into(),
            service: "Greeter".into(),
            method: "SayHello".into(),
            proto: ProtoSource::Reflection,
            tls: Default::default(),
            metadata: vec![],
            message: String::new(),
            timeout_ms: None,
        }),
    );
    for (position, input) in [with_files, reflection].into_iter().enumerate() {
        let stored = store.insert_request(&input).await.unwrap();
        assert_eq!(
            stored,
            SavedRequest {
                position: position as i64,
                ..input.clone()
            }
        );
        assert_eq!(store.get_request(input.id).await.unwrap(), stored);
    }
}

pub async fn requests_are_positioned_and_listed(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let a = seed_collection(&store, w.ws.id, None, "A").await;
    let b = seed_collection(&store, w.ws.id, None, "B").await;
    let folder = seed_collection(&store, w.ws.id, Some(a.id), "folder").await;
    let r0 = seed_request(&store, w.ws.id, a.id, "r0").await;
    let s0 = seed_request(&store, w.ws.id, b.id, "s0").await;
    let r1 = seed_request(&store, w.ws.id, a.id, "r1").await;
    let f0 = seed_request(&store, w.ws.id, folder.id, "f0").await;
    let r2 = seed_request(&store, w.ws.id, a.id, "r2").await;
    let other = seed_workspace(&store, w.owner.id, "Other").await;
    let elsewhere = seed_collection(&store, other.id, None, "Elsewhere").await;
    let x = seed_request(&store, other.id, elsewhere.id, "x").await;

    assert_eq!(
        [
            r0.position,
            r1.position,
            r2.position,
            s0.position,
            f0.position
        ],
        [0, 1, 2, 0, 0]
    );
    assert_eq!(
        store.list_requests(a.id).await.unwrap(),
        vec![r0.clone(), r1.clone(), r2.clone()]
    );
    assert_eq!(store.list_requests(b.id).await.unwrap(), vec![s0.clone()]);
    assert_eq!(
        store.list_requests(folder.id).await.unwrap(),
        vec![f0.clone()],
        "folders hold their own requests"
    );

    let all = store.list_workspace_requests(w.ws.id).await.unwrap();
    assert_eq!(all.len(), 5);
    // Ordered by collection, then position: each collection's requests are contiguous and in order.
    let mut by_collection: Vec<(prism_domain::CollectionId, Vec<SavedRequest>)> = Vec::new();
    for r in all {
        match by_collection.last_mut() {
            Some((collection, list)) if *collection == r.collection_id => list.push(r),
            _ => by_collection.push((r.collection_id, vec![r])),
        }
    }
    assert_eq!(by_collection.len(), 3);
    for (collection, list) in by_collection {
        let expected = if collection == a.id {
            vec![r0.clone(), r1.clone(), r2.clone()]
        } else if collection == b.id {
            vec![s0.clone()]
        } else {
            vec![f0.clone()]
        };
        assert_eq!(list, expected);
    }
    assert_eq!(
        store.list_workspace_requests(other.id).await.unwrap(),
        vec![x]
    );
}

pub async fn updating_a_request_can_change_its_protocol(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let c = seed_collection(&store, w.ws.id, None, "C").await;
    seed_request(&store, w.ws.id, c.id, "first").await;
    let original = store
        .insert_request(&request(w.ws.id, c.id, "rest", rest_spec(Body::None)))
        .await
        .unwrap();

    let updated = store
        .update_request(original.id, "now gRPC", &grpc_spec(), t(900))
        .await
        .unwrap();
    let expected = SavedRequest {
        name: "now gRPC".into(),
        spec: grpc_spec(),
        updated_at: t(900),
        ..original.clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(store.get_request(original.id).await.unwrap(), expected);
    assert_eq!(store.list_requests(c.id).await.unwrap()[1], expected);

    let updated = store
        .update_request(original.id, "now GraphQL", &graphql_spec(), t(901))
        .await
        .unwrap();
    assert_eq!(updated.spec, graphql_spec());
    assert_eq!(store.get_request(original.id).await.unwrap(), updated);

    assert_not_found(
        store
            .update_request(RequestId::new(), "x", &graphql_spec(), t(902))
            .await,
    );
}

pub async fn moving_a_request_renumbers_both_collections(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let a = seed_collection(&store, w.ws.id, None, "A").await;
    let b = seed_collection(&store, w.ws.id, None, "B").await;
    let r0 = seed_request(&store, w.ws.id, a.id, "r0").await;
    seed_request(&store, w.ws.id, a.id, "r1").await;
    seed_request(&store, w.ws.id, a.id, "r2").await;
    seed_request(&store, w.ws.id, b.id, "s0").await;
    seed_request(&store, w.ws.id, b.id, "s1").await;

    let moved = store
        .move_request(r0.id, b.id, Some(1), t(1000))
        .await
        .unwrap();
    assert_eq!(
        moved,
        SavedRequest {
            collection_id: b.id,
            position: 1,
            updated_at: t(1000),
            ..r0.clone()
        }
    );
    assert_eq!(store.get_request(r0.id).await.unwrap(), moved);
    assert_eq!(names(&store, a.id).await, named(&[("r1", 0), ("r2", 1)]));
    assert_eq!(
        names(&store, b.id).await,
        named(&[("s0", 0), ("r0", 1), ("s1", 2)])
    );

    // Within one collection: to the end, then to the front.
    store
        .move_request(r0.id, b.id, None, t(1001))
        .await
        .unwrap();
    assert_eq!(
        names(&store, b.id).await,
        named(&[("s0", 0), ("s1", 1), ("r0", 2)])
    );
    store
        .move_request(r0.id, b.id, Some(0), t(1002))
        .await
        .unwrap();
    assert_eq!(
        names(&store, b.id).await,
        named(&[("r0", 0), ("s0", 1), ("s1", 2)])
    );

    // Into a folder, last; the workspace listing follows.
    let folder = seed_collection(&store, w.ws.id, Some(a.id), "folder").await;
    let moved = store
        .move_request(r0.id, folder.id, None, t(1003))
        .await
        .unwrap();
    assert_eq!((moved.collection_id, moved.position), (folder.id, 0));
    assert_eq!(names(&store, b.id).await, named(&[("s0", 0), ("s1", 1)]));
    assert_eq!(
        store.list_workspace_requests(w.ws.id).await.unwrap().len(),
        5
    );
}

pub async fn requests_stay_out_of_other_workspaces(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let mine = seed_collection(&store, w.ws.id, None, "Mine").await;
    let other = seed_workspace(&store, w.owner.id, "Other").await;
    let theirs = seed_collection(&store, other.id, None, "Theirs").await;
    let r = seed_request(&store, w.ws.id, mine.id, "r").await;

    assert_conflict(
        store.move_request(r.id, theirs.id, None, t(1100)).await,
        Conflict::OtherWorkspace("collection"),
    );
    assert_eq!(store.get_request(r.id).await.unwrap(), r);
    assert!(store.list_requests(theirs.id).await.unwrap().is_empty());

    let smuggled = request(
        w.ws.id,
        theirs.id,
        "smuggled",
        simple_rest_spec("https://example.test"),
    );
    assert_conflict(
        store.insert_request(&smuggled).await,
        Conflict::OtherWorkspace("collection"),
    );
    assert_not_found(store.get_request(smuggled.id).await);

    let lost = request(
        w.ws.id,
        prism_domain::CollectionId::new(),
        "lost",
        simple_rest_spec("https://example.test"),
    );
    assert_conflict(
        store.insert_request(&lost).await,
        Conflict::MissingReference("collection"),
    );
    assert_conflict(
        store
            .move_request(r.id, prism_domain::CollectionId::new(), None, t(1100))
            .await,
        Conflict::MissingReference("collection"),
    );
    assert_not_found(
        store
            .move_request(RequestId::new(), mine.id, None, t(1100))
            .await,
    );
}

pub async fn deleting_a_request_removes_it(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let c = seed_collection(&store, w.ws.id, None, "C").await;
    let r0 = seed_request(&store, w.ws.id, c.id, "r0").await;
    let r1 = seed_request(&store, w.ws.id, c.id, "r1").await;

    store.delete_request(r0.id).await.unwrap();
    assert_not_found(store.get_request(r0.id).await);
    assert_eq!(store.list_requests(c.id).await.unwrap(), vec![r1]);
    assert_not_found(store.delete_request(r0.id).await);
    assert_not_found(store.get_request(RequestId::new()).await);
}

pub async fn request_used_by_a_workflow_step_cannot_be_deleted(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let c = seed_collection(&store, w.ws.id, None, "C").await;
    let used = seed_request(&store, w.ws.id, c.id, "used").await;
    let flow = workflow(w.ws.id, "Flow", t(60));
    store.insert_workflow(&flow).await.unwrap();
    store
        .replace_workflow_steps(flow.id, &[step(flow.id, used.id, "run it")])
        .await
        .unwrap();

    assert_conflict(
        store.delete_request(used.id).await,
        Conflict::InUse("request"),
    );
    assert_eq!(store.get_request(used.id).await.unwrap(), used);

    store.replace_workflow_steps(flow.id, &[]).await.unwrap();
    store.delete_request(used.id).await.unwrap();
    assert_not_found(store.get_request(used.id).await);
}

pub async fn concurrent_request_inserts_get_distinct_positions(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let c = seed_collection(&store, w.ws.id, None, "C").await;
    warm_up_connections(&store).await;
    let start = Arc::new(tokio::sync::Barrier::new(8));
    let handles = (0..8).map(|i| {
        let (store, start) = (store.clone(), start.clone());
        let input = request(
            w.ws.id,
            c.id,
            &format!("r{i}"),
            simple_rest_spec("https://example.test"),
        );
        tokio::spawn(async move {
            start.wait().await;
            store.insert_request(&input).await
        })
    });
    let mut returned: Vec<_> = join_all(handles)
        .await
        .into_iter()
        .map(|j| j.unwrap().unwrap().position)
        .collect();
    returned.sort();
    assert_eq!(
        returned,
        (0..8).collect::<Vec<_>>(),
        "each insert was told a distinct position"
    );
    let stored: Vec<_> = names(&store, c.id)
        .await
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(stored, (0..8).collect::<Vec<_>>());
}

pub async fn concurrent_request_moves_keep_positions_dense(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let from = seed_collection(&store, w.ws.id, None, "From").await;
    let to = seed_collection(&store, w.ws.id, None, "To").await;
    seed_request(&store, w.ws.id, to.id, "already there").await;
    let mut moving = Vec::new();
    for i in 0..8 {
        moving.push(seed_request(&store, w.ws.id, from.id, &format!("r{i}")).await);
    }
    warm_up_connections(&store).await;
    let start = Arc::new(tokio::sync::Barrier::new(moving.len()));
    let handles = moving.iter().enumerate().map(|(i, r)| {
        let (store, start, id) = (store.clone(), start.clone(), r.id);
        let position = (i % 2 == 0).then_some(1);
        tokio::spawn(async move {
            start.wait().await;
            store.move_request(id, to.id, position, t(800)).await
        })
    });
    for joined in join_all(handles).await {
        joined.unwrap().unwrap();
    }
    assert!(store.list_requests(from.id).await.unwrap().is_empty());
    let positions: Vec<_> = names(&store, to.id)
        .await
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(positions, (0..9).collect::<Vec<_>>());
}

pub async fn duplicating_a_request_places_the_copy_after_it(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let c = seed_collection(&store, w.ws.id, None, "C").await;
    let first = store
        .insert_request(&request(w.ws.id, c.id, "first", graphql_spec()))
        .await
        .unwrap();
    seed_request(&store, w.ws.id, c.id, "second").await;
    let copy = store
        .duplicate_request(first.id, "first (copy)", t(900), w.owner.id)
        .await
        .unwrap();
    assert_ne!(copy.id, first.id);
    assert_eq!(
        (
            &copy.spec,
            copy.collection_id,
            copy.position,
            copy.created_by,
            copy.created_at
        ),
        (&first.spec, c.id, 1, Some(w.owner.id), t(900))
    );
    assert_eq!(store.get_request(copy.id).await.unwrap(), copy);
    assert_eq!(
        names(&store, c.id).await,
        [
            ("first".to_owned(), 0),
            ("first (copy)".to_owned(), 1),
            ("second".to_owned(), 2)
        ]
    );
    assert_eq!(store.get_request(first.id).await.unwrap(), first);
    assert_not_found(
        store
            .duplicate_request(RequestId::new(), "x", t(900), w.owner.id)
            .await,
    );
    assert_eq!(store.list_requests(c.id).await.unwrap().len(), 3);
}
