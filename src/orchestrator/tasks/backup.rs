//! The backup task: runs `restic backup` for one plan, keeps the operation's progress at
//! most once a second, records the summary with the snapshot's full id, and leaves an
//! `operationIndexSnapshot` in the same flow as follow-up work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, Plan, Repo};
use crate::logs::LogWriter;
use crate::orchestrator::{Shared, StopReason, now_ms};
use crate::proto::{
    BackupProgressEntry, BackupProgressError, BackupProgressStatusEntry, BackupProgressSummary, Op,
    Operation, OperationIndexSnapshot, OperationStatus, ResticSnapshot, SnapshotSummary,
};
use crate::restic::{
    BackupEvent, BackupOutcome, BackupRequest, ResticError, Snapshot, SnapshotFilter, StopHandle,
};

use super::{Ended, ensure_guid, restic_repo, unlock_after_stop, unlock_if_needed};

/// Per-file errors kept in the operation (CONTRACT §3.3).
const MAX_ERRORS: usize = 20;
/// Progress is written to the oplog at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub fn run(shared: &Arc<Shared>, op_id: i64, plan_id: &str, stop: &StopHandle) -> Ended {
    let mut op = match shared.oplog.get(op_id) {
        Ok(Some(op)) => op,
        Ok(None) => {
            error!("backup operation {op_id} vanished from the operation log before it ran");
            return Ended::default();
        }
        Err(e) => {
            error!("could not read backup operation {op_id}: {e}");
            return Ended::default();
        }
    };
    let config = shared.config.get();
    op.status = OperationStatus::InProgress;
    op.unix_time_start_ms = now_ms();
    op.logref = format!("t-{}", op.id);
    shared.save(&mut op);
    let mut log = shared.logs.create(&op.logref).unwrap_or_else(|e| {
        error!("could not create the log of operation {}: {e}", op.id);
        op.logref.clear();
        LogWriter::discard()
    });
    let Some(plan) = config.plan(plan_id) else {
        let message =
            format!("plan {plan_id:?} was removed from the config before its backup started");
        return fail(shared, op, log, message);
    };
    let Some(repo) = config.repo(&plan.repo) else {
        let message = format!(
            "plan {plan_id:?} uses repo {:?}, which is not defined",
            plan.repo
        );
        return fail(shared, op, log, message);
    };
    match ensure_guid(shared, repo, stop, &mut log) {
        Ok(guid) => op.repo_guid = guid,
        Err(e) => return fail(shared, op, log, e),
    }
    unlock_if_needed(shared, repo, stop, &mut log);
    let snapshot = match backup(shared, &config, plan, repo, &mut op, stop, &mut log) {
        Ok((outcome, snapshot)) => {
            record_success(&mut op, outcome, snapshot.as_ref());
            snapshot
        }
        Err(ResticError::Stopped) => {
            let (status, message) = match shared.stop_reason(op.id) {
                Some(StopReason::User) => (
                    OperationStatus::UserCancelled,
                    "the backup was cancelled; restic was interrupted",
                ),
                _ => (
                    OperationStatus::SystemCancelled,
                    "footrest stopped while the backup ran; restic was interrupted",
                ),
            };
            op.status = status;
            op.display_message = message.to_string();
            unlock_after_stop(shared, repo, &mut log);
            None
        }
        Err(e) => {
            op.status = OperationStatus::Error;
            op.display_message = e.to_string();
            None
        }
    };
    finish(shared, &mut op, log);
    let follow_up = snapshot.map(|snap| {
        let shared = Arc::clone(shared);
        let backup = op.clone();
        Box::new(move || index_snapshot(&shared, &backup, snap)) as super::FollowUp
    });
    Ended {
        op: Some(op),
        follow_up,
    }
}

/// Runs restic; on success also looks up the new snapshot (restic 0.14 prints only the
/// short id in its summary), so the operation can carry the full id.
fn backup(
    shared: &Shared,
    config: &Config,
    plan: &Plan,
    repo: &Repo,
    op: &mut Operation,
    stop: &StopHandle,
    log: &mut LogWriter,
) -> Result<(BackupOutcome, Option<Snapshot>), ResticError> {
    let target = restic_repo(repo);
    let dry_run = matches!(&op.op, Op::Backup(b) if b.dry_run);
    let parent = match shared.oplog.last_snapshot(&repo.id, &plan.id) {
        Ok(parent) => parent,
        Err(e) => {
            warn!(
                "plan {:?}: could not look up the last snapshot: {e}",
                plan.id
            );
            None
        }
    };
    let mut request = BackupRequest {
        paths: plan.paths.iter().map(Into::into).collect(),
        excludes: plan.excludes.clone(),
        iexcludes: plan.iexcludes.clone(),
        tags: vec![
            format!("plan:{}", plan.id),
            format!("created-by:{}", config.instance),
        ],
        parent,
        extra_flags: plan.backup_flags.clone(),
        dry_run,
    };
    let mut attempt = |request: &BackupRequest, op: &mut Operation| {
        let mut last_write: Option<Instant> = None;
        shared
            .restic
            .backup(&target, request, stop, log, &mut |event| {
                on_event(shared, op, &mut last_write, event)
            })
    };
    let outcome = match attempt(&request, op) {
        // The parent snapshot from the history may have been removed behind footrest's
        // back (a forget from the command line): back up again without it.
        Err(ResticError::Failed { message, .. })
            if request
                .parent
                .as_deref()
                .is_some_and(|p| message.contains(p)) =>
        {
            warn!(
                "plan {:?}: parent snapshot {} is gone from the repository; backing up without it",
                plan.id,
                request.parent.as_deref().unwrap_or_default()
            );
            request.parent = None;
            attempt(&request, op)?
        }
        other => other?,
    };
    if dry_run {
        return Ok((outcome, None));
    }
    let short = outcome
        .summary
        .as_ref()
        .map(|s| s.snapshot_id.clone())
        .unwrap_or_default();
    if short.is_empty() {
        return Ok((outcome, None));
    }
    let filter = SnapshotFilter {
        ids: vec![short.clone()],
        ..Default::default()
    };
    match shared
        .restic
        .snapshots(&target, &filter, &StopHandle::new())
    {
        Ok(mut found) if found.len() == 1 => Ok((outcome, found.pop())),
        Ok(found) => {
            warn!(
                "plan {:?}: snapshot {short} not found after the backup ({} matches)",
                plan.id,
                found.len()
            );
            Ok((outcome, None))
        }
        Err(e) => {
            warn!("plan {:?}: could not read snapshot {short}: {e}", plan.id);
            Ok((outcome, None))
        }
    }
}

