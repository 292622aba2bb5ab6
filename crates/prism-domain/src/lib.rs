//! PRISM's domain: the types every layer shares and the rules that need no IO.
//!
//! Nothing in this crate touches the network, the disk or the clock directly; time comes in through
//! [`time::Clock`] so that callers (and tests) decide what "now" is.

pub mod analytics;
pub mod collection;
pub mod egress;
pub mod environment;
pub mod execution;
pub mod id;
pub mod request;
pub mod role;
pub mod session;
pub mod time;
pub mod trace;
pub mod trace_context;
pub mod user;
pub mod workflow;
pub mod workspace;

pub use id::{
    ApiTokenId, CollectionId, EnvironmentId, ExecutionId, IngestKeyId, RequestId, UserId,
    WorkflowId, WorkflowRunId, WorkflowRunStepId, WorkflowStepId, WorkspaceId,
};
pub use role::Role;
pub use time::{Clock, SystemClock, Timestamp};
