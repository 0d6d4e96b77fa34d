//! Firing hooks for an event: which of the repo's and the plan's hooks match it, running
//! each as an `operationRunHook` in the parent operation's flow with its own log, and
//! what a failure means for the parent (`onError`). A hook whose conditions match an
//! event runs once for it, however many of its conditions match.

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::config::{Condition, Hook, HookAction, OnError, Plan, Repo};
use crate::logs::{LogWriter, Logs};
use crate::oplog::OpLog;
use crate::proto::{BackupProgressSummary, Op, Operation, OperationRunHook, OperationStatus};
use crate::restic::StopHandle;

use super::actions::{self, Ping, Timeouts};
use super::template;
use super::vars::{self, HookVars, PlanVars, RepoVars};

/// How long a command hook may run unless its `actionCommand.timeoutSeconds` says
/// otherwise (a footrest extension; Backrest ignores the key).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);
/// The longest pause of ON_ERROR_RETRY_EXPONENTIAL_BACKOFF.
const BACKOFF_CAP: Duration = Duration::from_secs(3600);

/// What the parent operation is to do after its hooks ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// ON_ERROR_CANCEL: the operation ends USER_CANCELLED; later hooks are skipped.
    Cancel(String),
    /// ON_ERROR_FATAL (or retries given up): the operation ends as an error.
    Fatal(String),
}

/// What hooks need from their surroundings.
pub struct Env<'a> {
    pub oplog: &'a OpLog,
    pub logs: &'a Logs,
    pub now_ms: &'a dyn Fn() -> i64,
    /// Waits (on the orchestrator's clock) unless the task is told to stop; false when
    /// it was.
    pub wait: &'a dyn Fn(Duration) -> bool,
    pub stop: &'a StopHandle,
    pub tz: &'a TimeZone,
    pub timeouts: Timeouts,
}

/// One moment of an operation that hooks may react to.
pub struct Event<'a> {
    /// The conditions this moment fulfils, e.g. `[SnapshotError, AnyError]`.
    pub conditions: &'a [Condition],
    pub parent: &'a Operation,
    pub repo: &'a Repo,
    pub plan: Option<&'a Plan>,
    /// What ran, e.g. `backup for plan "docs"`.
    pub task: String,
    pub error: String,
    pub duration: Duration,
    pub snapshot_stats: Option<BackupProgressSummary>,
}

/// Runs the hooks that match the event, repo hooks first, in config order.
pub fn fire(env: &Env, event: &Event) -> Verdict {
    let repo_hooks = event
        .repo
        .hooks
        .iter()
        .enumerate()
        .map(|(i, h)| (format!("repo/{}/hook/{i}", event.repo.id), h));
    let plan_hooks = event.plan.into_iter().flat_map(|p| {
        p.hooks
            .iter()
            .enumerate()
            .map(move |(i, h)| (format!("plan/{}/hook/{i}", p.id), h))
    });
    for (name, hook) in repo_hooks.chain(plan_hooks) {
        let Some(condition) = event
            .conditions
            .iter()
            .copied()
            .find(|c| hook.conditions.contains(c))
        else {
            continue;
        };
        if let Err(message) = run_with_retries(env, event, &name, hook, condition) {
            let message = format!("hook {name} failed: {message}");
            match hook.on_error {
                OnError::Ignore => warn!("{message} (onError: ignore)"),
                OnError::Cancel => return Verdict::Cancel(message),
                _ => return Verdict::Fatal(message),
            }
        }
    }
    Verdict::Continue
}

/// The pauses before each retry of a failing hook: ON_ERROR_RETRY_1MINUTE retries every
/// minute for ten minutes, RETRY_10MINUTES every ten minutes for an hour, and
/// EXPONENTIAL_BACKOFF after 10 s, doubling up to an hour between tries, ten times. Then
/// the hook has failed for good.
pub fn retry_pauses(on_error: OnError) -> Vec<Duration> {
    match on_error {
        OnError::Retry1Minute => vec![Duration::from_secs(60); 10],
        OnError::Retry10Minutes => vec![Duration::from_secs(600); 6],
        OnError::RetryExponentialBackoff => (0..10)
            .map(|i| (Duration::from_secs(10) * (1 << i)).min(BACKOFF_CAP))
            .collect(),
        _ => Vec::new(),
    }
}

