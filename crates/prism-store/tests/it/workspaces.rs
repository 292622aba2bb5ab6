//! Workspaces and memberships: owner becomes admin, roles, the last-admin rule (also under concurrency) and cascading delete.

use std::sync::Arc;

use prism_domain::execution::ExecutionDetail;
use prism_domain::trace::TraceId;
use prism_domain::workflow::RunStatus;
use prism_domain::workspace::{Member, Membership, Workspace};
use prism_domain::{Role, UserId, WorkspaceId};
use prism_store::{Conflict, Store, StoreError};
use serde_json::json;

use crate::fixtures::{
    assert_conflict, assert_not_found, environment, execution, run, run_step, seed_collection,
    seed_request, seed_user, seed_workspace, span, step, t, variable, warm_up_connections,
    workflow, workspace, world,
};

fn membership(ws: WorkspaceId, user: UserId, role: Role) -> Membership {
    Membership {
        workspace_id: ws,
        user_id: user,
        role,
        joined_at: t(50),
    }
}

async fn role_of(store: &Arc<dyn Store>, ws: WorkspaceId, user: UserId) -> Option<Role> {
    store
        .find_membership(ws, user)
        .await
        .unwrap()
        .map(|m| m.role)
}

async fn admin_count(store: &Arc<dyn Store>, ws: WorkspaceId) -> usize {
    store
        .list_members(ws)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.role == Role::Admin)
        .count()
}

pub async fn creating_a_workspace_makes_the_owner_admin(store: Arc<dyn Store>) {
    let owner = seed_user(&store, "owner@example.test").await;
    let ws = workspace("Payments", Some(owner.id));
    store.insert_workspace(&ws, owner.id).await.unwrap();

    assert_eq!(store.get_workspace(ws.id).await.unwrap(), ws);
    assert_eq!(
        store.list_workspaces_for_user(owner.id).await.unwrap(),
        vec![(ws.clone(), Role::Admin)]
    );
    assert_eq!(
        store.find_membership(ws.id, owner.id).await.unwrap(),
        Some(Membership {
            workspace_id: ws.id,
            user_id: owner.id,
            role: Role::Admin,
            joined_at: ws.created_at
        })
    );
    assert_eq!(
        store.list_members(ws.id).await.unwrap(),
        vec![Member {
            user_id: owner.id,
            email: owner.email.as_str().to_owned(),
            name: owner.name.clone(),
            role: Role::Admin,
            joined_at: ws.created_at,
        }]
    );
}

pub async fn workspace_for_a_missing_owner_is_not_created(store: Arc<dyn Store>) {
    let ws = workspace("Orphan", None);
    assert_conflict(
        store.insert_workspace(&ws, UserId::new()).await,
        Conflict::MissingReference("user"),
    );
    assert_not_found(store.get_workspace(ws.id).await);
}

pub async fn missing_workspace_is_not_found(store: Arc<dyn Store>) {
    let missing = WorkspaceId::new();
    assert_not_found(store.get_workspace(missing).await);
    assert_not_found(store.update_workspace_name(missing, "x", t(1)).await);
    assert_not_found(store.delete_workspace(missing).await);
}

