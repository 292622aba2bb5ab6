//! Collections and folders: positions, listing order, renames, moves (with renumbering, cycles and workspace checks) and cascading delete.

use std::sync::Arc;

use futures_util::future::join_all;

use prism_domain::collection::Collection;
use prism_domain::{CollectionId, WorkspaceId};
use prism_store::{Conflict, Store};

use crate::fixtures::{
    assert_conflict, assert_not_found, collection, seed_collection, seed_request, seed_workspace,
    step, t, warm_up_connections, workflow, world,
};

/// `(name, position)` of the collections directly under `parent` (top level when `None`), by position.
async fn children(
    store: &Arc<dyn Store>,
    ws: WorkspaceId,
    parent: Option<CollectionId>,
) -> Vec<(String, i64)> {
    let mut list: Vec<_> = store
        .list_collections(ws)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.parent_id == parent)
        .map(|c| (c.name, c.position))
        .collect();
    list.sort_by_key(|(_, position)| *position);
    list
}

fn named(entries: &[(&str, i64)]) -> Vec<(String, i64)> {
    entries
        .iter()
        .map(|(name, position)| ((*name).to_owned(), *position))
        .collect()
}

pub async fn top_level_collections_get_positions_in_insert_order(store: Arc<dyn Store>) {
    let w = world(&store).await;
    for (expected, name) in ["A", "B", "C"].into_iter().enumerate() {
        let input = collection(w.ws.id, None, name);
        let stored = store.insert_collection(&input).await.unwrap();
        assert_eq!(
            stored,
            Collection {
                position: expected as i64,
                ..input.clone()
            }
        );
        assert_eq!(store.get_collection(input.id).await.unwrap(), stored);
    }
    // Another workspace numbers its own collections from 0.
    let other = seed_workspace(&store, w.owner.id, "Other").await;
    assert_eq!(
        seed_collection(&store, other.id, None, "X").await.position,
        0
    );
}

pub async fn folders_are_numbered_under_their_parent(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let a = seed_collection(&store, w.ws.id, None, "A").await;
    let b = seed_collection(&store, w.ws.id, None, "B").await;
    let a0 = seed_collection(&store, w.ws.id, Some(a.id), "a0").await;
    let a1 = seed_collection(&store, w.ws.id, Some(a.id), "a1").await;
    let b0 = seed_collection(&store, w.ws.id, Some(b.id), "b0").await;
    let deep = seed_collection(&store, w.ws.id, Some(a1.id), "deep").await;
    let c = seed_collection(&store, w.ws.id, None, "C").await;

    assert_eq!((a0.parent_id, a0.position), (Some(a.id), 0));
    assert_eq!((a1.parent_id, a1.position), (Some(a.id), 1));
    assert_eq!((b0.parent_id, b0.position), (Some(b.id), 0));
    assert_eq!((deep.parent_id, deep.position), (Some(a1.id), 0));
    assert_eq!(c.position, 2, "folders do not count as top-level siblings");
    assert_eq!(store.get_collection(deep.id).await.unwrap(), deep);
}

pub async fn folder_parent_must_exist_in_the_same_workspace(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let other = seed_workspace(&store, w.owner.id, "Other").await;
    let foreign = seed_collection(&store, other.id, None, "Foreign").await;

    let wrong = collection(w.ws.id, Some(foreign.id), "wrong");
    assert_conflict(
        store.insert_collection(&wrong).await,
        Conflict::OtherWorkspace("parent collection"),
    );
    assert_not_found(store.get_collection(wrong.id).await);

    let orphan = collection(w.ws.id, Some(CollectionId::new()), "orphan");
    assert_conflict(
        store.insert_collection(&orphan).await,
        Conflict::MissingReference("parent collection"),
    );
    assert!(store.list_collections(w.ws.id).await.unwrap().is_empty());
}

