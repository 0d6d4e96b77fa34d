//! The work the worker does, one file per kind of task (a restic command a user typed
//! included; `restore` also lists a snapshot's folder for a waiting request), and what
//! they share: the
//! runner that takes an operation from PENDING through INPROGRESS to its end with a log,
//! turning a config repo into what restic needs, learning a repo's guid, clearing stale
//! locks, and waiting out a lock held by another live restic.

pub mod backup;
pub mod check;
pub mod forget;
pub mod index;
pub mod prune;
pub mod restore;
pub mod run_command;
pub mod stats;
pub mod unlock;

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{self, Condition, Config};
use crate::hooks::{self, actions::Timeouts, run::Verdict};
use crate::logs::LogWriter;
use crate::proto::{BackupProgressEntry, Op, Operation, OperationStatus};
use crate::restic::{self, Restic, ResticError, StopHandle};

use super::{Shared, StopReason, TaskKind};

/// How long a task waits for a lock held by another live restic before it fails.
const LOCK_WAIT_LIMIT: Duration = Duration::from_secs(600);
/// The first wait for a lock; it doubles up to [`LOCK_RETRY_MAX`].
const LOCK_RETRY_FIRST: Duration = Duration::from_secs(5);
const LOCK_RETRY_MAX: Duration = Duration::from_secs(120);

/// Work to do after the waiting caller has been answered (snapshot indexing, retention).
pub type FollowUp = Box<dyn FnOnce() + Send>;

/// How a task ended: its final operation (`None`: read it back from the oplog) and any
/// follow-up work.
#[derive(Default)]
pub struct Ended {
    pub op: Option<Operation>,
    pub follow_up: Option<FollowUp>,
}

/// Why a task failed.
#[derive(Debug)]
pub enum TaskError {
    Restic(ResticError),
    /// A hook with ON_ERROR_CANCEL failed: the operation ends USER_CANCELLED.
    CancelledByHook(String),
    /// Anything else, said in full.
    Other(String),
}

impl From<ResticError> for TaskError {
    fn from(e: ResticError) -> Self {
        TaskError::Restic(e)
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Restic(e) => write!(f, "{e}"),
            TaskError::CancelledByHook(m) | TaskError::Other(m) => f.write_str(m),
        }
    }
}

/// What a task body sees while it runs: the config in force when it started, its repo,
/// its operation (to record results in) and its log.
pub struct Ctx<'a> {
    pub shared: &'a Arc<Shared>,
    pub config: &'a Config,
    pub repo: &'a config::Repo,
    pub target: restic::Repo,
    pub op: Operation,
    pub log: LogWriter,
    pub stop: &'a StopHandle,
    /// A backup that changed nothing and whose snapshot was removed (skipIfUnchanged):
    /// SNAPSHOT_SKIPPED fires instead of SNAPSHOT_SUCCESS.
    pub skipped: bool,
}

impl Ctx<'_> {
    pub fn restic(&self) -> &Restic {
        &self.shared.restic
    }

    /// Runs a restic command; when the repository is locked by another live restic,
    /// waits and tries again with a growing pause for up to ten minutes (restic 0.14 has
    /// no `--retry-lock`), saying so in the operation's message. A stale lock (its
    /// process is gone) is removed with `restic unlock` at once.
    pub fn with_lock_retry<T>(
        &mut self,
        mut f: impl FnMut(&mut Self) -> Result<T, ResticError>,
    ) -> Result<T, ResticError> {
        let started = Instant::now();
        let mut pause = LOCK_RETRY_FIRST;
        let mut unlocked_stale = false;
        loop {
            let err = match f(self) {
                Err(e @ ResticError::Locked { .. }) => e,
                other => return other,
            };
            if !unlocked_stale && err.lock_is_stale(&host_name()) {
                unlocked_stale = true;
                self.log.line(
                    "[footrest: the repository has a stale lock; removing it with restic unlock]",
                );
                let (restic, target) = (&self.shared.restic, &self.target);
                if let Err(e) = restic.unlock(target, self.stop, &mut self.log) {
                    warn!("repo {:?}: restic unlock failed: {e}", self.repo.id);
                }
                continue;
            }
            if started.elapsed() + pause > LOCK_WAIT_LIMIT {
                return Err(err);
            }
            let holder = match err.lock_holder() {
                Some(h) => format!("PID {} on {}", h.pid, h.host),
                None => "another restic".to_string(),
            };
            self.op.display_message = format!(
                "waiting for the repository lock held by {holder}; trying again in {} s",
                pause.as_secs()
            );
            self.log
                .line(&format!("[footrest: {}]", self.op.display_message));
            self.shared.save(&mut self.op);
            if !sleep_unless_stopped(self.stop, pause) {
                return Err(ResticError::Stopped);
            }
            pause = (pause * 2).min(LOCK_RETRY_MAX);
            self.op.display_message.clear();
            self.shared.save(&mut self.op);
        }
    }
}