pub async fn workspaces_for_a_user_are_listed_by_name_with_roles(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let bob = seed_user(&store, "bob@example.test").await;
    let zeta = seed_workspace(&store, ada.id, "Zeta").await;
    let alpha = seed_workspace(&store, bob.id, "Alpha").await;
    let mid = seed_workspace(&store, bob.id, "Mid").await;
    store
        .insert_membership(&membership(alpha.id, ada.id, Role::Viewer))
        .await
        .unwrap();
    store
        .insert_membership(&membership(mid.id, ada.id, Role::Editor))
        .await
        .unwrap();

    assert_eq!(
        store.list_workspaces_for_user(ada.id).await.unwrap(),
        vec![
            (alpha.clone(), Role::Viewer),
            (mid.clone(), Role::Editor),
            (zeta, Role::Admin)
        ]
    );
    assert_eq!(
        store.list_workspaces_for_user(bob.id).await.unwrap(),
        vec![(alpha, Role::Admin), (mid, Role::Admin)]
    );
    assert!(
        store
            .list_workspaces_for_user(UserId::new())
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn renaming_a_workspace_changes_name_and_time(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let other = seed_workspace(&store, w.owner.id, "Other").await;
    store
        .update_workspace_name(w.ws.id, "Renamed", t(500))
        .await
        .unwrap();
    assert_eq!(
        store.get_workspace(w.ws.id).await.unwrap(),
        Workspace {
            name: "Renamed".into(),
            updated_at: t(500),
            ..w.ws
        }
    );
    assert_eq!(store.get_workspace(other.id).await.unwrap(), other);
}

pub async fn adding_an_existing_member_is_already_member(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let bob = seed_user(&store, "bob@example.test").await;
    store
        .insert_membership(&membership(w.ws.id, bob.id, Role::Editor))
        .await
        .unwrap();
    assert_conflict(
        store
            .insert_membership(&membership(w.ws.id, bob.id, Role::Admin))
            .await,
        Conflict::AlreadyMember,
    );
    assert_conflict(
        store
            .insert_membership(&membership(w.ws.id, w.owner.id, Role::Viewer))
            .await,
        Conflict::AlreadyMember,
    );
    assert_eq!(role_of(&store, w.ws.id, bob.id).await, Some(Role::Editor));
    assert_eq!(
        role_of(&store, w.ws.id, w.owner.id).await,
        Some(Role::Admin)
    );
}

pub async fn membership_needs_an_existing_user_and_workspace(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let result = store
        .insert_membership(&membership(w.ws.id, UserId::new(), Role::Viewer))
        .await;
    assert!(
        matches!(
            result,
            Err(StoreError::Conflict(Conflict::MissingReference(_)))
        ),
        "{result:?}"
    );
    let result = store
        .insert_membership(&membership(WorkspaceId::new(), w.owner.id, Role::Viewer))
        .await;
    assert!(
        matches!(
            result,
            Err(StoreError::Conflict(Conflict::MissingReference(_)))
        ),
        "{result:?}"
    );
    assert_eq!(store.list_members(w.ws.id).await.unwrap().len(), 1);
}

pub async fn members_are_found_and_listed_by_email(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let zoe = seed_user(&store, "zoe@example.test").await;
    let bob = seed_user(&store, "bob@example.test").await;
    let outsider = seed_user(&store, "outsider@example.test").await;
    store
        .insert_membership(&membership(w.ws.id, zoe.id, Role::Viewer))
        .await
        .unwrap();
    store
        .insert_membership(&membership(w.ws.id, bob.id, Role::Editor))
        .await
        .unwrap();

    let members = store.list_members(w.ws.id).await.unwrap();
    let summary: Vec<_> = members
        .iter()
        .map(|m| (m.email.as_str(), m.role, m.joined_at))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("bob@example.test", Role::Editor, t(50)),
            ("owner@example.test", Role::Admin, w.ws.created_at),
            ("zoe@example.test", Role::Viewer, t(50)),
        ]
    );
    assert_eq!(members[0].user_id, bob.id);
    assert_eq!(members[0].name, bob.name);
    assert_eq!(
        store.find_membership(w.ws.id, zoe.id).await.unwrap(),
        Some(membership(w.ws.id, zoe.id, Role::Viewer))
    );
    assert_eq!(
        store.find_membership(w.ws.id, outsider.id).await.unwrap(),
        None
    );
    assert!(
        store
            .list_members(WorkspaceId::new())
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn member_role_changes_are_stored(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let bob = seed_user(&store, "bob@example.test").await;
    store
        .insert_membership(&membership(w.ws.id, bob.id, Role::Viewer))
        .await
        .unwrap();
    store
        .update_membership_role(w.ws.id, bob.id, Role::Editor)
        .await
        .unwrap();
    assert_eq!(role_of(&store, w.ws.id, bob.id).await, Some(Role::Editor));
    store
        .update_membership_role(w.ws.id, bob.id, Role::Admin)
        .await
        .unwrap();
    assert_eq!(role_of(&store, w.ws.id, bob.id).await, Some(Role::Admin));
    assert_eq!(admin_count(&store, w.ws.id).await, 2);

    let stranger = seed_user(&store, "stranger@example.test").await;
    assert_not_found(
        store
            .update_membership_role(w.ws.id, stranger.id, Role::Editor)
            .await,
    );
    assert_not_found(store.delete_membership(w.ws.id, stranger.id).await);
    assert_eq!(role_of(&store, w.ws.id, stranger.id).await, None);
}

pub async fn viewer_role_change_keeps_last_admin(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let viewer = seed_user(&store, "viewer@example.test").await;
    store
        .insert_membership(&membership(w.ws.id, viewer.id, Role::Viewer))
        .await
        .unwrap();
    // Non-admins come and go freely while the single admin stays.
    store
        .update_membership_role(w.ws.id, viewer.id, Role::Editor)
        .await
        .unwrap();
    store
        .update_membership_role(w.ws.id, viewer.id, Role::Viewer)
        .await
        .unwrap();
    store.delete_membership(w.ws.id, viewer.id).await.unwrap();
    assert_eq!(role_of(&store, w.ws.id, viewer.id).await, None);
    assert_eq!(
        role_of(&store, w.ws.id, w.owner.id).await,
        Some(Role::Admin)
    );
    // Re-stating the admin's own role is not a demotion.
    store
        .update_membership_role(w.ws.id, w.owner.id, Role::Admin)
        .await
        .unwrap();
}

pub async fn last_admin_can_be_neither_demoted_nor_removed(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let editor = seed_user(&store, "editor@example.test").await;
    store
        .insert_membership(&membership(w.ws.id, editor.id, Role::Editor))
        .await
        .unwrap();

    for role in [Role::Editor, Role::Viewer] {
        assert_conflict(
            store
                .update_membership_role(w.ws.id, w.owner.id, role)
                .await,
            Conflict::LastAdmin,
        );
    }
    assert_conflict(
        store.delete_membership(w.ws.id, w.owner.id).await,
        Conflict::LastAdmin,
    );
    assert_eq!(
        role_of(&store, w.ws.id, w.owner.id).await,
        Some(Role::Admin)
    );
    assert_eq!(store.list_members(w.ws.id).await.unwrap().len(), 2);
}

pub async fn last_admin_can_step_down_once_another_admin_exists(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let bob = seed_user(&store, "bob@example.test").await;
    store
        .insert_membership(&membership(w.ws.id, bob.id, Role::Admin))
        .await
        .unwrap();

    store
        .update_membership_role(w.ws.id, w.owner.id, Role::Viewer)
        .await
        .unwrap();
    assert_eq!(
        role_of(&store, w.ws.id, w.owner.id).await,
        Some(Role::Viewer)
    );
    // Bob is now the last admin.
    assert_conflict(
        store.delete_membership(w.ws.id, bob.id).await,
        Conflict::LastAdmin,
    );
    assert_conflict(
        store
            .update_membership_role(w.ws.id, bob.id, Role::Editor)
            .await,
        Conflict::LastAdmin,
    );

    store
        .update_membership_role(w.ws.id, w.owner.id, Role::Admin)
        .await
        .unwrap();
    store.delete_membership(w.ws.id, bob.id).await.unwrap();
    assert_eq!(role_of(&store, w.ws.id, bob.id).await, None);
    assert_eq!(admin_count(&store, w.ws.id).await, 1);
}

/// Starts two membership changes at the same instant and returns both outcomes.
async fn race(
    a: impl Future<Output = Result<(), StoreError>> + Send + 'static,
    b: impl Future<Output = Result<(), StoreError>> + Send + 'static,
) -> [Result<(), StoreError>; 2] {
    let start = Arc::new(tokio::sync::Barrier::new(2));
    let (start_a, start_b) = (start.clone(), start);
    let a = tokio::spawn(async move {
        start_a.wait().await;
        a.await
    });
    let b = tokio::spawn(async move {
        start_b.wait().await;
        b.await
    });
    [a.await.unwrap(), b.await.unwrap()]
}

/// Exactly one of two racing changes went through; the other was refused as `LastAdmin`.
#[track_caller]
fn assert_one_won(round: usize, outcomes: &[Result<(), StoreError>; 2]) {
    assert_eq!(
        outcomes.iter().filter(|r| r.is_ok()).count(),
        1,
        "round {round}: {outcomes:?}"
    );
    for failure in outcomes.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(failure, StoreError::Conflict(Conflict::LastAdmin)),
            "round {round}: {failure:?}"
        );
    }
}

