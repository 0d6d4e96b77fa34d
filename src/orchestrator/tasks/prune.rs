//! The prune task: `restic prune`, giving back the space of forgotten snapshots, with
//! `--max-unused` from the repo's prune policy. restic's output is the operation's log.

use crate::proto::{Op, OperationPrune};
use crate::restic::MaxUnused;

use super::{Ctx, FollowUp, TaskError};

pub fn run(ctx: &mut Ctx) -> Result<Option<FollowUp>, TaskError> {
    let policy = ctx.repo.prune_policy.as_ref();
    let max_unused = match (
        policy.and_then(|p| p.max_unused_percent),
        policy.and_then(|p| p.max_unused_bytes),
    ) {
        (Some(percent), _) => Some(MaxUnused::Percent(percent)),
        (None, Some(bytes)) if bytes >= 0 => Some(MaxUnused::Bytes(bytes as u64)),
        _ => None,
    };
    ctx.op.op = Op::Prune(OperationPrune {
        output_logref: ctx.op.logref.clone(),
    });
    ctx.with_lock_retry(|ctx| {
        let (restic, log) = (&ctx.shared.restic, &mut ctx.log);
        restic.prune(&ctx.target, max_unused, ctx.stop, log)
    })?;
    Ok(None)
}