fn on_event(
    shared: &Shared,
    op: &mut Operation,
    last_write: &mut Option<Instant>,
    event: BackupEvent,
) {
    let Op::Backup(backup) = &mut op.op else {
        return;
    };
    match event {
        BackupEvent::Status(s) => {
            backup.last_status = Some(BackupProgressEntry::Status(BackupProgressStatusEntry {
                percent_done: s.percent_done,
                total_files: s.total_files,
                total_bytes: s.total_bytes,
                files_done: s.files_done,
                bytes_done: s.bytes_done,
                current_file: s.current_files,
            }));
            if last_write.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                *last_write = Some(Instant::now());
                shared.save(op);
            }
        }
        BackupEvent::Error(e) => {
            if backup.errors.len() < MAX_ERRORS {
                backup.errors.push(BackupProgressError {
                    item: e.item,
                    during: e.during,
                    message: e.message,
                });
            }
        }
    }
}

fn record_success(op: &mut Operation, outcome: BackupOutcome, snapshot: Option<&Snapshot>) {
    let Op::Backup(backup) = &mut op.op else {
        return;
    };
    if let Some(s) = outcome.summary {
        let snapshot_id = snapshot.map(|s| s.id.clone()).unwrap_or(s.snapshot_id);
        op.snapshot_id = snapshot_id.clone();
        backup.last_status = Some(BackupProgressEntry::Summary(BackupProgressSummary {
            files_new: s.files_new,
            files_changed: s.files_changed,
            files_unmodified: s.files_unmodified,
            dirs_new: s.dirs_new,
            dirs_changed: s.dirs_changed,
            dirs_unmodified: s.dirs_unmodified,
            data_blobs: s.data_blobs,
            tree_blobs: s.tree_blobs,
            data_added: s.data_added,
            total_files_processed: s.total_files_processed,
            total_bytes_processed: s.total_bytes_processed,
            total_duration: s.total_duration,
            snapshot_id,
        }));
    }
    if outcome.warning {
        op.status = OperationStatus::Warning;
        op.display_message = match backup.errors.first() {
            Some(first) => format!(
                "the snapshot was written, but restic could not read some files (first: {}: {})",
                first.item, first.message
            ),
            None => "the snapshot was written, but restic could not read some files".into(),
        };
    } else {
        op.status = OperationStatus::Success;
    }
}

fn fail(shared: &Shared, mut op: Operation, log: LogWriter, message: String) -> Ended {
    op.status = OperationStatus::Error;
    op.display_message = message;
    finish(shared, &mut op, log);
    Ended {
        op: Some(op),
        follow_up: None,
    }
}

fn finish(shared: &Shared, op: &mut Operation, mut log: LogWriter) {
    if !op.display_message.is_empty() {
        log.line(&format!("[footrest: {}]", op.display_message));
    }
    if let Err(e) = log.finish() {
        warn!("the log of operation {} is incomplete: {e}", op.id);
    }
    op.unix_time_end_ms = now_ms();
    shared.finish_op(op);
    match op.status {
        OperationStatus::Error => warn!(
            "backup of plan {:?} failed (operation {}): {}",
            op.plan_id, op.id, op.display_message
        ),
        _ => info!(
            "backup of plan {:?} ended {} (operation {})",
            op.plan_id,
            op.status.name(),
            op.id
        ),
    }
}

/// Records the new snapshot as an `operationIndexSnapshot` in the backup's flow.
fn index_snapshot(shared: &Shared, backup: &Operation, snap: Snapshot) {
    let summary = match &backup.op {
        Op::Backup(b) => match &b.last_status {
            Some(BackupProgressEntry::Summary(s)) => Some(SnapshotSummary::from(s)),
            _ => None,
        },
        _ => None,
    };
    let now = now_ms();
    let snapshot_id = snap.id.clone();
    let mut op = Operation::new(Op::IndexSnapshot(OperationIndexSnapshot {
        snapshot: Some(ResticSnapshot {
            id: snap.id,
            unix_time_ms: snap.time_ms,
            hostname: snap.hostname,
            username: snap.username,
            tree: snap.tree,
            parent: snap.parent,
            paths: snap.paths,
            tags: snap.tags,
            summary,
        }),
        forgot: false,
    }));
    op.flow_id = backup.flow_id;
    op.repo_id = backup.repo_id.clone();
    op.repo_guid = backup.repo_guid.clone();
    op.plan_id = backup.plan_id.clone();
    op.instance_id = backup.instance_id.clone();
    op.snapshot_id = snapshot_id;
    op.status = OperationStatus::Success;
    op.unix_time_start_ms = now;
    op.unix_time_end_ms = now;
    if let Err(e) = shared.oplog.add(&mut op) {
        error!(
            "could not record snapshot {} of plan {:?}: {e}",
            backup.snapshot_id, backup.plan_id
        );
    }
}
