//! A control plane (with an in-process data plane) served on a loopback port over a test
//! database, users to call it as, and the role-matrix harness.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use prism_domain::session::{
    ApiToken, SecretKind, generate_secret, hash_secret, secret_display_prefix,
};
use prism_domain::user::{Email, User};
use prism_domain::workspace::{Membership, Workspace};
use prism_domain::{ApiTokenId, Clock, Role, SystemClock, UserId, WorkspaceId};
use prism_grpc::{GrpcConfig, GrpcExecutor};
use prism_intercept::executor::{ExecutorConfig, HttpExecutor};
use prism_intercept::recorder::{Recorder, RecorderConfig, RecorderTask};
use prism_intercept::{InterceptSettings, InterceptState};
use prism_soul::dataplane::DataPlane;
use prism_soul::{SoulSettings, SoulState, router};
use prism_store::Store;
use reqwest::Method;
use serde_json::Value;

pub const SECRET_KEY: &str = "test-secret-key";

/// A served control plane.
pub struct Soul {
    pub addr: SocketAddr,
    pub state: SoulState,
    pub store: Arc<dyn Store>,
    pub intercept: InterceptState,
    recorder: Option<RecorderTask>,
    _spool: tempfile::TempDir,
}

impl Soul {
    pub async fn start(store: Arc<dyn Store>) -> Self {
        Self::start_with(store, SoulSettings::default()).await
    }

    pub async fn start_with(store: Arc<dyn Store>, settings: SoulSettings) -> Self {
        let (intercept, task, spool) = data_plane(&store, InterceptSettings::default());
        let data_plane = DataPlane::InProcess(intercept.clone());
        Self::serve(store, settings, data_plane, (intercept, task, spool)).await
    }

    /// Serves a control plane sending to `data_plane`; `local` is this test's own data plane
    /// (in-process, or the one kept for recording checks).
    pub async fn serve(
        store: Arc<dyn Store>,
        settings: SoulSettings,
        data_plane: DataPlane,
        local: (InterceptState, RecorderTask, tempfile::TempDir),
    ) -> Self {
        let (intercept, task, spool) = local;
        let state = SoulState::new(
            store.clone(),
            Arc::new(SystemClock),
            settings,
            SECRET_KEY,
            data_plane,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            addr,
            state,
            store,
            intercept,
            recorder: Some(task),
            _spool: spool,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Writes every queued execution record to the database.
    pub async fn flush(&mut self) {
        if let Some(task) = self.recorder.take() {
            task.shutdown().await;
        }
    }

    /// A new account (created in the store) with an API token.
    pub async fn user(&self, email: &str) -> TestUser {
        let now = SystemClock.now();
        let user = User {
            id: UserId::new(),
            email: Email::parse(email).unwrap(),
            name: email.split('@').next().unwrap().to_owned(),
            password_hash: "not-a-real-hash".into(),
            is_admin: false,
            created_at: now,
            updated_at: now,
        };
        let user = self.store.insert_user(&user).await.unwrap();
        let secret = generate_secret(SecretKind::ApiToken);
        let token = ApiToken {
            id: ApiTokenId::new(),
            user_id: user.id,
            name: "tests".into(),
            prefix: secret_display_prefix(&secret),
            token_hash: hash_secret(&secret),
            created_at: now,
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
        };
        self.store.insert_api_token(&token).await.unwrap();
        TestUser {
            id: user.id,
            email: email.to_owned(),
            token: secret,
            base: format!("http://{}", self.addr),
            client: client(),
        }
    }

    /// A workspace owned (admin) by `owner`, created in the store.
    pub async fn workspace(&self, owner: &TestUser, name: &str) -> WorkspaceId {
        let now = SystemClock.now();
        let ws = Workspace {
            id: WorkspaceId::new(),
            name: name.into(),
            created_by: Some(owner.id),
            created_at: now,
            updated_at: now,
        };
        self.store.insert_workspace(&ws, owner.id).await.unwrap();
        ws.id
    }

    pub async fn add_member(&self, ws: WorkspaceId, user: &TestUser, role: Role) {
        self.store
            .insert_membership(&Membership {
                workspace_id: ws,
                user_id: user.id,
                role,
                joined_at: SystemClock.now(),
            })
            .await
            .unwrap();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Someone calling the API with an API token.
#[derive(Clone)]
pub struct TestUser {
    pub id: UserId,
    pub email: String,
    pub token: String,
    pub base: String,
    pub client: reqwest::Client,
}

/// A status and a JSON body (`Value::Null` when the body is empty or not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.body))
            .to_owned()
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "{}", self.body);
        self
    }
}

impl TestUser {
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, body }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }
}

