//! The config's types: Backrest's `config.json` (version 6) as Rust structs.
//!
//! Field names, enum names and numbers are Backrest's (`proto/v1/config.proto`). Each
//! struct keeps in `extra` the keys it does not know, and the known keys the file had
//! at their zero value, so a file written by Backrest (which writes every field) or by
//! a newer Backrest survives a load and save unchanged. Output follows proto3 JSON:
//! fields at their zero value are left out unless the file had them, oneof members
//! appear when set, enums are names, int64 values are strings (`modno` and `version`,
//! int32 in the protocol, are numbers). Reading and writing are done by `json`. This
//! file holds no logic beyond the mapping; `Debug` never shows a secret (passwords,
//! tokens, hook URLs, env values).

use super::json::{
    FromJson, Obj, Out, ToJson, deserialize_from_json, proto_enum, serialize_to_json,
};
use super::redact::{hidden, redact_uri};
use serde_json::{Map, Value};
use std::fmt;

/// The whole config file.
#[derive(Clone, Default, PartialEq)]
pub struct Config {
    /// Modification number, raised by every write from the UI (an int32 in Backrest).
    pub modno: i64,
    /// Format version; footrest reads version 6. `None` when the file has none.
    pub version: Option<i64>,
    /// This installation's name; backups are tagged `created-by:<instance>`.
    pub instance: String,
    pub repos: Vec<Repo>,
    pub plans: Vec<Plan>,
    /// Absent means no authentication.
    pub auth: Option<Auth>,
    /// Keys footrest does not use (`sync`, ...) and known keys the file had at their
    /// zero value, kept verbatim and written back in place.
    pub extra: Map<String, Value>,
}

impl FromJson for Config {
    fn read(mut o: Obj<'_>) -> Self {
        Config {
            modno: o.i64("modno"),
            version: o.opt_i64("version"),
            instance: o.string("instance"),
            repos: o.objects("repos"),
            plans: o.objects("plans"),
            auth: o.object("auth"),
            extra: o.finish(),
        }
    }
}

