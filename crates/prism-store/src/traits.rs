//! The storage trait family. Verbs: `get_x` (error if missing), `find_x` (`Option`), `list_x`,
//! `insert_x`, `update_x`, `delete_x`. Every implementation must pass the conformance suite.

use async_trait::async_trait;
use prism_domain::collection::Collection;
use prism_domain::environment::{Environment, Variable};
use prism_domain::execution::{Execution, ExecutionDetail};
use prism_domain::request::{Protocol, RequestSpec, SavedRequest};
use prism_domain::session::{ApiToken, IngestKey, Session};
use prism_domain::trace::{Span, TraceId};
use prism_domain::user::{Email, User};
use prism_domain::workflow::{Workflow, WorkflowRun, WorkflowRunStep, WorkflowStep};
use prism_domain::workspace::{Member, Membership, Workspace};
use prism_domain::{
    ApiTokenId, CollectionId, EnvironmentId, ExecutionId, IngestKeyId, RequestId, Role, Timestamp,
    UserId, WorkflowId, WorkflowRunId, WorkspaceId,
};

use crate::{Backend, Result};

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new account. The first account on an instance is always stored as instance admin
    /// (decided atomically, so two simultaneous first sign-ups cannot both become admin); the stored
    /// user is returned. Fails with [`crate::Conflict::EmailTaken`].
    async fn insert_user(&self, user: &User) -> Result<User>;
    /// Stores the account only if the instance has none yet (returning it, as admin); `None`, with
    /// nothing stored, when an account exists. Decided atomically like [`Self::insert_user`], so
    /// with sign-up closed two simultaneous first sign-ups cannot both get in.
    async fn insert_first_user(&self, user: &User) -> Result<Option<User>>;
    async fn get_user(&self, id: UserId) -> Result<User>;
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>>;
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn count_users(&self) -> Result<i64>;
    async fn update_user_name(&self, id: UserId, name: &str, now: Timestamp) -> Result<()>;
    async fn update_user_password(
        &self,
        id: UserId,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<()>;
    async fn update_user_admin(&self, id: UserId, is_admin: bool, now: Timestamp) -> Result<()>;
}

#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    /// Creates a workspace with `owner` as its first admin, atomically.
    async fn insert_workspace(&self, workspace: &Workspace, owner: UserId) -> Result<()>;
    async fn get_workspace(&self, id: WorkspaceId) -> Result<Workspace>;
    /// The workspaces a user belongs to with their role there, by name.
    async fn list_workspaces_for_user(&self, user: UserId) -> Result<Vec<(Workspace, Role)>>;
    async fn update_workspace_name(
        &self,
        id: WorkspaceId,
        name: &str,
        now: Timestamp,
    ) -> Result<()>;
    /// Deletes the workspace and everything in it.
    async fn delete_workspace(&self, id: WorkspaceId) -> Result<()>;

    /// Fails with [`crate::Conflict::AlreadyMember`].
    async fn insert_membership(&self, membership: &Membership) -> Result<()>;
    async fn find_membership(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<Option<Membership>>;
    async fn list_members(&self, workspace: WorkspaceId) -> Result<Vec<Member>>;
    /// Fails with [`crate::Conflict::LastAdmin`] when it would leave the workspace without an admin.
    async fn update_membership_role(
        &self,
        workspace: WorkspaceId,
        user: UserId,
        role: Role,
    ) -> Result<()>;
    /// Fails with [`crate::Conflict::LastAdmin`] when it would leave the workspace without an admin.
    async fn delete_membership(&self, workspace: WorkspaceId, user: UserId) -> Result<()>;
}

