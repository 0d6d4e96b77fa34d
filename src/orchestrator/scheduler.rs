//! The scheduler: turns the config's schedules into one PENDING operation per scheduled
//! task (its start time is the planned time, so clients can show "next backup at ..."),
//! and hands a task to the worker's queue when its time has come. Planning is done again
//! on every tick (at most a minute apart, so a clock jump or a suspend is noticed),
//! after every scheduled run and after a config reload; a pending operation is updated
//! in place or deleted, never duplicated. Last-run times come from the operation log, so
//! a missed run is caught up once after a restart. The timing rules themselves are the
//! pure functions of `schedule`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, Schedule};
use crate::proto::{
    Op, Operation, OperationBackup, OperationCheck, OperationForget, OperationPrune,
    OperationStatus,
};

use super::queue::Priority;
use super::schedule;
use super::{Shared, TaskKind, lock};

/// The plan id of repo-level work.
pub const SYSTEM_PLAN: &str = "_system_";

/// The longest the scheduler sleeps: a clock jump is noticed within this much real time.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// One schedulable task of the config.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TaskKey {
    Backup { plan_id: String },
    Prune { repo_id: String },
    Check { repo_id: String },
    Forget { repo_id: String },
}

impl TaskKey {
    fn kind(&self) -> TaskKind {
        match self {
            TaskKey::Backup { plan_id } => TaskKind::Backup {
                plan_id: plan_id.clone(),
            },
            TaskKey::Prune { repo_id } => TaskKind::Prune {
                repo_id: repo_id.clone(),
            },
            TaskKey::Check { repo_id } => TaskKind::Check {
                repo_id: repo_id.clone(),
            },
            TaskKey::Forget { repo_id } => TaskKind::Forget {
                repo_id: repo_id.clone(),
                plan_id: None,
                snapshot_id: None,
            },
        }
    }

    fn priority(&self) -> Priority {
        match self {
            TaskKey::Backup { .. } => Priority::ScheduledBackup,
            TaskKey::Prune { .. } => Priority::Prune,
            TaskKey::Check { .. } => Priority::Check,
            TaskKey::Forget { .. } => Priority::Forget,
        }
    }

    /// The empty operation this task records.
    fn op(&self) -> Op {
        match self {
            TaskKey::Backup { .. } => Op::Backup(OperationBackup::default()),
            TaskKey::Prune { .. } => Op::Prune(OperationPrune::default()),
            TaskKey::Check { .. } => Op::Check(OperationCheck::default()),
            TaskKey::Forget { .. } => Op::Forget(OperationForget::default()),
        }
    }
}

/// A task's schedule as planned: where it runs and what it records.
struct Planned {
    key: TaskKey,
    repo_id: String,
    repo_guid: String,
    plan_id: String,
    schedule: schedule::Compiled,
}

/// The scheduled tasks' pending operations.
#[derive(Default)]
pub struct SchedState {
    /// Pending operation per task, and whether it has been handed to the worker.
    slots: HashMap<TaskKey, Slot>,
    /// PENDING operations found at start-up, adopted by the first planning.
    leftovers: Vec<Operation>,
    /// Set when something asks for planning again (a run ended, a reload).
    dirty: bool,
    /// Runs a user cancelled before they started: the task's next run comes after this
    /// planned time, not at it again.
    skipped: HashMap<TaskKey, i64>,
}

struct Slot {
    op_id: i64,
    at_ms: i64,
    queued: bool,
}

/// Every schedulable task of a config, with its compiled schedule. A schedule that does
/// not compile is logged and left out (validation refuses such a config at load).
fn planned_tasks(config: &Config) -> Vec<Planned> {
    let mut out = Vec::new();
    let mut add = |key: TaskKey, sched: Option<&Schedule>, repo_id: &str, plan_id: &str| {
        let Some(sched) = sched else { return };
        match schedule::compile(sched) {
            Ok(compiled) if compiled.is_disabled() => {}
            Ok(compiled) => out.push(Planned {
                repo_guid: config
                    .repo(repo_id)
                    .map(|r| r.guid.clone())
                    .unwrap_or_default(),
                key,
                repo_id: repo_id.to_string(),
                plan_id: plan_id.to_string(),
                schedule: compiled,
            }),
            Err(e) => error!("{key:?}: schedule not used: {e}"),
        }
    };
    for plan in &config.plans {
        add(
            TaskKey::Backup {
                plan_id: plan.id.clone(),
            },
            plan.schedule.as_ref(),
            &plan.repo,
            &plan.id,
        );
    }
    for repo in &config.repos {
        let id = || repo.id.clone();
        let prune = repo.prune_policy.as_ref().and_then(|p| p.schedule.as_ref());
        add(
            TaskKey::Prune { repo_id: id() },
            prune,
            &repo.id,
            SYSTEM_PLAN,
        );
        let check = repo.check_policy.as_ref().and_then(|p| p.schedule.as_ref());
        add(
            TaskKey::Check { repo_id: id() },
            check,
            &repo.id,
            SYSTEM_PLAN,
        );
        let forget = repo
            .forget_policy
            .as_ref()
            .filter(|p| p.retention.is_some())
            .and_then(|p| p.schedule.as_ref());
        add(
            TaskKey::Forget { repo_id: id() },
            forget,
            &repo.id,
            SYSTEM_PLAN,
        );
    }
    out
}