impl ToJson for Config {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.i64_number("modno", self.modno);
        o.opt_i64_number("version", self.version);
        o.string("instance", &self.instance);
        o.objects("repos", &self.repos);
        o.objects("plans", &self.plans);
        o.object("auth", &self.auth);
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("modno", &self.modno)
            .field("version", &self.version)
            .field("instance", &self.instance)
            .field("repos", &self.repos)
            .field("plans", &self.plans)
            .field("auth", &self.auth)
            .field("extra_keys", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A restic repository.
#[derive(Clone, Default, PartialEq)]
pub struct Repo {
    pub id: String,
    /// restic's repository location (`/srv/restic`, `sftp:...`, `rest:https://...`).
    pub uri: String,
    /// restic's repository id (`restic cat config` → `id`), 64 hex digits; may be empty.
    pub guid: String,
    pub password: String,
    /// `KEY=VALUE` entries added to restic's environment (`${VAR}` expanded at run time).
    pub env: Vec<String>,
    /// Extra restic flags; each entry is split like shell words.
    pub flags: Vec<String>,
    pub prune_policy: Option<PrunePolicy>,
    pub check_policy: Option<CheckPolicy>,
    pub hooks: Vec<Hook>,
    pub auto_unlock: bool,
    pub auto_initialize: bool,
    pub command_prefix: Option<CommandPrefix>,
    pub forget_policy: Option<ForgetPolicy>,
    pub extra: Map<String, Value>,
}

impl FromJson for Repo {
    const NAME_KEY: Option<&'static str> = Some("id");
    fn read(mut o: Obj<'_>) -> Self {
        Repo {
            id: o.string("id"),
            uri: o.string("uri"),
            guid: o.string("guid"),
            password: o.string("password"),
            env: o.strings("env"),
            flags: o.strings("flags"),
            prune_policy: o.object("prunePolicy"),
            check_policy: o.object("checkPolicy"),
            hooks: o.objects("hooks"),
            auto_unlock: o.bool("autoUnlock"),
            auto_initialize: o.bool("autoInitialize"),
            command_prefix: o.object("commandPrefix"),
            forget_policy: o.object("forgetPolicy"),
            extra: o.finish(),
        }
    }
}

impl ToJson for Repo {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.string("id", &self.id);
        o.string("uri", &self.uri);
        o.string("guid", &self.guid);
        o.string("password", &self.password);
        o.strings("env", &self.env);
        o.strings("flags", &self.flags);
        o.object("prunePolicy", &self.prune_policy);
        o.object("checkPolicy", &self.check_policy);
        o.objects("hooks", &self.hooks);
        o.bool("autoUnlock", self.auto_unlock);
        o.bool("autoInitialize", self.auto_initialize);
        o.object("commandPrefix", &self.command_prefix);
        o.object("forgetPolicy", &self.forget_policy);
    }
}

impl fmt::Debug for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env: Vec<&str> = self
            .env
            .iter()
            .map(|e| e.split_once('=').map_or("", |(k, _)| k))
            .collect();
        f.debug_struct("Repo")
            .field("id", &self.id)
            .field("uri", &redact_uri(&self.uri))
            .field("guid", &self.guid)
            .field("password", &hidden(&self.password))
            .field("env_names", &env)
            .field("flags", &self.flags)
            .field("prune_policy", &self.prune_policy)
            .field("check_policy", &self.check_policy)
            .field("hooks", &self.hooks)
            .field("auto_unlock", &self.auto_unlock)
            .field("auto_initialize", &self.auto_initialize)
            .field("command_prefix", &self.command_prefix)
            .field("forget_policy", &self.forget_policy)
            .field("extra_keys", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A backup plan: what to back up, where, when, and what to keep.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub id: String,
    /// The id of the repo it backs up to.
    pub repo: String,
    pub paths: Vec<String>,
    pub excludes: Vec<String>,
    pub iexcludes: Vec<String>,
    pub schedule: Option<Schedule>,
    pub retention: Option<RetentionPolicy>,
    pub hooks: Vec<Hook>,
    /// Extra `restic backup` flags; each entry is split like shell words. The protocol
    /// names this field `backup_flags` (not camelCase).
    pub backup_flags: Vec<String>,
    pub skip_if_unchanged: bool,
    pub extra: Map<String, Value>,
}

impl FromJson for Plan {
    const NAME_KEY: Option<&'static str> = Some("id");
    fn read(mut o: Obj<'_>) -> Self {
        Plan {
            id: o.string("id"),
            repo: o.string("repo"),
            paths: o.strings("paths"),
            excludes: o.strings("excludes"),
            iexcludes: o.strings("iexcludes"),
            schedule: o.object("schedule"),
            retention: o.object("retention"),
            hooks: o.objects("hooks"),
            backup_flags: o.strings("backup_flags"),
            skip_if_unchanged: o.bool("skipIfUnchanged"),
            extra: o.finish(),
        }
    }
}

impl ToJson for Plan {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.string("id", &self.id);
        o.string("repo", &self.repo);
        o.strings("paths", &self.paths);
        o.strings("excludes", &self.excludes);
        o.strings("iexcludes", &self.iexcludes);
        o.object("schedule", &self.schedule);
        o.object("retention", &self.retention);
        o.objects("hooks", &self.hooks);
        o.strings("backup_flags", &self.backup_flags);
        o.bool("skipIfUnchanged", self.skip_if_unchanged);
    }
}

/// When a task runs: at most one of `disabled`, `cron`, `maxFrequencyDays`,
/// `maxFrequencyHours` (none set: never scheduled), plus the clock it is read on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schedule {
    pub disabled: bool,
    /// Five fields: minute hour day-of-month month day-of-week.
    pub cron: Option<String>,
    pub max_frequency_days: Option<i32>,
    pub max_frequency_hours: Option<i32>,
    pub clock: Clock,
    pub extra: Map<String, Value>,
}

impl FromJson for Schedule {
    fn read(mut o: Obj<'_>) -> Self {
        Schedule {
            disabled: o.bool("disabled"),
            cron: o.opt_string("cron"),
            max_frequency_days: o.opt_i32("maxFrequencyDays"),
            max_frequency_hours: o.opt_i32("maxFrequencyHours"),
            clock: o.enumeration("clock"),
            extra: o.finish(),
        }
    }
}