/// Sleeps in short steps; false when the task was told to stop meanwhile.
fn sleep_unless_stopped(stop: &StopHandle, total: Duration) -> bool {
    let until = Instant::now() + total;
    while Instant::now() < until {
        if stop.is_stopped() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
    }
    !stop.is_stopped()
}

/// This machine's host name, as restic records it in its locks.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Runs one task of the worker's queue.
pub fn run(shared: &Arc<Shared>, op_id: i64, kind: &TaskKind, stop: &StopHandle) -> Ended {
    match kind {
        TaskKind::Backup { plan_id } => {
            run_repo_task(shared, op_id, stop, |ctx| backup::run(ctx, plan_id))
        }
        TaskKind::Forget {
            plan_id,
            snapshot_id,
            ..
        } => run_repo_task(shared, op_id, stop, |ctx| {
            forget::run(ctx, plan_id.as_deref(), snapshot_id.as_deref())
        }),
        TaskKind::Prune { .. } => run_repo_task(shared, op_id, stop, prune::run),
        TaskKind::Check { .. } => run_repo_task(shared, op_id, stop, check::run),
        TaskKind::Stats { .. } => run_repo_task(shared, op_id, stop, stats::run),
        TaskKind::Index { .. } => run_repo_task(shared, op_id, stop, index::run),
        TaskKind::Unlock { .. } => run_repo_task(shared, op_id, stop, unlock::run),
        TaskKind::RunCommand { command, .. } => {
            run_repo_task(shared, op_id, stop, |ctx| run_command::run(ctx, command))
        }
        TaskKind::Restore {
            snapshot_id,
            path,
            target,
            ..
        } => run_repo_task(shared, op_id, stop, |ctx| {
            restore::run(ctx, snapshot_id, path, target)
        }),
    }
}

