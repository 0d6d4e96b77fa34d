//! The backup task: runs `restic backup` for one plan, keeps the operation's progress at
//! most once a second, records the summary with the snapshot's full id, and leaves an
//! `operationIndexSnapshot` in the same flow as follow-up work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Plan;
use crate::orchestrator::Shared;
use crate::orchestrator::scheduler::repo_forget_scheduled;
use crate::proto::{
    BackupProgressEntry, BackupProgressError, BackupProgressStatusEntry, BackupProgressSummary, Op,
    Operation, OperationIndexSnapshot, OperationStatus, ResticSnapshot, SnapshotSummary,
};
use crate::restic::{
    BackupEvent, BackupOutcome, BackupRequest, ForgetRequest, ResticError, Snapshot,
    SnapshotFilter, StopHandle, layout,
};

use super::{Ctx, FollowUp, TaskError, forget};

/// Per-file errors kept in the operation (CONTRACT §3.3).
const MAX_ERRORS: usize = 20;
/// Progress is written to the oplog at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub fn run(ctx: &mut Ctx, plan_id: &str) -> Result<Option<FollowUp>, TaskError> {
    let Some(plan) = ctx.config.plan(plan_id) else {
        return Err(TaskError::Other(format!(
            "plan {plan_id:?} was removed from the config before its backup started"
        )));
    };
    let (outcome, snapshot) = backup(ctx, plan)?;
    // Unchanged: no file new or changed and no new folder. A folder whose own metadata
    // changed (a parent like /srv gaining an unrelated entry) does not count.
    let unchanged = outcome
        .summary
        .as_ref()
        .is_some_and(|s| s.files_new + s.files_changed + s.dirs_new == 0);
    record_success(&mut ctx.op, outcome, snapshot.as_ref().map(|s| s.id()));
    let Some(snapshot) = snapshot else {
        return Ok(None);
    };
    if plan.skip_if_unchanged && unchanged && ctx.op.status == OperationStatus::Success {
        // restic 0.14 has no --skip-if-unchanged: the snapshot it wrote is removed again.
        let req = ForgetRequest {
            ids: vec![snapshot.id().to_string()],
            ..Default::default()
        };
        ctx.with_lock_retry(|ctx| {
            let (restic, log) = (&ctx.shared.restic, &mut ctx.log);
            restic.forget(&ctx.target, &req, ctx.stop, log)
        })?;
        ctx.op.snapshot_id.clear();
        ctx.op.display_message =
            "nothing changed since the last snapshot; no snapshot kept (skipIfUnchanged)".into();
        ctx.skipped = true;
        return Ok(None);
    }
    let shared = Arc::clone(ctx.shared);
    let backup = ctx.op.clone();
    let target = ctx.target.clone();
    let retention = plan
        .retention
        .clone()
        .filter(|_| !repo_forget_scheduled(ctx.config, &plan.repo));
    Ok(Some(Box::new(move || {
        let details = match snapshot {
            NewSnapshot::Read(snap) => Some(snap),
            NewSnapshot::Id(id) => read_snapshot(&shared, &target, &id),
        };
        if let Some(snap) = details {
            index_snapshot(&shared, &backup, snap);
        }
        if let Some(policy) = retention {
            forget::queue_retention(&shared, &backup, &policy);
        }
    })))
}

/// The snapshot a backup wrote: its full id (its details are read after the caller has
/// its answer), or already read in full.
enum NewSnapshot {
    Id(String),
    Read(Snapshot),
}

impl NewSnapshot {
    fn id(&self) -> &str {
        match self {
            NewSnapshot::Id(id) => id,
            NewSnapshot::Read(s) => &s.id,
        }
    }
}

/// Reads one snapshot's details (`restic snapshots --json <id>`).
fn read_snapshot(shared: &Shared, target: &crate::restic::Repo, id: &str) -> Option<Snapshot> {
    let filter = SnapshotFilter {
        ids: vec![id.to_string()],
        ..Default::default()
    };
    match shared.restic.snapshots(target, &filter, &StopHandle::new()) {
        Ok(mut found) if found.len() == 1 => found.pop(),
        Ok(found) => {
            warn!(
                "snapshot {id} not found after the backup ({} matches)",
                found.len()
            );
            None
        }
        Err(e) => {
            warn!("could not read snapshot {id}: {e}");
            None
        }
    }
}

/// Runs restic and learns the new snapshot's full id, which restic 0.14 does not print:
/// from the folder of a local repository at no cost, else by asking restic.
fn backup(ctx: &mut Ctx, plan: &Plan) -> Result<(BackupOutcome, Option<NewSnapshot>), ResticError> {
    let shared = ctx.shared;
    let dry_run = matches!(&ctx.op.op, Op::Backup(b) if b.dry_run);
    let parent = match shared.oplog.last_snapshot(&ctx.repo.id, &plan.id) {
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
            format!("created-by:{}", ctx.config.instance),
        ],
        parent,
        extra_flags: plan.backup_flags.clone(),
        dry_run,
    };
    let attempt = |ctx: &mut Ctx, request: &BackupRequest| {
        ctx.with_lock_retry(|ctx| {
            let mut last_write: Option<Instant> = None;
            let (op, log) = (&mut ctx.op, &mut ctx.log);
            shared
                .restic
                .backup(&ctx.target, request, ctx.stop, log, &mut |event| {
                    on_event(shared, op, &mut last_write, event)
                })
        })
    };
    let outcome = match attempt(ctx, &request) {
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
            attempt(ctx, &request)?
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
    if short.len() == 64 {
        return Ok((outcome, Some(NewSnapshot::Id(short))));
    }
    if let Some(full) = layout::full_snapshot_id(&ctx.target, &short) {
        return Ok((outcome, Some(NewSnapshot::Id(full))));
    }
    let snap = read_snapshot(shared, &ctx.target, &short).map(NewSnapshot::Read);
    if snap.is_none() {
        warn!(
            "plan {:?}: the backup's snapshot {short} could not be read back; its full id is unknown",
            plan.id
        );
    }
    Ok((outcome, snap))
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

fn record_success(op: &mut Operation, outcome: BackupOutcome, full_id: Option<&str>) {
    let Op::Backup(backup) = &mut op.op else {
        return;
    };
    if let Some(s) = outcome.summary {
        let snapshot_id = full_id.map(str::to_string).unwrap_or(s.snapshot_id);
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

/// Records the new snapshot as an `operationIndexSnapshot` in the backup's flow.
fn index_snapshot(shared: &Shared, backup: &Operation, snap: Snapshot) {
    let summary = match &backup.op {
        Op::Backup(b) => match &b.last_status {
            Some(BackupProgressEntry::Summary(s)) => Some(SnapshotSummary::from(s)),
            _ => None,
        },
        _ => None,
    };
    let now = shared.clock.now_ms();
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