impl ToJson for Schedule {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.bool("disabled", self.disabled);
        o.opt_string("cron", &self.cron);
        o.opt_i32("maxFrequencyDays", self.max_frequency_days);
        o.opt_i32("maxFrequencyHours", self.max_frequency_hours);
        o.enumeration("clock", self.clock);
    }
}

proto_enum! {
    /// The clock a schedule is read on.
    pub enum Clock {
        /// Same as `Local`.
        Default = 0 => "CLOCK_DEFAULT",
        Local = 1 => "CLOCK_LOCAL",
        Utc = 2 => "CLOCK_UTC",
        /// Counted from the last run rather than the wall clock.
        LastRunTime = 3 => "CLOCK_LAST_RUN_TIME",
    }
}

/// When and how to run `restic prune` on a repo.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrunePolicy {
    pub schedule: Option<Schedule>,
    /// Written as a string (int64 in the protocol). The protocol gives this field no
    /// presence, so `0` in the file reads as `None`.
    pub max_unused_bytes: Option<i64>,
    /// As `max_unused_bytes`, `0` in the file reads as `None`.
    pub max_unused_percent: Option<f64>,
    pub extra: Map<String, Value>,
}

impl FromJson for PrunePolicy {
    fn read(mut o: Obj<'_>) -> Self {
        PrunePolicy {
            schedule: o.object("schedule"),
            max_unused_bytes: o.nonzero_i64("maxUnusedBytes"),
            max_unused_percent: o.nonzero_f64("maxUnusedPercent"),
            extra: o.finish(),
        }
    }
}

impl ToJson for PrunePolicy {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.object("schedule", &self.schedule);
        o.opt_i64_string("maxUnusedBytes", self.max_unused_bytes);
        o.opt_f64("maxUnusedPercent", self.max_unused_percent);
    }
}

/// When and how to run `restic check` on a repo: at most one of `structureOnly` and
/// `readDataSubsetPercent`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckPolicy {
    pub schedule: Option<Schedule>,
    pub structure_only: Option<bool>,
    pub read_data_subset_percent: Option<f64>,
    pub extra: Map<String, Value>,
}

impl FromJson for CheckPolicy {
    fn read(mut o: Obj<'_>) -> Self {
        CheckPolicy {
            schedule: o.object("schedule"),
            structure_only: o.opt_bool("structureOnly"),
            read_data_subset_percent: o.opt_f64("readDataSubsetPercent"),
            extra: o.finish(),
        }
    }
}

impl ToJson for CheckPolicy {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.object("schedule", &self.schedule);
        o.opt_bool("structureOnly", self.structure_only);
        o.opt_f64("readDataSubsetPercent", self.read_data_subset_percent);
    }
}

/// A repo-wide `restic forget` run on a schedule.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ForgetPolicy {
    pub schedule: Option<Schedule>,
    pub retention: Option<RetentionPolicy>,
    pub extra: Map<String, Value>,
}

impl FromJson for ForgetPolicy {
    fn read(mut o: Obj<'_>) -> Self {
        ForgetPolicy {
            schedule: o.object("schedule"),
            retention: o.object("retention"),
            extra: o.finish(),
        }
    }
}

impl ToJson for ForgetPolicy {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.object("schedule", &self.schedule);
        o.object("retention", &self.retention);
    }
}

/// Which snapshots to keep: one of the three kinds (none set: keep everything).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RetentionPolicy {
    pub policy_keep_last_n: Option<i32>,
    pub policy_time_bucketed: Option<TimeBucketed>,
    pub policy_keep_all: Option<bool>,
    pub extra: Map<String, Value>,
}

impl FromJson for RetentionPolicy {
    fn read(mut o: Obj<'_>) -> Self {
        RetentionPolicy {
            policy_keep_last_n: o.opt_i32("policyKeepLastN"),
            policy_time_bucketed: o.object("policyTimeBucketed"),
            policy_keep_all: o.opt_bool("policyKeepAll"),
            extra: o.finish(),
        }
    }
}