/// Whether a repo runs its own scheduled forget (then plans' retention is applied by it,
/// not after each backup).
pub fn repo_forget_scheduled(config: &Config, repo_id: &str) -> bool {
    config.repo(repo_id).is_some_and(|repo| {
        repo.forget_policy.as_ref().is_some_and(|p| {
            p.retention.is_some()
                && p.schedule
                    .as_ref()
                    .and_then(|s| schedule::compile(s).ok())
                    .is_some_and(|c| !c.is_disabled())
        })
    })
}

impl Shared {
    /// Takes the PENDING operations left by an earlier run; planning adopts the ones
    /// that match a scheduled task, the rest end as SYSTEM_CANCELLED.
    pub(super) fn adopt_leftovers(&self) {
        match self.oplog.with_status(OperationStatus::Pending) {
            Ok(ops) => lock(&self.sched).leftovers = ops,
            Err(e) => error!("could not read the queued operations of the last run: {e}"),
        }
    }

    /// Asks the scheduler to plan again soon.
    pub fn replan(&self) {
        lock(&self.sched).dirty = true;
        self.sched_wake.notify_all();
    }

    /// Plans every scheduled task and queues the due ones. Returns when to look again.
    pub(super) fn plan_and_queue(&self) -> i64 {
        let config = self.config.get();
        let now = self.clock.now_ms();
        let tasks = planned_tasks(&config);
        let mut sched = lock(&self.sched);
        sched.dirty = false;

        // Tasks no longer in the config: their pending operations go.
        let wanted: HashSet<&TaskKey> = tasks.iter().map(|t| &t.key).collect();
        let gone: Vec<TaskKey> = sched
            .slots
            .iter()
            .filter(|(k, slot)| !slot.queued && !wanted.contains(k))
            .map(|(k, _)| k.clone())
            .collect();
        let mut delete = Vec::new();
        for key in gone {
            if let Some(slot) = sched.slots.remove(&key) {
                delete.push(slot.op_id);
            }
        }

        let mut next_wake = now + 3_600_000;
        for task in &tasks {
            match sched.slots.get_mut(&task.key) {
                Some(slot) if slot.queued => continue,
                // Its time has come: run it, without asking the schedule again (asked
                // now, a cron schedule would already answer with its next time).
                Some(slot) if slot.at_ms <= now => {
                    slot.queued = true;
                    self.push_task(slot.op_id, task.key.kind(), task.key.priority(), None);
                    continue;
                }
                _ => {}
            }
            let member = task.key.op().member_name();
            let last_run = match self.oplog.last_run(&task.repo_id, &task.plan_id, member) {
                Ok(op) => op.map(|op| op.unix_time_start_ms),
                Err(e) => {
                    error!("{:?}: could not read its last run: {e}", task.key);
                    continue;
                }
            };
            let (last_run, asked_at) = match sched.skipped.get(&task.key) {
                Some(&skipped) if skipped >= now => (Some(skipped), skipped),
                _ => (last_run, now),
            };
            let Some(at) = task.schedule.next_run(last_run, asked_at, &self.tz) else {
                if let Some(slot) = sched.slots.remove(&task.key) {
                    delete.push(slot.op_id);
                }
                continue;
            };
            let op_id = match sched.slots.get_mut(&task.key) {
                Some(slot) => {
                    if slot.at_ms != at {
                        self.move_pending(slot.op_id, at);
                        slot.at_ms = at;
                    }
                    slot.op_id
                }
                None => {
                    let Some(op_id) = self.new_pending(&mut sched.leftovers, task, at) else {
                        continue;
                    };
                    sched.slots.insert(
                        task.key.clone(),
                        Slot {
                            op_id,
                            at_ms: at,
                            queued: false,
                        },
                    );
                    op_id
                }
            };
            if at <= now {
                if let Some(slot) = sched.slots.get_mut(&task.key) {
                    slot.queued = true;
                }
                self.push_task(op_id, task.key.kind(), task.key.priority(), None);
            } else {
                next_wake = next_wake.min(at);
            }
        }

        sched.skipped.retain(|_, at| *at >= now);
        // Pending operations of the last run that no schedule adopted were queued calls
        // that never ran.
        for op in std::mem::take(&mut sched.leftovers) {
            self.end_op(
                op.id,
                OperationStatus::SystemCancelled,
                super::NEVER_STARTED_MESSAGE,
            );
        }
        drop(sched);
        if !delete.is_empty()
            && let Err(e) = self.oplog.delete(&delete)
        {
            error!("could not remove pending operations {delete:?}: {e}");
        }
        next_wake
    }

    /// Scheduled tasks that have a pending (or queued) run.
    pub(super) fn scheduled_count(&self) -> usize {
        lock(&self.sched).slots.len()
    }

