//! Validation of a parsed config: ids, references between sections, ranges, the
//! one-of rules, cron syntax, hooks and users.
//!
//! Every problem is collected, each naming its place the same way
//! (`plans[1] "photos": repo "nas2" is not defined`), so one run of `check-config`
//! shows everything to fix. It never touches the disk or the network (a backup path
//! that is missing is not an error: it may be an unmounted disk) and it never puts a
//! secret (password, token, URL, hash, env value, flag) in a message.

use super::cron;
use super::json::Loc;
use super::types::{
    CheckPolicy, Condition, Config, Hook, HookAction, PrunePolicy, RetentionPolicy, Schedule,
};
use base64::Engine;
use std::collections::HashMap;

/// The config format version footrest reads.
pub const SUPPORTED_VERSION: i64 = 6;

/// What validation found: errors make the config unusable; warnings do not.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

pub(crate) fn check(config: &Config) -> Findings {
    let mut f = Findings::default();
    check_version(config.version, &mut f);
    match id_problem(&config.instance) {
        Some(IdProblem::Empty) => f.errors.push(
            "instance is required: it names this machine in snapshot tags \
             (created-by:<instance>); use e.g. the host name"
                .to_string(),
        ),
        Some(problem) => {
            f.errors
                .push(format!("instance {:?} {}", config.instance, problem.text()))
        }
        None => {}
    }
    check_repos(config, &mut f);
    check_plans(config, &mut f);
    check_auth(config, &mut f);
    f
}

fn check_version(version: Option<i64>, f: &mut Findings) {
    match version {
        None => f.warnings.push(format!(
            "config has no \"version\"; reading it as version {SUPPORTED_VERSION}"
        )),
        Some(SUPPORTED_VERSION) => {}
        Some(v) if v > SUPPORTED_VERSION => f.errors.push(format!(
            "version {v} is newer than footrest understands: it reads config version \
             {SUPPORTED_VERSION}; this file was written by a newer Backrest"
        )),
        Some(v) => f.errors.push(format!(
            "version {v} is too old: footrest reads config version {SUPPORTED_VERSION}; \
             start Backrest 1.x on this file once to upgrade it"
        )),
    }
}

enum IdProblem {
    Empty,
    BadCharacters,
    Reserved,
}

impl IdProblem {
    fn text(&self) -> &'static str {
        match self {
            IdProblem::Empty => "is required",
            IdProblem::BadCharacters => "may contain only letters, digits, \"_\", \"-\" and \".\"",
            IdProblem::Reserved => {
                "is reserved: ids that start and end with \"_\" (like \"_system_\") are \
                 for footrest's own use"
            }
        }
    }
}

/// Ids are `[A-Za-z0-9_.-]+`, not both starting and ending with `_`.
fn id_problem(id: &str) -> Option<IdProblem> {
    if id.is_empty() {
        Some(IdProblem::Empty)
    } else if !id.bytes().all(is_id_byte) {
        Some(IdProblem::BadCharacters)
    } else if id.starts_with('_') && id.ends_with('_') {
        Some(IdProblem::Reserved)
    } else {
        None
    }
}

