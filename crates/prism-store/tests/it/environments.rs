//! Environments: variables (secret and disabled ones included) round-trip, listing by name, update and delete.

use std::sync::Arc;

use prism_domain::EnvironmentId;
use prism_domain::environment::Environment;
use prism_store::{Conflict, Store, StoreError};

use crate::fixtures::{assert_not_found, environment, seed_workspace, t, variable, world};

pub async fn environment_round_trips_with_secret_variables(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let env = environment(
        w.ws.id,
        "Production",
        vec![
            variable("host", "api.example.test", false, true),
            variable("token", "enc:v1:bm9uY2U=:Y2lwaGVy", true, true),
            variable("legacy", "", false, false),
            variable("host", "duplicate names are kept", false, false),
        ],
    );
    store.insert_environment(&env).await.unwrap();
    assert_eq!(store.get_environment(env.id).await.unwrap(), env);

    let empty = environment(w.ws.id, "Empty", vec![]);
    store.insert_environment(&empty).await.unwrap();
    assert_eq!(store.get_environment(empty.id).await.unwrap(), empty);
}

pub async fn environments_are_listed_by_name_per_workspace(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let staging = environment(w.ws.id, "staging", vec![variable("a", "1", false, true)]);
    let dev = environment(w.ws.id, "dev", vec![]);
    let prod = environment(w.ws.id, "prod", vec![]);
    for env in [&staging, &dev, &prod] {
        store.insert_environment(env).await.unwrap();
    }
    let other = seed_workspace(&store, w.owner.id, "Other").await;
    let elsewhere = environment(other.id, "alpha", vec![]);
    store.insert_environment(&elsewhere).await.unwrap();

    assert_eq!(
        store.list_environments(w.ws.id).await.unwrap(),
        vec![dev, prod, staging]
    );
    assert_eq!(
        store.list_environments(other.id).await.unwrap(),
        vec![elsewhere]
    );
}

pub async fn environment_needs_an_existing_workspace(store: Arc<dyn Store>) {
    let env = environment(prism_domain::WorkspaceId::new(), "nowhere", vec![]);
    let result = store.insert_environment(&env).await;
    assert!(
        matches!(
            result,
            Err(StoreError::Conflict(Conflict::MissingReference(_)))
        ),
        "{result:?}"
    );
    assert_not_found(store.get_environment(env.id).await);
}

pub async fn updating_an_environment_replaces_name_and_variables(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let env = environment(
        w.ws.id,
        "dev",
        vec![
            variable("a", "1", false, true),
            variable("b", "2", true, true),
        ],
    );
    store.insert_environment(&env).await.unwrap();
    let untouched = environment(w.ws.id, "other", vec![variable("keep", "me", false, true)]);
    store.insert_environment(&untouched).await.unwrap();

    let variables = vec![
        variable("b", "enc:new", true, false),
        variable("c", "3", false, true),
    ];
    let updated = store
        .update_environment(env.id, "development", &variables, t(1200))
        .await
        .unwrap();
    let expected = Environment {
        name: "development".into(),
        variables,
        updated_at: t(1200),
        ..env.clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(store.get_environment(env.id).await.unwrap(), expected);
    assert_eq!(
        store.get_environment(untouched.id).await.unwrap(),
        untouched
    );

    let cleared = store
        .update_environment(env.id, "development", &[], t(1201))
        .await
        .unwrap();
    assert!(cleared.variables.is_empty());
    assert_not_found(
        store
            .update_environment(EnvironmentId::new(), "x", &[], t(1202))
            .await,
    );
}

pub async fn deleting_an_environment_removes_it(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let gone = environment(w.ws.id, "gone", vec![]);
    let kept = environment(w.ws.id, "kept", vec![]);
    store.insert_environment(&gone).await.unwrap();
    store.insert_environment(&kept).await.unwrap();

    store.delete_environment(gone.id).await.unwrap();
    assert_not_found(store.get_environment(gone.id).await);
    assert_eq!(store.list_environments(w.ws.id).await.unwrap(), vec![kept]);
    assert_not_found(store.delete_environment(gone.id).await);
    assert_not_found(store.get_environment(EnvironmentId::new()).await);
}