/// Takes an operation from PENDING to its end: INPROGRESS with a log, the repo's guid
/// learned and stale locks cleared, then `body`; its result decides the end status
/// (a body may set WARNING itself), and the final row is written before anyone is told.
fn run_repo_task(
    shared: &Arc<Shared>,
    op_id: i64,
    stop: &StopHandle,
    body: impl FnOnce(&mut Ctx) -> Result<Option<FollowUp>, TaskError>,
) -> Ended {
    let mut op = match shared.oplog.get(op_id) {
        Ok(Some(op)) => op,
        Ok(None) => {
            error!("operation {op_id} vanished from the operation log before it ran");
            return Ended::default();
        }
        Err(e) => {
            error!("could not read operation {op_id}: {e}");
            return Ended::default();
        }
    };
    let config = shared.config.get();
    op.status = OperationStatus::InProgress;
    op.unix_time_start_ms = shared.clock.now_ms();
    op.logref = format!("t-{}", op.id);
    // The log exists before the operation names it, so a reader never finds a logref
    // without its log.
    let log = shared.logs.create(&op.logref).unwrap_or_else(|e| {
        error!("could not create the log of operation {}: {e}", op.id);
        op.logref.clear();
        LogWriter::discard()
    });
    shared.save(&mut op);
    let Some(repo) = config.repo(&op.repo_id) else {
        let message = format!(
            "repo {:?} was removed from the config before this operation started",
            op.repo_id
        );
        op.status = OperationStatus::Error;
        op.display_message = message;
        op.unix_time_end_ms = shared.clock.now_ms();
        return end(shared, op, log, None);
    };
    let mut ctx = Ctx {
        shared,
        config: &config,
        repo,
        target: restic_repo(repo),
        op,
        log,
        stop,
        skipped: false,
    };
    let start_hooks = match start_condition(&ctx.op.op) {
        Some(c) => fire_hooks(&ctx, &[c], ""),
        None => Verdict::Continue,
    };
    let result = match start_hooks {
        Verdict::Cancel(m) => Err(TaskError::CancelledByHook(m)),
        Verdict::Fatal(m) => Err(TaskError::Other(m)),
        Verdict::Continue => match ensure_guid(shared, repo, stop, &mut ctx.log) {
            Ok(guid) => {
                ctx.op.repo_guid = guid;
                unlock_if_needed(shared, repo, stop, &mut ctx.log);
                body(&mut ctx)
            }
            Err(e) => Err(TaskError::Other(e)),
        },
    };
    if matches!(result, Err(TaskError::Restic(ResticError::Stopped))) {
        unlock_after_stop(shared, repo, &mut ctx.log);
    }
    if matches!(
        result,
        Err(TaskError::Restic(ResticError::RepoUnreachable { .. }))
    ) {
        // restic was stopped with its lock in place, and the repository cannot be
        // reached to remove it now: the next task unlocks first.
        shared.mark_needs_unlock(&repo.id);
    }
    let follow_up = settle(&mut ctx.op, result, shared);
    end_hooks(&mut ctx);
    end(shared, ctx.op, ctx.log, follow_up)
}

/// The condition that fires when an operation of this kind starts.
fn start_condition(op: &Op) -> Option<Condition> {
    match op {
        Op::Backup(_) => Some(Condition::SnapshotStart),
        Op::Prune(_) => Some(Condition::PruneStart),
        Op::Check(_) => Some(Condition::CheckStart),
        Op::Forget(_) => Some(Condition::ForgetStart),
        _ => None,
    }
}

/// The conditions that fire when an operation has ended, in firing order: its outcome,
/// then (for backups) the end. Cancelled operations fire no error conditions.
fn end_conditions(op: &Operation, skipped: bool) -> Vec<Vec<Condition>> {
    use Condition as C;
    use OperationStatus as S;
    let outcome = match (&op.op, op.status) {
        (Op::Backup(_), S::Success) if skipped => vec![C::SnapshotSkipped],
        (Op::Backup(_), S::Success) => vec![C::SnapshotSuccess],
        (Op::Backup(_), S::Warning) => vec![C::SnapshotWarning],
        (Op::Backup(_), S::Error) => vec![C::SnapshotError, C::AnyError],
        (Op::Prune(_), S::Success) => vec![C::PruneSuccess],
        (Op::Prune(_), S::Error) => vec![C::PruneError, C::AnyError],
        (Op::Check(_), S::Success) => vec![C::CheckSuccess],
        (Op::Check(_), S::Error) => vec![C::CheckError, C::AnyError],
        (Op::Forget(_), S::Success) => vec![C::ForgetSuccess],
        (Op::Forget(_), S::Error) => vec![C::ForgetError, C::AnyError],
        (_, S::Error) => vec![C::AnyError],
        _ => vec![],
    };
    let mut out = vec![outcome];
    if matches!(op.op, Op::Backup(_)) {
        out.push(vec![C::SnapshotEnd]);
    }
    out.retain(|c| !c.is_empty());
    out
}

