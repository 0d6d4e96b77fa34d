//! The RPC handlers, one small file per group: decode the request, call the core,
//! encode the response. Errors become [`ApiError`]s here; `api::connect` turns them into
//! HTTP. The server-streaming RPCs are routed by [`streams::find`].

mod auth;
mod backup;
pub mod browse;
mod command;
mod config;
mod dashboard;
mod operations;
mod repo;
pub mod streams;

use crate::App;
use crate::api::connect::{ApiError, Code, Service};
use crate::orchestrator::OrchestratorError;

/// A unary handler: request body in, response body out.
type Unary = fn(&App, &[u8]) -> Result<Vec<u8>, ApiError>;

/// The handler of `service/method`, `None` for a method footrest does not serve.
pub fn find(service: Service, method: &str) -> Option<Unary> {
    match (service, method) {
        (Service::Backrest, "Backup") => Some(backup::backup),
        (Service::Backrest, "GetOperations") => Some(operations::get_operations),
        (Service::Backrest, "Cancel") => Some(operations::cancel),
        (Service::Backrest, "ClearHistory") => Some(operations::clear_history),
        (Service::Backrest, "DoRepoTask") => Some(repo::do_repo_task),
        (Service::Backrest, "Forget") => Some(repo::forget),
        (Service::Backrest, "ListSnapshots") => Some(repo::list_snapshots),
        (Service::Backrest, "GetConfig") => Some(config::get_config),
        (Service::Backrest, "GetSummaryDashboard") => Some(dashboard::get_summary_dashboard),
        (Service::Backrest, "RunCommand") => Some(command::run_command),
        (Service::Authentication, "Login") => Some(auth::login),
        (Service::Authentication, "HashPassword") => Some(auth::hash_password),
        (Service::Backrest, "Restore") => Some(browse::restore),
        (Service::Backrest, "ListSnapshotFiles") => Some(browse::list_snapshot_files),
        (Service::Backrest, "PathAutocomplete") => Some(browse::path_autocomplete),
        (Service::Backrest, "GetDownloadURL") => Some(browse::get_download_url),
        _ => None,
    }
}

/// A response message as JSON.
fn encode<T: serde::Serialize>(message: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(message).map_err(|e| ApiError::internal(format!("encoding the answer: {e}")))
}

/// The Connect code for an orchestrator failure.
fn orchestrator_error(e: OrchestratorError) -> ApiError {
    let code = match &e {
        OrchestratorError::PlanNotFound(_)
        | OrchestratorError::NoSuchRepo(_)
        | OrchestratorError::OperationNotFound(_) => Code::NotFound,
        OrchestratorError::RepoNotFound { .. } | OrchestratorError::AlreadyEnded { .. } => {
            Code::FailedPrecondition
        }
        OrchestratorError::ShuttingDown => Code::Unavailable,
        OrchestratorError::OpLog(_) | OrchestratorError::Thread(_) => Code::Internal,
    };
    ApiError::new(code, e.to_string())
}
