//! API tokens: active lookup (revoked and expired tokens excluded), listing, revocation by owner only, and touching.

use std::sync::Arc;

use prism_domain::session::ApiToken;
use prism_domain::{ApiTokenId, UserId};
use prism_store::{Conflict, Store, StoreError};

use crate::fixtures::{api_token, assert_conflict, assert_not_found, seed_user, t};

pub async fn active_token_is_found_by_hash(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let token = api_token(ada.id, b"hash-a", t(10));
    store.insert_api_token(&token).await.unwrap();
    assert_eq!(
        store.find_active_api_token(b"hash-a", t(20)).await.unwrap(),
        Some(token)
    );
    assert_eq!(
        store.find_active_api_token(b"hash-b", t(20)).await.unwrap(),
        None
    );
}

pub async fn token_needs_a_user_and_a_unique_hash(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    store
        .insert_api_token(&api_token(ada.id, b"hash", t(10)))
        .await
        .unwrap();
    assert_conflict(
        store
            .insert_api_token(&api_token(ada.id, b"hash", t(11)))
            .await,
        Conflict::Duplicate("api token"),
    );
    assert_eq!(store.list_api_tokens(ada.id).await.unwrap().len(), 1);
    let result = store
        .insert_api_token(&api_token(UserId::new(), b"other", t(10)))
        .await;
    assert!(
        matches!(
            result,
            Err(StoreError::Conflict(Conflict::MissingReference(_)))
        ),
        "{result:?}"
    );
}

pub async fn revoked_token_is_not_active(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let token = api_token(ada.id, b"hash", t(10));
    store.insert_api_token(&token).await.unwrap();

    store
        .revoke_api_token(ada.id, token.id, t(50))
        .await
        .unwrap();
    assert_eq!(
        store.find_active_api_token(b"hash", t(60)).await.unwrap(),
        None
    );
    let revoked = ApiToken {
        revoked_at: Some(t(50)),
        ..token.clone()
    };
    assert_eq!(
        store.list_api_tokens(ada.id).await.unwrap(),
        vec![revoked.clone()],
        "revoked tokens are listed"
    );

    // Revoking again keeps the original revocation time.
    store
        .revoke_api_token(ada.id, token.id, t(70))
        .await
        .unwrap();
    assert_eq!(store.list_api_tokens(ada.id).await.unwrap(), vec![revoked]);
}

pub async fn expired_token_is_not_active(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let token = ApiToken {
        expires_at: Some(t(100)),
        ..api_token(ada.id, b"hash", t(10))
    };
    store.insert_api_token(&token).await.unwrap();
    assert_eq!(
        store.find_active_api_token(b"hash", t(99)).await.unwrap(),
        Some(token)
    );
    assert_eq!(
        store.find_active_api_token(b"hash", t(100)).await.unwrap(),
        None,
        "expired at expires_at"
    );
    assert_eq!(
        store.find_active_api_token(b"hash", t(101)).await.unwrap(),
        None
    );
}

pub async fn tokens_are_listed_newest_first_per_user(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let bob = seed_user(&store, "bob@example.test").await;
    let old = api_token(ada.id, b"old", t(10));
    let new = ApiToken {
        name: "deploy".into(),
        expires_at: Some(t(10_000)),
        ..api_token(ada.id, b"new", t(30))
    };
    let middle = api_token(ada.id, b"middle", t(20));
    let bobs = api_token(bob.id, b"bob", t(40));
    for token in [&old, &new, &middle, &bobs] {
        store.insert_api_token(token).await.unwrap();
    }
    store
        .revoke_api_token(ada.id, middle.id, t(25))
        .await
        .unwrap();

    let middle = ApiToken {
        revoked_at: Some(t(25)),
        ..middle
    };
    assert_eq!(
        store.list_api_tokens(ada.id).await.unwrap(),
        vec![new, middle, old]
    );
    assert_eq!(store.list_api_tokens(bob.id).await.unwrap(), vec![bobs]);
    assert!(
        store
            .list_api_tokens(UserId::new())
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn revoking_another_users_token_is_not_found(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let mallory = seed_user(&store, "mallory@example.test").await;
    let token = api_token(ada.id, b"hash", t(10));
    store.insert_api_token(&token).await.unwrap();

    assert_not_found(store.revoke_api_token(mallory.id, token.id, t(20)).await);
    assert_eq!(
        store.find_active_api_token(b"hash", t(30)).await.unwrap(),
        Some(token)
    );
    assert_not_found(
        store
            .revoke_api_token(ada.id, ApiTokenId::new(), t(20))
            .await,
    );
}

pub async fn touching_a_token_sets_last_used(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let token = api_token(ada.id, b"hash", t(10));
    let other = api_token(ada.id, b"other", t(11));
    store.insert_api_token(&token).await.unwrap();
    store.insert_api_token(&other).await.unwrap();

    store.touch_api_token(token.id, t(40)).await.unwrap();
    let touched = ApiToken {
        last_used_at: Some(t(40)),
        ..token.clone()
    };
    assert_eq!(
        store.find_active_api_token(b"hash", t(50)).await.unwrap(),
        Some(touched.clone())
    );
    store.touch_api_token(token.id, t(60)).await.unwrap();
    assert_eq!(
        store
            .find_active_api_token(b"hash", t(70))
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(t(60))
    );
    assert_eq!(
        store.find_active_api_token(b"other", t(70)).await.unwrap(),
        Some(other),
        "other tokens untouched"
    );
    assert_not_found(store.touch_api_token(ApiTokenId::new(), t(60)).await);
}