pub async fn collections_are_listed_top_level_first_then_by_parent_and_position(
    store: Arc<dyn Store>,
) {
    let w = world(&store).await;
    let a = seed_collection(&store, w.ws.id, None, "A").await;
    let b = seed_collection(&store, w.ws.id, None, "B").await;
    let b0 = seed_collection(&store, w.ws.id, Some(b.id), "b0").await;
    let a0 = seed_collection(&store, w.ws.id, Some(a.id), "a0").await;
    let c = seed_collection(&store, w.ws.id, None, "C").await;
    let b1 = seed_collection(&store, w.ws.id, Some(b.id), "b1").await;
    let a1 = seed_collection(&store, w.ws.id, Some(a.id), "a1").await;
    let other = seed_workspace(&store, w.owner.id, "Other").await;
    seed_collection(&store, other.id, None, "Elsewhere").await;

    let listed = store.list_collections(w.ws.id).await.unwrap();
    assert_eq!(listed.len(), 7);
    assert_eq!(
        listed[..3],
        [a.clone(), b.clone(), c],
        "top level first, by position"
    );
    // Then the folders, grouped by parent (in some fixed parent order) and by position inside a group.
    let rest = &listed[3..];
    let mut groups: Vec<Vec<Collection>> = Vec::new();
    for folder in rest {
        match groups.last_mut() {
            Some(group) if group[0].parent_id == folder.parent_id => group.push(folder.clone()),
            _ => groups.push(vec![folder.clone()]),
        }
    }
    assert_eq!(
        groups.len(),
        2,
        "each parent's folders are contiguous: {rest:?}"
    );
    let mut groups: Vec<_> = groups.into_iter().map(|g| (g[0].parent_id, g)).collect();
    groups.sort_by_key(|(parent, _)| *parent != Some(a.id));
    assert_eq!(groups[0].1, vec![a0, a1]);
    assert_eq!(groups[1].1, vec![b0, b1]);
}

pub async fn renaming_a_collection_keeps_its_place(store: Arc<dyn Store>) {
    let w = world(&store).await;
    seed_collection(&store, w.ws.id, None, "A").await;
    let b = seed_collection(&store, w.ws.id, None, "B").await;
    store
        .update_collection_name(b.id, "Billing", t(300))
        .await
        .unwrap();
    assert_eq!(
        store.get_collection(b.id).await.unwrap(),
        Collection {
            name: "Billing".into(),
            updated_at: t(300),
            ..b
        }
    );
    assert_not_found(
        store
            .update_collection_name(CollectionId::new(), "x", t(1))
            .await,
    );
    assert_not_found(store.get_collection(CollectionId::new()).await);
}

pub async fn moving_among_siblings_renumbers_positions(store: Arc<dyn Store>) {
    let w = world(&store).await;
    for name in ["A", "B", "C"] {
        seed_collection(&store, w.ws.id, None, name).await;
    }
    let d = seed_collection(&store, w.ws.id, None, "D").await;

    let moved = store
        .move_collection(d.id, None, Some(0), t(400))
        .await
        .unwrap();
    assert_eq!(
        moved,
        Collection {
            position: 0,
            updated_at: t(400),
            ..d.clone()
        }
    );
    assert_eq!(
        children(&store, w.ws.id, None).await,
        named(&[("D", 0), ("A", 1), ("B", 2), ("C", 3)])
    );

    store
        .move_collection(d.id, None, Some(2), t(401))
        .await
        .unwrap();
    assert_eq!(
        children(&store, w.ws.id, None).await,
        named(&[("A", 0), ("B", 1), ("D", 2), ("C", 3)])
    );

    store
        .move_collection(d.id, None, None, t(402))
        .await
        .unwrap();
    assert_eq!(
        children(&store, w.ws.id, None).await,
        named(&[("A", 0), ("B", 1), ("C", 2), ("D", 3)])
    );

    // Out-of-range positions are clamped to the ends.
    store
        .move_collection(d.id, None, Some(-5), t(403))
        .await
        .unwrap();
    assert_eq!(
        children(&store, w.ws.id, None).await,
        named(&[("D", 0), ("A", 1), ("B", 2), ("C", 3)])
    );
    let moved = store
        .move_collection(d.id, None, Some(1_000), t(404))
        .await
        .unwrap();
    assert_eq!(moved.position, 3);
    assert_eq!(
        children(&store, w.ws.id, None).await,
        named(&[("A", 0), ("B", 1), ("C", 2), ("D", 3)])
    );
}

