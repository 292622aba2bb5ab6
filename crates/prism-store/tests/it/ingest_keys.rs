//! Workspace ingest keys: lookup of active keys by hash, uniqueness, revocation scoped to the
//! workspace, listing, touching, and removal with the workspace.

use std::sync::Arc;

use prism_domain::session::IngestKey;
use prism_domain::{IngestKeyId, Timestamp, UserId, WorkspaceId};
use prism_store::{Conflict, Store, StoreError};

use crate::fixtures::{assert_conflict, assert_not_found, seed_user, seed_workspace, t};

fn ingest_key(ws: WorkspaceId, by: Option<UserId>, hash: &[u8], at: Timestamp) -> IngestKey {
    IngestKey {
        id: IngestKeyId::new(),
        workspace_id: ws,
        name: "collector".into(),
        prefix: "prism_ik_abcdef0".into(),
        key_hash: hash.to_vec(),
        created_by: by,
        created_at: at,
        last_used_at: None,
        revoked_at: None,
    }
}

pub async fn active_key_is_found_by_hash_until_revoked(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let ws = seed_workspace(&store, ada.id, "Team").await;
    let key = ingest_key(ws.id, Some(ada.id), b"key-a", t(10));
    store.insert_ingest_key(&key).await.unwrap();
    assert_eq!(
        store.find_active_ingest_key(b"key-a").await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(store.find_active_ingest_key(b"key-b").await.unwrap(), None);

    store.revoke_ingest_key(ws.id, key.id, t(20)).await.unwrap();
    assert_eq!(store.find_active_ingest_key(b"key-a").await.unwrap(), None);
    // Revoking again keeps the first time.
    store.revoke_ingest_key(ws.id, key.id, t(30)).await.unwrap();
    let listed = store.list_ingest_keys(ws.id).await.unwrap();
    assert_eq!(listed[0].revoked_at, Some(t(20)));
}

pub async fn key_needs_a_workspace_and_a_unique_hash(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let ws = seed_workspace(&store, ada.id, "Team").await;
    store
        .insert_ingest_key(&ingest_key(ws.id, None, b"same", t(1)))
        .await
        .unwrap();
    assert_conflict(
        store
            .insert_ingest_key(&ingest_key(ws.id, None, b"same", t(2)))
            .await,
        Conflict::Duplicate("ingest key"),
    );
    let result = store
        .insert_ingest_key(&ingest_key(WorkspaceId::new(), None, b"other", t(2)))
        .await;
    assert!(
        matches!(
            result,
            Err(StoreError::Conflict(Conflict::MissingReference(_)))
        ),
        "{result:?}"
    );
}

pub async fn revoking_another_workspaces_key_is_not_found(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let mine = seed_workspace(&store, ada.id, "Mine").await;
    let theirs = seed_workspace(&store, ada.id, "Theirs").await;
    let key = ingest_key(theirs.id, None, b"k", t(1));
    store.insert_ingest_key(&key).await.unwrap();
    assert_not_found(store.revoke_ingest_key(mine.id, key.id, t(2)).await);
    assert!(store.find_active_ingest_key(b"k").await.unwrap().is_some());
}

pub async fn keys_are_listed_newest_first_and_touched(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let ws = seed_workspace(&store, ada.id, "Team").await;
    let old = ingest_key(ws.id, None, b"old", t(1));
    let new = ingest_key(ws.id, None, b"new", t(2));
    store.insert_ingest_key(&old).await.unwrap();
    store.insert_ingest_key(&new).await.unwrap();
    store.touch_ingest_key(old.id, t(9)).await.unwrap();
    let listed = store.list_ingest_keys(ws.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|k| k.id).collect::<Vec<_>>(),
        vec![new.id, old.id]
    );
    assert_eq!(listed[1].last_used_at, Some(t(9)));
    assert_not_found(store.touch_ingest_key(IngestKeyId::new(), t(9)).await);
}

pub async fn keys_go_with_their_workspace(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let ws = seed_workspace(&store, ada.id, "Team").await;
    store
        .insert_ingest_key(&ingest_key(ws.id, Some(ada.id), b"k", t(1)))
        .await
        .unwrap();
    store.delete_workspace(ws.id).await.unwrap();
    assert_eq!(store.find_active_ingest_key(b"k").await.unwrap(), None);
}