#[async_trait]
pub trait CollectionStore: Send + Sync {
    /// Stores a collection (or folder, when `parent_id` is set) after its last sibling; the stored
    /// row (with its position) is returned. The parent must be in the same workspace.
    async fn insert_collection(&self, collection: &Collection) -> Result<Collection>;
    async fn get_collection(&self, id: CollectionId) -> Result<Collection>;
    /// All collections and folders of a workspace, ordered by parent then position.
    async fn list_collections(&self, workspace: WorkspaceId) -> Result<Vec<Collection>>;
    async fn update_collection_name(
        &self,
        id: CollectionId,
        name: &str,
        now: Timestamp,
    ) -> Result<()>;
    /// Moves under `parent` (`None`: top level) at `position` (`None`: last), renumbering siblings.
    /// Fails with [`crate::Conflict::Cycle`] or [`crate::Conflict::OtherWorkspace`].
    async fn move_collection(
        &self,
        id: CollectionId,
        parent: Option<CollectionId>,
        position: Option<i64>,
        now: Timestamp,
    ) -> Result<Collection>;
    /// Deletes the collection, its folders and their requests.
    async fn delete_collection(&self, id: CollectionId) -> Result<()>;
    /// Copies a collection or folder with everything under it — folders and requests, under new
    /// ids — in one transaction. The copy is named `name` (its folders and requests keep theirs),
    /// is created by `actor` at `now`, and sits right after the original among its siblings.
    async fn duplicate_collection(
        &self,
        id: CollectionId,
        name: &str,
        now: Timestamp,
        actor: UserId,
    ) -> Result<Collection>;
}

#[async_trait]
pub trait RequestStore: Send + Sync {
    /// Stores a request after the last one of its collection; returns it with its position.
    async fn insert_request(&self, request: &SavedRequest) -> Result<SavedRequest>;
    async fn get_request(&self, id: RequestId) -> Result<SavedRequest>;
    /// The requests directly in a collection or folder, by position.
    async fn list_requests(&self, collection: CollectionId) -> Result<Vec<SavedRequest>>;
    /// Every request of a workspace, ordered by collection then position.
    async fn list_workspace_requests(&self, workspace: WorkspaceId) -> Result<Vec<SavedRequest>>;
    async fn update_request(
        &self,
        id: RequestId,
        name: &str,
        spec: &RequestSpec,
        now: Timestamp,
    ) -> Result<SavedRequest>;
    /// Moves to `collection` at `position` (`None`: last), renumbering both sibling lists.
    async fn move_request(
        &self,
        id: RequestId,
        collection: CollectionId,
        position: Option<i64>,
        now: Timestamp,
    ) -> Result<SavedRequest>;
    /// Fails with [`crate::Conflict::InUse`] while a workflow step runs it.
    async fn delete_request(&self, id: RequestId) -> Result<()>;
    /// Copies a request under a new id named `name`, created by `actor` at `now`, right after the
    /// original in its collection (one transaction).
    async fn duplicate_request(
        &self,
        id: RequestId,
        name: &str,
        now: Timestamp,
        actor: UserId,
    ) -> Result<SavedRequest>;
}

#[async_trait]
pub trait EnvironmentStore: Send + Sync {
    async fn insert_environment(&self, environment: &Environment) -> Result<()>;
    async fn get_environment(&self, id: EnvironmentId) -> Result<Environment>;
    async fn list_environments(&self, workspace: WorkspaceId) -> Result<Vec<Environment>>;
    async fn update_environment(
        &self,
        id: EnvironmentId,
        name: &str,
        variables: &[Variable],
        now: Timestamp,
    ) -> Result<Environment>;
    async fn delete_environment(&self, id: EnvironmentId) -> Result<()>;
}

/// Which executions to list. Results are newest first; `before` continues a previous page.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub request_id: Option<RequestId>,
    pub protocol: Option<Protocol>,
    /// Inclusive bounds on `status_code` (an HTTP class such as 4xx is `400..=499`).
    pub status_min: Option<i32>,
    pub status_max: Option<i32>,
    pub failed: Option<bool>,
    /// Inclusive lower and exclusive upper bound on `started_at`.
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub before: Option<ExecutionCursor>,
    /// At most this many rows (clamped to 1..=1000).
    pub limit: u32,
}

/// The position after which the next page of executions starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionCursor {
    pub started_at: Timestamp,
    pub id: ExecutionId,
}

