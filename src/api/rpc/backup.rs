//! `Backup` (CONTRACT §3.1): queue a backup at interactive priority and block until the
//! backup operation has ended.

use serde::Deserialize;

use crate::App;
use crate::api::connect::{ApiError, Code};
use crate::orchestrator::OrchestratorError;
use crate::proto::{self, OperationStatus};

#[derive(Deserialize, Default)]
#[serde(default)]
struct BackupRequest {
    value: Option<String>,
    #[serde(alias = "dry_run", rename = "dryRun")]
    dry_run: Option<bool>,
}

pub fn backup(app: &App, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: BackupRequest = proto::decode(body)?;
    let plan = req.value.unwrap_or_default();
    if plan.is_empty() {
        return Err(ApiError::invalid(
            "value: give the id of the plan to back up, e.g. {\"value\": \"my-plan\"}",
        ));
    }
    let (_, done) = app
        .orchestrator
        .queue_backup(&plan, req.dry_run.unwrap_or(false))
        .map_err(|e| match e {
            OrchestratorError::PlanNotFound(_) => ApiError::not_found(e.to_string()),
            OrchestratorError::ShuttingDown => ApiError::new(Code::Canceled, e.to_string()),
            OrchestratorError::OpLog(_) => ApiError::internal(e.to_string()),
            other => ApiError::new(Code::Unknown, other.to_string()),
        })?;
    let op = done.wait();
    match op.status {
        OperationStatus::Success | OperationStatus::Warning => Ok(b"{}".to_vec()),
        OperationStatus::UserCancelled | OperationStatus::SystemCancelled => Err(ApiError::new(
            Code::Canceled,
            format!(
                "backup operation {} was cancelled: {}",
                op.id, op.display_message
            ),
        )),
        _ => Err(ApiError::new(Code::Unknown, op.display_message)),
    }
}
