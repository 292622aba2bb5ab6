//! A data plane served on a loopback port over a test database, with a user, a workspace and an
//! API token to call it with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use prism_domain::session::{
    ApiToken, SecretKind, generate_secret, hash_secret, secret_display_prefix,
};
use prism_domain::user::{Email, User};
use prism_domain::workspace::Workspace;
use prism_domain::{ApiTokenId, Clock, Role, SystemClock, UserId, WorkspaceId};
use prism_grpc::{GrpcConfig, GrpcExecutor};
use prism_intercept::executor::{ExecutorConfig, HttpExecutor};
use prism_intercept::recorder::{Recorder, RecorderConfig, RecorderTask};
use prism_intercept::{InterceptSettings, InterceptState, router};
use prism_store::Store;

pub struct DataPlane {
    pub addr: SocketAddr,
    pub recorder: Option<RecorderTask>,
    /// Kept so the spool directory lives as long as the data plane.
    _spool: tempfile::TempDir,
    pub state: InterceptState,
}

impl DataPlane {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Flushes every queued record to the database (shutting the recorder down).
    pub async fn flush(&mut self) {
        if let Some(task) = self.recorder.take() {
            task.shutdown().await;
        }
    }
}

pub fn recorder_config(dir: PathBuf) -> RecorderConfig {
    RecorderConfig::new(dir)
}

pub async fn serve_with(
    store: Arc<dyn Store>,
    executor: ExecutorConfig,
    settings: InterceptSettings,
    recorder: impl FnOnce(PathBuf) -> RecorderConfig,
) -> DataPlane {
    let spool = tempfile::tempdir().unwrap();
    let (rec, task) = Recorder::start(store.clone(), recorder(spool.path().to_path_buf()));
    let state = InterceptState::new(
        store,
        rec,
        HttpExecutor::new(executor.clone()),
        GrpcExecutor::new(GrpcConfig {
            egress: executor.egress.clone(),
            ..GrpcConfig::default()
        }),
        settings,
        Arc::new(SystemClock),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    DataPlane {
        addr,
        recorder: Some(task),
        _spool: spool,
        state,
    }
}

pub async fn serve(store: Arc<dyn Store>) -> DataPlane {
    serve_with(
        store,
        ExecutorConfig::default(),
        InterceptSettings::default(),
        recorder_config,
    )
    .await
}

/// A user with a workspace (admin) and an API token.
pub struct Account {
    pub user: User,
    pub workspace: WorkspaceId,
    pub token: String,
    pub token_id: ApiTokenId,
}

pub async fn account(store: &Arc<dyn Store>, email: &str) -> Account {
    let now = SystemClock.now();
    let user = User {
        id: UserId::new(),
        email: Email::parse(email).unwrap(),
        name: "Test".into(),
        password_hash: "not-a-real-hash".into(),
        is_admin: false,
        created_at: now,
        updated_at: now,
    };
    let user = store.insert_user(&user).await.unwrap();
    let workspace = workspace(store, user.id, "Team").await;
    let (token, token_id) = api_token(store, user.id).await;
    Account {
        user,
        workspace,
        token,
        token_id,
    }
}

pub async fn workspace(store: &Arc<dyn Store>, owner: UserId, name: &str) -> WorkspaceId {
    let now = SystemClock.now();
    let ws = Workspace {
        id: WorkspaceId::new(),
        name: name.into(),
        created_by: Some(owner),
        created_at: now,
        updated_at: now,
    };
    store.insert_workspace(&ws, owner).await.unwrap();
    ws.id
}

pub async fn api_token(store: &Arc<dyn Store>, user: UserId) -> (String, ApiTokenId) {
    let secret = generate_secret(SecretKind::ApiToken);
    let token = ApiToken {
        id: ApiTokenId::new(),
        user_id: user,
        name: "tests".into(),
        prefix: secret_display_prefix(&secret),
        token_hash: hash_secret(&secret),
        created_at: SystemClock.now(),
        last_used_at: None,
        expires_at: None,
        revoked_at: None,
    };
    store.insert_api_token(&token).await.unwrap();
    (secret, token.id)
}

pub async fn add_member(store: &Arc<dyn Store>, ws: WorkspaceId, user: UserId, role: Role) {
    store
        .insert_membership(&prism_domain::workspace::Membership {
            workspace_id: ws,
            user_id: user,
            role,
            joined_at: SystemClock.now(),
        })
        .await
        .unwrap();
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// The executions recorded in a workspace (newest first, at most 100).
pub async fn recorded(
    store: &Arc<dyn Store>,
    workspace: WorkspaceId,
) -> Vec<prism_domain::execution::Execution> {
    store
        .list_executions(
            workspace,
            &prism_store::ExecutionFilter {
                limit: 100,
                ..prism_store::ExecutionFilter::default()
            },
        )
        .await
        .unwrap()
}
