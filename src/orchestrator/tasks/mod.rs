//! The work the worker does, one file per kind of task, and what they share: turning a
//! config repo into what restic needs, learning a repo's guid, and clearing stale locks.

pub mod backup;

use std::io::Write;
use std::sync::Arc;

use crate::config;
use crate::proto::Operation;
use crate::restic::{self, StopHandle};

use super::Shared;

/// Work to do after the waiting caller has been answered (snapshot indexing, retention).
pub type FollowUp = Box<dyn FnOnce() + Send>;

/// How a task ended: its final operation (`None`: read it back from the oplog) and any
/// follow-up work.
#[derive(Default)]
pub struct Ended {
    pub op: Option<Operation>,
    pub follow_up: Option<FollowUp>,
}

/// The repository as restic needs it.
pub fn restic_repo(repo: &config::Repo) -> restic::Repo {
    let prefix = repo.command_prefix.as_ref();
    restic::Repo {
        uri: repo.uri.clone(),
        password: repo.password.clone(),
        env: repo.env.clone(),
        flags: repo.flags.clone(),
        io_nice: prefix.and_then(|p| match p.io_nice {
            config::IoNice::Default => None,
            config::IoNice::BestEffortLow => Some(restic::IoNice::Low),
            config::IoNice::BestEffortHigh => Some(restic::IoNice::High),
            config::IoNice::Idle => Some(restic::IoNice::Idle),
        }),
        cpu_nice: prefix.and_then(|p| match p.cpu_nice {
            config::CpuNice::Default => None,
            config::CpuNice::High => Some(restic::CpuNice::High),
            config::CpuNice::Low => Some(restic::CpuNice::Low),
        }),
    }
}

/// The repo's guid: from the config, else from `restic cat config` (after `restic init`
/// when the repo has `autoInitialize` and does not exist yet), written back to the
/// config file.
pub fn ensure_guid(
    shared: &Shared,
    repo: &config::Repo,
    stop: &StopHandle,
    log: &mut dyn Write,
) -> Result<String, String> {
    if !repo.guid.is_empty() {
        return Ok(repo.guid.clone());
    }
    let target = restic_repo(repo);
    let cfg = match shared.restic.cat_config(&target, stop) {
        Ok(cfg) => cfg,
        Err(e) if e.is_repo_not_found() && repo.auto_initialize => {
            info!(
                "repo {:?}: no repository there yet; initialising it",
                repo.id
            );
            shared
                .restic
                .init(&target, stop, log)
                .map_err(|e| format!("repo {:?}: restic init failed: {e}", repo.id))?;
            shared
                .restic
                .cat_config(&target, stop)
                .map_err(|e| format!("repo {:?}: {e}", repo.id))?
        }
        Err(e) => return Err(format!("repo {:?}: {e}", repo.id)),
    };
    if let Err(e) = shared.config.set_repo_guid(&repo.id, &cfg.id) {
        warn!(
            "repo {:?}: could not write its guid into the config file: {e}",
            repo.id
        );
    }
    Ok(cfg.id)
}

/// Runs `restic unlock` (which removes only stale locks) when the repo asks for it
/// (`autoUnlock`) or an earlier run left it possibly locked. A failure is logged in the
/// operation's log and the task goes on: restic will say if the repo is still locked.
pub fn unlock_if_needed(
    shared: &Shared,
    repo: &config::Repo,
    stop: &StopHandle,
    log: &mut dyn Write,
) {
    let needed = shared.take_needs_unlock(&repo.id);
    if !(needed || repo.auto_unlock) {
        return;
    }
    if let Err(e) = shared.restic.unlock(&restic_repo(repo), stop, log) {
        let _ = writeln!(log, "[footrest: restic unlock failed: {e}]");
        warn!("repo {:?}: restic unlock failed: {e}", repo.id);
    }
}

/// Removes stale locks at once, after restic was stopped or killed mid-operation.
pub fn unlock_after_stop(shared: &Shared, repo: &config::Repo, log: &mut dyn Write) {
    if let Err(e) = shared
        .restic
        .unlock(&restic_repo(repo), &StopHandle::new(), log)
    {
        warn!(
            "repo {:?}: restic unlock after stopping restic failed: {e}; it is retried before the next task",
            repo.id
        );
        shared.mark_needs_unlock(&repo.id);
    }
}

/// At start-up: learn the guid of every repo that has none yet, so a fresh starter
/// config gets its repository initialised before the first call. Failures are only
/// logged; the repo is tried again when a task uses it.
pub fn prepare_repos(shared: &Arc<Shared>, stop: &StopHandle) {
    let config = shared.config.get();
    for repo in config.repos.iter().filter(|r| r.guid.is_empty()) {
        if shared.stopping() || stop.is_stopped() {
            return;
        }
        match ensure_guid(shared, repo, stop, &mut std::io::sink()) {
            Ok(guid) => info!("repo {:?}: repository id {guid}", repo.id),
            Err(e) => warn!("{e}"),
        }
    }
}