pub async fn moving_to_another_parent_renumbers_both_sibling_lists(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let a = seed_collection(&store, w.ws.id, None, "A").await;
    let b = seed_collection(&store, w.ws.id, None, "B").await;
    let c = seed_collection(&store, w.ws.id, None, "C").await;
    seed_collection(&store, w.ws.id, Some(a.id), "f0").await;
    let f1 = seed_collection(&store, w.ws.id, Some(a.id), "f1").await;
    seed_collection(&store, w.ws.id, Some(a.id), "f2").await;
    seed_collection(&store, w.ws.id, Some(b.id), "g0").await;
    seed_collection(&store, w.ws.id, Some(b.id), "g1").await;
    let f1_child = seed_collection(&store, w.ws.id, Some(f1.id), "f1 child").await;

    let moved = store
        .move_collection(f1.id, Some(b.id), Some(1), t(500))
        .await
        .unwrap();
    assert_eq!(
        moved,
        Collection {
            parent_id: Some(b.id),
            position: 1,
            updated_at: t(500),
            ..f1.clone()
        }
    );
    assert_eq!(
        children(&store, w.ws.id, Some(a.id)).await,
        named(&[("f0", 0), ("f2", 1)])
    );
    assert_eq!(
        children(&store, w.ws.id, Some(b.id)).await,
        named(&[("g0", 0), ("f1", 1), ("g1", 2)])
    );
    // The moved folder takes its own folders along.
    assert_eq!(store.get_collection(f1_child.id).await.unwrap(), f1_child);

    // Folder to top level, at an explicit position.
    store
        .move_collection(f1.id, None, Some(1), t(501))
        .await
        .unwrap();
    assert_eq!(
        children(&store, w.ws.id, None).await,
        named(&[("A", 0), ("f1", 1), ("B", 2), ("C", 3)])
    );
    assert_eq!(
        children(&store, w.ws.id, Some(b.id)).await,
        named(&[("g0", 0), ("g1", 1)])
    );

    // Top level into a folder, last.
    let moved = store
        .move_collection(c.id, Some(a.id), None, t(502))
        .await
        .unwrap();
    assert_eq!((moved.parent_id, moved.position), (Some(a.id), 2));
    assert_eq!(
        children(&store, w.ws.id, None).await,
        named(&[("A", 0), ("f1", 1), ("B", 2)])
    );
    assert_eq!(
        children(&store, w.ws.id, Some(a.id)).await,
        named(&[("f0", 0), ("f2", 1), ("C", 2)])
    );
    assert_eq!(store.get_collection(c.id).await.unwrap(), moved);
}

pub async fn moving_into_itself_or_a_descendant_is_a_cycle(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let a = seed_collection(&store, w.ws.id, None, "A").await;
    let f = seed_collection(&store, w.ws.id, Some(a.id), "f").await;
    let g = seed_collection(&store, w.ws.id, Some(f.id), "g").await;
    let before = store.list_collections(w.ws.id).await.unwrap();

    assert_conflict(
        store.move_collection(a.id, Some(a.id), None, t(600)).await,
        Conflict::Cycle,
    );
    assert_conflict(
        store
            .move_collection(a.id, Some(f.id), Some(0), t(600))
            .await,
        Conflict::Cycle,
    );
    assert_conflict(
        store.move_collection(a.id, Some(g.id), None, t(600)).await,
        Conflict::Cycle,
    );
    assert_conflict(
        store.move_collection(f.id, Some(g.id), None, t(600)).await,
        Conflict::Cycle,
    );
    assert_conflict(
        store.move_collection(g.id, Some(g.id), None, t(600)).await,
        Conflict::Cycle,
    );
    assert_eq!(
        store.list_collections(w.ws.id).await.unwrap(),
        before,
        "a refused move changes nothing"
    );

    // Moving up the tree is fine.
    let moved = store
        .move_collection(g.id, Some(a.id), Some(0), t(601))
        .await
        .unwrap();
    assert_eq!((moved.parent_id, moved.position), (Some(a.id), 0));
}

pub async fn moving_under_a_parent_in_another_workspace_is_refused(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let a = seed_collection(&store, w.ws.id, None, "A").await;
    let other = seed_workspace(&store, w.owner.id, "Other").await;
    let foreign = seed_collection(&store, other.id, None, "Foreign").await;

    assert_conflict(
        store
            .move_collection(a.id, Some(foreign.id), None, t(700))
            .await,
        Conflict::OtherWorkspace("parent collection"),
    );
    assert_eq!(store.get_collection(a.id).await.unwrap(), a);
    assert!(
        store
            .list_collections(other.id)
            .await
            .unwrap()
            .iter()
            .all(|c| c.id != a.id)
    );
    assert_conflict(
        store
            .move_collection(a.id, Some(CollectionId::new()), None, t(700))
            .await,
        Conflict::MissingReference("parent collection"),
    );
    assert_not_found(
        store
            .move_collection(CollectionId::new(), None, None, t(700))
            .await,
    );
}

