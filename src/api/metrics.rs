//! `GET /metrics`: footrest's state in the Prometheus text exposition format 0.0.4.
//! It owns the metric names, their help lines and what each figure means, and the
//! writing of the format (escaping, number syntax), which is pure ([`render`]) and
//! unit-tested. The figures come from the config in force, a handful of indexed oplog
//! queries (`oplog::gauges`), the worker's queue and `/proc/self/statm`: a scrape never
//! runs restic, never decodes an operation whole and never waits for the worker.
//! Authentication and routing are `api`'s; this file must not touch HTTP beyond
//! building its one response.
//!
//! What "last backup" means: the newest backup of the plan (by start) that ran to an
//! outcome (SUCCESS, WARNING or ERROR); running, cancelled and dry-run backups are
//! passed over. A WARNING (some files could not be read, but a snapshot was written)
//! counts as a success for `footrest_plan_last_backup_success`; the `status` label of
//! `footrest_plan_last_backup_status` tells the two apart. A figure footrest does not
//! know yet (no backup so far, no next run planned) has no sample rather than a made-up
//! value.

use std::fmt::Write as _;

use crate::App;
use crate::api::connect::ApiError;
use crate::api::server::{Body, Response};
use crate::oplog::Outcome;
use crate::proto::OperationStatus;

/// The `Content-Type` of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where repo-level tasks (prune, check) are recorded.
const SYSTEM_PLAN: &str = "_system_";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
        }
    }
}

/// One metric family: a name, its help line, its type and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

/// One sample: label pairs (names are fixed identifiers, values anything) and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Family {
    fn gauge(name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind: Kind::Gauge,
            samples: Vec::new(),
        }
    }

    fn push(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push(Sample { labels, value });
    }
}

/// Writes the families in the text format 0.0.4: for each, `# HELP`, `# TYPE`, then its
/// samples, every line ending in `\n`. A family with no samples still gets its two
/// comment lines, so a scraper sees the same names whatever the state.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families {
        let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(family.help));
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.name());
        for sample in &family.samples {
            out.push_str(family.name);
            if !sample.labels.is_empty() {
                out.push('{');
                for (i, (name, value)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{name}=\"{}\"", escape_label_value(value));
                }
                out.push('}');
            }
            out.push(' ');
            out.push_str(&format_value(sample.value));
            out.push('\n');
        }
    }
    out
}

/// A label value as the format wants it between double quotes: `\`, `"` and line
/// feeds escaped as `\\`, `\"` and `\n`.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A help text: `\` and line feeds escaped as `\\` and `\n` (quotes stay as they are).
pub fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: Go's float syntax as Prometheus parses it. Integers print without a
/// fraction or exponent, and the three special values have the format's own spellings.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        // Rust's Display for f64 is the shortest text that reads back as the same
        // value, never with an exponent: always a valid Prometheus float.
        format!("{v}")
    }
}

/// Milliseconds since the epoch as seconds.
fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// What a scrape reports about one plan of the config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanFacts {
    pub plan_id: String,
    pub repo_id: String,
    pub last: Option<Outcome>,
    pub last_success_end_ms: Option<i64>,
    pub next_ms: Option<i64>,
}

/// What a scrape reports about one repo of the config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepoFacts {
    pub repo_id: String,
    pub snapshots: i64,
    pub last_prune: Option<Outcome>,
    pub last_check: Option<Outcome>,
}

/// Everything a scrape reports, gathered before anything is written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub plans: Vec<PlanFacts>,
    pub repos: Vec<RepoFacts>,
    pub queue_depth: usize,
    pub by_status: Vec<(OperationStatus, i64)>,
    pub resident_bytes: Option<u64>,
}

/// The status label values, in the order they are written. UNKNOWN is written only
/// when an operation has it.
const STATUSES: [(OperationStatus, &str); 8] = [
    (OperationStatus::Pending, "pending"),
    (OperationStatus::InProgress, "in_progress"),
    (OperationStatus::Success, "success"),
    (OperationStatus::Warning, "warning"),
    (OperationStatus::Error, "error"),
    (OperationStatus::UserCancelled, "user_cancelled"),
    (OperationStatus::SystemCancelled, "system_cancelled"),
    (OperationStatus::Unknown, "unknown"),
];

/// The outcomes a "last" figure can have, as label values.
const OUTCOMES: [(OperationStatus, &str); 3] = [
    (OperationStatus::Success, "success"),
    (OperationStatus::Warning, "warning"),
    (OperationStatus::Error, "error"),
];

fn succeeded(status: OperationStatus) -> bool {
    matches!(status, OperationStatus::Success | OperationStatus::Warning)
}