pub async fn admins_demoting_each_other_concurrently_leave_one_admin(store: Arc<dyn Store>) {
    let ada = seed_user(&store, "ada@example.test").await;
    let bob = seed_user(&store, "bob@example.test").await;
    warm_up_connections(&store).await;
    // Several rounds, each on a fresh workspace, to give the race a real chance to happen.
    for round in 0..10 {
        let ws = seed_workspace(&store, ada.id, &format!("Race {round}")).await;
        store
            .insert_membership(&membership(ws.id, bob.id, Role::Admin))
            .await
            .unwrap();
        let (s1, s2) = (store.clone(), store.clone());
        let outcomes = race(
            async move { s1.update_membership_role(ws.id, ada.id, Role::Viewer).await },
            async move { s2.update_membership_role(ws.id, bob.id, Role::Viewer).await },
        )
        .await;
        assert_one_won(round, &outcomes);
        assert_eq!(admin_count(&store, ws.id).await, 1, "round {round}");
    }
}

pub async fn admins_removing_and_demoting_each_other_concurrently_leave_one_admin(
    store: Arc<dyn Store>,
) {
    let ada = seed_user(&store, "ada@example.test").await;
    let bob = seed_user(&store, "bob@example.test").await;
    warm_up_connections(&store).await;
    for round in 0..10 {
        let ws = seed_workspace(&store, ada.id, &format!("Race {round}")).await;
        store
            .insert_membership(&membership(ws.id, bob.id, Role::Admin))
            .await
            .unwrap();
        let (s1, s2) = (store.clone(), store.clone());
        let outcomes = race(
            async move { s1.delete_membership(ws.id, ada.id).await },
            async move { s2.update_membership_role(ws.id, bob.id, Role::Editor).await },
        )
        .await;
        assert_one_won(round, &outcomes);
        assert_eq!(admin_count(&store, ws.id).await, 1, "round {round}");
    }
}