impl ToJson for RetentionPolicy {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.opt_i32("policyKeepLastN", self.policy_keep_last_n);
        o.object("policyTimeBucketed", &self.policy_time_bucketed);
        o.opt_bool("policyKeepAll", self.policy_keep_all);
    }
}

/// Keep the newest snapshot of each of the last N hours, days, ... plus the last N.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimeBucketed {
    pub hourly: i32,
    pub daily: i32,
    pub weekly: i32,
    pub monthly: i32,
    pub yearly: i32,
    pub keep_last_n: i32,
    pub extra: Map<String, Value>,
}

impl FromJson for TimeBucketed {
    fn read(mut o: Obj<'_>) -> Self {
        TimeBucketed {
            hourly: o.i32("hourly"),
            daily: o.i32("daily"),
            weekly: o.i32("weekly"),
            monthly: o.i32("monthly"),
            yearly: o.i32("yearly"),
            keep_last_n: o.i32("keepLastN"),
            extra: o.finish(),
        }
    }
}

impl ToJson for TimeBucketed {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.i32("hourly", self.hourly);
        o.i32("daily", self.daily);
        o.i32("weekly", self.weekly);
        o.i32("monthly", self.monthly);
        o.i32("yearly", self.yearly);
        o.i32("keepLastN", self.keep_last_n);
    }
}

/// Runs restic under `ionice` / `nice`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommandPrefix {
    pub io_nice: IoNice,
    pub cpu_nice: CpuNice,
    pub extra: Map<String, Value>,
}

impl FromJson for CommandPrefix {
    fn read(mut o: Obj<'_>) -> Self {
        CommandPrefix {
            io_nice: o.enumeration("ioNice"),
            cpu_nice: o.enumeration("cpuNice"),
            extra: o.finish(),
        }
    }
}

impl ToJson for CommandPrefix {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.enumeration("ioNice", self.io_nice);
        o.enumeration("cpuNice", self.cpu_nice);
    }
}

proto_enum! {
    /// I/O priority for restic (Backrest's `CommandPrefix.IONiceLevel`).
    pub enum IoNice {
        Default = 0 => "IO_DEFAULT",
        /// `ionice -c2 -n7`
        BestEffortLow = 1 => "IO_BEST_EFFORT_LOW",
        /// `ionice -c2 -n0`
        BestEffortHigh = 2 => "IO_BEST_EFFORT_HIGH",
        /// `ionice -c3`
        Idle = 3 => "IO_IDLE",
    }
}

proto_enum! {
    /// CPU priority for restic (Backrest's `CommandPrefix.CPUNiceLevel`).
    pub enum CpuNice {
        Default = 0 => "CPU_DEFAULT",
        /// `nice -n -10`
        High = 1 => "CPU_HIGH",
        /// `nice -n 10`
        Low = 2 => "CPU_LOW",
    }
}

/// Something to run when events happen: conditions, what to do if it fails, and
/// exactly one action.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hook {
    pub conditions: Vec<Condition>,
    pub on_error: OnError,
    pub action_command: Option<CommandAction>,
    pub action_webhook: Option<WebhookAction>,
    pub action_discord: Option<UrlTemplateAction>,
    pub action_gotify: Option<GotifyAction>,
    pub action_slack: Option<UrlTemplateAction>,
    pub action_shoutrrr: Option<ShoutrrrAction>,
    pub action_healthchecks: Option<UrlTemplateAction>,
    pub action_telegram: Option<TelegramAction>,
    pub extra: Map<String, Value>,
}

impl FromJson for Hook {
    fn read(mut o: Obj<'_>) -> Self {
        Hook {
            conditions: o.enumerations("conditions"),
            on_error: o.enumeration("onError"),
            action_command: o.object("actionCommand"),
            action_webhook: o.object("actionWebhook"),
            action_discord: o.object("actionDiscord"),
            action_gotify: o.object("actionGotify"),
            action_slack: o.object("actionSlack"),
            action_shoutrrr: o.object("actionShoutrrr"),
            action_healthchecks: o.object("actionHealthchecks"),
            action_telegram: o.object("actionTelegram"),
            extra: o.finish(),
        }
    }
}

