//! What runs when: the queue of tasks, the single worker thread that runs restic, and
//! the hand-back of results to callers that wait for them (a `Backup` call blocks on its
//! own [`Completion`]). Every task is an operation in the oplog from the moment it is
//! queued; the worker moves it through INPROGRESS to its end status and writes the row
//! before anyone is told. Nothing here knows about HTTP; restic is reached only through
//! `crate::restic`.

pub mod clock;
pub mod queue;
pub mod schedule;
pub mod scheduler;
pub mod tasks;

use std::collections::HashSet;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::store::ConfigStore;
use crate::logs::Logs;
use crate::oplog::{OpLog, OpLogError};
use crate::proto::{
    Op, Operation, OperationBackup, OperationCheck, OperationForget, OperationPrune,
    OperationRestore, OperationRunCommand, OperationStats, OperationStatus,
};
use crate::restic::{Restic, StopHandle};
use clock::Clock;
use queue::{Priority, TaskQueue};
use scheduler::{SYSTEM_PLAN, SchedState};

/// The message given to an operation that was running when footrest stopped abruptly.
pub const INTERRUPTED_MESSAGE: &str =
    "footrest stopped while this operation ran (crash, power loss or kill); it did not finish";

/// The message given to an operation that was still queued when footrest stopped.
pub const NEVER_STARTED_MESSAGE: &str = "footrest stopped before this operation started";

/// Why a running task was told to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// footrest is shutting down.
    System,
    /// A user asked for it (Cancel).
    User,
}

/// The orchestrator's failures, in terms a caller can act on.
#[derive(Debug)]
pub enum OrchestratorError {
    PlanNotFound(String),
    RepoNotFound { plan: String, repo: String },
    NoSuchRepo(String),
    OperationNotFound(i64),
    AlreadyEnded { id: i64, status: OperationStatus },
    ShuttingDown,
    OpLog(OpLogError),
    Thread(std::io::Error),
}

impl fmt::Display for OrchestratorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrchestratorError::PlanNotFound(id) => write!(
                f,
                "no plan with id {id:?}; the plans are listed in the config's \"plans\""
            ),
            OrchestratorError::RepoNotFound { plan, repo } => {
                write!(f, "plan {plan:?} uses repo {repo:?}, which is not defined")
            }
            OrchestratorError::NoSuchRepo(id) => write!(
                f,
                "no repo with id {id:?}; the repos are listed in the config's \"repos\""
            ),
            OrchestratorError::OperationNotFound(id) => write!(f, "no operation with id {id}"),
            OrchestratorError::AlreadyEnded { id, status } => {
                write!(f, "operation {id} has already ended ({})", status.name())
            }
            OrchestratorError::ShuttingDown => write!(f, "footrest is shutting down"),
            OrchestratorError::OpLog(e) => write!(f, "{e}"),
            OrchestratorError::Thread(e) => write!(f, "could not start a thread: {e}"),
        }
    }
}

impl std::error::Error for OrchestratorError {}

impl From<OpLogError> for OrchestratorError {
    fn from(e: OpLogError) -> Self {
        OrchestratorError::OpLog(e)
    }
}

/// Hands the final state of an operation to the thread waiting for it.
#[derive(Default)]
pub struct Completion {
    result: Mutex<Option<Operation>>,
    done: Condvar,
}

impl Completion {
    fn finish(&self, op: Operation) {
        *lock(&self.result) = Some(op);
        self.done.notify_all();
    }