/// Fires the hooks of the operation's repo and plan for these conditions.
fn fire_hooks(ctx: &Ctx, conditions: &[Condition], error: &str) -> Verdict {
    let shared = ctx.shared;
    let op = &ctx.op;
    let plan = ctx.config.plan(&op.plan_id);
    let what = kind_name(op);
    let task = match plan {
        Some(p) => format!("{what} for plan {:?}", p.id),
        None => format!("{what} of repo {:?}", ctx.repo.id),
    };
    let snapshot_stats = match &op.op {
        Op::Backup(b) => match &b.last_status {
            Some(BackupProgressEntry::Summary(s)) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    let end = if op.unix_time_end_ms > 0 {
        op.unix_time_end_ms
    } else {
        shared.clock.now_ms()
    };
    let duration = Duration::from_millis((end - op.unix_time_start_ms).max(0) as u64);
    let now = || shared.clock.now_ms();
    let wait =
        |d: Duration| sleep_unless_stopped(ctx.stop, shared.clock.real_wait(d.as_millis() as i64));
    let env = hooks::run::Env {
        oplog: &shared.oplog,
        logs: &shared.logs,
        now_ms: &now,
        wait: &wait,
        stop: ctx.stop,
        tz: &shared.tz,
        timeouts: Timeouts::default(),
    };
    let event = hooks::run::Event {
        conditions,
        parent: op,
        repo: ctx.repo,
        plan,
        task,
        error: error.to_string(),
        duration,
        snapshot_stats,
    };
    hooks::run::fire(&env, &event)
}

/// Fires the end hooks; a hook that fails with CANCEL or FATAL changes the status.
fn end_hooks(ctx: &mut Ctx) {
    for conditions in end_conditions(&ctx.op, ctx.skipped) {
        let error = if ctx.op.status == OperationStatus::Error {
            ctx.op.display_message.clone()
        } else {
            String::new()
        };
        match fire_hooks(ctx, &conditions, &error) {
            Verdict::Continue => {}
            Verdict::Cancel(m) => {
                ctx.op.status = OperationStatus::UserCancelled;
                ctx.op.display_message = m;
                return;
            }
            Verdict::Fatal(m) => {
                ctx.op.status = OperationStatus::Error;
                ctx.op.display_message = m;
                return;
            }
        }
    }
}

/// Decides the end status from the task's result.
fn settle(
    op: &mut Operation,
    result: Result<Option<FollowUp>, TaskError>,
    shared: &Shared,
) -> Option<FollowUp> {
    let what = kind_name(op);
    op.unix_time_end_ms = shared.clock.now_ms();
    match result {
        Ok(follow_up) => {
            if !matches!(op.status, OperationStatus::Warning) {
                op.status = OperationStatus::Success;
            }
            follow_up
        }
        Err(TaskError::Restic(ResticError::Stopped)) => {
            let (status, message) = match shared.stop_reason(op.id) {
                Some(StopReason::User) => (
                    OperationStatus::UserCancelled,
                    format!("the {what} was cancelled; restic was interrupted"),
                ),
                _ => (
                    OperationStatus::SystemCancelled,
                    format!("footrest stopped while the {what} ran; restic was interrupted"),
                ),
            };
            op.status = status;
            op.display_message = message;
            None
        }
        Err(TaskError::CancelledByHook(m)) => {
            op.status = OperationStatus::UserCancelled;
            op.display_message = m;
            None
        }
        Err(e) => {
            op.status = OperationStatus::Error;
            op.display_message = e.to_string();
            None
        }
    }
}

/// `backup`, `prune`, ...: the kind of an operation, for messages.
fn kind_name(op: &Operation) -> String {
    op.op
        .member_name()
        .trim_start_matches("operation")
        .to_lowercase()
}

/// Writes the final state (the log closed first) and says so in footrest's log.
fn end(
    shared: &Shared,
    mut op: Operation,
    mut log: LogWriter,
    follow_up: Option<FollowUp>,
) -> Ended {
    let what = kind_name(&op);
    if !op.display_message.is_empty() {
        log.line(&format!("[footrest: {}]", op.display_message));
    }
    if let Err(e) = log.finish() {
        warn!("the log of operation {} is incomplete: {e}", op.id);
    }
    if op.unix_time_end_ms == 0 {
        op.unix_time_end_ms = shared.clock.now_ms();
    }
    shared.finish_op(&mut op);
    match op.status {
        OperationStatus::Error => warn!(
            "{what} of plan {:?} in repo {:?} failed (operation {}): {}",
            op.plan_id, op.repo_id, op.id, op.display_message
        ),
        status => info!(
            "{what} of plan {:?} in repo {:?} ended {} (operation {})",
            op.plan_id,
            op.repo_id,
            status.name(),
            op.id
        ),
    }
    Ended {
        op: Some(op),
        follow_up,
    }
}

/// The repository as restic needs it.
pub fn restic_repo(repo: &config::Repo) -> restic::Repo {
    let prefix = repo.command_prefix.as_ref();
    restic::Repo {
        uri: repo.uri.clone(),
        password: repo.password.clone(),
        env: repo.env.clone(),
        flags: repo.flags.clone(),
        io_nice: prefix.and_then(|p| match p.io_nice {
            config::IoNice::Default => None,
            config::IoNice::BestEffortLow => Some(restic::IoNice::Low),
            config::IoNice::BestEffortHigh => Some(restic::IoNice::High),
            config::IoNice::Idle => Some(restic::IoNice::Idle),
        }),
        cpu_nice: prefix.and_then(|p| match p.cpu_nice {
            config::CpuNice::Default => None,
            config::CpuNice::High => Some(restic::CpuNice::High),
            config::CpuNice::Low => Some(restic::CpuNice::Low),
        }),
    }
}

/// The repo's guid: from the config, else from `restic cat config` (after `restic init`
/// when the repo has `autoInitialize` and does not exist yet), written back to the
/// config file.
pub fn ensure_guid(
    shared: &Shared,
    repo: &config::Repo,
    stop: &StopHandle,
    log: &mut dyn Write,
) -> Result<String, String> {
    if !repo.guid.is_empty() {
        return Ok(repo.guid.clone());
    }
    let target = restic_repo(repo);
    let cfg = match shared.restic.cat_config(&target, stop) {
        Ok(cfg) => cfg,
        Err(e) if e.is_repo_not_found() && repo.auto_initialize => {
            info!(
                "repo {:?}: no repository there yet; initialising it",
                repo.id
            );
            shared
                .restic
                .init(&target, stop, log)
                .map_err(|e| format!("repo {:?}: restic init failed: {e}", repo.id))?;
            shared
                .restic
                .cat_config(&target, stop)
                .map_err(|e| format!("repo {:?}: {e}", repo.id))?
        }
        Err(e) => return Err(format!("repo {:?}: {e}", repo.id)),
    };
    if let Err(e) = shared.config.set_repo_guid(&repo.id, &cfg.id) {
        warn!(
            "repo {:?}: could not write its guid into the config file: {e}",
            repo.id
        );
    }
    Ok(cfg.id)
}

/// Runs `restic unlock` (which removes only stale locks) when the repo asks for it
/// (`autoUnlock`) or an earlier run left it possibly locked. A failure is logged in the
/// operation's log and the task goes on: restic will say if the repo is still locked.
pub fn unlock_if_needed(
    shared: &Shared,
    repo: &config::Repo,
    stop: &StopHandle,
    log: &mut dyn Write,
) {
    let needed = shared.take_needs_unlock(&repo.id);
    if !(needed || repo.auto_unlock) {
        return;
    }
    let restic_repo = restic_repo(repo);
    if let Err(e) = shared.restic.unlock(&restic_repo, stop, log) {
        let _ = writeln!(log, "[footrest: restic unlock failed: {e}]");
        warn!("repo {:?}: restic unlock failed: {e}", repo.id);
        if needed {
            shared.mark_needs_unlock(&repo.id);
        }
        return;
    }
    // After a crash or a stopped restic: restic takes the holder of a lock for alive as
    // long as its process exists, and a restic that outlived a killed footrest may not
    // have been reaped yet (a zombie, under an init that reaps slowly, as in many
    // containers). Such a lock survives `restic unlock`.
    if needed {
        remove_dead_holders_locks(shared, repo, &restic_repo, stop, log);
    }
}

/// Removes the locks `restic unlock` left when every one of them names a process of
/// this host that has ended (gone, or a zombie). Any other lock (a live restic, another
/// host) stays, and the repo is looked at again before its next task.
fn remove_dead_holders_locks(
    shared: &Shared,
    repo: &config::Repo,
    restic_repo: &crate::restic::Repo,
    stop: &StopHandle,
    log: &mut dyn Write,
) {
    let restic = &shared.restic;
    let locks = match restic.list_locks(restic_repo, stop) {
        Ok(locks) => locks,
        Err(e) => {
            let _ = writeln!(log, "[footrest: cannot list the repository's locks: {e}]");
            shared.mark_needs_unlock(&repo.id);
            return;
        }
    };
    if locks.is_empty() {
        return;
    }
    let host = host_name();
    let all_dead = locks
        .iter()
        .all(|id| match restic.lock_holder(restic_repo, id, stop) {
            Ok(h) => !host.is_empty() && h.host.eq_ignore_ascii_case(&host) && process_ended(h.pid),
            Err(_) => false,
        });
    if !all_dead {
        let _ = writeln!(
            log,
            "[footrest: {} lock(s) left after restic unlock; looking again before the next task]",
            locks.len()
        );
        shared.mark_needs_unlock(&repo.id);
        return;
    }
    let _ = writeln!(
        log,
        "[footrest: {} lock(s) of restic processes that have ended; removing them]",
        locks.len()
    );
    if let Err(e) = restic.remove_all_locks(restic_repo, stop, log) {
        warn!(
            "repo {:?}: removing the locks of ended restic processes failed: {e}",
            repo.id
        );
        shared.mark_needs_unlock(&repo.id);
    }
}

/// Whether a process of this host has ended: no longer there, or a zombie waiting to be
/// reaped (restic itself still counts a zombie as alive).
fn process_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold any
        // character: read it after the last ')'.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
        Err(_) => true,
    }
}