pub async fn deleting_a_collection_removes_its_folders_and_their_requests(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let a = seed_collection(&store, w.ws.id, None, "A").await;
    let f = seed_collection(&store, w.ws.id, Some(a.id), "f").await;
    let g = seed_collection(&store, w.ws.id, Some(f.id), "g").await;
    let b = seed_collection(&store, w.ws.id, None, "B").await;
    let ra = seed_request(&store, w.ws.id, a.id, "ra").await;
    let rf = seed_request(&store, w.ws.id, f.id, "rf").await;
    let rg = seed_request(&store, w.ws.id, g.id, "rg").await;
    let rb = seed_request(&store, w.ws.id, b.id, "rb").await;

    store.delete_collection(a.id).await.unwrap();

    for gone in [a.id, f.id, g.id] {
        assert_not_found(store.get_collection(gone).await);
    }
    for gone in [ra.id, rf.id, rg.id] {
        assert_not_found(store.get_request(gone).await);
    }
    assert_eq!(
        store.list_collections(w.ws.id).await.unwrap(),
        vec![b.clone()]
    );
    assert_eq!(
        store.list_workspace_requests(w.ws.id).await.unwrap(),
        vec![rb]
    );
    assert_not_found(store.delete_collection(a.id).await);

    // Deleting only a folder keeps its parent.
    let c = seed_collection(&store, w.ws.id, None, "C").await;
    let h = seed_collection(&store, w.ws.id, Some(c.id), "h").await;
    store.delete_collection(h.id).await.unwrap();
    assert_eq!(store.get_collection(c.id).await.unwrap(), c);
}

pub async fn collection_with_a_request_used_by_a_workflow_is_in_use(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let a = seed_collection(&store, w.ws.id, None, "A").await;
    let f = seed_collection(&store, w.ws.id, Some(a.id), "f").await;
    let used = seed_request(&store, w.ws.id, f.id, "used").await;
    let flow = workflow(w.ws.id, "Flow", t(60));
    store.insert_workflow(&flow).await.unwrap();
    store
        .replace_workflow_steps(flow.id, &[step(flow.id, used.id, "s")])
        .await
        .unwrap();

    assert_conflict(
        store.delete_collection(a.id).await,
        Conflict::InUse("request"),
    );
    assert_eq!(store.get_collection(a.id).await.unwrap(), a);
    assert_eq!(store.get_collection(f.id).await.unwrap(), f);
    assert_eq!(store.get_request(used.id).await.unwrap(), used);

    store.replace_workflow_steps(flow.id, &[]).await.unwrap();
    store.delete_collection(a.id).await.unwrap();
    assert_not_found(store.get_request(used.id).await);
}

pub async fn concurrent_collection_inserts_get_distinct_positions(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let parent = seed_collection(&store, w.ws.id, None, "Parent").await;
    warm_up_connections(&store).await;
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let handles = (0..16).map(|i| {
        let (store, start) = (store.clone(), start.clone());
        // Half go to the top level, half into the same folder.
        let under = (i % 2 == 1).then_some(parent.id);
        let input = collection(w.ws.id, under, &format!("c{i}"));
        tokio::spawn(async move {
            start.wait().await;
            store.insert_collection(&input).await
        })
    });
    for joined in join_all(handles).await {
        joined.unwrap().unwrap();
    }
    let top: Vec<_> = children(&store, w.ws.id, None)
        .await
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        top,
        (0..9).collect::<Vec<_>>(),
        "top-level positions are distinct and dense"
    );
    let folders: Vec<_> = children(&store, w.ws.id, Some(parent.id))
        .await
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        folders,
        (0..8).collect::<Vec<_>>(),
        "folder positions are distinct and dense"
    );
}

pub async fn concurrent_collection_moves_keep_positions_dense(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let from = seed_collection(&store, w.ws.id, None, "From").await;
    let to = seed_collection(&store, w.ws.id, None, "To").await;
    let mut moving = Vec::new();
    for i in 0..8 {
        moving.push(seed_collection(&store, w.ws.id, Some(from.id), &format!("f{i}")).await);
    }
    warm_up_connections(&store).await;
    let start = Arc::new(tokio::sync::Barrier::new(moving.len()));
    let handles = moving.iter().enumerate().map(|(i, folder)| {
        let (store, start, id) = (store.clone(), start.clone(), folder.id);
        // Alternate between appending and inserting at the front.
        let position = (i % 2 == 0).then_some(0);
        tokio::spawn(async move {
            start.wait().await;
            store
                .move_collection(id, Some(to.id), position, t(800))
                .await
        })
    });
    for joined in join_all(handles).await {
        joined.unwrap().unwrap();
    }
    assert!(children(&store, w.ws.id, Some(from.id)).await.is_empty());
    let positions: Vec<_> = children(&store, w.ws.id, Some(to.id))
        .await
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(positions, (0..8).collect::<Vec<_>>());
}