    /// Blocks until the operation has ended.
    pub fn wait(&self) -> Operation {
        let mut result = lock(&self.result);
        loop {
            if let Some(op) = result.as_ref() {
                return op.clone();
            }
            result = self.done.wait(result).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// What the worker is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskKind {
    Backup {
        plan_id: String,
    },
    /// One snapshot (`snapshot_id`), a plan's retention (`plan_id`), or the repo's own
    /// forget policy (neither).
    Forget {
        repo_id: String,
        plan_id: Option<String>,
        snapshot_id: Option<String>,
    },
    Prune {
        repo_id: String,
    },
    Check {
        repo_id: String,
    },
    Stats {
        repo_id: String,
    },
    Index {
        repo_id: String,
    },
    Unlock {
        repo_id: String,
    },
    /// A restic command a user typed (RunCommand), already checked.
    RunCommand {
        repo_id: String,
        command: tasks::run_command::ResticCommand,
    },
    /// A snapshot, or one path of it (`/` for all), into a missing or empty folder.
    Restore {
        repo_id: String,
        snapshot_id: String,
        path: String,
        target: tasks::restore::RestoreTarget,
    },
}

/// The repo tasks a client can ask for (DoRepoTask).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepoTask {
    IndexSnapshots,
    Prune,
    Check,
    Stats,
    Unlock,
    Forget,
}

struct Task {
    op_id: i64,
    kind: TaskKind,
    done: Option<Arc<Completion>>,
}

struct Running {
    op_id: i64,
    stop: StopHandle,
    reason: Option<StopReason>,
}

/// The parts every task needs.
pub struct Shared {
    pub config: Arc<ConfigStore>,
    pub oplog: Arc<OpLog>,
    pub restic: Restic,
    pub logs: Logs,
    /// Grace given to restic between SIGINT and SIGKILL.
    pub stop_grace: Duration,
    queue: Mutex<TaskQueue<Task>>,
    wake: Condvar,
    running: Mutex<Option<Running>>,
    /// Repos whose stale locks must be removed before their next task (after a crash or
    /// a killed restic).
    needs_unlock: Mutex<HashSet<String>>,
    /// Ends of operations that could not be written (the disk was full): written again
    /// before each task and on every scheduler pass, until they are on disk.
    unsaved: Mutex<Vec<Operation>>,
    stopping: AtomicBool,
    pub clock: Arc<dyn Clock>,
    /// The local time zone that cron schedules are read in.
    pub tz: jiff::tz::TimeZone,
    sched: Mutex<SchedState>,
    sched_wake: Condvar,
}

/// The queue, its worker thread and the scheduler thread.
pub struct Orchestrator {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Orchestrator {
    /// Marks operations left INPROGRESS by an earlier run as failed, remembers their repos
    /// for unlocking, and starts the worker and scheduler threads.
    pub fn start(
        config: Arc<ConfigStore>,
        oplog: Arc<OpLog>,
        restic: Restic,
        logs: Logs,
        clock: Arc<dyn Clock>,
    ) -> Result<Orchestrator, OrchestratorError> {
        let interrupted = oplog.fail_interrupted(INTERRUPTED_MESSAGE, clock.now_ms())?;
        let mut needs_unlock = HashSet::new();
        for op in &interrupted {
            warn!(
                "operation {} (plan {:?}, repo {:?}) was running when footrest stopped; marked as failed",
                op.id, op.plan_id, op.repo_id
            );
            if !op.repo_id.is_empty() {
                needs_unlock.insert(op.repo_id.clone());
            }
        }
        let shared = Arc::new(Shared {
            config,
            oplog,
            restic,
            logs,
            stop_grace: Duration::from_secs(30),
            queue: Mutex::new(TaskQueue::default()),
            wake: Condvar::new(),
            running: Mutex::new(None),
            needs_unlock: Mutex::new(needs_unlock),
            unsaved: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            clock,
            tz: jiff::tz::TimeZone::try_system().unwrap_or_else(|e| {
                warn!("cannot read the local time zone ({e}); cron schedules use UTC");
                jiff::tz::TimeZone::UTC
            }),
            sched: Mutex::new(SchedState::default()),
            sched_wake: Condvar::new(),
        });
        let mut threads = Vec::new();
        for (name, body) in [
            ("worker", worker_loop as fn(&Arc<Shared>)),
            ("scheduler", scheduler::scheduler_loop),
        ] {
            let thread_shared = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || body(&thread_shared));
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    let orchestrator = Orchestrator {
                        shared,
                        threads: Mutex::new(threads),
                    };
                    orchestrator.shutdown();
                    return Err(OrchestratorError::Thread(e));
                }
            }
        }
        Ok(Orchestrator {
            shared,
            threads: Mutex::new(threads),
        })
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Queues a backup of `plan_id` at interactive priority. Returns the pending operation
    /// and a completion to wait on.
    pub fn queue_backup(
        &self,
        plan_id: &str,
        dry_run: bool,
    ) -> Result<(Operation, Arc<Completion>), OrchestratorError> {
        let config = self.shared.config.get();
        let plan = config
            .plan(plan_id)
            .ok_or_else(|| OrchestratorError::PlanNotFound(plan_id.to_string()))?;
        let repo = config
            .repo(&plan.repo)
            .ok_or_else(|| OrchestratorError::RepoNotFound {
                plan: plan.id.clone(),
                repo: plan.repo.clone(),
            })?;
        let mut op = Operation::new(Op::Backup(OperationBackup {
            dry_run,
            ..Default::default()
        }));
        op.repo_id = repo.id.clone();
        op.repo_guid = repo.guid.clone();
        op.plan_id = plan.id.clone();
        op.instance_id = config.instance.clone();
        op.status = OperationStatus::Pending;
        op.unix_time_start_ms = self.shared.clock.now_ms();
        let done = Arc::new(Completion::default());
        let kind = TaskKind::Backup {
            plan_id: plan.id.clone(),
        };
        self.shared
            .add_and_queue(&mut op, kind, Some(Arc::clone(&done)))?;
        Ok((op, done))
    }

