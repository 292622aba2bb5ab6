//! The store as a whole: liveness, the recorded schema version, and closing.

use std::sync::Arc;

use prism_store::{SCHEMA_VERSION, Store, StoreError};

pub async fn store_answers_ping_and_reports_its_schema_version(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
}

pub async fn closed_store_reports_unavailable(store: Arc<dyn Store>) {
    store.close().await;
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.is_transient());
    assert!(store.count_users().await.unwrap_err().is_transient());
}