pub async fn deleting_a_workspace_removes_everything_in_it(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let bob = seed_user(&store, "bob@example.test").await;
    store
        .insert_membership(&membership(w.ws.id, bob.id, Role::Editor))
        .await
        .unwrap();
    let top = seed_collection(&store, w.ws.id, None, "API").await;
    let folder = seed_collection(&store, w.ws.id, Some(top.id), "Users").await;
    let in_top = seed_request(&store, w.ws.id, top.id, "list").await;
    let in_folder = seed_request(&store, w.ws.id, folder.id, "get").await;
    let env = environment(
        w.ws.id,
        "prod",
        vec![variable("host", "example.test", false, true)],
    );
    store.insert_environment(&env).await.unwrap();
    // A workflow whose step uses a request that the same delete removes.
    let flow = workflow(w.ws.id, "Smoke", t(60));
    store.insert_workflow(&flow).await.unwrap();
    let steps = store
        .replace_workflow_steps(flow.id, &[step(flow.id, in_folder.id, "get")])
        .await
        .unwrap();
    let flow_run = run(&flow, RunStatus::Success, t(70));
    store.insert_workflow_run(&flow_run).await.unwrap();
    store
        .insert_run_step(&run_step(
            flow_run.id,
            Some(steps[0].id),
            0,
            RunStatus::Success,
        ))
        .await
        .unwrap();
    // An execution of a saved request, with details, and a span reported into the workspace.
    let trace = TraceId::random();
    let exec = prism_domain::execution::Execution {
        request_id: Some(in_top.id),
        trace_id: trace,
        ..execution(w.ws.id, t(80))
    };
    store
        .insert_executions(std::slice::from_ref(&exec))
        .await
        .unwrap();
    store
        .insert_execution_details(&[ExecutionDetail {
            execution_id: exec.id,
            request: json!({}),
            response: json!({}),
        }])
        .await
        .unwrap();
    let reported = prism_domain::trace::Span {
        workspace_id: Some(w.ws.id),
        ..span(trace, "api", t(80))
    };
    store
        .insert_spans(std::slice::from_ref(&reported))
        .await
        .unwrap();

    // Another workspace of the same owner must survive untouched.
    let keep = seed_workspace(&store, w.owner.id, "Keep").await;
    let keep_collection = seed_collection(&store, keep.id, None, "Kept").await;
    let keep_request = seed_request(&store, keep.id, keep_collection.id, "kept").await;

    store.delete_workspace(w.ws.id).await.unwrap();

    assert_not_found(store.get_workspace(w.ws.id).await);
    assert_not_found(store.get_collection(top.id).await);
    assert_not_found(store.get_collection(folder.id).await);
    assert_not_found(store.get_request(in_top.id).await);
    assert_not_found(store.get_request(in_folder.id).await);
    assert_not_found(store.get_environment(env.id).await);
    assert_not_found(store.get_workflow(flow.id).await);
    assert_not_found(store.get_workflow_run(flow_run.id).await);
    assert!(store.list_run_steps(flow_run.id).await.unwrap().is_empty());
    assert!(store.list_workflow_steps(flow.id).await.unwrap().is_empty());
    assert_not_found(store.get_execution(exec.id).await);
    assert_eq!(store.find_execution_detail(exec.id).await.unwrap(), None);
    assert!(store.list_trace_spans(trace).await.unwrap().is_empty());
    assert!(store.list_trace_workspaces(trace).await.unwrap().is_empty());
    assert_eq!(store.find_membership(w.ws.id, bob.id).await.unwrap(), None);
    assert!(store.list_members(w.ws.id).await.unwrap().is_empty());
    assert_eq!(
        store.list_workspaces_for_user(w.owner.id).await.unwrap(),
        vec![(keep.clone(), Role::Admin)]
    );
    assert!(
        store
            .list_workspaces_for_user(bob.id)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(store.get_workspace(keep.id).await.unwrap(), keep);
    assert_eq!(
        store.get_collection(keep_collection.id).await.unwrap(),
        keep_collection
    );
    assert_eq!(
        store.get_request(keep_request.id).await.unwrap(),
        keep_request
    );
    assert_eq!(
        store.count_users().await.unwrap(),
        2,
        "users outlive their workspaces"
    );
    assert_not_found(store.delete_workspace(w.ws.id).await);
}