#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Stores a batch in one transaction. Idempotent: an id already stored is skipped, so a retried
    /// batch never duplicates. Returns how many rows were new.
    async fn insert_executions(&self, executions: &[Execution]) -> Result<u64>;
    /// Stores request/response snapshots; idempotent like [`Self::insert_executions`].
    async fn insert_execution_details(&self, details: &[ExecutionDetail]) -> Result<u64>;
    /// Stores what the recorder captured — executions, their snapshots and spans — as
    /// [`Self::insert_executions`], [`Self::insert_execution_details`] and
    /// [`SpanStore::insert_spans`] would, idempotent like them, in one transaction when every row
    /// is new (the common case).
    async fn insert_recorded(
        &self,
        executions: &[Execution],
        details: &[ExecutionDetail],
        spans: &[Span],
    ) -> Result<()>;
    async fn get_execution(&self, id: ExecutionId) -> Result<Execution>;
    async fn find_execution_detail(&self, id: ExecutionId) -> Result<Option<ExecutionDetail>>;
    async fn list_executions(
        &self,
        workspace: WorkspaceId,
        filter: &ExecutionFilter,
    ) -> Result<Vec<Execution>>;
    async fn list_trace_executions(&self, trace_id: TraceId) -> Result<Vec<Execution>>;
}

#[async_trait]
pub trait SpanStore: Send + Sync {
    /// Stores a batch in one transaction. A span whose `(trace_id, span_id)` is already stored is
    /// skipped (exporters retry); returns how many were new.
    async fn insert_spans(&self, spans: &[Span]) -> Result<u64>;
    /// Every span of a trace, by start time.
    async fn list_trace_spans(&self, trace_id: TraceId) -> Result<Vec<Span>>;
    /// Spans of one service that started in `[from, to)`, newest first.
    async fn list_service_spans(
        &self,
        service: &str,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<Span>>;
    /// The workspaces a trace belongs to: those of its executions and of spans reported into one.
    async fn list_trace_workspaces(&self, trace_id: TraceId) -> Result<Vec<WorkspaceId>>;
    /// The traces of a workspace matching `filter`, newest first (by start, then trace id).
    async fn search_traces(
        &self,
        workspace: WorkspaceId,
        filter: &crate::TraceFilter,
    ) -> Result<Vec<crate::TraceSummary>>;
    /// Announces that spans of these traces were committed (see [`crate::feed`]). Best effort:
    /// subscribers also resync when told they may have missed something.
    async fn notify_spans(&self, traces: &[TraceId]) -> Result<()>;
    /// Subscribes to announcements of stored spans, from this process and (on PostgreSQL) others.
    fn subscribe_spans(&self) -> crate::SpanSubscription;
}

#[async_trait]
pub trait WorkflowStore: Send + Sync {
    async fn insert_workflow(&self, workflow: &Workflow) -> Result<()>;
    async fn get_workflow(&self, id: WorkflowId) -> Result<Workflow>;
    async fn list_workflows(&self, workspace: WorkspaceId) -> Result<Vec<Workflow>>;
    async fn update_workflow(
        &self,
        id: WorkflowId,
        name: &str,
        description: Option<&str>,
        now: Timestamp,
    ) -> Result<()>;
    async fn delete_workflow(&self, id: WorkflowId) -> Result<()>;
    /// Replaces all steps of a workflow atomically. Every step's request must be in the workflow's
    /// workspace ([`crate::Conflict::OtherWorkspace`] otherwise); positions are renumbered 0.. in the
    /// order given.
    async fn replace_workflow_steps(
        &self,
        workflow: WorkflowId,
        steps: &[WorkflowStep],
    ) -> Result<Vec<WorkflowStep>>;
    async fn list_workflow_steps(&self, workflow: WorkflowId) -> Result<Vec<WorkflowStep>>;

