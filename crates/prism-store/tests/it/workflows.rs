//! Workflows: definitions, atomic step replacement, runs, run steps, and failing unfinished runs after a restart.

use std::sync::Arc;

use futures_util::future::join_all;

use prism_domain::workflow::{RunStatus, Workflow, WorkflowRun, WorkflowRunStep, WorkflowStep};
use prism_domain::{ExecutionId, RequestId, WorkflowId, WorkflowRunId, WorkflowRunStepId};
use prism_store::{Conflict, Store};
use serde_json::json;

use crate::fixtures::{
    assert_conflict, assert_not_found, run, run_step, seed_collection, seed_request,
    seed_workspace, step, t, warm_up_connections, workflow, world,
};

pub async fn workflows_are_stored_listed_and_updated(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let older = workflow(w.ws.id, "Older", t(10));
    let newer = Workflow {
        description: None,
        created_by: Some(w.owner.id),
        ..workflow(w.ws.id, "Newer", t(20))
    };
    store.insert_workflow(&older).await.unwrap();
    store.insert_workflow(&newer).await.unwrap();
    let other = seed_workspace(&store, w.owner.id, "Other").await;
    let elsewhere = workflow(other.id, "Elsewhere", t(30));
    store.insert_workflow(&elsewhere).await.unwrap();

    assert_eq!(store.get_workflow(older.id).await.unwrap(), older);
    assert_eq!(store.get_workflow(newer.id).await.unwrap(), newer);
    assert_eq!(
        store.list_workflows(w.ws.id).await.unwrap(),
        vec![newer.clone(), older.clone()],
        "newest first"
    );
    assert_eq!(
        store.list_workflows(other.id).await.unwrap(),
        vec![elsewhere]
    );

    store
        .update_workflow(older.id, "Renamed", None, t(40))
        .await
        .unwrap();
    let expected = Workflow {
        name: "Renamed".into(),
        description: None,
        updated_at: t(40),
        ..older.clone()
    };
    assert_eq!(store.get_workflow(older.id).await.unwrap(), expected);
    store
        .update_workflow(older.id, "Renamed", Some("Now described"), t(41))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_workflow(older.id)
            .await
            .unwrap()
            .description
            .as_deref(),
        Some("Now described")
    );
    assert_eq!(store.get_workflow(newer.id).await.unwrap(), newer);

    assert_not_found(
        store
            .update_workflow(WorkflowId::new(), "x", None, t(42))
            .await,
    );
    assert_not_found(store.get_workflow(WorkflowId::new()).await);
    let orphan = workflow(prism_domain::WorkspaceId::new(), "Orphan", t(1));
    assert!(matches!(
        store.insert_workflow(&orphan).await,
        Err(prism_store::StoreError::Conflict(
            Conflict::MissingReference(_)
        ))
    ));
}

pub async fn replacing_steps_renumbers_positions_in_given_order(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let c = seed_collection(&store, w.ws.id, None, "C").await;
    let login = seed_request(&store, w.ws.id, c.id, "login").await;
    let fetch = seed_request(&store, w.ws.id, c.id, "fetch").await;
    let flow = workflow(w.ws.id, "Flow", t(10));
    store.insert_workflow(&flow).await.unwrap();
    assert!(store.list_workflow_steps(flow.id).await.unwrap().is_empty());

    // Positions and workflow ids given by the caller are ignored.
    let foreign_flow = WorkflowId::new();
    let given = vec![
        WorkflowStep {
            position: 7,
            ..step(flow.id, login.id, "login")
        },
        WorkflowStep {
            position: 3,
            timeout_ms: None,
            condition: None,
            ..step(foreign_flow, fetch.id, "fetch")
        },
        WorkflowStep {
            position: 3,
            extract: json!(null),
            assertions: json!({}),
            ..step(flow.id, login.id, "login again")
        },
    ];
    let stored = store.replace_workflow_steps(flow.id, &given).await.unwrap();
    let expected: Vec<_> = given
        .iter()
        .enumerate()
        .map(|(i, s)| WorkflowStep {
            position: i as i64,
            workflow_id: flow.id,
            ..s.clone()
        })
        .collect();
    assert_eq!(stored, expected);
    assert_eq!(store.list_workflow_steps(flow.id).await.unwrap(), expected);

    // Replacing again keeps exactly the new list, in its order.
    let again = vec![expected[2].clone(), step(flow.id, fetch.id, "new")];
    let stored = store.replace_workflow_steps(flow.id, &again).await.unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|s| (s.name.as_str(), s.position))
            .collect::<Vec<_>>(),
        [("login again", 0), ("new", 1)]
    );
    assert_eq!(store.list_workflow_steps(flow.id).await.unwrap(), stored);

    assert!(
        store
            .replace_workflow_steps(flow.id, &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.list_workflow_steps(flow.id).await.unwrap().is_empty());
    assert_not_found(store.replace_workflow_steps(WorkflowId::new(), &[]).await);
}