    fn new_pending(&self, leftovers: &mut Vec<Operation>, task: &Planned, at: i64) -> Option<i64> {
        let member = task.key.op().member_name();
        let adopt = leftovers.iter().position(|op| {
            op.plan_id == task.plan_id
                && op.repo_id == task.repo_id
                && op.op.member_name() == member
        });
        if let Some(i) = adopt {
            let op = leftovers.swap_remove(i);
            self.move_pending(op.id, at);
            return Some(op.id);
        }
        let mut op = Operation::new(task.key.op());
        op.repo_id = task.repo_id.clone();
        op.repo_guid = task.repo_guid.clone();
        op.plan_id = task.plan_id.clone();
        op.instance_id = self.config.get().instance.clone();
        op.status = OperationStatus::Pending;
        op.unix_time_start_ms = at;
        match self.oplog.add(&mut op) {
            Ok(()) => Some(op.id),
            Err(e) => {
                error!("{:?}: could not record its next run: {e}", task.key);
                None
            }
        }
    }

    fn move_pending(&self, op_id: i64, at: i64) {
        match self.oplog.get(op_id) {
            Ok(Some(mut op)) if op.status == OperationStatus::Pending => {
                op.unix_time_start_ms = at;
                self.save(&mut op);
            }
            Ok(_) => {}
            Err(e) => error!("could not read pending operation {op_id}: {e}"),
        }
    }

    /// A scheduled task's run has ended (or was cancelled): plan it again.
    pub(super) fn scheduled_run_ended(&self, op_id: i64) {
        let mut sched = lock(&self.sched);
        sched.slots.retain(|_, slot| slot.op_id != op_id);
        sched.dirty = true;
        drop(sched);
        self.sched_wake.notify_all();
    }

    /// Whether this operation is a scheduled task's pending run that is not queued yet.
    pub(super) fn take_unqueued_slot(&self, op_id: i64) -> bool {
        let mut sched = lock(&self.sched);
        let key = sched
            .slots
            .iter()
            .find(|(_, s)| s.op_id == op_id && !s.queued)
            .map(|(k, _)| k.clone());
        match key {
            Some(key) => {
                if let Some(slot) = sched.slots.remove(&key) {
                    sched.skipped.insert(key, slot.at_ms);
                }
                sched.dirty = true;
                true
            }
            None => false,
        }
    }
}

/// The scheduler thread: plans, queues due tasks, sleeps until the next planned time (at
/// most a minute), and runs the daily history upkeep.
pub(super) fn scheduler_loop(shared: &Arc<Shared>) {
    shared.adopt_leftovers();
    let mut next_upkeep = shared.clock.now_ms() + 60_000;
    loop {
        if shared.stopping() {
            return;
        }
        shared.write_unsaved();
        let next = shared.plan_and_queue();
        let now = shared.clock.now_ms();
        if now >= next_upkeep {
            shared.history_upkeep();
            next_upkeep = now + 24 * 3_600_000;
        }
        let wait = shared
            .clock
            .real_wait(next.min(next_upkeep) - now)
            .min(MAX_SLEEP)
            .max(Duration::from_millis(10));
        let sched = lock(&shared.sched);
        if sched.dirty || shared.stopping() {
            continue;
        }
        let _ = shared
            .sched_wake
            .wait_timeout(sched, wait)
            .unwrap_or_else(|p| p.into_inner());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> Config {
        crate::config::parse(&json.to_string()).unwrap().0
    }

    #[test]
    fn schedulable_tasks_of_a_config() {
        let c = config(serde_json::json!({
            "version": 6, "instance": "i",
            "repos": [
                {"id": "r1", "uri": "/r1", "password": "x",
                 "prunePolicy": {"schedule": {"maxFrequencyDays": 7}},
                 "checkPolicy": {"schedule": {"disabled": true}},
                 "forgetPolicy": {"schedule": {"cron": "0 3 * * *"}, "retention": {"policyKeepLastN": 3}}},
                {"id": "r2", "uri": "/r2", "password": "x",
                 "forgetPolicy": {"schedule": {"cron": "0 3 * * *"}}}
            ],
            "plans": [
                {"id": "a", "repo": "r1", "paths": ["/a"], "schedule": {"maxFrequencyHours": 1}},
                {"id": "b", "repo": "r2", "paths": ["/b"]},
                {"id": "c", "repo": "r2", "paths": ["/c"], "schedule": {"disabled": true}}
            ],
            "auth": {"disabled": true}
        }));
        let keys: Vec<TaskKey> = planned_tasks(&c).into_iter().map(|t| t.key).collect();
        assert_eq!(
            keys,
            vec![
                TaskKey::Backup {
                    plan_id: "a".into()
                },
                TaskKey::Prune {
                    repo_id: "r1".into()
                },
                TaskKey::Forget {
                    repo_id: "r1".into()
                },
            ]
        );
        assert!(repo_forget_scheduled(&c, "r1"));
        assert!(!repo_forget_scheduled(&c, "r2"), "no retention: no forget");
    }
}