    async fn insert_workflow_run(&self, run: &WorkflowRun) -> Result<()>;
    async fn get_workflow_run(&self, id: WorkflowRunId) -> Result<WorkflowRun>;
    /// Runs of a workflow, newest first.
    async fn list_workflow_runs(
        &self,
        workflow: WorkflowId,
        limit: u32,
    ) -> Result<Vec<WorkflowRun>>;
    /// Writes status, start, end and error of a run.
    async fn update_workflow_run(&self, run: &WorkflowRun) -> Result<()>;
    /// Marks every run still pending or running as failed with `reason` (after a crash or restart,
    /// so no run stays "running" forever). Returns how many were changed.
    async fn fail_unfinished_runs(&self, reason: &str, now: Timestamp) -> Result<u64>;
    async fn insert_run_step(&self, step: &WorkflowRunStep) -> Result<()>;
    async fn update_run_step(&self, step: &WorkflowRunStep) -> Result<()>;
    async fn list_run_steps(&self, run: WorkflowRunId) -> Result<Vec<WorkflowRunStep>>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &Session) -> Result<()>;
    /// The session with this token hash if it has not expired at `now`.
    async fn find_session(&self, token_hash: &[u8], now: Timestamp) -> Result<Option<Session>>;
    async fn touch_session(
        &self,
        token_hash: &[u8],
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()>;
    async fn delete_session(&self, token_hash: &[u8]) -> Result<()>;
    async fn delete_user_sessions(&self, user: UserId) -> Result<u64>;
    /// A password change, in one transaction: stores the new hash, ends every session of the user
    /// and starts `replacement` (the browser that made the change stays signed in). Returns how
    /// many sessions ended; a missing user is `NotFound` and changes nothing.
    async fn change_password(
        &self,
        user: UserId,
        password_hash: &str,
        now: Timestamp,
        replacement: Option<&Session>,
    ) -> Result<u64>;
    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64>;
}

#[async_trait]
pub trait ApiTokenStore: Send + Sync {
    async fn insert_api_token(&self, token: &ApiToken) -> Result<()>;
    /// The token with this hash if it is neither revoked nor expired at `now`.
    async fn find_active_api_token(
        &self,
        token_hash: &[u8],
        now: Timestamp,
    ) -> Result<Option<ApiToken>>;
    /// A user's tokens, newest first, revoked ones included.
    async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>>;
    /// Revokes one of `user`'s tokens; another user's token is `NotFound`.
    async fn revoke_api_token(&self, user: UserId, id: ApiTokenId, now: Timestamp) -> Result<()>;
    async fn touch_api_token(&self, id: ApiTokenId, now: Timestamp) -> Result<()>;
}

/// Everything PRISM stores. `Arc<dyn Store>` is what the planes hold.
/// Workspace ingest keys for OpenTelemetry exporters, looked up by the hash of the secret.
#[async_trait]
pub trait IngestKeyStore: Send + Sync {
    async fn insert_ingest_key(&self, key: &IngestKey) -> Result<()>;
    /// The key with this hash unless it is revoked.
    async fn find_active_ingest_key(&self, key_hash: &[u8]) -> Result<Option<IngestKey>>;
    async fn list_ingest_keys(&self, workspace: WorkspaceId) -> Result<Vec<IngestKey>>;
    /// Revoking twice keeps the first revocation time; a key of another workspace is not found.
    async fn revoke_ingest_key(
        &self,
        workspace: WorkspaceId,
        id: IngestKeyId,
        now: Timestamp,
    ) -> Result<()>;
    async fn touch_ingest_key(&self, id: IngestKeyId, now: Timestamp) -> Result<()>;
}

/// Database connections: open and in use, open and idle, and the most the pools may open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

#[async_trait]
pub trait Store:
    UserStore
    + WorkspaceStore
    + CollectionStore
    + RequestStore
    + EnvironmentStore
    + ExecutionStore
    + SpanStore
    + WorkflowStore
    + SessionStore
    + ApiTokenStore
    + IngestKeyStore
    + crate::AnalyticsStore
    + std::fmt::Debug
{
    fn backend(&self) -> Backend;
    /// Connections of the store's pools right now (for metrics and alerts).
    fn pool_stats(&self) -> PoolStats;
    /// Succeeds when the database answers a trivial query.
    async fn ping(&self) -> Result<()>;
    /// The schema version recorded in the database.
    async fn schema_version(&self) -> Result<i64>;
    /// Waits for in-flight statements and closes every connection.
    async fn close(&self);
}