    /// Queues a repo task at interactive priority; returns its operation id at once.
    pub fn queue_repo_task(&self, repo_id: &str, task: RepoTask) -> Result<i64, OrchestratorError> {
        let repo_id = repo_id.to_string();
        let (kind, op) = match task {
            RepoTask::IndexSnapshots => (
                TaskKind::Index { repo_id },
                Op::RunCommand(OperationRunCommand {
                    command: "restic snapshots".into(),
                    ..Default::default()
                }),
            ),
            RepoTask::Prune => (
                TaskKind::Prune { repo_id },
                Op::Prune(OperationPrune::default()),
            ),
            RepoTask::Check => (
                TaskKind::Check { repo_id },
                Op::Check(OperationCheck::default()),
            ),
            RepoTask::Stats => (
                TaskKind::Stats { repo_id },
                Op::Stats(OperationStats::default()),
            ),
            RepoTask::Unlock => (
                TaskKind::Unlock { repo_id },
                Op::RunCommand(OperationRunCommand {
                    command: "restic unlock".into(),
                    ..Default::default()
                }),
            ),
            RepoTask::Forget => (
                TaskKind::Forget {
                    repo_id,
                    plan_id: None,
                    snapshot_id: None,
                },
                Op::Forget(OperationForget::default()),
            ),
        };
        self.queue_interactive(kind, op, SYSTEM_PLAN, None)
    }

    /// Queues a forget of one snapshot, or of a plan's snapshots by its retention
    /// policy; returns the operation id at once.
    pub fn queue_forget(
        &self,
        repo_id: &str,
        plan_id: &str,
        snapshot_id: Option<&str>,
    ) -> Result<i64, OrchestratorError> {
        let config = self.shared.config.get();
        if config.plan(plan_id).is_none() {
            return Err(OrchestratorError::PlanNotFound(plan_id.to_string()));
        }
        let kind = TaskKind::Forget {
            repo_id: repo_id.to_string(),
            plan_id: Some(plan_id.to_string()),
            snapshot_id: snapshot_id.map(str::to_string),
        };
        self.queue_interactive(kind, Op::Forget(OperationForget::default()), plan_id, None)
    }