/// Removes stale locks at once, after restic was stopped or killed mid-operation.
pub fn unlock_after_stop(shared: &Shared, repo: &config::Repo, log: &mut dyn Write) {
    if let Err(e) = shared
        .restic
        .unlock(&restic_repo(repo), &StopHandle::new(), log)
    {
        warn!(
            "repo {:?}: restic unlock after stopping restic failed: {e}; it is retried before the next task",
            repo.id
        );
        shared.mark_needs_unlock(&repo.id);
    }
}

/// At start-up: learn the guid of every repo that has none yet, so a fresh starter
/// config gets its repository initialised before the first call. Failures are only
/// logged; the repo is tried again when a task uses it.
pub fn prepare_repos(shared: &Arc<Shared>, stop: &StopHandle) {
    let config = shared.config.get();
    for repo in config.repos.iter().filter(|r| r.guid.is_empty()) {
        if shared.stopping() || stop.is_stopped() {
            return;
        }
        match ensure_guid(shared, repo, stop, &mut std::io::sink()) {
            Ok(guid) => info!("repo {:?}: repository id {guid}", repo.id),
            Err(e) => warn!("{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::process_ended;
    use std::time::{Duration, Instant};

    #[test]
    fn a_zombie_or_a_gone_process_has_ended_a_running_one_has_not() {
        assert!(!process_ended(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped yet: a zombie once it has exited.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !process_ended(pid) {
            assert!(Instant::now() < deadline, "the child never ended");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        child.wait().unwrap();
        assert!(process_ended(pid));
    }
}