impl ToJson for Hook {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.enumerations("conditions", &self.conditions);
        o.enumeration("onError", self.on_error);
        o.object("actionCommand", &self.action_command);
        o.object("actionWebhook", &self.action_webhook);
        o.object("actionDiscord", &self.action_discord);
        o.object("actionGotify", &self.action_gotify);
        o.object("actionSlack", &self.action_slack);
        o.object("actionShoutrrr", &self.action_shoutrrr);
        o.object("actionHealthchecks", &self.action_healthchecks);
        o.object("actionTelegram", &self.action_telegram);
    }
}

/// A hook's action, borrowed from the [`Hook`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HookAction<'a> {
    Command(&'a CommandAction),
    Webhook(&'a WebhookAction),
    Discord(&'a UrlTemplateAction),
    Gotify(&'a GotifyAction),
    Slack(&'a UrlTemplateAction),
    Shoutrrr(&'a ShoutrrrAction),
    Healthchecks(&'a UrlTemplateAction),
    Telegram(&'a TelegramAction),
}

impl HookAction<'_> {
    /// The config key, e.g. `actionCommand`.
    pub fn key(&self) -> &'static str {
        match self {
            HookAction::Command(_) => "actionCommand",
            HookAction::Webhook(_) => "actionWebhook",
            HookAction::Discord(_) => "actionDiscord",
            HookAction::Gotify(_) => "actionGotify",
            HookAction::Slack(_) => "actionSlack",
            HookAction::Shoutrrr(_) => "actionShoutrrr",
            HookAction::Healthchecks(_) => "actionHealthchecks",
            HookAction::Telegram(_) => "actionTelegram",
        }
    }
}

impl Hook {
    /// Every action set on this hook, in protocol order (a valid hook has exactly one).
    pub fn actions(&self) -> Vec<HookAction<'_>> {
        let mut all = Vec::new();
        if let Some(a) = &self.action_command {
            all.push(HookAction::Command(a));
        }
        if let Some(a) = &self.action_webhook {
            all.push(HookAction::Webhook(a));
        }
        if let Some(a) = &self.action_discord {
            all.push(HookAction::Discord(a));
        }
        if let Some(a) = &self.action_gotify {
            all.push(HookAction::Gotify(a));
        }
        if let Some(a) = &self.action_slack {
            all.push(HookAction::Slack(a));
        }
        if let Some(a) = &self.action_shoutrrr {
            all.push(HookAction::Shoutrrr(a));
        }
        if let Some(a) = &self.action_healthchecks {
            all.push(HookAction::Healthchecks(a));
        }
        if let Some(a) = &self.action_telegram {
            all.push(HookAction::Telegram(a));
        }
        all
    }

    /// The hook's action (the first one, if a hook that failed validation has several).
    pub fn action(&self) -> Option<HookAction<'_>> {
        self.actions().into_iter().next()
    }
}

proto_enum! {
    /// The events a hook can fire on (Backrest's `Hook.Condition`).
    pub enum Condition {
        /// Never fires.
        Unknown = 0 => "CONDITION_UNKNOWN",
        AnyError = 1 => "CONDITION_ANY_ERROR",
        SnapshotStart = 2 => "CONDITION_SNAPSHOT_START",
        SnapshotEnd = 3 => "CONDITION_SNAPSHOT_END",
        SnapshotError = 4 => "CONDITION_SNAPSHOT_ERROR",
        SnapshotWarning = 5 => "CONDITION_SNAPSHOT_WARNING",
        SnapshotSuccess = 6 => "CONDITION_SNAPSHOT_SUCCESS",
        SnapshotSkipped = 7 => "CONDITION_SNAPSHOT_SKIPPED",
        PruneStart = 100 => "CONDITION_PRUNE_START",
        PruneError = 101 => "CONDITION_PRUNE_ERROR",
        PruneSuccess = 102 => "CONDITION_PRUNE_SUCCESS",
        CheckStart = 200 => "CONDITION_CHECK_START",
        CheckError = 201 => "CONDITION_CHECK_ERROR",
        CheckSuccess = 202 => "CONDITION_CHECK_SUCCESS",
        ForgetStart = 300 => "CONDITION_FORGET_START",
        ForgetError = 301 => "CONDITION_FORGET_ERROR",
        ForgetSuccess = 302 => "CONDITION_FORGET_SUCCESS",
    }
}

proto_enum! {
    /// What a failing hook does to the operation (Backrest's `Hook.OnError`).
    pub enum OnError {
        Ignore = 0 => "ON_ERROR_IGNORE",
        /// Cancels the operation and skips the hooks after it.
        Cancel = 1 => "ON_ERROR_CANCEL",
        /// Fails the operation.
        Fatal = 2 => "ON_ERROR_FATAL",
        Retry1Minute = 100 => "ON_ERROR_RETRY_1MINUTE",
        Retry10Minutes = 101 => "ON_ERROR_RETRY_10MINUTES",
        RetryExponentialBackoff = 103 => "ON_ERROR_RETRY_EXPONENTIAL_BACKOFF",
    }
}

proto_enum! {
    /// The HTTP method of a webhook; `Unknown` (unset) means POST.
    pub enum WebhookMethod {
        Unknown = 0 => "UNKNOWN",
        Get = 1 => "GET",
        Post = 2 => "POST",
    }
}

/// `actionCommand`: a shell script.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommandAction {
    pub command: String,
    pub extra: Map<String, Value>,
}

impl FromJson for CommandAction {
    fn read(mut o: Obj<'_>) -> Self {
        CommandAction {
            command: o.string("command"),
            extra: o.finish(),
        }
    }
}

impl ToJson for CommandAction {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.string("command", &self.command);
    }
}

/// `actionWebhook`: an HTTP request with a templated body.
#[derive(Clone, Default, PartialEq)]
pub struct WebhookAction {
    pub webhook_url: String,
    pub method: WebhookMethod,
    pub template: String,
    pub extra: Map<String, Value>,
}

impl FromJson for WebhookAction {
    fn read(mut o: Obj<'_>) -> Self {
        WebhookAction {
            webhook_url: o.string("webhookUrl"),
            method: o.enumeration("method"),
            template: o.string("template"),
            extra: o.finish(),
        }
    }
}

impl ToJson for WebhookAction {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.string("webhookUrl", &self.webhook_url);
        o.enumeration("method", self.method);
        o.string("template", &self.template);
    }
}