    /// Queues a restic command a user typed on a repo (plan `_system_`) at interactive
    /// priority. Returns its operation id and a completion to wait on: it ends when the
    /// command has ended, whatever its exit status (the operation says how it went).
    pub fn queue_run_command(
        &self,
        repo_id: &str,
        command: tasks::run_command::ResticCommand,
    ) -> Result<(i64, Arc<Completion>), OrchestratorError> {
        let op = Op::RunCommand(OperationRunCommand {
            command: command.text().to_string(),
            ..Default::default()
        });
        let kind = TaskKind::RunCommand {
            repo_id: repo_id.to_string(),
            command,
        };
        let done = Arc::new(Completion::default());
        let id = self.queue_interactive(kind, op, SYSTEM_PLAN, Some(Arc::clone(&done)))?;
        Ok((id, done))
    }

    /// Queues a restore at interactive priority; returns its operation id at once. The
    /// operation names its target from the start (a fresh one is `<root>/<op id>`) and
    /// is recorded in `job.flow_id` when that is set. The caller has checked the target
    /// and the path; the task checks the target again before restic runs.
    pub fn queue_restore(&self, job: tasks::restore::RestoreJob) -> Result<i64, OrchestratorError> {
        let config = self.shared.config.get();
        if job.plan_id != SYSTEM_PLAN && config.plan(&job.plan_id).is_none() {
            return Err(OrchestratorError::PlanNotFound(job.plan_id));
        }
        let repo = config
            .repo(&job.repo_id)
            .ok_or_else(|| OrchestratorError::NoSuchRepo(job.repo_id.clone()))?;
        let mut op = Operation::new(Op::Restore(OperationRestore {
            path: job.path.clone(),
            ..Default::default()
        }));
        op.flow_id = job.flow_id;
        op.repo_id = repo.id.clone();
        op.repo_guid = repo.guid.clone();
        op.plan_id = job.plan_id.clone();
        op.instance_id = config.instance.clone();
        op.snapshot_id = job.snapshot_id.clone();
        op.status = OperationStatus::Pending;
        op.unix_time_start_ms = self.shared.clock.now_ms();
        {
            // As in add_and_queue; the target is written once the id is known.
            let mut queue = lock(&self.shared.queue);
            if self.shared.stopping() {
                return Err(OrchestratorError::ShuttingDown);
            }
            self.shared.oplog.add(&mut op)?;
            let target = tasks::restore::target_path(&job.target, op.id);
            op.op = Op::Restore(OperationRestore {
                path: job.path.clone(),
                target: target.to_string_lossy().into_owned(),
                last_status: None,
            });
            // The task writes the target again when it starts.
            self.shared.save(&mut op);
            queue.push(
                Priority::Interactive,
                Task {
                    op_id: op.id,
                    kind: TaskKind::Restore {
                        repo_id: repo.id.clone(),
                        snapshot_id: job.snapshot_id,
                        path: job.path,
                        target: job.target,
                    },
                    done: None,
                },
            );
        }
        self.shared.wake.notify_all();
        Ok(op.id)
    }

    fn queue_interactive(
        &self,
        kind: TaskKind,
        op: Op,
        plan_id: &str,
        done: Option<Arc<Completion>>,
    ) -> Result<i64, OrchestratorError> {
        let config = self.shared.config.get();
        let repo_id = kind.repo_id(&config).unwrap_or_default();
        let repo = config
            .repo(&repo_id)
            .ok_or_else(|| OrchestratorError::NoSuchRepo(repo_id.clone()))?;
        let mut op = Operation::new(op);
        op.repo_id = repo.id.clone();
        op.repo_guid = repo.guid.clone();
        op.plan_id = plan_id.to_string();
        op.instance_id = config.instance.clone();
        op.status = OperationStatus::Pending;
        op.unix_time_start_ms = self.shared.clock.now_ms();
        self.shared.add_and_queue(&mut op, kind, done)?;
        Ok(op.id)
    }

