//! The forget task: one snapshot by id, a plan's snapshots by its retention policy
//! (after each of its backups, in the backup's flow), or the repo's own forget policy on
//! its schedule. Only snapshots footrest's instance made are ever considered by a
//! policy. The removed snapshots are recorded in the operation and their index
//! operations marked `forgot`. Space is given back later by prune.

use std::sync::Arc;

use crate::config::RetentionPolicy;
use crate::orchestrator::queue::Priority;
use crate::orchestrator::{Shared, TaskKind};
use crate::proto::{Op, Operation, OperationForget, OperationStatus, ResticSnapshot};
use crate::restic::{ForgetRequest, Snapshot};

use super::{Ctx, FollowUp, TaskError};

/// Whether a policy removes anything at all (keep-all and an empty policy do not).
pub fn forgets_anything(policy: &RetentionPolicy) -> bool {
    policy.policy_keep_all != Some(true)
        && (policy.policy_keep_last_n.is_some() || policy.policy_time_bucketed.is_some())
}

/// restic's keep flags for a policy.
pub fn keep_flags(policy: &RetentionPolicy, req: &mut ForgetRequest) {
    let count = |n: i32| (n > 0).then_some(n as u32);
    if let Some(n) = policy.policy_keep_last_n {
        req.keep_last = Some(n.max(0) as u32);
    }
    if let Some(b) = &policy.policy_time_bucketed {
        req.keep_hourly = count(b.hourly);
        req.keep_daily = count(b.daily);
        req.keep_weekly = count(b.weekly);
        req.keep_monthly = count(b.monthly);
        req.keep_yearly = count(b.yearly);
        if b.keep_last_n > 0 {
            req.keep_last = Some(b.keep_last_n as u32);
        }
    }
}

pub fn run(
    ctx: &mut Ctx,
    plan_id: Option<&str>,
    snapshot_id: Option<&str>,
) -> Result<Option<FollowUp>, TaskError> {
    let instance = ctx.config.instance.clone();
    let mut req = ForgetRequest::default();
    let policy = match (snapshot_id, plan_id) {
        (Some(id), _) => {
            req.ids = vec![id.to_string()];
            None
        }
        (None, Some(plan_id)) => {
            let plan = ctx.config.plan(plan_id).ok_or_else(|| {
                TaskError::Other(format!("plan {plan_id:?} is not in the config any more"))
            })?;
            let Some(policy) = plan.retention.clone().filter(forgets_anything) else {
                ctx.op.display_message =
                    format!("plan {plan_id:?} keeps every snapshot; nothing to forget");
                return Ok(None);
            };
            req.tags = vec![format!("plan:{plan_id},created-by:{instance}")];
            req.group_by = Some(String::new());
            Some(policy)
        }
        (None, None) => {
            let policy = ctx
                .repo
                .forget_policy
                .as_ref()
                .and_then(|p| p.retention.clone())
                .filter(forgets_anything);
            let Some(policy) = policy else {
                ctx.op.display_message = format!(
                    "repo {:?} has no forget policy; nothing to forget",
                    ctx.repo.id
                );
                return Ok(None);
            };
            // One group per plan (its tags) and host; only this instance's snapshots.
            req.tags = vec![format!("created-by:{instance}")];
            req.group_by = Some("host,tags".to_string());
            Some(policy)
        }
    };
    if let Some(policy) = &policy {
        keep_flags(policy, &mut req);
    }
    let result = ctx.with_lock_retry(|ctx| {
        let (restic, log) = (&ctx.shared.restic, &mut ctx.log);
        restic.forget(&ctx.target, &req, ctx.stop, log)
    })?;
    let removed_ids: Vec<String> = result.removed.iter().map(|s| s.id.clone()).collect();
    ctx.op.op = Op::Forget(OperationForget {
        forget: result.removed.into_iter().map(to_proto).collect(),
        policy: policy.and_then(|p| serde_json::to_value(p).ok()),
    });
    if !removed_ids.is_empty()
        && let Err(e) = ctx.shared.oplog.mark_forgotten(&ctx.repo.id, &removed_ids)
    {
        warn!("could not mark forgotten snapshots in the history: {e}");
    }
    ctx.op.display_message = match removed_ids.len() {
        0 => String::new(),
        n => format!("forgot {n} snapshot(s)"),
    };
    Ok(None)
}

pub fn to_proto(s: Snapshot) -> ResticSnapshot {
    ResticSnapshot {
        id: s.id,
        unix_time_ms: s.time_ms,
        hostname: s.hostname,
        username: s.username,
        tree: s.tree,
        parent: s.parent,
        paths: s.paths,
        tags: s.tags,
        summary: None,
    }
}

/// After a backup of a plan with a retention policy: queues the plan's forget in the
/// backup's flow, to run next.
pub fn queue_retention(shared: &Arc<Shared>, backup: &Operation, policy: &RetentionPolicy) {
    if !forgets_anything(policy) {
        return;
    }
    let mut op = Operation::new(Op::Forget(OperationForget::default()));
    op.flow_id = backup.flow_id;
    op.repo_id = backup.repo_id.clone();
    op.repo_guid = backup.repo_guid.clone();
    op.plan_id = backup.plan_id.clone();
    op.instance_id = backup.instance_id.clone();
    op.status = OperationStatus::Pending;
    op.unix_time_start_ms = shared.clock.now_ms();
    if let Err(e) = shared.oplog.add(&mut op) {
        error!(
            "plan {:?}: could not record its retention forget: {e}",
            backup.plan_id
        );
        return;
    }
    let kind = TaskKind::Forget {
        repo_id: backup.repo_id.clone(),
        plan_id: Some(backup.plan_id.clone()),
        snapshot_id: None,
    };
    shared.push_task(op.id, kind, Priority::Interactive, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: serde_json::Value) -> RetentionPolicy {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn keep_flags_follow_the_policy() {
        let mut req = ForgetRequest::default();
        keep_flags(
            &policy(serde_json::json!({"policyKeepLastN": 30})),
            &mut req,
        );
        assert_eq!(req.keep_last, Some(30));
        assert_eq!(req.keep_daily, None);

        let mut req = ForgetRequest::default();
        let p = policy(serde_json::json!({"policyTimeBucketed": {
            "daily": 7, "weekly": 4, "monthly": 12, "yearly": 3, "keepLastN": 2}}));
        keep_flags(&p, &mut req);
        assert_eq!(
            (
                req.keep_last,
                req.keep_hourly,
                req.keep_daily,
                req.keep_weekly,
                req.keep_monthly,
                req.keep_yearly
            ),
            (Some(2), None, Some(7), Some(4), Some(12), Some(3))
        );
    }

    #[test]
    fn keep_all_and_empty_policies_forget_nothing() {
        assert!(!forgets_anything(&policy(
            serde_json::json!({"policyKeepAll": true})
        )));
        assert!(!forgets_anything(&policy(serde_json::json!({}))));
        assert!(forgets_anything(&policy(
            serde_json::json!({"policyKeepLastN": 1})
        )));
    }
}
