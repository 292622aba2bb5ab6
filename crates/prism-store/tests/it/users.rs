//! User accounts: the first-user-is-admin rule (also under concurrency), email uniqueness, lookups and updates.

use std::sync::Arc;

use futures_util::future::join_all;
use prism_domain::UserId;
use prism_domain::user::{Email, User};
use prism_store::{Conflict, Store};

use crate::fixtures::{assert_conflict, assert_not_found, seed_user, t, user, warm_up_connections};

pub async fn first_user_becomes_admin(store: Arc<dyn Store>) {
    let first = user("ada@example.test");
    assert!(!first.is_admin);
    let stored = store.insert_user(&first).await.unwrap();
    assert!(stored.is_admin, "the first account must be stored as admin");
    assert_eq!(
        stored,
        User {
            is_admin: true,
            ..first.clone()
        }
    );
    assert_eq!(store.get_user(first.id).await.unwrap(), stored);

    let second = user("grace@example.test");
    let stored = store.insert_user(&second).await.unwrap();
    assert!(!stored.is_admin, "only the first account becomes admin");
    assert_eq!(store.get_user(second.id).await.unwrap(), second);
}

pub async fn later_user_keeps_an_explicit_admin_flag(store: Arc<dyn Store>) {
    seed_user(&store, "first@example.test").await;
    let admin = User {
        is_admin: true,
        ..user("second@example.test")
    };
    assert!(store.insert_user(&admin).await.unwrap().is_admin);
    assert!(store.get_user(admin.id).await.unwrap().is_admin);
}

pub async fn concurrent_first_sign_ups_make_exactly_one_admin(store: Arc<dyn Store>) {
    warm_up_connections(&store).await;
    // All sign-ups are released at once, so they really overlap.
    let start = Arc::new(tokio::sync::Barrier::new(8));
    let handles = (0..8).map(|i| {
        let (store, start) = (store.clone(), start.clone());
        tokio::spawn(async move {
            start.wait().await;
            store
                .insert_user(&user(&format!("racer{i}@example.test")))
                .await
        })
    });
    let returned: Vec<_> = join_all(handles)
        .await
        .into_iter()
        .map(|joined| joined.expect("task").expect("insert user"))
        .collect();
    assert_eq!(
        returned.iter().filter(|u| u.is_admin).count(),
        1,
        "returned: {returned:?}"
    );

    let stored = store.list_users().await.unwrap();
    assert_eq!(stored.len(), 8);
    assert_eq!(store.count_users().await.unwrap(), 8);
    let admins: Vec<_> = stored.iter().filter(|u| u.is_admin).collect();
    assert_eq!(admins.len(), 1, "stored: {stored:?}");
    let returned_admin = returned.iter().find(|u| u.is_admin).unwrap();
    assert_eq!(
        admins[0].id, returned_admin.id,
        "the stored admin is the one told it is admin"
    );
}

pub async fn duplicate_email_is_a_conflict(store: Arc<dyn Store>) {
    let original = seed_user(&store, "ada@example.test").await;
    // Emails are normalized, so a differently cased address is the same account.
    let duplicate = user("  ADA@Example.TEST ");
    assert_eq!(duplicate.email, original.email);
    assert_conflict(store.insert_user(&duplicate).await, Conflict::EmailTaken);
    assert_eq!(store.count_users().await.unwrap(), 1);
    assert_not_found(store.get_user(duplicate.id).await);
    assert_eq!(store.get_user(original.id).await.unwrap(), original);
}

pub async fn users_are_found_listed_and_counted(store: Arc<dyn Store>) {
    assert_eq!(store.count_users().await.unwrap(), 0);
    assert!(store.list_users().await.unwrap().is_empty());
    let zed = seed_user(&store, "zed@example.test").await;
    let ada = seed_user(&store, "ada@example.test").await;
    let max = seed_user(&store, "max@example.test").await;

    assert_eq!(store.count_users().await.unwrap(), 3);
    assert_eq!(
        store.list_users().await.unwrap(),
        vec![ada.clone(), max, zed.clone()],
        "listed by email"
    );
    let found = store
        .find_user_by_email(&Email::parse("Ada@Example.test").unwrap())
        .await
        .unwrap();
    assert_eq!(found, Some(ada));
    assert_eq!(
        store.find_user_by_email(&zed.email).await.unwrap(),
        Some(zed)
    );
    let nobody = Email::parse("nobody@example.test").unwrap();
    assert_eq!(store.find_user_by_email(&nobody).await.unwrap(), None);
}

pub async fn user_updates_change_only_their_field(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let other = seed_user(&store, "other@example.test").await;

    store
        .update_user_name(ada.id, "Ada Lovelace", t(100))
        .await
        .unwrap();
    let expected = User {
        name: "Ada Lovelace".into(),
        updated_at: t(100),
        ..ada.clone()
    };
    assert_eq!(store.get_user(ada.id).await.unwrap(), expected);

    store
        .update_user_password(ada.id, "$argon2id$new", t(200))
        .await
        .unwrap();
    let expected = User {
        password_hash: "$argon2id$new".into(),
        updated_at: t(200),
        ..expected
    };
    assert_eq!(store.get_user(ada.id).await.unwrap(), expected);

    store
        .update_user_admin(ada.id, false, t(300))
        .await
        .unwrap();
    let expected = User {
        is_admin: false,
        updated_at: t(300),
        ..expected
    };
    assert_eq!(store.get_user(ada.id).await.unwrap(), expected);
    store
        .update_user_admin(other.id, true, t(400))
        .await
        .unwrap();
    assert!(store.get_user(other.id).await.unwrap().is_admin);

    assert_eq!(
        store.get_user(other.id).await.unwrap().name,
        other.name,
        "other users are untouched"
    );
}

pub async fn missing_user_is_not_found(store: Arc<dyn Store>) {
    seed_user(&store, "ada@example.test").await;
    let missing = UserId::new();
    assert_not_found(store.get_user(missing).await);
    assert_not_found(store.update_user_name(missing, "x", t(1)).await);
    assert_not_found(store.update_user_password(missing, "x", t(1)).await);
    assert_not_found(store.update_user_admin(missing, true, t(1)).await);
}

pub async fn first_user_only_insert_stores_nothing_once_an_account_exists(store: Arc<dyn Store>) {
    let first = user("ada@example.test");
    let stored = store.insert_first_user(&first).await.unwrap();
    assert_eq!(
        stored,
        Some(User {
            is_admin: true,
            ..first.clone()
        })
    );
    let second = user("grace@example.test");
    assert_eq!(store.insert_first_user(&second).await.unwrap(), None);
    assert_not_found(store.get_user(second.id).await);
    assert_eq!(store.count_users().await.unwrap(), 1);
}

pub async fn concurrent_first_only_inserts_store_exactly_one(store: Arc<dyn Store>) {
    warm_up_connections(&store).await;
    let start = Arc::new(tokio::sync::Barrier::new(6));
    let handles = (0..6).map(|i| {
        let (store, start) = (store.clone(), start.clone());
        tokio::spawn(async move {
            start.wait().await;
            store
                .insert_first_user(&user(&format!("racer{i}@example.test")))
                .await
        })
    });
    let stored: Vec<User> = join_all(handles)
        .await
        .into_iter()
        .filter_map(|joined| joined.expect("task").expect("insert first user"))
        .collect();
    assert_eq!(stored.len(), 1, "stored: {stored:?}");
    assert!(stored[0].is_admin);
    assert_eq!(store.list_users().await.unwrap(), stored);
}