    /// Cancels an operation: a queued or scheduled one ends as USER_CANCELLED at once (a
    /// blocked Backup call gets its answer); a running one gets its restic stopped
    /// (SIGINT, SIGKILL after the grace period, then stale locks removed) and ends as
    /// USER_CANCELLED when it has stopped.
    pub fn cancel(&self, op_id: i64) -> Result<(), OrchestratorError> {
        let shared = &self.shared;
        let queued = lock(&shared.queue).remove_where(|t| t.op_id == op_id);
        if let Some(task) = queued.into_iter().next() {
            info!("operation {op_id} cancelled before it started");
            shared.end_unstarted(
                task,
                OperationStatus::UserCancelled,
                "cancelled before it started",
            );
            shared.scheduled_run_ended(op_id);
            return Ok(());
        }
        if let Some(running) = lock(&shared.running).as_mut().filter(|r| r.op_id == op_id) {
            info!("operation {op_id} cancelled while running: stopping restic");
            running.reason = Some(StopReason::User);
            running.stop.stop(shared.stop_grace);
            return Ok(());
        }
        if shared.take_unqueued_slot(op_id) {
            shared.end_op(
                op_id,
                OperationStatus::UserCancelled,
                "this scheduled run was cancelled",
            );
            shared.replan();
            return Ok(());
        }
        match shared.oplog.get(op_id)? {
            None => Err(OrchestratorError::OperationNotFound(op_id)),
            Some(op) => Err(OrchestratorError::AlreadyEnded {
                id: op_id,
                status: op.status,
            }),
        }
    }

    /// Applies a new config: schedules are planned again. Running tasks go on.
    pub fn config_changed(&self) {
        self.shared.replan();
    }

    /// Plans every schedule once on the calling thread (as the scheduler thread does on
    /// each tick) and returns how many tasks are scheduled. For benchmarks and drills;
    /// the scheduler thread goes on as before.
    pub fn replan_now(&self) -> usize {
        self.shared.plan_and_queue();
        self.shared.scheduled_count()
    }

    /// Operations waiting in the worker's queue.
    pub fn queue_depth(&self) -> usize {
        lock(&self.shared.queue).len()
    }