fn bool_value(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The families for these facts, in the order they are written (pure).
pub fn families(facts: &Facts) -> Vec<Family> {
    let mut build = Family::gauge(
        "footrest_build_info",
        "The footrest version serving these metrics (always 1).",
    );
    build.push(
        vec![("version", env!("CARGO_PKG_VERSION").to_string())],
        1.0,
    );

    let mut plan_info = Family::gauge(
        "footrest_plan_info",
        "Every plan in the config in force, with its repo (always 1).",
    );
    let mut end = Family::gauge(
        "footrest_plan_last_backup_end_timestamp_seconds",
        "When the plan's last backup (success, warning or error; not cancelled, running or \
         dry runs) ended, in seconds since the epoch.",
    );
    let mut success = Family::gauge(
        "footrest_plan_last_backup_success",
        "1 if the plan's last backup wrote a snapshot (status success or warning), 0 if it \
         failed.",
    );
    let mut status = Family::gauge(
        "footrest_plan_last_backup_status",
        "The status of the plan's last backup: 1 for the status it had, 0 for the others.",
    );
    let mut duration = Family::gauge(
        "footrest_plan_last_backup_duration_seconds",
        "How long the plan's last backup ran, start to end, in seconds.",
    );
    let mut added = Family::gauge(
        "footrest_plan_last_backup_added_bytes",
        "Bytes the plan's last backup added to the repository (restic's data_added; 0 when \
         it failed).",
    );
    let mut files = Family::gauge(
        "footrest_plan_last_backup_processed_files",
        "Files the plan's last backup went through: new, changed and unmodified (restic's \
         total_files_processed; 0 when it failed).",
    );
    let mut bytes = Family::gauge(
        "footrest_plan_last_backup_processed_bytes",
        "Bytes the plan's last backup went through (restic's total_bytes_processed; 0 when \
         it failed).",
    );
    let mut last_success = Family::gauge(
        "footrest_plan_last_success_timestamp_seconds",
        "When the plan's last backup with status success or warning ended, in seconds since \
         the epoch. Alert on time() minus this.",
    );
    let mut next = Family::gauge(
        "footrest_plan_next_backup_timestamp_seconds",
        "When the plan's next backup is planned or queued to start, in seconds since the \
         epoch; no sample when none is planned.",
    );
    for plan in &facts.plans {
        let labels = || {
            vec![
                ("plan", plan.plan_id.clone()),
                ("repo", plan.repo_id.clone()),
            ]
        };
        plan_info.push(labels(), 1.0);
        if let Some(last) = &plan.last {
            end.push(labels(), seconds(last.end_ms));
            success.push(labels(), bool_value(succeeded(last.status)));
            for (s, name) in OUTCOMES {
                let mut l = labels();
                l.push(("status", name.to_string()));
                status.push(l, bool_value(last.status == s));
            }
            duration.push(
                labels(),
                seconds(last.end_ms.saturating_sub(last.start_ms).max(0)),
            );
            added.push(labels(), last.bytes_added as f64);
            files.push(labels(), last.files_processed as f64);
            bytes.push(labels(), last.bytes_processed as f64);
        }
        if let Some(ms) = plan.last_success_end_ms {
            last_success.push(labels(), seconds(ms));
        }
        if let Some(ms) = plan.next_ms {
            next.push(labels(), seconds(ms));
        }
    }

    let mut snapshots = Family::gauge(
        "footrest_repo_snapshots",
        "Snapshots in the repository, as footrest's snapshot index knows them.",
    );
    let mut prune_end = Family::gauge(
        "footrest_repo_last_prune_end_timestamp_seconds",
        "When the repository's last prune (success, warning or error) ended, in seconds \
         since the epoch.",
    );
    let mut prune_success = Family::gauge(
        "footrest_repo_last_prune_success",
        "1 if the repository's last prune succeeded, 0 if it failed.",
    );
    let mut check_end = Family::gauge(
        "footrest_repo_last_check_end_timestamp_seconds",
        "When the repository's last check (success, warning or error) ended, in seconds \
         since the epoch.",
    );
    let mut check_success = Family::gauge(
        "footrest_repo_last_check_success",
        "1 if the repository's last check succeeded, 0 if it failed (errors found or could \
         not run).",
    );
    for repo in &facts.repos {
        let labels = || vec![("repo", repo.repo_id.clone())];
        snapshots.push(labels(), repo.snapshots as f64);
        if let Some(prune) = &repo.last_prune {
            prune_end.push(labels(), seconds(prune.end_ms));
            prune_success.push(labels(), bool_value(succeeded(prune.status)));
        }
        if let Some(check) = &repo.last_check {
            check_end.push(labels(), seconds(check.end_ms));
            check_success.push(labels(), bool_value(succeeded(check.status)));
        }
    }

    let mut queue = Family::gauge(
        "footrest_queue_depth",
        "Tasks waiting for the worker (the running one not included).",
    );
    queue.push(Vec::new(), facts.queue_depth as f64);

    let mut operations = Family::gauge(
        "footrest_operations",
        "Operations in the history, by status.",
    );
    for (s, name) in STATUSES {
        let count = facts
            .by_status
            .iter()
            .find(|(st, _)| *st == s)
            .map_or(0, |(_, n)| *n);
        if s == OperationStatus::Unknown && count == 0 {
            continue;
        }
        operations.push(vec![("status", name.to_string())], count as f64);
    }

    let mut memory = Family::gauge(
        "footrest_process_resident_memory_bytes",
        "Resident memory of the footrest process, in bytes.",
    );
    if let Some(rss) = facts.resident_bytes {
        memory.push(Vec::new(), rss as f64);
    }

    vec![
        build,
        plan_info,
        end,
        success,
        status,
        duration,
        added,
        files,
        bytes,
        last_success,
        next,
        snapshots,
        prune_end,
        prune_success,
        check_end,
        check_success,
        queue,
        operations,
        memory,
    ]
}

/// Gathers the facts: the config's plans and repos, then one query per figure.
pub fn gather(app: &App) -> Result<Facts, ApiError> {
    let config = app.config.get();
    let oplog = &app.oplog;
    let next = oplog.next_backups()?;
    let mut plans = Vec::with_capacity(config.plans.len());
    for plan in &config.plans {
        let last = oplog.last_outcome(&plan.repo, &plan.id, "operationBackup")?;
        // When the last outcome is a success it is also the last success: one query
        // less per plan in the usual case.
        let last_success_end_ms = match &last {
            Some(o) if succeeded(o.status) => Some(o.end_ms),
            _ => oplog.last_success_end(&plan.repo, &plan.id, "operationBackup")?,
        };
        plans.push(PlanFacts {
            plan_id: plan.id.clone(),
            repo_id: plan.repo.clone(),
            last,
            last_success_end_ms,
            next_ms: next
                .iter()
                .find(|n| n.plan_id == plan.id && n.repo_id == plan.repo)
                .map(|n| n.start_ms),
        });
    }
    let live = oplog.live_snapshots()?;
    let mut repos = Vec::with_capacity(config.repos.len());
    for repo in &config.repos {
        repos.push(RepoFacts {
            repo_id: repo.id.clone(),
            snapshots: live
                .iter()
                .find(|(id, _)| *id == repo.id)
                .map_or(0, |(_, n)| *n),
            last_prune: oplog.last_outcome(&repo.id, SYSTEM_PLAN, "operationPrune")?,
            last_check: oplog.last_outcome(&repo.id, SYSTEM_PLAN, "operationCheck")?,
        });
    }
    Ok(Facts {
        plans,
        repos,
        queue_depth: app.orchestrator.queue_depth(),
        by_status: oplog.count_by_status()?,
        resident_bytes: resident_bytes(),
    })
}

/// The process's resident set size: the second field of `/proc/self/statm` (pages)
/// times the page size. `None` where there is no such file.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).ok().map(|page| pages * page)
}

