//! The check task: `restic check`, reading a subset of the data when the repo's check
//! policy asks for it (`readDataSubsetPercent`), the structure only otherwise. restic's
//! output is the operation's log; a repository with errors fails the operation.

use crate::proto::{Op, OperationCheck};

use super::{Ctx, FollowUp, TaskError};

pub fn run(ctx: &mut Ctx) -> Result<Option<FollowUp>, TaskError> {
    let subset = ctx
        .repo
        .check_policy
        .as_ref()
        .filter(|p| p.structure_only != Some(true))
        .and_then(|p| p.read_data_subset_percent)
        .filter(|p| *p > 0.0);
    ctx.op.op = Op::Check(OperationCheck {
        output_logref: ctx.op.logref.clone(),
    });
    ctx.with_lock_retry(|ctx| {
        let (restic, log) = (&ctx.shared.restic, &mut ctx.log);
        restic.check(&ctx.target, subset, ctx.stop, log)
    })?;
    Ok(None)
}
