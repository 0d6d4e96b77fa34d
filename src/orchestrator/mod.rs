//! What runs when: the queue of tasks, the single worker thread that runs restic, and
//! the hand-back of results to callers that wait for them (a `Backup` call blocks on its
//! own [`Completion`]). Every task is an operation in the oplog from the moment it is
//! queued; the worker moves it through INPROGRESS to its end status and writes the row
//! before anyone is told. Nothing here knows about HTTP; restic is reached only through
//! `crate::restic`.

pub mod queue;
pub mod schedule;
pub mod tasks;

use std::collections::HashSet;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::store::ConfigStore;
use crate::logs::Logs;
use crate::oplog::{OpLog, OpLogError};
use crate::proto::{Op, Operation, OperationBackup, OperationStatus};
use crate::restic::{Restic, StopHandle};
use queue::{Priority, TaskQueue};

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
            OrchestratorError::ShuttingDown => write!(f, "footrest is shutting down"),
            OrchestratorError::OpLog(e) => write!(f, "{e}"),
            OrchestratorError::Thread(e) => write!(f, "could not start the worker thread: {e}"),
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
#[derive(Clone, Debug)]
pub enum TaskKind {
    Backup { plan_id: String },
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
    stopping: AtomicBool,
}

/// The queue and its worker thread.
pub struct Orchestrator {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Orchestrator {
    /// Marks operations left INPROGRESS by an earlier run as failed, remembers their repos
    /// for unlocking, and starts the worker thread.
    pub fn start(
        config: Arc<ConfigStore>,
        oplog: Arc<OpLog>,
        restic: Restic,
        logs: Logs,
    ) -> Result<Orchestrator, OrchestratorError> {
        let interrupted = oplog.fail_interrupted(INTERRUPTED_MESSAGE, now_ms())?;
        for op in oplog.cancel_pending(NEVER_STARTED_MESSAGE, now_ms())? {
            warn!(
                "operation {} (plan {:?}) was queued when footrest stopped; marked as cancelled",
                op.id, op.plan_id
            );
        }
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
            stopping: AtomicBool::new(false),
        });
        let worker_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("worker".into())
            .spawn(move || worker_loop(&worker_shared))
            .map_err(OrchestratorError::Thread)?;
        Ok(Orchestrator {
            shared,
            worker: Mutex::new(Some(worker)),
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
        op.unix_time_start_ms = now_ms();
        let done = Arc::new(Completion::default());
        {
            // Checked and pushed under the queue lock, so shutdown cannot miss this task.
            let mut queue = lock(&self.shared.queue);
            if self.shared.stopping.load(Ordering::SeqCst) {
                return Err(OrchestratorError::ShuttingDown);
            }
            self.shared.oplog.add(&mut op)?;
            queue.push(
                Priority::Interactive,
                Task {
                    op_id: op.id,
                    kind: TaskKind::Backup {
                        plan_id: plan.id.clone(),
                    },
                    done: Some(Arc::clone(&done)),
                },
            );
        }
        self.shared.wake.notify_all();
        Ok((op, done))
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
        // The guard is held while joining, so a second caller returns only once the
        // worker has really ended.
        let mut worker = lock(&self.worker);
        if let Some(handle) = worker.take() {
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
    /// operation would leave it INPROGRESS in the history.
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
    }

    fn end_unstarted(&self, task: Task, status: OperationStatus, message: &str) {
        let mut op = match self.oplog.get(task.op_id) {
            Ok(Some(op)) => op,
            Ok(None) => return,
            Err(e) => {
                error!("could not read operation {}: {e}", task.op_id);
                return;
            }
        };
        op.status = status;
        op.display_message = message.to_string();
        op.unix_time_end_ms = now_ms();
        self.finish_op(&mut op);
        if let Some(done) = task.done {
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
    let outcome = catch_unwind(AssertUnwindSafe(|| match &task.kind {
        TaskKind::Backup { plan_id } => tasks::backup::run(shared, op_id, plan_id, &stop),
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
                    op.unix_time_end_ms = now_ms();
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
    // Follow-ups (the snapshot index, retention) run after the caller has its answer,
    // in the same flow, under the same panic guard.
    if let Some(follow_up) = follow_up
        && catch_unwind(AssertUnwindSafe(follow_up)).is_err()
    {
        error!("internal error in the follow-up work of operation {op_id}");
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