    /// Stops: no new tasks, queued ones end as SYSTEM_CANCELLED, the running one gets
    /// SIGINT (SIGKILL after the grace period), and the worker is joined.
    pub fn shutdown(&self) {
        let dropped = {
            let mut queue = lock(&self.shared.queue);
            self.shared.stopping.store(true, Ordering::SeqCst);
            queue.remove_where(|_| true)
        };
        for task in dropped {
            self.shared.end_unstarted(
                task,
                OperationStatus::SystemCancelled,
                NEVER_STARTED_MESSAGE,
            );
        }
        if let Some(running) = lock(&self.shared.running).as_mut() {
            info!(
                "stopping operation {} (SIGINT to restic, SIGKILL after {} s)",
                running.op_id,
                self.shared.stop_grace.as_secs()
            );
            running.reason = Some(StopReason::System);
            running.stop.stop(self.shared.stop_grace);
        }
        self.shared.wake.notify_all();
        self.shared.sched_wake.notify_all();
        // The guard is held while joining, so a second caller returns only once the
        // threads have really ended.
        let mut threads = lock(&self.threads);
        for handle in threads.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Shared {
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Why the running operation was told to stop, if it was.
    pub fn stop_reason(&self, op_id: i64) -> Option<StopReason> {
        lock(&self.running)
            .as_ref()
            .filter(|r| r.op_id == op_id)
            .and_then(|r| r.reason)
    }

    /// Takes the repo's "stale locks to remove" mark, if set.
    pub fn take_needs_unlock(&self, repo_id: &str) -> bool {
        lock(&self.needs_unlock).remove(repo_id)
    }

    pub fn mark_needs_unlock(&self, repo_id: &str) {
        lock(&self.needs_unlock).insert(repo_id.to_string());
    }

    /// Writes an operation update; a failure to write is logged (the disk is full, say)
    /// and the task goes on: the final write is retried by [`Shared::finish_op`].
    pub fn save(&self, op: &mut Operation) {
        if let Err(e) = self.oplog.update(op) {
            error!("could not record progress of operation {}: {e}", op.id);
        }
    }

    /// Writes the final state of an operation, retrying a few times: losing the end of an
    /// operation would leave it INPROGRESS in the history. If the disk still refuses, the
    /// end is kept and written again by [`Shared::write_unsaved`] once there is room.
    pub fn finish_op(&self, op: &mut Operation) {
        for attempt in 0..5 {
            match self.oplog.update(op) {
                Ok(()) => return,
                Err(e) => {
                    error!(
                        "could not record the end of operation {} (attempt {}): {e}",
                        op.id,
                        attempt + 1
                    );
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                }
            }
        }
        error!(
            "the end of operation {} is kept in memory and written once the operation log \
             can be written again (free some space on its disk)",
            op.id
        );
        let mut unsaved = lock(&self.unsaved);
        unsaved.retain(|o| o.id != op.id);
        unsaved.push(op.clone());
    }

    /// Writes the operation ends [`Shared::finish_op`] could not write; those that still
    /// fail are kept for the next call.
    pub fn write_unsaved(&self) {
        let pending = std::mem::take(&mut *lock(&self.unsaved));
        if pending.is_empty() {
            return;
        }
        let mut left = Vec::new();
        for mut op in pending {
            match self.oplog.update(&mut op) {
                Ok(()) => info!(
                    "recorded the end of operation {}, which could not be written before",
                    op.id
                ),
                Err(_) => left.push(op),
            }
        }
        let mut unsaved = lock(&self.unsaved);
        // finish_op may have kept newer ends meanwhile; those win.
        left.retain(|o| !unsaved.iter().any(|n| n.id == o.id));
        unsaved.extend(left);
    }

    /// Records a new PENDING operation and queues its task, unless footrest is stopping.
    fn add_and_queue(
        &self,
        op: &mut Operation,
        kind: TaskKind,
        done: Option<Arc<Completion>>,
    ) -> Result<(), OrchestratorError> {
        {
            // Checked and pushed under the queue lock, so shutdown cannot miss this task.
            let mut queue = lock(&self.queue);
            if self.stopping() {
                return Err(OrchestratorError::ShuttingDown);
            }
            self.oplog.add(op)?;
            queue.push(
                Priority::Interactive,
                Task {
                    op_id: op.id,
                    kind,
                    done,
                },
            );
        }
        self.wake.notify_all();
        Ok(())
    }

    /// Queues a task for an operation that is already recorded.
    fn push_task(
        &self,
        op_id: i64,
        kind: TaskKind,
        priority: Priority,
        done: Option<Arc<Completion>>,
    ) {
        let mut queue = lock(&self.queue);
        if self.stopping() {
            return;
        }
        queue.push(priority, Task { op_id, kind, done });
        drop(queue);
        self.wake.notify_all();
    }

    /// Ends an operation that never ran.
    fn end_op(&self, op_id: i64, status: OperationStatus, message: &str) -> Option<Operation> {
        match self.oplog.get(op_id) {
            Ok(Some(mut op)) => {
                if !op.status.is_finished() {
                    op.status = status;
                    op.display_message = message.to_string();
                    op.unix_time_end_ms = self.clock.now_ms();
                    self.finish_op(&mut op);
                }
                Some(op)
            }
            Ok(None) => None,
            Err(e) => {
                error!("could not read operation {op_id}: {e}");
                None
            }
        }
    }

    /// Once a day: old operations beyond the history limits go, with their logs.
    fn history_upkeep(&self) {
        let limits = crate::oplog::HistoryLimits::default();
        match self.oplog.prune_history(self.clock.now_ms(), &limits) {
            Ok(deleted) => {
                for op in &deleted {
                    self.remove_logs(op);
                }
                if !deleted.is_empty() {
                    info!("history upkeep: removed {} old operations", deleted.len());
                }
            }
            Err(e) => error!("history upkeep failed: {e}"),
        }
    }

    /// Removes an operation's logs (after it was deleted from the history).
    pub fn remove_logs(&self, op: &Operation) {
        let mut refs = vec![op.logref.as_str()];
        match &op.op {
            Op::Prune(p) => refs.push(&p.output_logref),
            Op::Check(c) => refs.push(&c.output_logref),
            Op::RunCommand(c) => refs.push(&c.output_logref),
            _ => {}
        }
        for r in refs.into_iter().filter(|r| !r.is_empty()) {
            if let Err(e) = self.logs.remove(r) {
                warn!("could not remove log {r}: {e}");
            }
        }
    }

    /// Ends a task that never ran and answers whoever waits for it.
    fn end_unstarted(&self, task: Task, status: OperationStatus, message: &str) {
        if let Some(op) = self.end_op(task.op_id, status, message)
            && let Some(done) = task.done
        {
            done.finish(op);
        }
    }
}

fn worker_loop(shared: &Arc<Shared>) {
    // Learning guids runs restic too: registered like a task so shutdown can stop it.
    let stop = StopHandle::new();
    *lock(&shared.running) = Some(Running {
        op_id: 0,
        stop: stop.clone(),
        reason: None,
    });
    if !shared.stopping() {
        tasks::prepare_repos(shared, &stop);
    }
    *lock(&shared.running) = None;
    loop {
        let task = {
            let mut queue = lock(&shared.queue);
            loop {
                if let Some(task) = queue.pop() {
                    break task;
                }
                if shared.stopping() {
                    return;
                }
                queue = shared.wake.wait(queue).unwrap_or_else(|p| p.into_inner());
            }
        };
        shared.write_unsaved();
        run_task(shared, task);
    }
}

/// Runs one task with a panic guard: a bug in a task ends that operation as an error
/// and the worker goes on.
fn run_task(shared: &Arc<Shared>, task: Task) {
    let stop = StopHandle::new();
    *lock(&shared.running) = Some(Running {
        op_id: task.op_id,
        stop: stop.clone(),
        reason: None,
    });
    let op_id = task.op_id;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        tasks::run(shared, op_id, &task.kind, &stop)
    }));
    *lock(&shared.running) = None;
    let mut follow_up = None;
    let final_op = match outcome {
        Ok(ended) => {
            follow_up = ended.follow_up;
            match ended.op {
                Some(op) => Some(op),
                None => shared.oplog.get(op_id).ok().flatten(),
            }
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            error!("internal error in operation {op_id}: {what}");
            shared.oplog.get(op_id).ok().flatten().map(|mut op| {
                if !op.status.is_finished() {
                    op.status = OperationStatus::Error;
                    op.display_message =
                        format!("internal error in footrest: {what}; see footrest's log");
                    op.unix_time_end_ms = shared.clock.now_ms();
                    shared.finish_op(&mut op);
                }
                op
            })
        }
    };
    if let Some(done) = &task.done {
        match final_op {
            Some(op) => done.finish(op),
            None => {
                let mut op = Operation::new(Op::Backup(OperationBackup::default()));
                op.id = op_id;
                op.status = OperationStatus::Error;
                op.display_message = "the operation's record could not be read back".into();
                done.finish(op)
            }
        }
    }
    shared.scheduled_run_ended(op_id);
    // Follow-ups (the snapshot index, retention) run after the caller has its answer,
    // in the same flow, under the same panic guard.
    if let Some(follow_up) = follow_up
        && catch_unwind(AssertUnwindSafe(follow_up)).is_err()
    {
        error!("internal error in the follow-up work of operation {op_id}");
    }
}

impl TaskKind {
    /// The repo this task works on.
    fn repo_id(&self, config: &crate::config::Config) -> Option<String> {
        match self {
            TaskKind::Backup { plan_id } => config.plan(plan_id).map(|p| p.repo.clone()),
            TaskKind::Forget { repo_id, .. }
            | TaskKind::Prune { repo_id }
            | TaskKind::Check { repo_id }
            | TaskKind::Stats { repo_id }
            | TaskKind::Index { repo_id }
            | TaskKind::Unlock { repo_id }
            | TaskKind::RunCommand { repo_id, .. }
            | TaskKind::Restore { repo_id, .. } => Some(repo_id.clone()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