fn run_with_retries(
    env: &Env,
    event: &Event,
    name: &str,
    hook: &Hook,
    condition: Condition,
) -> Result<(), String> {
    let mut result = run_once(env, event, name, hook, condition);
    for pause in retry_pauses(hook.on_error) {
        let Err(e) = &result else { break };
        info!(
            "hook {name} failed ({e}); trying again in {} s",
            pause.as_secs()
        );
        if !(env.wait)(pause) {
            return Err(format!("{e} (not retried: the operation was stopped)"));
        }
        result = run_once(env, event, name, hook, condition);
    }
    result
}

/// Runs one hook once, recorded as its own operation.
fn run_once(
    env: &Env,
    event: &Event,
    name: &str,
    hook: &Hook,
    condition: Condition,
) -> Result<(), String> {
    let parent = event.parent;
    let mut op = Operation::new(Op::RunHook(OperationRunHook {
        parent_op: parent.id,
        name: name.to_string(),
        condition: condition.name().to_string(),
    }));
    op.flow_id = parent.flow_id;
    op.repo_id = parent.repo_id.clone();
    op.repo_guid = parent.repo_guid.clone();
    op.plan_id = parent.plan_id.clone();
    op.instance_id = parent.instance_id.clone();
    op.snapshot_id = parent.snapshot_id.clone();
    op.status = OperationStatus::InProgress;
    op.unix_time_start_ms = (env.now_ms)();
    if let Err(e) = env.oplog.add(&mut op) {
        error!("could not record hook {name}: {e}");
    }
    let mut log = if op.id > 0 {
        op.logref = format!("t-{}", op.id);
        env.logs.create(&op.logref).unwrap_or_else(|e| {
            error!("could not create the log of hook {name}: {e}");
            op.logref.clear();
            LogWriter::discard()
        })
    } else {
        LogWriter::discard()
    };
    let vars = HookVars {
        event: condition,
        task: event.task.clone(),
        repo: Some(RepoVars::from(event.repo)),
        plan: event.plan.map(PlanVars::from),
        snapshot_id: parent.snapshot_id.clone(),
        snapshot_stats: event.snapshot_stats.clone(),
        cur_time: Timestamp::from_millisecond((env.now_ms)()).unwrap_or(Timestamp::UNIX_EPOCH),
        duration: event.duration,
        error: event.error.clone(),
    };
    let result = perform(env, hook, &vars, event, condition, &mut log);
    match &result {
        Ok(()) => op.status = OperationStatus::Success,
        Err(e) => {
            op.status = OperationStatus::Error;
            op.display_message = e.clone();
            log.line(&format!("[footrest: {e}]"));
        }
    }
    if let Err(e) = log.finish() {
        warn!("the log of hook {name} is incomplete: {e}");
    }
    op.unix_time_end_ms = (env.now_ms)();
    if op.id > 0
        && let Err(e) = env.oplog.update(&mut op)
    {
        error!("could not record the end of hook {name}: {e}");
    }
    result
}

fn render(source: &str, default: &str, data: &template::Value) -> Result<String, String> {
    let source = if source.trim().is_empty() {
        default
    } else {
        source
    };
    let t = template::parse(source, vars::schema()).map_err(|e| format!("template: {e}"))?;
    t.render(data).map_err(|e| format!("template: {e}"))
}

