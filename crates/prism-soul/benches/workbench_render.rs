//! Workbench render benchmark: the server's time to render `/app` (store reads + HTML) for a
//! workspace with 1,000 saved requests (10 collections × 5 folders × 20 requests).
//!
//! Run with `cargo bench -p prism-soul --bench workbench_render` (PostgreSQL too when
//! `PRISM_TEST_POSTGRES_URL` is set). The goal (issue: web UI) is ≤ 20 ms; the report gives the
//! median and p95 as a ratio of it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prism_domain::collection::Collection;
use prism_domain::request::{RequestSpec, SavedRequest};
use prism_domain::user::{Email, User};
use prism_domain::workspace::Workspace;
use prism_domain::{ApiTokenId, Clock, CollectionId, RequestId, SystemClock, UserId, WorkspaceId};
use prism_grpc::{GrpcConfig, GrpcExecutor};
use prism_intercept::executor::{ExecutorConfig, HttpExecutor};
use prism_intercept::recorder::{Recorder, RecorderConfig};
use prism_intercept::{InterceptSettings, InterceptState};
use prism_soul::api::auth::{Caller, Via};
use prism_soul::dataplane::DataPlane;
use prism_soul::{SoulSettings, SoulState};
use prism_store::Store;

const RUNS: usize = 200;
const GOAL: Duration = Duration::from_millis(20);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    prism_testkit::on_sqlite(|store| bench("sqlite", store)).await;
    prism_testkit::on_postgres(|store| bench("postgres", store)).await;
}

async fn bench(backend: &str, store: Arc<dyn Store>) {
    let now = SystemClock.now();
    let user = User {
        id: UserId::new(),
        email: Email::parse("bench@example.com").unwrap(),
        name: "Bench".into(),
        password_hash: "x".into(),
        is_admin: false,
        created_at: now,
        updated_at: now,
    };
    let user = store.insert_user(&user).await.unwrap();
    let ws = Workspace {
        id: WorkspaceId::new(),
        name: "Big".into(),
        created_by: Some(user.id),
        created_at: now,
        updated_at: now,
    };
    store.insert_workspace(&ws, user.id).await.unwrap();
    let collection = |parent, name: String| Collection {
        id: CollectionId::new(),
        workspace_id: ws.id,
        parent_id: parent,
        name,
        position: 0,
        created_by: None,
        created_at: now,
        updated_at: now,
    };
    let mut requests = 0;
    for c in 0..10 {
        let top = store
            .insert_collection(&collection(None, format!("Service {c}")))
            .await
            .unwrap();
        for f in 0..5 {
            let folder = store
                .insert_collection(&collection(Some(top.id), format!("Area {f} <&>")))
                .await
                .unwrap();
            for r in 0..20 {
                let method = ["GET", "POST", "DELETE"][r % 3];
                let spec: RequestSpec = serde_json::from_value(serde_json::json!({
                    "protocol": "rest", "method": method,
                    "url": format!("https://api.example.com/service{c}/area{f}/item{r}"),
                    "headers": [{"key": "Authorization", "value": "Bearer {{token}}"}],
                }))
                .unwrap();
                store
                    .insert_request(&SavedRequest {
                        id: RequestId::new(),
                        workspace_id: ws.id,
                        collection_id: folder.id,
                        name: format!("Request {c}.{f}.{r} \"quoted\""),
                        position: 0,
                        spec,
                        created_by: None,
                        created_at: now,
                        updated_at: now,
                    })
                    .await
                    .unwrap();
                requests += 1;
            }
        }
    }
    // Rendering never runs requests, but the state needs a data plane.
    let spool = tempfile::tempdir().unwrap();
    let (recorder, _task) = Recorder::start(
        store.clone(),
        RecorderConfig::new(spool.path().to_path_buf()),
    );
    let intercept = InterceptState::new(
        store.clone(),
        recorder,
        HttpExecutor::new(ExecutorConfig::default()),
        GrpcExecutor::new(GrpcConfig::default()),
        InterceptSettings::default(),
        Arc::new(SystemClock),
    );
    let state = SoulState::new(
        store.clone(),
        Arc::new(SystemClock),
        SoulSettings::default(),
        "bench-secret-key",
        DataPlane::InProcess(intercept),
    );
    let caller = Caller {
        user,
        via: Via::ApiToken {
            token_id: ApiTokenId::new(),
        },
    };
    let wanted = ws.id.to_string();
    let mut bytes = 0;
    for _ in 0..10 {
        bytes = prism_soul::ui::pages::render_workbench(&state, &caller, Some(&wanted))
            .await
            .unwrap()
            .len();
    }
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let page = prism_soul::ui::pages::render_workbench(&state, &caller, Some(&wanted))
            .await
            .unwrap();
        samples.push(started.elapsed());
        assert!(page.contains("Request 9.4.19"));
    }
    samples.sort();
    let median = samples[RUNS / 2];
    let p95 = samples[RUNS * 95 / 100];
    println!(
        "{backend}: workbench render with {requests} requests ({bytes} bytes of HTML): median {:.2} ms, \
         p95 {:.2} ms over {RUNS} runs; median / 20 ms goal = {:.3}, p95 / goal = {:.3}",
        median.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3,
        median.as_secs_f64() / GOAL.as_secs_f64(),
        p95.as_secs_f64() / GOAL.as_secs_f64(),
    );
}
