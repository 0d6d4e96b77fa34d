//! The stats task: `restic stats --json --mode raw-data`, recorded as `operationStats`.

use crate::proto::{Op, OperationStats, RepoStats};

use super::{Ctx, FollowUp, TaskError};

pub fn run(ctx: &mut Ctx) -> Result<Option<FollowUp>, TaskError> {
    let stats = ctx.with_lock_retry(|ctx| ctx.shared.restic.stats(&ctx.target, ctx.stop))?;
    ctx.op.op = Op::Stats(OperationStats {
        stats: Some(RepoStats {
            total_size: stats.total_size,
            total_uncompressed_size: stats.total_uncompressed_size,
            total_blob_count: stats.total_blob_count,
            snapshot_count: stats.snapshot_count,
            compression_ratio: stats.compression_ratio,
        }),
    });
    Ok(None)
}
