//! Repository RPCs: `DoRepoTask` and `Forget` queue work and answer with its operation
//! id at once; `ListSnapshots` answers from the snapshot index in the operation log (no
//! request thread runs restic).

use crate::App;
use crate::api::connect::ApiError;
use crate::orchestrator::RepoTask;
use crate::proto::{
    self, DoRepoTaskRequest, ForgetRequest, ListSnapshotsRequest, ListSnapshotsResponse, Op,
    OpSelector, OperationIdResponse, RepoTaskName,
};

use super::{encode, orchestrator_error};

pub fn do_repo_task(app: &App, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: DoRepoTaskRequest = proto::decode(body)?;
    require_repo(app, &req.repo_id)?;
    let task = match req.task {
        RepoTaskName::None => {
            return Err(ApiError::invalid(
                "task: name the task, one of TASK_INDEX_SNAPSHOTS, TASK_PRUNE, TASK_CHECK, \
                 TASK_STATS, TASK_UNLOCK, TASK_FORGET",
            ));
        }
        RepoTaskName::IndexSnapshots => RepoTask::IndexSnapshots,
        RepoTaskName::Prune => RepoTask::Prune,
        RepoTaskName::Check => RepoTask::Check,
        RepoTaskName::Stats => RepoTask::Stats,
        RepoTaskName::Unlock => RepoTask::Unlock,
        RepoTaskName::Forget => RepoTask::Forget,
    };
    let operation_id = app
        .orchestrator
        .queue_repo_task(&req.repo_id, task)
        .map_err(orchestrator_error)?;
    encode(&OperationIdResponse { operation_id })
}

pub fn forget(app: &App, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: ForgetRequest = proto::decode(body)?;
    require_repo(app, &req.repo_id)?;
    if req.plan_id.is_empty() {
        return Err(ApiError::invalid(
            "planId: give the plan whose snapshots to forget",
        ));
    }
    let snapshot = (!req.snapshot_id.is_empty()).then_some(req.snapshot_id.as_str());
    let operation_id = app
        .orchestrator
        .queue_forget(&req.repo_id, &req.plan_id, snapshot)
        .map_err(orchestrator_error)?;
    encode(&OperationIdResponse { operation_id })
}

pub fn list_snapshots(app: &App, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: ListSnapshotsRequest = proto::decode(body)?;
    require_repo(app, &req.repo_id)?;
    let config = app.config.get();
    if !req.plan_id.is_empty() && config.plan(&req.plan_id).is_none() {
        return Err(ApiError::not_found(format!(
            "no plan with id {:?}",
            req.plan_id
        )));
    }
    let selector = OpSelector {
        repo_id: Some(req.repo_id.clone()),
        ..Default::default()
    };
    let plan_tags = [
        format!("plan:{}", req.plan_id),
        format!("created-by:{}", config.instance),
    ];
    let mut snapshots: Vec<_> = app
        .oplog
        .query(&selector, None)?
        .into_iter()
        .filter_map(|op| match op.op {
            Op::IndexSnapshot(ix) if !ix.forgot => ix.snapshot,
            _ => None,
        })
        .filter(|s| req.plan_id.is_empty() || plan_tags.iter().all(|t| s.tags.contains(t)))
        .collect();
    snapshots.sort_by(|a, b| a.unix_time_ms.cmp(&b.unix_time_ms).then(a.id.cmp(&b.id)));
    snapshots.dedup_by(|a, b| a.id == b.id);
    encode(&ListSnapshotsResponse { snapshots })
}

fn require_repo(app: &App, repo_id: &str) -> Result<(), ApiError> {
    if repo_id.is_empty() {
        return Err(ApiError::invalid(
            "repoId: give the id of a repo from the config",
        ));
    }
    if app.config.get().repo(repo_id).is_none() {
        return Err(ApiError::not_found(format!(
            "no repo with id {repo_id:?}; the repos are listed in the config's \"repos\""
        )));
    }
    Ok(())
}
