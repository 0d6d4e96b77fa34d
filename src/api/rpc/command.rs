//! `RunCommand` `{repoId, command}` → `{"value": "<operation id>"}`: runs a restic
//! subcommand a user typed against a repo, at interactive priority on the worker, and
//! answers once it has ended. What a command may be is decided by
//! `orchestrator::tasks::run_command`; a refused one is `400 invalid_argument` naming
//! the field, an unknown repo `404`.
//!
//! A command that ran answers `200` with its operation id whatever its exit status, as
//! Backrest's clients expect: the id is how a client finds the output (the operation's
//! `outputLogref`, read with GetLogs), and the operation says how it went (ERROR with
//! the end of the output as its message, or USER_CANCELLED / SYSTEM_CANCELLED). Only a
//! command that could not be queued is an error here.

use serde::{Deserialize, Serialize};

use crate::App;
use crate::api::connect::ApiError;
use crate::orchestrator::tasks::run_command::ResticCommand;
use crate::proto::{self, json::int64};

use super::{encode, orchestrator_error};

/// Backrest's `RunCommandRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RunCommandRequest {
    #[serde(alias = "repo_id")]
    repo_id: String,
    command: String,
}

/// Backrest's `types.Int64Value`.
#[derive(Debug, Serialize)]
struct Int64Value {
    #[serde(serialize_with = "int64::serialize")]
    value: i64,
}

pub fn run_command(app: &App, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: RunCommandRequest = proto::decode(body)?;
    if req.repo_id.is_empty() {
        return Err(ApiError::invalid(
            "repoId: give the id of a repo from the config",
        ));
    }
    let command =
        ResticCommand::parse(&req.command).map_err(|e| ApiError::invalid(e.to_string()))?;
    let (id, done) = app
        .orchestrator
        .queue_run_command(&req.repo_id, command)
        .map_err(orchestrator_error)?;
    let op = done.wait();
    debug!(
        "command in repo {:?} ended {} (operation {id})",
        req.repo_id,
        op.status.name()
    );
    encode(&Int64Value { value: id })
}