impl fmt::Debug for WebhookAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookAction")
            .field("webhook_url", &hidden(&self.webhook_url))
            .field("method", &self.method)
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

/// `actionDiscord`, `actionSlack`, `actionHealthchecks`: a URL and a message template.
#[derive(Clone, Default, PartialEq)]
pub struct UrlTemplateAction {
    pub webhook_url: String,
    pub template: String,
    pub extra: Map<String, Value>,
}

impl FromJson for UrlTemplateAction {
    fn read(mut o: Obj<'_>) -> Self {
        UrlTemplateAction {
            webhook_url: o.string("webhookUrl"),
            template: o.string("template"),
            extra: o.finish(),
        }
    }
}

impl ToJson for UrlTemplateAction {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.string("webhookUrl", &self.webhook_url);
        o.string("template", &self.template);
    }
}

impl fmt::Debug for UrlTemplateAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlTemplateAction")
            .field("webhook_url", &hidden(&self.webhook_url))
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

/// `actionGotify`: a Gotify server message.
#[derive(Clone, Default, PartialEq)]
pub struct GotifyAction {
    pub base_url: String,
    pub token: String,
    pub template: String,
    pub title_template: String,
    pub priority: i32,
    pub extra: Map<String, Value>,
}

impl FromJson for GotifyAction {
    fn read(mut o: Obj<'_>) -> Self {
        GotifyAction {
            base_url: o.string("baseUrl"),
            token: o.string("token"),
            template: o.string("template"),
            title_template: o.string("titleTemplate"),
            priority: o.i32("priority"),
            extra: o.finish(),
        }
    }
}

impl ToJson for GotifyAction {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.string("baseUrl", &self.base_url);
        o.string("token", &self.token);
        o.string("template", &self.template);
        o.string("titleTemplate", &self.title_template);
        o.i32("priority", self.priority);
    }
}

