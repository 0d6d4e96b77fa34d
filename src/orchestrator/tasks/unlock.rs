//! The unlock task: `restic unlock`, which removes only stale locks (their process is
//! gone, or they are older than 30 minutes), recorded as a run command.

use crate::proto::{Op, OperationRunCommand};

use super::{Ctx, FollowUp, TaskError};

pub fn run(ctx: &mut Ctx) -> Result<Option<FollowUp>, TaskError> {
    ctx.op.op = Op::RunCommand(OperationRunCommand {
        command: "restic unlock".into(),
        output_logref: ctx.op.logref.clone(),
        output_size_bytes: 0,
    });
    let (restic, log) = (&ctx.shared.restic, &mut ctx.log);
    restic.unlock(&ctx.target, ctx.stop, log)?;
    Ok(None)
}