pub async fn duplicating_a_collection_copies_its_subtree_after_the_original(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let a = seed_collection(&store, w.ws.id, None, "A").await;
    let b = seed_collection(&store, w.ws.id, None, "B").await;
    let f0 = seed_collection(&store, w.ws.id, Some(a.id), "f0").await;
    let f1 = seed_collection(&store, w.ws.id, Some(a.id), "f1").await;
    let deep = seed_collection(&store, w.ws.id, Some(f1.id), "deep").await;
    let top = seed_request(&store, w.ws.id, a.id, "top").await;
    let second = store
        .insert_request(&crate::fixtures::request(
            w.ws.id,
            a.id,
            "second",
            crate::fixtures::grpc_spec(),
        ))
        .await
        .unwrap();
    let inner = seed_request(&store, w.ws.id, deep.id, "inner").await;
    let before = store.list_collections(w.ws.id).await.unwrap();

    let copy = store
        .duplicate_collection(a.id, "A (copy)", t(900), w.owner.id)
        .await
        .unwrap();
    assert_ne!(copy.id, a.id);
    assert_eq!(
        (copy.name.as_str(), copy.parent_id, copy.position),
        ("A (copy)", None, 1)
    );
    assert_eq!(
        (copy.created_by, copy.created_at, copy.updated_at),
        (Some(w.owner.id), t(900), t(900))
    );
    assert_eq!(store.get_collection(copy.id).await.unwrap(), copy);
    assert_eq!(
        children(&store, w.ws.id, None).await,
        named(&[("A", 0), ("A (copy)", 1), ("B", 2)]),
        "the copy sits right after the original; later siblings move down"
    );
    assert_eq!(store.get_collection(b.id).await.unwrap().position, 2);
    // The subtree is copied with its names, order and requests, under new ids.
    assert_eq!(
        children(&store, w.ws.id, Some(copy.id)).await,
        named(&[("f0", 0), ("f1", 1)])
    );
    let all = store.list_collections(w.ws.id).await.unwrap();
    let copied_f1 = all
        .iter()
        .find(|c| c.parent_id == Some(copy.id) && c.name == "f1")
        .unwrap();
    assert!(![f0.id, f1.id].contains(&copied_f1.id));
    let copied_deep: Vec<_> = all
        .iter()
        .filter(|c| c.parent_id == Some(copied_f1.id))
        .collect();
    assert_eq!(copied_deep.len(), 1);
    assert_eq!(copied_deep[0].name, "deep");
    let copied_requests = store.list_requests(copy.id).await.unwrap();
    assert_eq!(copied_requests.len(), 2);
    for (copied, original) in copied_requests.iter().zip([&top, &second]) {
        assert_ne!(copied.id, original.id);
        assert_eq!(
            (
                &copied.name,
                copied.position,
                &copied.spec,
                copied.workspace_id
            ),
            (
                &original.name,
                original.position,
                &original.spec,
                original.workspace_id
            )
        );
        assert_eq!(copied.created_at, t(900));
    }
    let copied_inner = store.list_requests(copied_deep[0].id).await.unwrap();
    assert_eq!(copied_inner.len(), 1);
    assert_eq!(copied_inner[0].spec, inner.spec);
    // The original is untouched.
    assert_eq!(store.get_collection(a.id).await.unwrap(), a);
    assert_eq!(store.get_request(top.id).await.unwrap(), top);
    assert_eq!(store.get_request(inner.id).await.unwrap(), inner);
    assert_eq!(all.len(), before.len() + 4);
    assert_eq!(
        store.list_workspace_requests(w.ws.id).await.unwrap().len(),
        6
    );
}

pub async fn duplicating_a_folder_keeps_it_under_its_parent(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let a = seed_collection(&store, w.ws.id, None, "A").await;
    let f0 = seed_collection(&store, w.ws.id, Some(a.id), "f0").await;
    seed_collection(&store, w.ws.id, Some(a.id), "f1").await;
    let copy = store
        .duplicate_collection(f0.id, "f0 again", t(900), w.owner.id)
        .await
        .unwrap();
    assert_eq!(copy.parent_id, Some(a.id));
    assert_eq!(
        children(&store, w.ws.id, Some(a.id)).await,
        named(&[("f0", 0), ("f0 again", 1), ("f1", 2)])
    );
    assert_eq!(children(&store, w.ws.id, None).await, named(&[("A", 0)]));
}

pub async fn duplicating_a_missing_collection_writes_nothing(store: Arc<dyn Store>) {
    let w = world(&store).await;
    seed_collection(&store, w.ws.id, None, "A").await;
    assert_not_found(
        store
            .duplicate_collection(CollectionId::new(), "x", t(900), w.owner.id)
            .await,
    );
    assert_eq!(store.list_collections(w.ws.id).await.unwrap().len(), 1);
}