pub async fn step_request_in_another_workspace_leaves_old_steps(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let c = seed_collection(&store, w.ws.id, None, "C").await;
    let mine = seed_request(&store, w.ws.id, c.id, "mine").await;
    let other = seed_workspace(&store, w.owner.id, "Other").await;
    let oc = seed_collection(&store, other.id, None, "OC").await;
    let theirs = seed_request(&store, other.id, oc.id, "theirs").await;
    let flow = workflow(w.ws.id, "Flow", t(10));
    store.insert_workflow(&flow).await.unwrap();
    let old = store
        .replace_workflow_steps(flow.id, &[step(flow.id, mine.id, "old")])
        .await
        .unwrap();

    // The bad step comes last, after a valid one: nothing of the new list may be written.
    let mixed = [
        step(flow.id, mine.id, "fine"),
        step(flow.id, theirs.id, "foreign"),
    ];
    assert_conflict(
        store.replace_workflow_steps(flow.id, &mixed).await,
        Conflict::OtherWorkspace("request"),
    );
    assert_eq!(store.list_workflow_steps(flow.id).await.unwrap(), old);

    let missing = [
        step(flow.id, mine.id, "fine"),
        step(flow.id, RequestId::new(), "missing"),
    ];
    assert_conflict(
        store.replace_workflow_steps(flow.id, &missing).await,
        Conflict::MissingReference("request"),
    );
    assert_eq!(store.list_workflow_steps(flow.id).await.unwrap(), old);
    // The foreign request is not in use by anything in its own workspace.
    store.delete_request(theirs.id).await.unwrap();
}

pub async fn deleting_a_workflow_removes_its_steps_and_runs(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let c = seed_collection(&store, w.ws.id, None, "C").await;
    let r = seed_request(&store, w.ws.id, c.id, "r").await;
    let flow = workflow(w.ws.id, "Flow", t(10));
    let kept = workflow(w.ws.id, "Kept", t(11));
    store.insert_workflow(&flow).await.unwrap();
    store.insert_workflow(&kept).await.unwrap();
    let steps = store
        .replace_workflow_steps(flow.id, &[step(flow.id, r.id, "s")])
        .await
        .unwrap();
    let flow_run = run(&flow, RunStatus::Success, t(20));
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

    store.delete_workflow(flow.id).await.unwrap();
    assert_not_found(store.get_workflow(flow.id).await);
    assert!(store.list_workflow_steps(flow.id).await.unwrap().is_empty());
    assert_not_found(store.get_workflow_run(flow_run.id).await);
    assert!(store.list_run_steps(flow_run.id).await.unwrap().is_empty());
    assert_eq!(store.list_workflows(w.ws.id).await.unwrap(), vec![kept]);
    assert_not_found(store.delete_workflow(flow.id).await);
    // The request is no longer in use.
    store.delete_request(r.id).await.unwrap();
}

pub async fn workflow_runs_are_listed_newest_first_and_updated(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let flow = workflow(w.ws.id, "Flow", t(10));
    let other_flow = workflow(w.ws.id, "Other", t(10));
    store.insert_workflow(&flow).await.unwrap();
    store.insert_workflow(&other_flow).await.unwrap();
    let first = WorkflowRun {
        triggered_by: Some(w.owner.id),
        trigger: "api".into(),
        ..run(&flow, RunStatus::Pending, t(100))
    };
    let third = run(&flow, RunStatus::Pending, t(300));
    let second = run(&flow, RunStatus::Pending, t(200));
    for r in [&first, &third, &second] {
        store.insert_workflow_run(r).await.unwrap();
    }
    store
        .insert_workflow_run(&run(&other_flow, RunStatus::Pending, t(400)))
        .await
        .unwrap();

    assert_eq!(store.get_workflow_run(first.id).await.unwrap(), first);
    assert_eq!(
        store.list_workflow_runs(flow.id, 10).await.unwrap(),
        vec![third.clone(), second.clone(), first.clone()]
    );
    assert_eq!(
        store.list_workflow_runs(flow.id, 2).await.unwrap(),
        vec![third.clone(), second.clone()]
    );

    let finished = WorkflowRun {
        status: RunStatus::Failed,
        started_at: Some(t(101)),
        ended_at: Some(t(105)),
        error: Some("step 2 failed: expected 200, got 500".into()),
        // Only status, times and error are written: these changes must be ignored.
        trigger: "ignored".into(),
        created_at: t(999),
        ..first.clone()
    };
    store.update_workflow_run(&finished).await.unwrap();
    let expected = WorkflowRun {
        trigger: first.trigger.clone(),
        created_at: first.created_at,
        ..finished.clone()
    };
    assert_eq!(store.get_workflow_run(first.id).await.unwrap(), expected);
    assert_eq!(
        store.get_workflow_run(second.id).await.unwrap(),
        second,
        "other runs are untouched"
    );

    assert_not_found(
        store
            .update_workflow_run(&run(&flow, RunStatus::Success, t(1)))
            .await,
    );
    assert_not_found(store.get_workflow_run(WorkflowRunId::new()).await);
    let orphan = WorkflowRun {
        workflow_id: WorkflowId::new(),
        ..run(&flow, RunStatus::Pending, t(1))
    };
    assert!(matches!(
        store.insert_workflow_run(&orphan).await,
        Err(prism_store::StoreError::Conflict(
            Conflict::MissingReference(_)
        ))
    ));
}