fn perform(
    env: &Env,
    hook: &Hook,
    vars: &HookVars,
    event: &Event,
    condition: Condition,
    log: &mut LogWriter,
) -> Result<(), String> {
    let data = vars.to_value_in(env.tz);
    let text = |template: &str| render(template, vars::DEFAULT_TEMPLATE, &data);
    let title = |template: &str| render(template, vars::DEFAULT_TITLE_TEMPLATE, &data);
    let t = &env.timeouts;
    let outcome = match hook.action() {
        None => return Err("the hook has no action".into()),
        Some(HookAction::Command(c)) => {
            let script = render(&c.command, "", &data)?;
            let timeout = c
                .extra
                .get("timeoutSeconds")
                .and_then(|v| v.as_u64())
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_COMMAND_TIMEOUT);
            let env_vars = command_env(vars, event);
            return actions::run_command(&script, &env_vars, timeout, log, env.stop)
                .map_err(|e| e.to_string());
        }
        Some(HookAction::Webhook(w)) => {
            let body = text(&w.template)?;
            let trimmed = body.trim_start();
            let content_type = if trimmed.starts_with('{') || trimmed.starts_with('[') {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            actions::webhook(&w.webhook_url, w.method, &body, content_type, t)
        }
        Some(HookAction::Healthchecks(h)) => {
            let ping = match condition {
                Condition::SnapshotStart
                | Condition::PruneStart
                | Condition::CheckStart
                | Condition::ForgetStart => Ping::Start,
                _ if !event.error.is_empty() => Ping::Fail,
                _ => Ping::Success,
            };
            actions::healthchecks(&h.webhook_url, ping, &text(&h.template)?, t)
        }
        Some(HookAction::Discord(d)) => actions::discord(&d.webhook_url, &text(&d.template)?, t),
        Some(HookAction::Slack(s)) => actions::slack(&s.webhook_url, &text(&s.template)?, t),
        Some(HookAction::Gotify(g)) => actions::gotify(
            &g.base_url,
            &g.token,
            &title(&g.title_template)?,
            &text(&g.template)?,
            g.priority,
            t,
        ),
        Some(HookAction::Telegram(tg)) => {
            actions::telegram(&tg.bot_token, &tg.chat_id, &text(&tg.template)?, t)
        }
        Some(HookAction::Shoutrrr(s)) => {
            actions::shoutrrr(&s.shoutrrr_url, &title("")?, &text(&s.template)?, t)
        }
    };
    match outcome {
        Ok(o) => {
            log.line(&o.output);
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The event's facts as environment variables, so a script needs no template.
pub fn command_env(vars: &HookVars, event: &Event) -> Vec<(String, String)> {
    let parent = event.parent;
    let mut env = vec![
        ("FOOTREST_EVENT", vars.event.name().to_string()),
        ("FOOTREST_TASK", vars.task.clone()),
        ("FOOTREST_REPO_ID", event.repo.id.clone()),
        (
            "FOOTREST_PLAN_ID",
            event.plan.map(|p| p.id.clone()).unwrap_or_default(),
        ),
        ("FOOTREST_OPERATION_ID", parent.id.to_string()),
        ("FOOTREST_FLOW_ID", parent.flow_id.to_string()),
        ("FOOTREST_STATUS", parent.status.name().to_string()),
        ("FOOTREST_SNAPSHOT_ID", vars.snapshot_id.clone()),
        ("FOOTREST_ERROR", vars.error.clone()),
        (
            "FOOTREST_DURATION_MS",
            vars.duration.as_millis().to_string(),
        ),
    ];
    if let Some(s) = &vars.snapshot_stats {
        env.extend([
            ("FOOTREST_FILES_NEW", s.files_new.to_string()),
            ("FOOTREST_FILES_CHANGED", s.files_changed.to_string()),
            ("FOOTREST_FILES_UNMODIFIED", s.files_unmodified.to_string()),
            ("FOOTREST_DATA_ADDED", s.data_added.to_string()),
            (
                "FOOTREST_TOTAL_FILES_PROCESSED",
                s.total_files_processed.to_string(),
            ),
            (
                "FOOTREST_TOTAL_BYTES_PROCESSED",
                s.total_bytes_processed.to_string(),
            ),
        ]);
    }
    env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_pauses_follow_the_policy() {
        assert!(retry_pauses(OnError::Ignore).is_empty());
        assert!(retry_pauses(OnError::Fatal).is_empty());
        assert_eq!(
            retry_pauses(OnError::Retry1Minute),
            vec![Duration::from_secs(60); 10]
        );
        assert_eq!(
            retry_pauses(OnError::Retry10Minutes),
            vec![Duration::from_secs(600); 6]
        );
        let exp = retry_pauses(OnError::RetryExponentialBackoff);
        assert_eq!(exp[0], Duration::from_secs(10));
        assert_eq!(exp[1], Duration::from_secs(20));
        assert_eq!(exp[8], Duration::from_secs(2560));
        assert_eq!(exp[9], Duration::from_secs(3600), "capped at an hour");
    }
}