/// The `GET /metrics` response (the caller has checked the credentials).
pub fn serve(app: &App) -> Response {
    match gather(app) {
        Ok(facts) => Response {
            status: 200,
            headers: vec![
                ("Content-Type".to_string(), CONTENT_TYPE.to_string()),
                ("Cache-Control".to_string(), "no-store".to_string()),
            ],
            body: Body::Bytes(render(&families(&facts)).into_bytes()),
        },
        Err(e) => {
            warn!("GET /metrics: {e}");
            e.response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: OperationStatus, start_ms: i64, end_ms: i64) -> Outcome {
        Outcome {
            id: 1,
            status,
            start_ms,
            end_ms,
            bytes_added: 0,
            files_processed: 0,
            bytes_processed: 0,
        }
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(escape_label_value(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label_value("two\nlines"), r"two\nlines");
        assert_eq!(escape_label_value("plain-id_1.x"), "plain-id_1.x");
        assert_eq!(escape_label_value("ünï"), "ünï");
        assert_eq!(escape_help("a \\ \"b\"\nc"), "a \\\\ \"b\"\\nc");
    }

    #[test]
    fn values_use_prometheus_float_syntax() {
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(42.0), "42");
        assert_eq!(format_value(1764000004.456), "1764000004.456");
        assert_eq!(format_value(5e9), "5000000000");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(seconds(1_764_000_004_456), 1764000004.456);
    }

    #[test]
    fn renders_help_type_then_samples() {
        let mut f = Family::gauge("footrest_x", "Help with \\ and\nnewline.");
        f.push(vec![], 1.0);
        f.push(
            vec![("plan", "p\"1".to_string()), ("repo", "r\\".to_string())],
            2.5,
        );
        let empty = Family::gauge("footrest_y", "Nothing yet.");
        assert_eq!(
            render(&[f, empty]),
            "# HELP footrest_x Help with \\\\ and\\nnewline.\n\
             # TYPE footrest_x gauge\n\
             footrest_x 1\n\
             footrest_x{plan=\"p\\\"1\",repo=\"r\\\\\"} 2.5\n\
             # HELP footrest_y Nothing yet.\n\
             # TYPE footrest_y gauge\n"
        );
    }

    #[test]
    fn names_are_prometheus_style_and_unique() {
        let fams = families(&Facts::default());
        let mut names: Vec<&str> = fams.iter().map(|f| f.name).collect();
        for name in &names {
            assert!(name.starts_with("footrest_"), "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
        }
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate family names");
    }

    fn sample(fams: &[Family], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        fams.iter()
            .find(|f| f.name == name)?
            .samples
            .iter()
            .find(|s| {
                s.labels.len() == labels.len()
                    && s.labels
                        .iter()
                        .zip(labels)
                        .all(|((k, v), (k2, v2))| k == k2 && v == v2)
            })
            .map(|s| s.value)
    }

    #[test]
    fn plan_figures_come_from_the_last_outcome() {
        let mut last = outcome(OperationStatus::Warning, 1_000_000, 1_004_500);
        last.bytes_added = 300;
        last.files_processed = 12;
        last.bytes_processed = 4096;
        let facts = Facts {
            plans: vec![
                PlanFacts {
                    plan_id: "docs".into(),
                    repo_id: "nas".into(),
                    last: Some(last),
                    last_success_end_ms: Some(1_004_500),
                    next_ms: Some(2_000_000),
                },
                PlanFacts {
                    plan_id: "new".into(),
                    repo_id: "nas".into(),
                    ..Default::default()
                },
            ],
            repos: vec![RepoFacts {
                repo_id: "nas".into(),
                snapshots: 7,
                last_prune: Some(outcome(OperationStatus::Error, 0, 5_000)),
                last_check: None,
            }],
            queue_depth: 2,
            by_status: vec![(OperationStatus::Success, 9), (OperationStatus::Error, 1)],
            resident_bytes: Some(8 << 20),
        };
        let f = families(&facts);
        let docs = [("plan", "docs"), ("repo", "nas")];
        assert_eq!(sample(&f, "footrest_plan_info", &docs), Some(1.0));
        assert_eq!(
            sample(&f, "footrest_plan_last_backup_end_timestamp_seconds", &docs),
            Some(1004.5)
        );
        assert_eq!(
            sample(&f, "footrest_plan_last_backup_success", &docs),
            Some(1.0)
        );
        let status = |s| {
            sample(
                &f,
                "footrest_plan_last_backup_status",
                &[("plan", "docs"), ("repo", "nas"), ("status", s)],
            )
        };
        assert_eq!(
            (status("success"), status("warning"), status("error")),
            (Some(0.0), Some(1.0), Some(0.0))
        );
        assert_eq!(
            sample(&f, "footrest_plan_last_backup_duration_seconds", &docs),
            Some(4.5)
        );
        assert_eq!(
            sample(&f, "footrest_plan_last_backup_added_bytes", &docs),
            Some(300.0)
        );
        assert_eq!(
            sample(&f, "footrest_plan_last_backup_processed_files", &docs),
            Some(12.0)
        );
        assert_eq!(
            sample(&f, "footrest_plan_next_backup_timestamp_seconds", &docs),
            Some(2000.0)
        );
        // A plan with no backup yet: listed, and no made-up figures.
        let new = [("plan", "new"), ("repo", "nas")];
        assert_eq!(sample(&f, "footrest_plan_info", &new), Some(1.0));
        assert_eq!(sample(&f, "footrest_plan_last_backup_success", &new), None);
        let nas = [("repo", "nas")];
        assert_eq!(sample(&f, "footrest_repo_snapshots", &nas), Some(7.0));
        assert_eq!(
            sample(&f, "footrest_repo_last_prune_success", &nas),
            Some(0.0)
        );
        assert_eq!(sample(&f, "footrest_repo_last_check_success", &nas), None);
        assert_eq!(sample(&f, "footrest_queue_depth", &[]), Some(2.0));
        assert_eq!(
            sample(&f, "footrest_operations", &[("status", "success")]),
            Some(9.0)
        );
        assert_eq!(
            sample(&f, "footrest_operations", &[("status", "pending")]),
            Some(0.0)
        );
        assert_eq!(
            sample(&f, "footrest_operations", &[("status", "unknown")]),
            None
        );
        assert_eq!(
            sample(&f, "footrest_process_resident_memory_bytes", &[]),
            Some(8_388_608.0)
        );
    }

    #[test]
    fn resident_memory_is_read_from_proc() {
        let rss = resident_bytes().expect("/proc/self/statm on Linux");
        assert!(rss > 0);
    }
}
