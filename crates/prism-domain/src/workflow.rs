//! Workflows: ordered steps that run saved requests, and the record of each run.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{
    ExecutionId, RequestId, Timestamp, UserId, WorkflowId, WorkflowRunId, WorkflowRunStepId,
    WorkflowStepId, WorkspaceId,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workflow {
    pub id: WorkflowId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub description: Option<String>,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One step. `position` is unique within a workflow (upstream allowed ties, which made order undefined).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowStep {
    pub id: WorkflowStepId,
    pub workflow_id: WorkflowId,
    pub position: i64,
    pub name: String,
    /// The saved request this step runs (any protocol; a real foreign key).
    pub request_id: RequestId,
    pub retry_count: i32,
    pub retry_backoff_ms: i64,
    pub timeout_ms: Option<i64>,
    /// An expression deciding whether the step runs (syntax defined by the workflow engine).
    pub condition: Option<String>,
    /// Values to extract from the response for later steps, and assertions on it (engine-defined JSON).
    pub extract: serde_json::Value,
    pub assertions: serde_json::Value,
}

/// Status of a run or of one step within a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Pending,
    Running,
    Success,
    Failed,
    Skipped,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Success,
        RunStatus::Failed,
        RunStatus::Skipped,
        RunStatus::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub const fn is_final(self) -> bool {
        !matches!(self, RunStatus::Pending | RunStatus::Running)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown run status {0:?}")]
pub struct UnknownRunStatus(pub String);

impl FromStr for RunStatus {
    type Err = UnknownRunStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRunStatus(s.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRun {
    pub id: WorkflowRunId,
    pub workflow_id: WorkflowId,
    pub workspace_id: WorkspaceId,
    pub status: RunStatus,
    /// What started it: `manual`, `api`, `schedule`, `cli`…
    pub trigger: String,
    pub triggered_by: Option<UserId>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRunStep {
    pub id: WorkflowRunStepId,
    pub run_id: WorkflowRunId,
    /// `None` once the step definition has been deleted; the record of the run stays.
    pub step_id: Option<WorkflowStepId>,
    pub position: i64,
    pub status: RunStatus,
    pub attempts: i32,
    pub execution_id: Option<ExecutionId>,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub error: Option<String>,
    /// Values extracted for later steps and assertion results.
    pub outputs: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_know_finality() {
        for status in RunStatus::ALL {
            assert_eq!(status.as_str().parse::<RunStatus>(), Ok(status));
        }
        assert!(!RunStatus::Running.is_final());
        assert!(RunStatus::Skipped.is_final());
    }
}