/// One workspace with a member of each role and an outsider — the role matrix's cast.
pub struct Cast {
    pub soul: Soul,
    pub workspace: WorkspaceId,
    pub admin: TestUser,
    pub editor: TestUser,
    pub viewer: TestUser,
    pub outsider: TestUser,
}

/// A call for the role matrix: method, path and body, built fresh for every role.
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>, body: Option<Value>) -> Self {
        Self {
            method,
            path: path.into(),
            body,
        }
    }
}

impl Cast {
    pub async fn new(store: Arc<dyn Store>) -> Self {
        let soul = Soul::start(store).await;
        let admin = soul.user("admin@example.test").await;
        let editor = soul.user("editor@example.test").await;
        let viewer = soul.user("viewer@example.test").await;
        let outsider = soul.user("outsider@example.test").await;
        let workspace = soul.workspace(&admin, "Team").await;
        soul.add_member(workspace, &editor, Role::Editor).await;
        soul.add_member(workspace, &viewer, Role::Viewer).await;
        // The outsider has a workspace of their own, so "not a member" is not "no workspaces".
        soul.workspace(&outsider, "Elsewhere").await;
        Self {
            soul,
            workspace,
            admin,
            editor,
            viewer,
            outsider,
        }
    }

    pub fn ws(&self) -> String {
        self.workspace.to_string()
    }

    /// Runs one endpoint as admin, editor, viewer and outsider — `make` builds a fresh call (with
    /// fresh resources) for each — and returns the statuses in that order.
    pub async fn statuses(&self, make: impl AsyncFn(&Cast) -> Call) -> [u16; 4] {
        let mut out = [0u16; 4];
        for (i, who) in [&self.admin, &self.editor, &self.viewer, &self.outsider]
            .into_iter()
            .enumerate()
        {
            let call = make(self).await;
            out[i] = who.call(call.method, &call.path, call.body).await.status;
        }
        out
    }
}

/// Collects role-matrix rows and reports every mismatch at once.
#[derive(Default)]
pub struct Matrix {
    wrong: Vec<String>,
}

impl Matrix {
    /// One endpoint: expected and actual statuses as `[admin, editor, viewer, outsider]`.
    pub fn row(&mut self, name: &str, expected: [u16; 4], got: [u16; 4]) {
        if got != expected {
            self.wrong.push(format!(
                "{name}: expected [admin, editor, viewer, outsider] = {expected:?}, got {got:?}"
            ));
        }
    }

    #[track_caller]
    pub fn assert(self) {
        assert!(
            self.wrong.is_empty(),
            "role matrix mismatches:\n{}",
            self.wrong.join("\n")
        );
    }
}

/// Runs `body` with a [`Cast`] on `store`.
pub async fn with_cast(store: Arc<dyn Store>, body: impl AsyncFnOnce(&mut Cast)) {
    let mut cast = Cast::new(store).await;
    body(&mut cast).await;
    cast.soul.flush().await;
}

pub fn now() -> prism_domain::Timestamp {
    SystemClock.now()
}

// ---------------------------------------------------------------------------------------------
// Sending requests: split planes, saved content, and an upstream to send to.

use sending::data_plane;
pub use sending::{Echo, echoed, rest_spec};

mod sending {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use prism_domain::collection::Collection;
    use prism_domain::environment::{Environment, Variable};
    use prism_domain::request::{Body, HttpSettings, RequestSpec, RestSpec, SavedRequest};
    use prism_domain::{CollectionId, EnvironmentId, RequestId};
    use prism_intercept::api::auth::service_credential;
    use prism_soul::dataplane::RemoteDataPlane;

    use super::*;

    /// A data plane (intercept) over `store` with its own recorder, not yet served.
    pub(crate) fn data_plane(
        store: &Arc<dyn Store>,
        settings: InterceptSettings,
    ) -> (InterceptState, RecorderTask, tempfile::TempDir) {
        let spool = tempfile::tempdir().unwrap();
        let (recorder, task) = Recorder::start(
            store.clone(),
            RecorderConfig::new(spool.path().to_path_buf()),
        );
        let intercept = InterceptState::new(
            store.clone(),
            recorder,
            HttpExecutor::new(ExecutorConfig::default()),
            GrpcExecutor::new(GrpcConfig::default()),
            settings,
            Arc::new(SystemClock),
        );
        (intercept, task, spool)
    }

    impl Soul {
        /// A control plane whose data plane is a separate intercept server on loopback (the split
        /// deployment). The data plane accepts the service credential derived from `data_plane_key`;
        /// the control plane presents the one derived from `soul_key`.
        pub async fn start_remote(
            store: Arc<dyn Store>,
            data_plane_key: &str,
            soul_key: &str,
        ) -> Self {
            let settings = InterceptSettings {
                service_credential_hash: Some(hash_secret(&service_credential(data_plane_key))),
                ..InterceptSettings::default()
            };
            let (intercept, task, spool) = data_plane(&store, settings);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let app = prism_intercept::router(intercept.clone())
                .into_make_service_with_connect_info::<SocketAddr>();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            let mut soul = Self::start_remote_at(store, &base, soul_key).await;
            soul.intercept = intercept;
            soul.recorder = Some(task);
            soul._spool = spool;
            soul
        }

