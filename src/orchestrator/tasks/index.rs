//! The index task: reads the repository's snapshot list and brings the history in line
//! with it: a snapshot footrest has no record of (made by another machine, or from the
//! command line) gets an `operationIndexSnapshot`; a recorded snapshot that is gone
//! (forgotten elsewhere) is marked `forgot`.

use std::collections::HashSet;

use crate::proto::{Op, OpSelector, Operation, OperationIndexSnapshot, OperationStatus};
use crate::restic::SnapshotFilter;

use super::forget::to_proto;
use super::{Ctx, FollowUp, TaskError};

pub fn run(ctx: &mut Ctx) -> Result<Option<FollowUp>, TaskError> {
    let snapshots = ctx.with_lock_retry(|ctx| {
        ctx.shared
            .restic
            .snapshots(&ctx.target, &SnapshotFilter::default(), ctx.stop)
    })?;
    let selector = OpSelector {
        repo_id: Some(ctx.repo.id.clone()),
        ..Default::default()
    };
    let known = ctx
        .shared
        .oplog
        .query(&selector, None)
        .map_err(|e| TaskError::Other(e.to_string()))?;
    let mut indexed: HashSet<String> = HashSet::new();
    let mut live_records: Vec<String> = Vec::new();
    for op in &known {
        if let Op::IndexSnapshot(ix) = &op.op
            && let Some(s) = &ix.snapshot
        {
            indexed.insert(s.id.clone());
            if !ix.forgot {
                live_records.push(s.id.clone());
            }
        }
    }
    let present: HashSet<&str> = snapshots.iter().map(|s| s.id.as_str()).collect();
    let gone: Vec<String> = live_records
        .into_iter()
        .filter(|id| !present.contains(id.as_str()))
        .collect();
    let now = ctx.shared.clock.now_ms();
    let mut added = 0;
    for snap in snapshots.into_iter().filter(|s| !indexed.contains(&s.id)) {
        let tag = |prefix: &str| {
            snap.tags
                .iter()
                .find_map(|t| t.strip_prefix(prefix))
                .map(str::to_string)
        };
        let mut op = Operation::new(Op::IndexSnapshot(OperationIndexSnapshot {
            snapshot: None,
            forgot: false,
        }));
        op.repo_id = ctx.repo.id.clone();
        op.repo_guid = ctx.op.repo_guid.clone();
        op.plan_id = tag("plan:").unwrap_or_default();
        op.instance_id = tag("created-by:").unwrap_or_else(|| ctx.config.instance.clone());
        op.snapshot_id = snap.id.clone();
        op.status = OperationStatus::Success;
        op.unix_time_start_ms = snap.time_ms;
        op.unix_time_end_ms = now;
        op.op = Op::IndexSnapshot(OperationIndexSnapshot {
            snapshot: Some(to_proto(snap)),
            forgot: false,
        });
        ctx.shared
            .oplog
            .add(&mut op)
            .map_err(|e| TaskError::Other(e.to_string()))?;
        added += 1;
    }
    if !gone.is_empty() {
        ctx.shared
            .oplog
            .mark_forgotten(&ctx.repo.id, &gone)
            .map_err(|e| TaskError::Other(e.to_string()))?;
    }
    ctx.op.display_message = format!(
        "{added} new snapshot(s) recorded, {} no longer in the repository",
        gone.len()
    );
    Ok(None)
}