impl fmt::Debug for GotifyAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GotifyAction")
            .field("base_url", &redact_uri(&self.base_url))
            .field("token", &hidden(&self.token))
            .field("template", &self.template)
            .field("title_template", &self.title_template)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

/// `actionShoutrrr`: a notification through a shoutrrr URL (`ntfy://...`, `smtp://...`).
#[derive(Clone, Default, PartialEq)]
pub struct ShoutrrrAction {
    pub shoutrrr_url: String,
    pub template: String,
    pub extra: Map<String, Value>,
}

impl FromJson for ShoutrrrAction {
    fn read(mut o: Obj<'_>) -> Self {
        ShoutrrrAction {
            shoutrrr_url: o.string("shoutrrrUrl"),
            template: o.string("template"),
            extra: o.finish(),
        }
    }
}

impl ToJson for ShoutrrrAction {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.string("shoutrrrUrl", &self.shoutrrr_url);
        o.string("template", &self.template);
    }
}

impl fmt::Debug for ShoutrrrAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShoutrrrAction")
            .field("shoutrrr_url", &hidden(&self.shoutrrr_url))
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

/// `actionTelegram`: a Telegram bot message.
#[derive(Clone, Default, PartialEq)]
pub struct TelegramAction {
    pub bot_token: String,
    pub chat_id: String,
    pub template: String,
    pub extra: Map<String, Value>,
}

impl FromJson for TelegramAction {
    fn read(mut o: Obj<'_>) -> Self {
        TelegramAction {
            bot_token: o.string("botToken"),
            chat_id: o.string("chatId"),
            template: o.string("template"),
            extra: o.finish(),
        }
    }
}

impl ToJson for TelegramAction {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.string("botToken", &self.bot_token);
        o.string("chatId", &self.chat_id);
        o.string("template", &self.template);
    }
}

impl fmt::Debug for TelegramAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramAction")
            .field("bot_token", &hidden(&self.bot_token))
            .field("chat_id", &self.chat_id)
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

/// Who may use the API. Absent or `disabled`: no authentication.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Auth {
    pub disabled: bool,
    pub users: Vec<User>,
    pub extra: Map<String, Value>,
}

impl FromJson for Auth {
    fn read(mut o: Obj<'_>) -> Self {
        Auth {
            disabled: o.bool("disabled"),
            users: o.objects("users"),
            extra: o.finish(),
        }
    }
}

impl ToJson for Auth {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.bool("disabled", self.disabled);
        o.objects("users", &self.users);
    }
}

/// A user: a name and a bcrypt hash of the password, base64-wrapped (Backrest's format).
#[derive(Clone, Default, PartialEq)]
pub struct User {
    pub name: String,
    /// Standard padded base64 of a bcrypt hash string (`$2a$10$...`).
    pub password_bcrypt: String,
    pub extra: Map<String, Value>,
}

impl FromJson for User {
    const NAME_KEY: Option<&'static str> = Some("name");
    fn read(mut o: Obj<'_>) -> Self {
        User {
            name: o.string("name"),
            password_bcrypt: o.string("passwordBcrypt"),
            extra: o.finish(),
        }
    }
}

impl ToJson for User {
    fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
    fn write(&self, o: &mut Out<'_>) {
        o.string("name", &self.name);
        o.string("passwordBcrypt", &self.password_bcrypt);
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password_bcrypt", &hidden(&self.password_bcrypt))
            .finish_non_exhaustive()
    }
}

serialize_to_json!(
    Config,
    Repo,
    Plan,
    Schedule,
    PrunePolicy,
    CheckPolicy,
    ForgetPolicy,
    RetentionPolicy,
    TimeBucketed,
    CommandPrefix,
    Hook,
    CommandAction,
    WebhookAction,
    UrlTemplateAction,
    GotifyAction,
    ShoutrrrAction,
    TelegramAction,
    Auth,
    User
);