pub async fn run_steps_are_recorded_and_updated(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let c = seed_collection(&store, w.ws.id, None, "C").await;
    let r = seed_request(&store, w.ws.id, c.id, "r").await;
    let flow = workflow(w.ws.id, "Flow", t(10));
    store.insert_workflow(&flow).await.unwrap();
    let steps = store
        .replace_workflow_steps(
            flow.id,
            &[step(flow.id, r.id, "a"), step(flow.id, r.id, "b")],
        )
        .await
        .unwrap();
    let flow_run = run(&flow, RunStatus::Running, t(100));
    let other_run = run(&flow, RunStatus::Running, t(101));
    store.insert_workflow_run(&flow_run).await.unwrap();
    store.insert_workflow_run(&other_run).await.unwrap();

    let second = run_step(flow_run.id, Some(steps[1].id), 1, RunStatus::Pending);
    let first = WorkflowRunStep {
        status: RunStatus::Running,
        attempts: 1,
        started_at: Some(t(102)),
        ..run_step(flow_run.id, Some(steps[0].id), 0, RunStatus::Running)
    };
    store.insert_run_step(&second).await.unwrap();
    store.insert_run_step(&first).await.unwrap();
    store
        .insert_run_step(&run_step(
            other_run.id,
            Some(steps[0].id),
            0,
            RunStatus::Pending,
        ))
        .await
        .unwrap();
    assert_eq!(
        store.list_run_steps(flow_run.id).await.unwrap(),
        vec![first.clone(), second.clone()],
        "by position"
    );

    let done = WorkflowRunStep {
        status: RunStatus::Success,
        attempts: 2,
        execution_id: Some(ExecutionId::new()),
        ended_at: Some(t(110)),
        error: Some("first attempt timed out".into()),
        outputs: json!({"token": "abc", "assertions": [{"ok": true}], "n": 1.5}),
        ..first.clone()
    };
    store.update_run_step(&done).await.unwrap();
    assert_eq!(
        store.list_run_steps(flow_run.id).await.unwrap(),
        vec![done, second]
    );

    let missing = WorkflowRunStep {
        id: WorkflowRunStepId::new(),
        ..first
    };
    assert_not_found(store.update_run_step(&missing).await);
    assert!(
        store
            .list_run_steps(WorkflowRunId::new())
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn run_steps_outlive_replaced_step_definitions(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let c = seed_collection(&store, w.ws.id, None, "C").await;
    let r = seed_request(&store, w.ws.id, c.id, "r").await;
    let flow = workflow(w.ws.id, "Flow", t(10));
    store.insert_workflow(&flow).await.unwrap();
    let steps = store
        .replace_workflow_steps(flow.id, &[step(flow.id, r.id, "a")])
        .await
        .unwrap();
    let flow_run = run(&flow, RunStatus::Success, t(100));
    store.insert_workflow_run(&flow_run).await.unwrap();
    let recorded = run_step(flow_run.id, Some(steps[0].id), 0, RunStatus::Success);
    store.insert_run_step(&recorded).await.unwrap();

    store
        .replace_workflow_steps(flow.id, &[step(flow.id, r.id, "b")])
        .await
        .unwrap();
    assert_eq!(
        store.list_run_steps(flow_run.id).await.unwrap(),
        vec![WorkflowRunStep {
            step_id: None,
            ..recorded
        }]
    );
}

pub async fn fail_unfinished_runs_fails_only_pending_and_running(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let flow = workflow(w.ws.id, "Flow", t(10));
    store.insert_workflow(&flow).await.unwrap();
    let pending = run(&flow, RunStatus::Pending, t(100));
    let running = WorkflowRun {
        started_at: Some(t(101)),
        ..run(&flow, RunStatus::Running, t(101))
    };
    let finished: Vec<_> = [
        RunStatus::Success,
        RunStatus::Failed,
        RunStatus::Skipped,
        RunStatus::Cancelled,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, status)| WorkflowRun {
        started_at: Some(t(90)),
        ended_at: Some(t(95)),
        error: (status == RunStatus::Failed).then(|| "its own error".to_owned()),
        ..run(&flow, status, t(90 + i as i64))
    })
    .collect();
    for r in [&pending, &running].into_iter().chain(&finished) {
        store.insert_workflow_run(r).await.unwrap();
    }
    let step_running = WorkflowRunStep {
        started_at: Some(t(102)),
        ..run_step(running.id, None, 0, RunStatus::Running)
    };
    let step_pending = run_step(running.id, None, 1, RunStatus::Pending);
    let step_waiting = run_step(pending.id, None, 0, RunStatus::Pending);
    let step_done = WorkflowRunStep {
        ended_at: Some(t(96)),
        ..run_step(finished[0].id, None, 0, RunStatus::Success)
    };
    let step_skipped = run_step(finished[2].id, None, 0, RunStatus::Skipped);
    for s in [
        &step_running,
        &step_pending,
        &step_waiting,
        &step_done,
        &step_skipped,
    ] {
        store.insert_run_step(s).await.unwrap();
    }

    let reason = "prism restarted while the run was in progress";
    assert_eq!(store.fail_unfinished_runs(reason, t(500)).await.unwrap(), 2);

    let failed_run = |r: &WorkflowRun| WorkflowRun {
        status: RunStatus::Failed,
        ended_at: Some(t(500)),
        error: Some(reason.into()),
        ..r.clone()
    };
    assert_eq!(
        store.get_workflow_run(pending.id).await.unwrap(),
        failed_run(&pending)
    );
    assert_eq!(
        store.get_workflow_run(running.id).await.unwrap(),
        failed_run(&running)
    );
    for r in &finished {
        assert_eq!(
            &store.get_workflow_run(r.id).await.unwrap(),
            r,
            "finished runs are left alone"
        );
    }
    let failed_step = |s: &WorkflowRunStep| WorkflowRunStep {
        status: RunStatus::Failed,
        ended_at: Some(t(500)),
        error: Some(reason.into()),
        ..s.clone()
    };
    assert_eq!(
        store.list_run_steps(running.id).await.unwrap(),
        vec![failed_step(&step_running), failed_step(&step_pending)]
    );
    assert_eq!(
        store.list_run_steps(pending.id).await.unwrap(),
        vec![failed_step(&step_waiting)]
    );
    assert_eq!(
        store.list_run_steps(finished[0].id).await.unwrap(),
        vec![step_done]
    );
    assert_eq!(
        store.list_run_steps(finished[2].id).await.unwrap(),
        vec![step_skipped]
    );

    assert_eq!(
        store.fail_unfinished_runs(reason, t(600)).await.unwrap(),
        0,
        "nothing is left unfinished"
    );
    assert_eq!(
        store.get_workflow_run(pending.id).await.unwrap(),
        failed_run(&pending)
    );
}

pub async fn concurrent_step_replacements_leave_one_complete_list(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let c = seed_collection(&store, w.ws.id, None, "C").await;
    let r = seed_request(&store, w.ws.id, c.id, "r").await;
    let flow = workflow(w.ws.id, "Flow", t(10));
    store.insert_workflow(&flow).await.unwrap();
    warm_up_connections(&store).await;
    for round in 0..5 {
        let lists: Vec<Vec<WorkflowStep>> = (0..4)
            .map(|i| {
                (0..3)
                    .map(|j| step(flow.id, r.id, &format!("round {round} list {i} step {j}")))
                    .collect()
            })
            .collect();
        let start = Arc::new(tokio::sync::Barrier::new(lists.len()));
        let handles = lists.iter().cloned().map(|list| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.replace_workflow_steps(flow.id, &list).await
            })
        });
        for joined in join_all(handles).await {
            joined.unwrap().unwrap();
        }
        let names: Vec<_> = store
            .list_workflow_steps(flow.id)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert!(
            lists
                .iter()
                .any(|list| list.iter().map(|s| &s.name).eq(names.iter())),
            "round {round}: the stored steps are not one of the lists given: {names:?}"
        );
    }
}
