//! How the control plane runs requests: it never runs them itself but hands them to the data
//! plane — in this process under `prism up`, over HTTP with the service credential when the planes
//! are split (`prism soul` + `prism intercept`). Either way the execution is recorded by the data
//! plane and its JSON answer (with `trace_id` and `execution_id`) comes back unchanged.

use std::time::Duration;

use axum::body::to_bytes;
use axum::http::StatusCode;
use prism_domain::execution::ExecutionSource;
use prism_domain::request::{GrpcSpec, RequestSpec};
use prism_domain::{RequestId, UserId, WorkspaceId};
use prism_intercept::InterceptState;
use prism_intercept::api::auth::{USER_HEADER, WORKSPACE_HEADER};
use prism_intercept::capture::Origin;
use serde_json::Value;

use crate::api::error::ApiError;

/// The largest answer accepted from the data plane (bodies are capped there; this is a backstop).
const MAX_ANSWER: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
pub enum DataPlane {
    /// `prism up`: call the data plane's handlers directly.
    InProcess(InterceptState),
    /// Split planes: `POST {base}/run` with the service credential.
    Remote(RemoteDataPlane),
}

#[derive(Debug, Clone)]
pub struct RemoteDataPlane {
    /// e.g. `http://intercept:7000` (no trailing slash).
    pub base: String,
    /// The service credential both planes derive from the shared secret key.
    pub credential: String,
    pub client: reqwest::Client,
}

impl RemoteDataPlane {
    pub fn new(base: &str, credential: String) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // Longer than any request's own timeout (the data plane enforces those).
            .timeout(Duration::from_secs(15 * 60))
            .build()
            .expect("a plain HTTP client builds");
        Self {
            base: base.trim_end_matches('/').to_owned(),
            credential,
            client,
        }
    }
}

/// What to run and on whose behalf. The caller has already been authorized for `workspace`.
#[derive(Debug, Clone)]
pub struct Dispatch {
    pub workspace: WorkspaceId,
    pub user: UserId,
    pub request_id: Option<RequestId>,
    /// Fully resolved: no `{{variables}}` left.
    pub spec: RequestSpec,
}

impl DataPlane {
    /// Runs the request and returns the data plane's JSON answer. Input the data plane refuses
    /// (bad URL, bad proto…) is an error with the data plane's code; what the target does is
    /// part of the answer, never an error.
    pub async fn run(&self, dispatch: Dispatch) -> Result<Value, ApiError> {
        match self {
            DataPlane::InProcess(state) => {
                let origin = Origin {
                    workspace_id: dispatch.workspace,
                    request_id: dispatch.request_id,
                    source: ExecutionSource::Api,
                    created_by: Some(dispatch.user),
                };
                in_process_answer(
                    prism_intercept::api::run::run_in_process(state, &origin, dispatch.spec).await,
                )
                .await
            }
            DataPlane::Remote(remote) => {
                let mut body = serde_json::to_value(&dispatch.spec)
                    .map_err(|e| data_plane_failed(format!("could not encode the request: {e}")))?;
                if let Some(object) = body.as_object_mut() {
                    object.insert("workspace_id".into(), dispatch.workspace.to_string().into());
                    if let Some(id) = dispatch.request_id {
                        object.insert("request_id".into(), id.to_string().into());
                    }
                }
                remote
                    .post("/run", dispatch.workspace, dispatch.user, &body)
                    .await
            }
        }
    }

    /// The services (and methods) the gRPC server `spec` names offers, by reflection or from its
    /// pasted files: the data plane's `{services: [...]}`. The data plane contacts the server
    /// (under its outbound policy) and records nothing; `spec`'s service, method and message are
    /// ignored. The caller has already been authorized for `workspace`.
    pub async fn grpc_services(
        &self,
        workspace: WorkspaceId,
        user: UserId,
        spec: &GrpcSpec,
    ) -> Result<Value, ApiError> {
        match self {
            DataPlane::InProcess(state) => {
                in_process_answer(
                    prism_intercept::api::run::grpc_services_in_process(state, spec).await,
                )
                .await
            }
            DataPlane::Remote(remote) => {
                let body = serde_json::to_value(spec)
                    .map_err(|e| data_plane_failed(format!("could not encode the request: {e}")))?;
                remote.post("/grpc/services", workspace, user, &body).await
            }
        }
    }
}

impl RemoteDataPlane {
    /// `POST {base}{path}` with the service credential on behalf of `user` in `workspace`.
    async fn post(
        &self,
        path: &str,
        workspace: WorkspaceId,
        user: UserId,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.credential)
            .header(WORKSPACE_HEADER, workspace.to_string())
            .header(USER_HEADER, user.to_string())
            .json(body)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, base = %self.base, "data plane unreachable");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "data_plane_unavailable",
                    "the data plane (intercept) could not be reached; nothing was run",
                )
                .with_retry_after(2)
            })?;
        let status =
            StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| data_plane_failed(format!("could not read the answer: {e}")))?;
        answer(status, &bytes)
    }
}

/// The answer of a data-plane handler called in this process, as [`answer`] reads it.
async fn in_process_answer(
    response: Result<axum::response::Response, prism_intercept::api::ApiError>,
) -> Result<Value, ApiError> {
    let response = match response {
        Ok(response) => response,
        Err(err) => {
            let mut out = ApiError::new(err.status, err.code, err.message);
            out.retry_after = err.retry_after.map(u64::from);
            return Err(out);
        }
    };
    let status = response.status();
    let bytes = to_bytes(response.into_body(), MAX_ANSWER)
        .await
        .map_err(|e| data_plane_failed(format!("could not read the answer: {e}")))?;
    answer(status, &bytes)
}

fn data_plane_failed(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, "data_plane_failed", message)
}

/// The data plane's answer: the execution on success, its error (same status and code) otherwise.
fn answer(status: StatusCode, bytes: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        data_plane_failed(format!("the data plane answered non-JSON ({status}): {e}"))
    })?;
    if status.is_success() {
        return Ok(value);
    }
    let code = value["error"]["code"]
        .as_str()
        .unwrap_or("data_plane_failed")
        .to_owned();
    let message = value["error"]["message"]
        .as_str()
        .unwrap_or("the data plane refused the request")
        .to_owned();
    // The data plane's 401 would mean the shared secret keys differ: an operator problem.
    let status = if status == StatusCode::UNAUTHORIZED {
        tracing::error!(
            "the data plane refused the service credential: do both planes share PRISM_SECRET_KEY?"
        );
        StatusCode::BAD_GATEWAY
    } else {
        status
    };
    Err(ApiError::new(status, code, message))
}