deserialize_from_json!(
    Config,
    Repo,
    Plan,
    Schedule,
    PrunePolicy,
    CheckPolicy,
    ForgetPolicy,
    RetentionPolicy,
    TimeBucketed,
    CommandPrefix,
    Hook,
    CommandAction,
    WebhookAction,
    UrlTemplateAction,
    GotifyAction,
    ShoutrrrAction,
    TelegramAction,
    Auth,
    User,
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn enum_names_or_numbers() {
        let h: Hook = serde_json::from_value(json!({
            "conditions": ["CONDITION_SNAPSHOT_START", 101],
            "on_error": 103,
            "actionCommand": {"command": "true"}
        }))
        .unwrap();
        assert_eq!(
            h.conditions,
            vec![Condition::SnapshotStart, Condition::PruneError]
        );
        assert_eq!(h.on_error, OnError::RetryExponentialBackoff);
        assert_eq!(
            serde_json::to_value(&h).unwrap(),
            json!({
                "conditions": ["CONDITION_SNAPSHOT_START", "CONDITION_PRUNE_ERROR"],
                "onError": "ON_ERROR_RETRY_EXPONENTIAL_BACKOFF",
                "actionCommand": {"command": "true"}
            })
        );
    }

    #[test]
    fn unknown_enum_names_the_field_and_the_allowed_values() {
        let e = serde_json::from_value::<Schedule>(json!({"clock": "CLOCK_MOON"}))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "clock has unknown value \"CLOCK_MOON\"; expected one of CLOCK_DEFAULT, \
             CLOCK_LOCAL, CLOCK_UTC, CLOCK_LAST_RUN_TIME"
        );
        let e = serde_json::from_value::<CommandPrefix>(json!({"ioNice": 9}))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "ioNice has unknown value 9; expected one of IO_DEFAULT, IO_BEST_EFFORT_LOW, \
             IO_BEST_EFFORT_HIGH, IO_IDLE"
        );
        // A string must be a name, as in proto3 JSON; "302" is not one.
        let e = serde_json::from_value::<Hook>(json!({"conditions": ["302"]}))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "conditions[0] has unknown value \"302\"; expected one of CONDITION_UNKNOWN, "
            ),
            "{e}"
        );
    }

    #[test]
    fn zero_values_are_left_out_and_oneof_members_kept() {
        let r = RetentionPolicy {
            policy_keep_last_n: Some(0),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"policyKeepLastN": 0})
        );
        let s = Schedule::default();
        assert_eq!(serde_json::to_value(&s).unwrap(), json!({}));
    }

    #[test]
    fn numbers_are_written_as_backrest_writes_them() {
        let p: PrunePolicy = serde_json::from_value(json!({
            "maxUnusedBytes": 1048576, "maxUnusedPercent": 10.0
        }))
        .unwrap();
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(
            text,
            r#"{"maxUnusedBytes":"1048576","maxUnusedPercent":10}"#
        );
        let c: CheckPolicy =
            serde_json::from_value(json!({"readDataSubsetPercent": "2.5"})).unwrap();
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"readDataSubsetPercent":2.5}"#
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let repo: Repo = serde_json::from_value(json!({
            "id": "r", "uri": "rest:https://me:s3cret@host:8000/r", "password": "pw-xyz",
            "env": ["AWS_SECRET_ACCESS_KEY=abcdef"],
            "hooks": [{"conditions": [1], "actionTelegram": {"botToken": "tok-123", "chatId": "5"},
                       "actionGotify": {"baseUrl": "https://g", "token": "gtok"},
                       "actionWebhook": {"webhookUrl": "https://x/secretpath"},
                       "actionShoutrrr": {"shoutrrrUrl": "ntfy://secret@host/t"}}]
        }))
        .unwrap();
        let text = format!("{repo:?}");
        for secret in [
            "s3cret",
            "pw-xyz",
            "abcdef",
            "tok-123",
            "gtok",
            "secretpath",
            "secret@",
        ] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        assert!(text.contains("AWS_SECRET_ACCESS_KEY"));
        let user: User =
            serde_json::from_value(json!({"name": "admin", "passwordBcrypt": "JDJh"})).unwrap();
        assert!(!format!("{user:?}").contains("JDJh"));
    }
}