/// True when `id` may name a repo, a plan or the instance.
pub fn is_valid_id(id: &str) -> bool {
    id_problem(id).is_none()
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

fn check_id(loc: &Loc, id: &str, kind: &str, seen: &mut HashMap<String, String>, f: &mut Findings) {
    match id_problem(id) {
        Some(IdProblem::Empty) => f.errors.push(loc.say("id is required")),
        Some(problem) => f
            .errors
            .push(loc.say(format_args!("id {id:?} {}", problem.text()))),
        None => {}
    }
    if id.is_empty() {
        return;
    }
    match seen.get(id) {
        Some(first) => f.errors.push(loc.say(format_args!(
            "id is also used by {first}; {kind} ids must be unique"
        ))),
        None => {
            seen.insert(id.to_string(), loc.name());
        }
    }
}

fn check_repos(config: &Config, f: &mut Findings) {
    let mut seen = HashMap::new();
    for (i, repo) in config.repos.iter().enumerate() {
        let loc = Loc::entry("repos", i, &repo.id);
        check_id(&loc, &repo.id, "repo", &mut seen, f);
        if repo.uri.trim().is_empty() {
            f.errors.push(loc.say(
                "uri is required: where the restic repository is, e.g. \"/srv/restic\" \
                 or \"sftp:user@host:/srv/restic\"",
            ));
        }
        if !repo.guid.is_empty() && !is_hex64(&repo.guid) {
            f.errors.push(loc.say(
                "guid must be 64 hex digits (restic's repository id) or left out; footrest \
                 reads it from the repository when it is missing",
            ));
        }
        for (j, entry) in repo.env.iter().enumerate() {
            let at = loc.field("env").index(j);
            match entry.split_once('=') {
                None => f.errors.push(at.say("must be KEY=VALUE")),
                Some((name, _)) if !is_env_name(name) => f.errors.push(at.say(format_args!(
                    "has {name:?} before \"=\", which is not a variable name (letters, \
                     digits and \"_\", not starting with a digit)"
                ))),
                Some(_) => {}
            }
        }
        check_flags(&loc, "flags", &repo.flags, f);
        if let Some(prune) = &repo.prune_policy {
            check_prune(&loc.field("prunePolicy"), prune, f);
        }
        if let Some(check) = &repo.check_policy {
            check_check(&loc.field("checkPolicy"), check, f);
        }
        check_hooks(&loc, &repo.hooks, f);
        if let Some(forget) = &repo.forget_policy {
            let at = loc.field("forgetPolicy");
            if let Some(s) = &forget.schedule {
                check_schedule(&at.field("schedule"), s, f);
            }
            if let Some(r) = &forget.retention {
                check_retention(&at.field("retention"), r, f);
            }
        }
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Each entry must split like shell words; the entry itself is not shown (it may hold
/// a secret), its index is.
fn check_flags(loc: &Loc, field: &str, flags: &[String], f: &mut Findings) {
    for (j, flag) in flags.iter().enumerate() {
        if shlex::split(flag).is_none() {
            f.errors.push(loc.field(field).index(j).say(
                "cannot be split into words: a quote is not closed, or it ends with a \
                 backslash",
            ));
        }
    }
}

fn check_prune(loc: &Loc, prune: &PrunePolicy, f: &mut Findings) {
    if let Some(s) = &prune.schedule {
        check_schedule(&loc.field("schedule"), s, f);
    }
    if let Some(p) = prune.max_unused_percent
        && !(0.0..=100.0).contains(&p)
    {
        f.errors.push(
            loc.field("maxUnusedPercent")
                .say(format_args!("{p} must be between 0 and 100")),
        );
    }
    if let Some(b) = prune.max_unused_bytes
        && b < 0
    {
        f.errors.push(
            loc.field("maxUnusedBytes")
                .say(format_args!("{b} must not be negative")),
        );
    }
    if prune.max_unused_bytes.is_some() && prune.max_unused_percent.is_some() {
        f.errors
            .push(loc.say("sets both maxUnusedBytes and maxUnusedPercent; keep one"));
    }
}

fn check_check(loc: &Loc, check: &CheckPolicy, f: &mut Findings) {
    if let Some(s) = &check.schedule {
        check_schedule(&loc.field("schedule"), s, f);
    }
    if let Some(p) = check.read_data_subset_percent
        && !(0.0..=100.0).contains(&p)
    {
        f.errors.push(
            loc.field("readDataSubsetPercent")
                .say(format_args!("{p} must be between 0 and 100")),
        );
    }
    if check.structure_only.is_some() && check.read_data_subset_percent.is_some() {
        f.errors
            .push(loc.say("sets both structureOnly and readDataSubsetPercent; keep one"));
    }
}

fn check_schedule(loc: &Loc, s: &Schedule, f: &mut Findings) {
    let mut set = Vec::new();
    if s.disabled {
        set.push("disabled");
    }
    if s.cron.is_some() {
        set.push("cron");
    }
    if s.max_frequency_days.is_some() {
        set.push("maxFrequencyDays");
    }
    if s.max_frequency_hours.is_some() {
        set.push("maxFrequencyHours");
    }
    if set.len() > 1 {
        f.errors.push(loc.say(format_args!(
            "sets {}; a schedule is one of disabled, cron, maxFrequencyDays or \
             maxFrequencyHours",
            set.join(" and ")
        )));
    }
    if let Some(cron) = &s.cron
        && let Err(why) = cron::parse(cron)
    {
        f.errors
            .push(loc.field("cron").say(format_args!("{cron:?}: {why}")));
    }
    for (name, value) in [
        ("maxFrequencyDays", s.max_frequency_days),
        ("maxFrequencyHours", s.max_frequency_hours),
    ] {
        if let Some(n) = value
            && n < 1
        {
            f.errors
                .push(loc.field(name).say(format_args!("{n} must be at least 1")));
        }
    }
}

fn check_retention(loc: &Loc, r: &RetentionPolicy, f: &mut Findings) {
    let mut set = Vec::new();
    if r.policy_keep_last_n.is_some() {
        set.push("policyKeepLastN");
    }
    if r.policy_time_bucketed.is_some() {
        set.push("policyTimeBucketed");
    }
    if r.policy_keep_all.is_some() {
        set.push("policyKeepAll");
    }
    if set.len() > 1 {
        f.errors.push(loc.say(format_args!(
            "sets {}; a retention policy is one of policyKeepLastN, policyTimeBucketed or \
             policyKeepAll",
            set.join(" and ")
        )));
    }
    if let Some(n) = r.policy_keep_last_n
        && n < 0
    {
        f.errors.push(
            loc.field("policyKeepLastN")
                .say(format_args!("{n} must not be negative")),
        );
    }
    if let Some(t) = &r.policy_time_bucketed {
        let at = loc.field("policyTimeBucketed");
        for (name, n) in [
            ("hourly", t.hourly),
            ("daily", t.daily),
            ("weekly", t.weekly),
            ("monthly", t.monthly),
            ("yearly", t.yearly),
            ("keepLastN", t.keep_last_n),
        ] {
            if n < 0 {
                f.errors
                    .push(at.field(name).say(format_args!("{n} must not be negative")));
            }
        }
    }
}

const ACTION_KEYS: &str = "actionCommand, actionWebhook, actionDiscord, actionGotify, \
                           actionSlack, actionShoutrrr, actionHealthchecks, actionTelegram";

fn check_hooks(owner: &Loc, hooks: &[Hook], f: &mut Findings) {
    for (k, hook) in hooks.iter().enumerate() {
        let loc = owner.field("hooks").index(k);
        if hook.conditions.is_empty() {
            f.errors.push(loc.say(
                "has no conditions, so it would never run; add at least one, e.g. \
                 CONDITION_SNAPSHOT_END",
            ));
        }
        for (c, condition) in hook.conditions.iter().enumerate() {
            if *condition == Condition::Unknown {
                f.warnings.push(
                    loc.field("conditions")
                        .index(c)
                        .say("is CONDITION_UNKNOWN, which never fires"),
                );
            }
        }
        let actions = hook.actions();
        match actions.len() {
            0 => {
                let unsupported = hook.extra.keys().find(|key| key.starts_with("action"));
                f.errors.push(match unsupported {
                    Some(key) => loc.say(format_args!(
                        "has action {key:?}, which footrest does not support; use one of \
                         {ACTION_KEYS}"
                    )),
                    None => loc.say(format_args!("has no action; give one of {ACTION_KEYS}")),
                });
            }
            1 => {}
            _ => {
                let keys: Vec<&str> = actions.iter().map(HookAction::key).collect();
                f.errors.push(loc.say(format_args!(
                    "has more than one action ({}); keep one",
                    keys.join(", ")
                )));
            }
        }
        for action in &actions {
            check_action(&loc.field(action.key()), action, f);
        }
    }
}

fn check_action(loc: &Loc, action: &HookAction<'_>, f: &mut Findings) {
    match action {
        HookAction::Command(a) => {
            if a.command.trim().is_empty() {
                f.errors.push(loc.field("command").say("is empty"));
            }
        }
        HookAction::Webhook(a) => check_http_url(&loc.field("webhookUrl"), &a.webhook_url, f),
        HookAction::Discord(a) | HookAction::Slack(a) | HookAction::Healthchecks(a) => {
            check_http_url(&loc.field("webhookUrl"), &a.webhook_url, f)
        }
        HookAction::Gotify(a) => {
            check_http_url(&loc.field("baseUrl"), &a.base_url, f);
            if a.token.is_empty() {
                f.errors.push(loc.field("token").say("is empty"));
            }
        }
        HookAction::Shoutrrr(a) => {
            let at = loc.field("shoutrrrUrl");
            if a.shoutrrr_url.trim().is_empty() {
                f.errors.push(at.say("is empty"));
            } else if !has_scheme(&a.shoutrrr_url) {
                f.errors.push(at.say(
                    "must start with a service scheme, e.g. \"ntfy://...\" or \"smtp://...\"",
                ));
            }
        }
        HookAction::Telegram(a) => {
            if a.bot_token.is_empty() {
                f.errors.push(loc.field("botToken").say("is empty"));
            }
            if a.chat_id.is_empty() {
                f.errors.push(loc.field("chatId").say("is empty"));
            }
        }
    }
}

fn check_http_url(loc: &Loc, url: &str, f: &mut Findings) {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if url.trim().is_empty() {
        f.errors.push(loc.say("is empty"));
    } else if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        f.errors
            .push(loc.say("must start with http:// or https://"));
    }
}

/// `scheme://`: a letter, then letters, digits, `+`, `-` or `.`.
fn has_scheme(url: &str) -> bool {
    let Some((scheme, _)) = url.split_once("://") else {
        return false;
    };
    let mut chars = scheme.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn check_plans(config: &Config, f: &mut Findings) {
    let mut seen = HashMap::new();
    for (i, plan) in config.plans.iter().enumerate() {
        let loc = Loc::entry("plans", i, &plan.id);
        check_id(&loc, &plan.id, "plan", &mut seen, f);
        if plan.repo.is_empty() {
            f.errors
                .push(loc.say("repo is required: the id of the repo to back up to"));
        } else if config.repo(&plan.repo).is_none() {
            f.errors
                .push(loc.say(format_args!("repo {:?} is not defined", plan.repo)));
        }
        if plan.paths.is_empty() {
            f.errors
                .push(loc.say("paths is empty; list at least one folder to back up"));
        }
        for (field, list) in [
            ("paths", &plan.paths),
            ("excludes", &plan.excludes),
            ("iexcludes", &plan.iexcludes),
        ] {
            for (j, entry) in list.iter().enumerate() {
                if entry.trim().is_empty() {
                    f.errors.push(loc.field(field).index(j).say("is empty"));
                }
            }
        }
        check_flags(&loc, "backup_flags", &plan.backup_flags, f);
        if let Some(s) = &plan.schedule {
            check_schedule(&loc.field("schedule"), s, f);
        }
        if let Some(r) = &plan.retention {
            check_retention(&loc.field("retention"), r, f);
        }
        check_hooks(&loc, &plan.hooks, f);
    }
}

fn check_auth(config: &Config, f: &mut Findings) {
    let Some(auth) = &config.auth else {
        return;
    };
    if !auth.disabled && auth.users.is_empty() {
        f.errors.push(
            "auth is enabled but has no users; add a user (its passwordBcrypt comes from \
             the HashPassword call) or set \"disabled\": true"
                .to_string(),
        );
    }
    let mut seen: HashMap<&str, String> = HashMap::new();
    for (i, user) in auth.users.iter().enumerate() {
        let loc = Loc::entry("auth.users", i, &user.name);
        if user.name.is_empty() {
            f.errors.push(loc.say("name is required"));
        } else if let Some(first) = seen.get(user.name.as_str()) {
            f.errors.push(loc.say(format_args!(
                "name is also used by {first}; user names must be unique"
            )));
        } else {
            seen.insert(&user.name, loc.name());
        }
        if user.password_bcrypt.is_empty() {
            f.errors.push(loc.say(
                "passwordBcrypt is required (the base64 of a bcrypt hash, from the \
                 HashPassword call)",
            ));
        } else if !is_wrapped_bcrypt(&user.password_bcrypt) {
            f.errors.push(loc.say(
                "passwordBcrypt is not the base64 of a bcrypt hash ($2a$, $2b$ or $2y$); \
                 make one with the HashPassword call",
            ));
        }
    }
}

/// Standard padded base64 of `$2a$NN$` + 53 characters of bcrypt's alphabet.
pub(crate) fn is_wrapped_bcrypt(value: &str) -> bool {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(value) else {
        return false;
    };
    is_bcrypt_hash(&bytes)
}

fn is_bcrypt_hash(h: &[u8]) -> bool {
    if h.len() != 60
        || !(h.starts_with(b"$2a$") || h.starts_with(b"$2b$") || h.starts_with(b"$2y$"))
    {
        return false;
    }
    let cost = &h[4..6];
    if !cost.iter().all(u8::is_ascii_digit) || h[6] != b'$' {
        return false;
    }
    let cost = u32::from(cost[0] - b'0') * 10 + u32::from(cost[1] - b'0');
    (4..=31).contains(&cost)
        && h[7..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'/')
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};
    use serde_json::{Value, json};

    /// The base64 of the bcrypt hash of "changeme" (CONTRACT section 2).
    const HASH: &str =
        "JDJhJDEwJC9iekxLWkN5Z056QUlidjhmZmwyMy45TmNXVE1PNnNVRTViLmtUclBpcHVnd1IxaGpzOHFh";

    fn base() -> Value {
        json!({
            "version": 6,
            "instance": "pi",
            "repos": [{"id": "nas", "uri": "/srv/restic", "password": "pw"}],
            "plans": [{"id": "docs", "repo": "nas", "paths": ["/home"]}]
        })
    }

    /// Validates `base()` changed by `patch`: (errors, warnings).
    fn check(patch: impl FnOnce(&mut Value)) -> (Vec<String>, Vec<String>) {
        let mut v = base();
        patch(&mut v);
        let config = Config::from_value(v).unwrap_or_else(|e| panic!("{e}"));
        match config.validate() {
            Ok(warnings) => (Vec::new(), warnings),
            Err(ConfigError::Invalid { errors, path: None }) => {
                let f = super::check(&config);
                (errors, f.warnings)
            }
            Err(other) => panic!("unexpected error kind: {other:?}"),
        }
    }

    fn errors(patch: impl FnOnce(&mut Value)) -> Vec<String> {
        check(patch).0
    }

    fn hook(h: Value) -> impl FnOnce(&mut Value) {
        move |v| v["plans"][0]["hooks"] = json!([h])
    }

    #[test]
    fn the_base_config_is_valid() {
        assert_eq!(check(|_| {}), (vec![], vec![]));
    }

    #[test]
    fn version() {
        let (errs, warnings) = check(|v| {
            v.as_object_mut().unwrap().remove("version");
        });
        assert!(errs.is_empty());
        assert_eq!(
            warnings,
            ["config has no \"version\"; reading it as version 6"]
        );
        assert_eq!(
            errors(|v| v["version"] = json!(7)),
            [
                "version 7 is newer than footrest understands: it reads config version 6; \
              this file was written by a newer Backrest"
            ]
        );
        assert_eq!(
            errors(|v| v["version"] = json!(3)),
            [
                "version 3 is too old: footrest reads config version 6; start Backrest 1.x on \
              this file once to upgrade it"
            ]
        );
    }

    #[test]
    fn instance() {
        assert_eq!(
            errors(|v| v["instance"] = json!("")),
            [
                "instance is required: it names this machine in snapshot tags \
              (created-by:<instance>); use e.g. the host name"
            ]
        );
        assert_eq!(
            errors(|v| v["instance"] = json!("my host")),
            ["instance \"my host\" may contain only letters, digits, \"_\", \"-\" and \".\""]
        );
        assert_eq!(
            errors(|v| v["instance"] = json!("_system_")),
            [
                "instance \"_system_\" is reserved: ids that start and end with \"_\" (like \
              \"_system_\") are for footrest's own use"
            ]
        );
    }

    #[test]
    fn ids() {
        assert!(super::is_valid_id("a.b_c-9"));
        assert!(super::is_valid_id("_leading"));
        assert!(super::is_valid_id("trailing_"));
        assert!(!super::is_valid_id("_"));
        assert!(!super::is_valid_id("a/b"));
        assert_eq!(
            errors(|v| v["repos"][0]["id"] = json!("")),
            [
                "repos[0]: id is required",
                "plans[0] \"docs\": repo \"nas\" is not defined"
            ]
        );
        assert_eq!(
            errors(|v| v["plans"][0]["id"] = json!("my docs")),
            [
                "plans[0] \"my docs\": id \"my docs\" may contain only letters, digits, \"_\", \
              \"-\" and \".\""
            ]
        );
        assert_eq!(
            errors(|v| v["plans"][0]["id"] = json!("_system_")),
            [
                "plans[0] \"_system_\": id \"_system_\" is reserved: ids that start and end \
              with \"_\" (like \"_system_\") are for footrest's own use"
            ]
        );
    }

    #[test]
    fn ids_are_unique_per_kind() {
        assert_eq!(
            errors(|v| {
                v["repos"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"id": "nas", "uri": "/b"}));
                v["plans"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"id": "docs", "repo": "nas", "paths": ["/b"]}));
                // A plan may share an id with a repo.
                v["plans"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"id": "nas", "repo": "nas", "paths": ["/c"]}));
            }),
            [
                "repos[1] \"nas\": id is also used by repos[0] \"nas\"; repo ids must be unique",
                "plans[1] \"docs\": id is also used by plans[0] \"docs\"; plan ids must be unique",
            ]
        );
    }

    #[test]
    fn repo_uri_and_guid() {
        assert_eq!(
            errors(|v| v["repos"][0]["uri"] = json!(" ")),
            [
                "repos[0] \"nas\": uri is required: where the restic repository is, e.g. \
              \"/srv/restic\" or \"sftp:user@host:/srv/restic\""
            ]
        );
        assert_eq!(
            errors(|v| v["repos"][0]["guid"] = json!("abc")),
            [
                "repos[0] \"nas\": guid must be 64 hex digits (restic's repository id) or left \
              out; footrest reads it from the repository when it is missing"
            ]
        );
        assert!(errors(|v| v["repos"][0]["guid"] = json!("aB".repeat(32))).is_empty());
    }

    #[test]
    fn repo_env() {
        let errs = errors(|v| {
            v["repos"][0]["env"] = json!(["GOOD=1", "EMPTY=", "SECRETVALUE", "1BAD=x", "A-B=y"])
        });
        assert_eq!(
            errs,
            [
                "repos[0] \"nas\": env[2] must be KEY=VALUE",
                "repos[0] \"nas\": env[3] has \"1BAD\" before \"=\", which is not a variable \
                 name (letters, digits and \"_\", not starting with a digit)",
                "repos[0] \"nas\": env[4] has \"A-B\" before \"=\", which is not a variable \
                 name (letters, digits and \"_\", not starting with a digit)",
            ]
        );
        assert!(!errs.concat().contains("SECRETVALUE"));
    }

    #[test]
    fn flags_must_split_like_shell_words() {
        assert_eq!(
            errors(|v| {
                v["repos"][0]["flags"] = json!(["--limit-upload 2048", "-o 'sftp.command=ssh x"]);
                v["plans"][0]["backup_flags"] = json!(["--exclude \"a b\"", "--tag x\\"]);
            }),
            [
                "repos[0] \"nas\": flags[1] cannot be split into words: a quote is not closed, \
                 or it ends with a backslash",
                "plans[0] \"docs\": backup_flags[1] cannot be split into words: a quote is not \
                 closed, or it ends with a backslash",
            ]
        );
    }

    #[test]
    fn prune_policy() {
        assert_eq!(
            errors(|v| v["repos"][0]["prunePolicy"] = json!({"maxUnusedPercent": 150})),
            ["repos[0] \"nas\": prunePolicy.maxUnusedPercent 150 must be between 0 and 100"]
        );
        assert_eq!(
            errors(|v| v["repos"][0]["prunePolicy"] = json!({"maxUnusedBytes": "-1"})),
            ["repos[0] \"nas\": prunePolicy.maxUnusedBytes -1 must not be negative"]
        );
        assert_eq!(
            errors(|v| {
                v["repos"][0]["prunePolicy"] = json!({"maxUnusedBytes": 5, "maxUnusedPercent": 5})
            }),
            [
                "repos[0] \"nas\": prunePolicy sets both maxUnusedBytes and maxUnusedPercent; \
              keep one"
            ]
        );
        // Backrest writes every field, so a zero beside the other one is "not set".
        assert!(
            errors(|v| {
                v["repos"][0]["prunePolicy"] =
                    json!({"maxUnusedBytes": "0", "maxUnusedPercent": 10})
            })
            .is_empty()
        );
    }

    #[test]
    fn check_policy() {
        assert_eq!(
            errors(|v| v["repos"][0]["checkPolicy"] = json!({"readDataSubsetPercent": -5})),
            ["repos[0] \"nas\": checkPolicy.readDataSubsetPercent -5 must be between 0 and 100"]
        );
        assert_eq!(
            errors(|v| {
                v["repos"][0]["checkPolicy"] =
                    json!({"structureOnly": true, "readDataSubsetPercent": 5})
            }),
            [
                "repos[0] \"nas\": checkPolicy sets both structureOnly and readDataSubsetPercent; \
              keep one"
            ]
        );
    }

    #[test]
    fn plan_repo_and_paths() {
        assert_eq!(
            errors(|v| v["plans"][0]["repo"] = json!("nas2")),
            ["plans[0] \"docs\": repo \"nas2\" is not defined"]
        );
        assert_eq!(
            errors(|v| v["plans"][0]["repo"] = json!("")),
            ["plans[0] \"docs\": repo is required: the id of the repo to back up to"]
        );
        assert_eq!(
            errors(|v| v["plans"][0]["paths"] = json!([])),
            ["plans[0] \"docs\": paths is empty; list at least one folder to back up"]
        );
        assert_eq!(
            errors(|v| {
                v["plans"][0]["paths"] = json!(["/a", ""]);
                v["plans"][0]["excludes"] = json!([" "]);
                v["plans"][0]["iexcludes"] = json!(["x", ""]);
            }),
            [
                "plans[0] \"docs\": paths[1] is empty",
                "plans[0] \"docs\": excludes[0] is empty",
                "plans[0] \"docs\": iexcludes[1] is empty",
            ]
        );
        // A path that is not there (an unmounted disk) is not a config error.
        assert!(
            errors(|v| v["plans"][0]["paths"] = json!(["/no/such/disk/footrest-test"])).is_empty()
        );
    }

    #[test]
    fn retention() {
        assert_eq!(
            errors(|v| {
                v["plans"][0]["retention"] = json!({"policyKeepLastN": 3, "policyKeepAll": true})
            }),
            [
                "plans[0] \"docs\": retention sets policyKeepLastN and policyKeepAll; a \
              retention policy is one of policyKeepLastN, policyTimeBucketed or policyKeepAll"
            ]
        );
        assert_eq!(
            errors(|v| {
                v["plans"][0]["retention"] = json!({"policyKeepLastN": -1});
                v["repos"][0]["forgetPolicy"] =
                    json!({"retention": {"policyTimeBucketed": {"daily": -2, "keepLastN": -3}}});
            }),
            [
                "repos[0] \"nas\": forgetPolicy.retention.policyTimeBucketed.daily -2 must not \
                 be negative",
                "repos[0] \"nas\": forgetPolicy.retention.policyTimeBucketed.keepLastN -3 must \
                 not be negative",
                "plans[0] \"docs\": retention.policyKeepLastN -1 must not be negative",
            ]
        );
        assert!(errors(|v| v["plans"][0]["retention"] = json!({})).is_empty());
    }

    #[test]
    fn schedules() {
        assert_eq!(
            errors(|v| {
                v["plans"][0]["schedule"] = json!({"disabled": true, "cron": "0 1 * * *"})
            }),
            [
                "plans[0] \"docs\": schedule sets disabled and cron; a schedule is one of \
              disabled, cron, maxFrequencyDays or maxFrequencyHours"
            ]
        );
        assert_eq!(
            errors(|v| {
                v["plans"][0]["schedule"] = json!({"maxFrequencyDays": 0});
                v["repos"][0]["prunePolicy"] = json!({"schedule": {"maxFrequencyHours": -1}});
            }),
            [
                "repos[0] \"nas\": prunePolicy.schedule.maxFrequencyHours -1 must be at least 1",
                "plans[0] \"docs\": schedule.maxFrequencyDays 0 must be at least 1",
            ]
        );
        assert_eq!(
            errors(|v| {
                v["repos"][0]["checkPolicy"] = json!({"schedule": {"cron": "0 4 * *"}});
                v["plans"][0]["schedule"] = json!({"cron": "0 25 * * *", "clock": "CLOCK_UTC"});
            }),
            [
                "repos[0] \"nas\": checkPolicy.schedule.cron \"0 4 * *\": has 4 fields; a cron \
                 expression has 5 (no seconds, no year): minute hour day-of-month month \
                 day-of-week, e.g. \"30 2 * * *\"",
                "plans[0] \"docs\": schedule.cron \"0 25 * * *\": hour 25 is out of range 0-23",
            ]
        );
        // The scheduler's own parser: what it cannot run is refused here, what it runs
        // (shortcuts) is accepted.
        assert_eq!(
            errors(|v| {
                v["plans"][0]["schedule"] = json!({"cron": "61 * * * *"});
                v["repos"][0]["prunePolicy"] = json!({"schedule": {"cron": "0 0 30 2 *"}});
                v["repos"][0]["checkPolicy"] = json!({"schedule": {"cron": "@reboot"}});
            }),
            [
                "repos[0] \"nas\": prunePolicy.schedule.cron \"0 0 30 2 *\": never runs: none of \
                 the months it names has that day of the month",
                "repos[0] \"nas\": checkPolicy.schedule.cron \"@reboot\": @reboot is not \
                 supported; footrest schedules by time, e.g. \"@daily\" or \"30 2 * * *\"",
                "plans[0] \"docs\": schedule.cron \"61 * * * *\": minute 61 is out of range 0-59",
            ]
        );
        for cron in ["@daily", "@HOURLY", "0 0 30 2 1", "0 0 29 2 *"] {
            assert!(
                errors(|v| v["plans"][0]["schedule"] = json!({"cron": cron})).is_empty(),
                "{cron}"
            );
        }
        assert!(
            errors(|v| v["plans"][0]["schedule"] = json!({"clock": "CLOCK_DEFAULT"})).is_empty()
        );
    }

    #[test]
    fn hook_conditions_and_actions() {
        assert_eq!(
            errors(hook(json!({"actionCommand": {"command": "true"}}))),
            [
                "plans[0] \"docs\": hooks[0] has no conditions, so it would never run; add at \
              least one, e.g. CONDITION_SNAPSHOT_END"
            ]
        );
        assert_eq!(
            errors(hook(json!({"conditions": [2]}))),
            [
                "plans[0] \"docs\": hooks[0] has no action; give one of actionCommand, \
              actionWebhook, actionDiscord, actionGotify, actionSlack, actionShoutrrr, \
              actionHealthchecks, actionTelegram"
            ]
        );
        assert_eq!(
            errors(hook(json!({"conditions": [2], "actionNtfy": {"url": "x"}}))),
            [
                "plans[0] \"docs\": hooks[0] has action \"actionNtfy\", which footrest does not \
              support; use one of actionCommand, actionWebhook, actionDiscord, actionGotify, \
              actionSlack, actionShoutrrr, actionHealthchecks, actionTelegram"
            ]
        );
        assert_eq!(
            errors(hook(
                json!({"conditions": [2], "actionCommand": {"command": "true"},
                               "actionSlack": {"webhookUrl": "https://s"}})
            )),
            [
                "plans[0] \"docs\": hooks[0] has more than one action (actionCommand, \
              actionSlack); keep one"
            ]
        );
        let (errs, warnings) = check(hook(json!({
            "conditions": ["CONDITION_SNAPSHOT_END", "CONDITION_UNKNOWN"],
            "actionCommand": {"command": "true"}
        })));
        assert!(errs.is_empty());
        assert_eq!(
            warnings,
            ["plans[0] \"docs\": hooks[0].conditions[1] is CONDITION_UNKNOWN, which never fires"]
        );
    }

    #[test]
    fn hook_action_fields() {
        assert_eq!(
            errors(hook(
                json!({"conditions": [2], "actionCommand": {"command": "  "}})
            )),
            ["plans[0] \"docs\": hooks[0].actionCommand.command is empty"]
        );
        let errs = errors(|v| {
            v["repos"][0]["hooks"] = json!([
                {"conditions": [1], "actionWebhook": {"webhookUrl": "ftp://secret-host/x", "method": "GET"}},
                {"conditions": [1], "actionDiscord": {}},
                {"conditions": [1], "actionSlack": {"webhookUrl": "hooks.slack.com/x"}},
                {"conditions": [1], "actionHealthchecks": {"webhookUrl": "HTTPS://hc/ping"}},
                {"conditions": [1], "actionGotify": {"baseUrl": "https://g"}},
                {"conditions": [1], "actionShoutrrr": {"shoutrrrUrl": "secret-token@ntfy"}},
                {"conditions": [1], "actionShoutrrr": {}},
                {"conditions": [1], "actionTelegram": {"template": "x"}},
            ])
        });
        assert_eq!(
            errs,
            [
                "repos[0] \"nas\": hooks[0].actionWebhook.webhookUrl must start with http:// \
                 or https://",
                "repos[0] \"nas\": hooks[1].actionDiscord.webhookUrl is empty",
                "repos[0] \"nas\": hooks[2].actionSlack.webhookUrl must start with http:// or \
                 https://",
                "repos[0] \"nas\": hooks[4].actionGotify.token is empty",
                "repos[0] \"nas\": hooks[5].actionShoutrrr.shoutrrrUrl must start with a \
                 service scheme, e.g. \"ntfy://...\" or \"smtp://...\"",
                "repos[0] \"nas\": hooks[6].actionShoutrrr.shoutrrrUrl is empty",
                "repos[0] \"nas\": hooks[7].actionTelegram.botToken is empty",
                "repos[0] \"nas\": hooks[7].actionTelegram.chatId is empty",
            ]
        );
        assert!(!errs.concat().contains("secret"));
    }

    #[test]
    fn auth() {
        assert_eq!(
            errors(|v| v["auth"] = json!({})),
            [
                "auth is enabled but has no users; add a user (its passwordBcrypt comes from \
              the HashPassword call) or set \"disabled\": true"
            ]
        );
        assert!(errors(|v| v["auth"] = json!({"disabled": true})).is_empty());
        assert!(
            errors(|v| v["auth"] = json!({"users": [{"name": "admin", "passwordBcrypt": HASH}]}))
                .is_empty()
        );
        let raw_hash = "$2a$10$/bzLKZCygNzAIbv8ffl23.9NcWTMO6sUE5b.kTrPipugwR1hjs8qa";
        let errs = errors(|v| {
            v["auth"] = json!({"users": [
                {"name": "admin", "passwordBcrypt": HASH},
                {"name": "", "passwordBcrypt": HASH},
                {"name": "admin", "passwordBcrypt": HASH},
                {"name": "bob", "passwordBcrypt": raw_hash},
                {"name": "eve"},
            ]})
        });
        assert_eq!(
            errs,
            [
                "auth.users[1]: name is required",
                "auth.users[2] \"admin\": name is also used by auth.users[0] \"admin\"; user \
                 names must be unique",
                "auth.users[3] \"bob\": passwordBcrypt is not the base64 of a bcrypt hash \
                 ($2a$, $2b$ or $2y$); make one with the HashPassword call",
                "auth.users[4] \"eve\": passwordBcrypt is required (the base64 of a bcrypt \
                 hash, from the HashPassword call)",
            ]
        );
        assert!(!errs.concat().contains("bzLKZ"));
    }

    #[test]
    fn bcrypt_shapes() {
        use base64::Engine;
        let wrap = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let body = "/bzLKZCygNzAIbv8ffl23.9NcWTMO6sUE5b.kTrPipugwR1hjs8qa";
        for good in ["$2a$10$", "$2b$04$", "$2y$31$"] {
            assert!(
                super::is_wrapped_bcrypt(&wrap(&format!("{good}{body}"))),
                "{good}"
            );
        }
        for bad in ["$2x$10$", "$2a$03$", "$2a$32$", "$2a$1a$", "$2a$10_"] {
            assert!(
                !super::is_wrapped_bcrypt(&wrap(&format!("{bad}{body}"))),
                "{bad}"
            );
        }
        assert!(!super::is_wrapped_bcrypt(&wrap(&format!(
            "$2a$10${}",
            &body[1..]
        ))));
        assert!(!super::is_wrapped_bcrypt(&wrap(&format!(
            "$2a$10${}!",
            &body[1..]
        ))));
        assert!(!super::is_wrapped_bcrypt("not base64!"));
        // Unpadded base64 is refused when padding is due (a 59-byte string needs one "=").
        let short = wrap(&format!("$2a$10${}", &body[1..]));
        assert!(short.ends_with('='));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errs = errors(|v| {
            v["instance"] = json!("");
            v["repos"][0]["uri"] = json!("");
            v["repos"][0]["env"] = json!(["X"]);
            v["plans"][0]["repo"] = json!("nas2");
            v["plans"][0]["paths"] = json!([]);
            v["plans"][0]["schedule"] = json!({"cron": "* * *"});
            v["auth"] = json!({"users": []});
        });
        assert_eq!(
            errs,
            [
                "instance is required: it names this machine in snapshot tags \
                 (created-by:<instance>); use e.g. the host name",
                "repos[0] \"nas\": uri is required: where the restic repository is, e.g. \
                 \"/srv/restic\" or \"sftp:user@host:/srv/restic\"",
                "repos[0] \"nas\": env[0] must be KEY=VALUE",
                "plans[0] \"docs\": repo \"nas2\" is not defined",
                "plans[0] \"docs\": paths is empty; list at least one folder to back up",
                "plans[0] \"docs\": schedule.cron \"* * *\": has 3 fields; a cron expression \
                 has 5 (no seconds, no year): minute hour day-of-month month day-of-week, \
                 e.g. \"30 2 * * *\"",
                "auth is enabled but has no users; add a user (its passwordBcrypt comes from \
                 the HashPassword call) or set \"disabled\": true",
            ]
        );
        let config = Config::from_value({
            let mut v = base();
            v["instance"] = json!("");
            v["plans"][0]["repo"] = json!("nas2");
            v
        })
        .unwrap();
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "instance is required: it names this machine in snapshot tags \
             (created-by:<instance>); use e.g. the host name\n\
             plans[0] \"docs\": repo \"nas2\" is not defined"
        );
    }
}
