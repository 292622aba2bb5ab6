//! Browser sessions: lookup until expiry, touching, and the three ways of deleting them.

use std::sync::Arc;

use prism_domain::UserId;
use prism_domain::session::Session;
use prism_store::{Conflict, Store, StoreError};

use crate::fixtures::{assert_conflict, assert_not_found, seed_user, session, t};

pub async fn session_is_found_until_it_expires(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let s = session(ada.id, b"token-a", t(1000));
    store.insert_session(&s).await.unwrap();

    assert_eq!(
        store.find_session(b"token-a", t(0)).await.unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        store.find_session(b"token-a", t(999)).await.unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        store.find_session(b"token-a", t(1000)).await.unwrap(),
        None,
        "expired at expires_at"
    );
    assert_eq!(store.find_session(b"token-a", t(5000)).await.unwrap(), None);
    assert_eq!(store.find_session(b"token-b", t(0)).await.unwrap(), None);

    let anonymous = Session {
        user_agent: None,
        ..session(ada.id, &[0, 255, 1, 254], t(1000))
    };
    store.insert_session(&anonymous).await.unwrap();
    assert_eq!(
        store.find_session(&[0, 255, 1, 254], t(1)).await.unwrap(),
        Some(anonymous)
    );
}

pub async fn session_needs_a_user_and_a_unique_token(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    store
        .insert_session(&session(ada.id, b"token", t(1000)))
        .await
        .unwrap();
    assert_conflict(
        store
            .insert_session(&session(ada.id, b"token", t(2000)))
            .await,
        Conflict::Duplicate("session"),
    );
    assert_eq!(
        store.find_session(b"token", t(1500)).await.unwrap(),
        None,
        "the first copy is kept"
    );
    let result = store
        .insert_session(&session(UserId::new(), b"other", t(1000)))
        .await;
    assert!(
        matches!(
            result,
            Err(StoreError::Conflict(Conflict::MissingReference(_)))
        ),
        "{result:?}"
    );
}

pub async fn touching_a_session_extends_it(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let s = session(ada.id, b"token", t(1000));
    store.insert_session(&s).await.unwrap();

    store
        .touch_session(b"token", t(900), t(4600))
        .await
        .unwrap();
    let touched = Session {
        last_seen_at: t(900),
        expires_at: t(4600),
        ..s
    };
    assert_eq!(
        store.find_session(b"token", t(2000)).await.unwrap(),
        Some(touched)
    );
    assert_eq!(store.find_session(b"token", t(4600)).await.unwrap(), None);
    assert_not_found(store.touch_session(b"missing", t(900), t(4600)).await);
}

pub async fn sessions_are_deleted_singly_by_user_and_by_expiry(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let bob = seed_user(&store, "bob@example.test").await;
    for (hash, user, expires) in [
        (&b"ada-1"[..], ada.id, t(100)),
        (b"ada-2", ada.id, t(200)),
        (b"ada-3", ada.id, t(300)),
        (b"bob-1", bob.id, t(100)),
        (b"bob-2", bob.id, t(400)),
    ] {
        store
            .insert_session(&session(user, hash, expires))
            .await
            .unwrap();
    }

    store.delete_session(b"ada-3").await.unwrap();
    assert_eq!(store.find_session(b"ada-3", t(0)).await.unwrap(), None);
    store.delete_session(b"ada-3").await.unwrap();

    // Expiry is inclusive: a session that expires exactly now is gone.
    assert_eq!(store.delete_expired_sessions(t(100)).await.unwrap(), 2);
    assert_eq!(
        store
            .find_session(b"ada-2", t(0))
            .await
            .unwrap()
            .map(|s| s.user_id),
        Some(ada.id)
    );
    assert_eq!(store.delete_expired_sessions(t(100)).await.unwrap(), 0);

    assert_eq!(store.delete_user_sessions(ada.id).await.unwrap(), 1);
    assert_eq!(store.find_session(b"ada-2", t(0)).await.unwrap(), None);
    assert!(
        store.find_session(b"bob-2", t(0)).await.unwrap().is_some(),
        "other users keep their sessions"
    );
    assert_eq!(store.delete_user_sessions(ada.id).await.unwrap(), 0);
    assert_eq!(store.delete_user_sessions(bob.id).await.unwrap(), 1);
}

pub async fn changing_the_password_ends_every_session_but_the_replacement(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let bob = seed_user(&store, "bob@example.test").await;
    for (hash, user) in [
        (&b"ada-1"[..], ada.id),
        (b"ada-2", ada.id),
        (b"bob-1", bob.id),
    ] {
        store
            .insert_session(&session(user, hash, t(1000)))
            .await
            .unwrap();
    }
    let replacement = session(ada.id, b"ada-new", t(2000));
    let ended = store
        .change_password(ada.id, "$argon2id$new", t(50), Some(&replacement))
        .await
        .unwrap();
    assert_eq!(ended, 2);
    let stored = store.get_user(ada.id).await.unwrap();
    assert_eq!(
        (stored.password_hash.as_str(), stored.updated_at),
        ("$argon2id$new", t(50))
    );
    assert_eq!(store.find_session(b"ada-1", t(0)).await.unwrap(), None);
    assert_eq!(store.find_session(b"ada-2", t(0)).await.unwrap(), None);
    assert_eq!(
        store.find_session(b"ada-new", t(0)).await.unwrap(),
        Some(replacement)
    );
    assert!(
        store.find_session(b"bob-1", t(0)).await.unwrap().is_some(),
        "other users keep their sessions"
    );

    // Without a replacement every session ends.
    assert_eq!(
        store
            .change_password(ada.id, "$argon2id$newer", t(60), None)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.find_session(b"ada-new", t(0)).await.unwrap(), None);

    // A failing replacement (its token is taken) leaves password and sessions as they were.
    store
        .insert_session(&session(ada.id, b"ada-3", t(1000)))
        .await
        .unwrap();
    let clash = session(ada.id, b"bob-1", t(2000));
    assert_conflict(
        store
            .change_password(ada.id, "$argon2id$lost", t(70), Some(&clash))
            .await,
        Conflict::Duplicate("session"),
    );
    assert_eq!(
        store.get_user(ada.id).await.unwrap().password_hash,
        "$argon2id$newer"
    );
    assert!(store.find_session(b"ada-3", t(0)).await.unwrap().is_some());
    assert_not_found(
        store
            .change_password(UserId::new(), "$argon2id$x", t(80), None)
            .await,
    );
}