        /// A control plane that sends to a data plane at `base`, which need not be listening.
        pub async fn start_remote_at(store: Arc<dyn Store>, base: &str, soul_key: &str) -> Self {
            let local = data_plane(&store, InterceptSettings::default());
            let remote = RemoteDataPlane::new(base, service_credential(soul_key));
            Soul::serve(
                store,
                SoulSettings::default(),
                DataPlane::Remote(remote),
                local,
            )
            .await
        }

        /// A saved request in a fresh collection of `ws`, created in the store.
        pub async fn saved_request(&self, ws: WorkspaceId, spec: RequestSpec) -> RequestId {
            let now = SystemClock.now();
            let collection = self
                .store
                .insert_collection(&Collection {
                    id: CollectionId::new(),
                    workspace_id: ws,
                    parent_id: None,
                    name: "Saved".into(),
                    position: 0,
                    created_by: None,
                    created_at: now,
                    updated_at: now,
                })
                .await
                .unwrap();
            let saved = self
                .store
                .insert_request(&SavedRequest {
                    id: RequestId::new(),
                    workspace_id: ws,
                    collection_id: collection.id,
                    name: "Request".into(),
                    position: 0,
                    spec,
                    created_by: None,
                    created_at: now,
                    updated_at: now,
                })
                .await
                .unwrap();
            saved.id
        }

        /// An environment of `ws` created in the store: `(name, value, secret)` rows, all enabled;
        /// secret values are encrypted with the control plane's key, as the API stores them.
        pub async fn environment(
            &self,
            ws: WorkspaceId,
            rows: &[(&str, &str, bool)],
        ) -> EnvironmentId {
            let variables = rows
                .iter()
                .map(|(name, value, secret)| Variable {
                    name: (*name).into(),
                    value: if *secret {
                        self.state.secrets.encrypt(value)
                    } else {
                        (*value).into()
                    },
                    secret: *secret,
                    enabled: true,
                })
                .collect();
            self.environment_with(ws, variables).await
        }

        /// An environment of `ws` with exactly these (already stored-form) variables.
        pub async fn environment_with(
            &self,
            ws: WorkspaceId,
            variables: Vec<Variable>,
        ) -> EnvironmentId {
            let now = SystemClock.now();
            let environment = Environment {
                id: EnvironmentId::new(),
                workspace_id: ws,
                name: format!("env {}", EnvironmentId::new()),
                variables,
                created_at: now,
                updated_at: now,
            };
            self.store.insert_environment(&environment).await.unwrap();
            environment.id
        }
    }

    /// An HTTP server on loopback that answers every request with what it received, as JSON
    /// `{method, path, query, headers: {name: value}, body}`, and counts the requests.
    pub struct Echo {
        /// `http://127.0.0.1:PORT`
        pub url: String,
        pub hits: Arc<AtomicUsize>,
    }

    impl Echo {
        pub async fn start() -> Self {
            let hits = Arc::new(AtomicUsize::new(0));
            let counter = hits.clone();
            let app = axum::Router::new().fallback(
                move |method: axum::http::Method,
                      uri: axum::http::Uri,
                      headers: axum::http::HeaderMap,
                      body: axum::body::Bytes| {
                    let counter = counter.clone();
                    async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let headers: serde_json::Map<String, Value> = headers
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.as_str().to_owned(),
                                    Value::String(v.to_str().unwrap_or_default().to_owned()),
                                )
                            })
                            .collect();
                        axum::Json(serde_json::json!({
                            "method": method.as_str(),
                            "path": uri.path(),
                            "query": uri.query().unwrap_or_default(),
                            "headers": headers,
                            "body": String::from_utf8_lossy(&body),
                        }))
                    }
                },
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            Self { url, hits }
        }

        pub fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    /// What the echo server saw, from a data plane answer (its `body` is the echo's JSON text).
    pub fn echoed(answer: &Answer) -> Value {
        let text = answer.body["body"]
            .as_str()
            .unwrap_or_else(|| panic!("no body in {}", answer.body));
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not an echo ({e}): {text}"))
    }

    /// A REST spec.
    pub fn rest_spec(method: &str, url: &str) -> RequestSpec {
        RequestSpec::Rest(RestSpec {
            method: method.into(),
            url: url.into(),
            params: vec![],
            headers: vec![],
            body: Body::None,
            settings: HttpSettings::default(),
        })
    }
}
