//! `GetSummaryDashboard` (CONTRACT §4): per repo and per plan of the config, the backups
//! of the last 30 days (counts, bytes, averages, the recent ones as a chart) and the
//! next planned backup, computed in one pass over the facts of the backups that started
//! in the window (one oplog query, newest first). The aggregation ([`summarize`]) is
//! pure; this file does not run restic, and it reads nothing but the config and that
//! one query.
//!
//! Choices, where Backrest leaves room:
//! - The window is the 30 × 24 hours before now (the orchestrator's clock).
//! - Dry runs are not backups: they count nowhere and are not in the chart.
//! - Counts: SUCCESS, WARNING and ERROR each have one; cancelled and running backups
//!   are only in the chart (running ones with their duration so far).
//! - Bytes (totals and averages) come from the summaries of SUCCESS and WARNING backups
//!   ("scanned" = `totalBytesProcessed`, "added" = `dataAdded`); the averages divide by
//!   their number (Backrest divides by every backup, failures included).
//! - `nextBackupTimeMs`: the earliest PENDING backup of the plan (its planned start); for
//!   a repo, the earliest of its plans'.
//! - A repo's figures cover every backup recorded in that repo, also those of plans
//!   since removed from the config; a plan's cover its backups in any repo.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use crate::App;
use crate::api::connect::ApiError;
use crate::oplog::BackupFacts;
use crate::proto::OperationStatus;
use crate::proto::json::{int64, is_default, vec_int64};

use super::encode;

/// The dashboard's window.
pub const WINDOW_MS: i64 = 30 * 24 * 60 * 60 * 1000;
/// At most this many backups in a summary's chart.
pub const CHART_MAX: usize = 60;

/// The response. Its two lists are always written, even when empty: clients index
/// them without checking (`resp.repoSummaries.map(...)`), and a config with no plans
/// yet is common. This is the one place in the API where an empty list is written;
/// everywhere else a zero value is left out, as proto3 JSON does.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DashboardResponse {
    repo_summaries: Vec<Summary>,
    plan_summaries: Vec<Summary>,
    #[serde(skip_serializing_if = "is_default")]
    config_path: String,
    #[serde(skip_serializing_if = "is_default")]
    data_path: String,
}

/// One repo's or plan's figures (Backrest's `SummaryDashboardResponse.Summary`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub id: String,
    #[serde(
        rename = "backupsFailed30days",
        serialize_with = "int64::serialize",
        skip_serializing_if = "is_default"
    )]
    pub backups_failed: i64,
    #[serde(
        rename = "backupsWarningLast30days",
        serialize_with = "int64::serialize",
        skip_serializing_if = "is_default"
    )]
    pub backups_warning: i64,
    #[serde(
        rename = "backupsSuccessLast30days",
        serialize_with = "int64::serialize",
        skip_serializing_if = "is_default"
    )]
    pub backups_success: i64,
    #[serde(
        rename = "bytesScannedLast30days",
        serialize_with = "int64::serialize",
        skip_serializing_if = "is_default"
    )]
    pub bytes_scanned: i64,
    #[serde(
        rename = "bytesAddedLast30days",
        serialize_with = "int64::serialize",
        skip_serializing_if = "is_default"
    )]
    pub bytes_added: i64,
    #[serde(
        serialize_with = "int64::serialize",
        skip_serializing_if = "is_default"
    )]
    pub bytes_scanned_avg: i64,
    #[serde(
        serialize_with = "int64::serialize",
        skip_serializing_if = "is_default"
    )]
    pub bytes_added_avg: i64,
    #[serde(
        serialize_with = "int64::serialize",
        skip_serializing_if = "is_default"
    )]
    pub next_backup_time_ms: i64,
    /// Always written (`{}` when there is nothing to chart), as Backrest does.
    pub recent_backups: BackupChart,
}

/// The recent backups, newest first, as parallel arrays (one index = one backup).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupChart {
    #[serde(
        serialize_with = "vec_int64::serialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flow_id: Vec<i64>,
    #[serde(
        serialize_with = "vec_int64::serialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub timestamp_ms: Vec<i64>,
    #[serde(
        serialize_with = "vec_int64::serialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub duration_ms: Vec<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<OperationStatus>,
    #[serde(
        serialize_with = "vec_int64::serialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub bytes_added: Vec<i64>,
}

pub fn get_summary_dashboard(app: &App, _body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let config = app.config.get();
    let now_ms = app.orchestrator.shared().clock.now_ms();
    let backups = app.oplog.backups_since(now_ms.saturating_sub(WINDOW_MS))?;
    let repos: Vec<&str> = config.repos.iter().map(|r| r.id.as_str()).collect();
    let plans: Vec<(&str, &str)> = config
        .plans
        .iter()
        .map(|p| (p.id.as_str(), p.repo.as_str()))
        .collect();
    let (repo_summaries, plan_summaries) = summarize(&repos, &plans, &backups, now_ms);
    encode(&DashboardResponse {
        repo_summaries,
        plan_summaries,
        config_path: shown(app.config.path()),
        data_path: shown(&app.data_dir),
    })
}

/// A path as the user can find it: absolute (footrest never changes its working
/// directory, so this is the file it uses).
fn shown(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

/// The figures of each repo (`repos`, in config order) and each plan (`plans` as
/// (plan id, repo id), in config order) from `backups`, which must be newest first (as
/// [`crate::oplog::OpLog::backups_since`] gives them); backups that started before the
/// window are ignored. Every repo and plan gets a summary, with or without history.
pub fn summarize(
    repos: &[&str],
    plans: &[(&str, &str)],
    backups: &[BackupFacts],
    now_ms: i64,
) -> (Vec<Summary>, Vec<Summary>) {
    let since = now_ms.saturating_sub(WINDOW_MS);
    let mut repo_acc: Vec<Acc> = repos.iter().map(|id| Acc::new(id)).collect();
    let mut plan_acc: Vec<Acc> = plans.iter().map(|(id, _)| Acc::new(id)).collect();
    let repo_at: HashMap<&str, usize> = repos.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let plan_at: HashMap<&str, usize> = plans
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    for b in backups.iter().filter(|b| b.start_ms >= since && !b.dry_run) {
        if b.status == OperationStatus::Pending {
            // Only plans have planned runs; a repo's next one is its plans' earliest.
            if let Some(&i) = plan_at.get(b.plan_id.as_str()) {
                plan_acc[i].plan_next(b.start_ms);
            }
            continue;
        }
        if let Some(&i) = plan_at.get(b.plan_id.as_str()) {
            plan_acc[i].add(b, now_ms);
        }
        if let Some(&i) = repo_at.get(b.repo_id.as_str()) {
            repo_acc[i].add(b, now_ms);
        }
    }
    let plan_summaries: Vec<Summary> = plan_acc.into_iter().map(Acc::finish).collect();
    for (summary, (_, repo)) in plan_summaries.iter().zip(plans) {
        if let Some(&i) = repo_at.get(repo) {
            repo_acc[i].plan_next(summary.next_backup_time_ms);
        }
    }
    let repo_summaries = repo_acc.into_iter().map(Acc::finish).collect();
    (repo_summaries, plan_summaries)
}

/// One summary being built.
struct Acc {
    summary: Summary,
}

impl Acc {
    fn new(id: &str) -> Acc {
        Acc {
            summary: Summary {
                id: id.to_string(),
                ..Summary::default()
            },
        }
    }

    /// A planned run at `at_ms` (0: none): the earliest one wins.
    fn plan_next(&mut self, at_ms: i64) {
        let next = &mut self.summary.next_backup_time_ms;
        if at_ms > 0 && (*next == 0 || at_ms < *next) {
            *next = at_ms;
        }
    }

    /// A backup that has started (not pending, not a dry run), in newest-first order.
    fn add(&mut self, b: &BackupFacts, now_ms: i64) {
        let s = &mut self.summary;
        let ok = match b.status {
            OperationStatus::Success => {
                s.backups_success += 1;
                true
            }
            OperationStatus::Warning => {
                s.backups_warning += 1;
                true
            }
            OperationStatus::Error => {
                s.backups_failed += 1;
                false
            }
            _ => false,
        };
        if ok {
            s.bytes_scanned = s.bytes_scanned.saturating_add(b.bytes_scanned);
            s.bytes_added = s.bytes_added.saturating_add(b.bytes_added);
        }
        let chart = &mut s.recent_backups;
        if chart.flow_id.len() < CHART_MAX {
            let end = if b.status.is_finished() {
                b.end_ms
            } else {
                now_ms
            };
            chart.flow_id.push(b.flow_id);
            chart.timestamp_ms.push(b.start_ms);
            chart
                .duration_ms
                .push(end.saturating_sub(b.start_ms).max(0));
            chart.status.push(b.status);
            chart.bytes_added.push(b.bytes_added);
        }
    }

    fn finish(mut self) -> Summary {
        let s = &mut self.summary;
        let ok = s.backups_success + s.backups_warning;
        if ok > 0 {
            s.bytes_scanned_avg = s.bytes_scanned / ok;
            s.bytes_added_avg = s.bytes_added / ok;
        }
        self.summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{
        BackupProgressEntry, BackupProgressSummary, Op, Operation, OperationBackup,
        OperationStatus as S,
    };

    const NOW: i64 = 1_764_000_000_000;
    const HOUR: i64 = 3_600_000;

    /// A backup operation of `plan` in `repo` that started `hours_ago` and took 90 s;
    /// a summary (scanned, added) when it wrote a snapshot.
    fn op(
        id: i64,
        repo: &str,
        plan: &str,
        status: S,
        hours_ago: i64,
        summary: Option<(i64, i64)>,
    ) -> Operation {
        let mut op = Operation::new(Op::Backup(OperationBackup {
            last_status: summary.map(|(scanned, added)| {
                BackupProgressEntry::Summary(BackupProgressSummary {
                    total_bytes_processed: scanned,
                    data_added: added,
                    ..Default::default()
                })
            }),
            ..Default::default()
        }));
        op.id = id;
        op.flow_id = id;
        op.repo_id = repo.into();
        op.plan_id = plan.into();
        op.status = status;
        op.unix_time_start_ms = NOW - hours_ago * HOUR;
        if status.is_finished() {
            op.unix_time_end_ms = op.unix_time_start_ms + 90_000;
        }
        op
    }

    /// The facts of `ops`, newest first as the oplog gives them.
    fn facts(ops: &[Operation]) -> Vec<BackupFacts> {
        let mut facts: Vec<BackupFacts> = ops.iter().filter_map(BackupFacts::of).collect();
        facts.sort_by(|a, b| b.start_ms.cmp(&a.start_ms).then(b.id.cmp(&a.id)));
        facts
    }

    fn summarize_ops(
        repos: &[&str],
        plans: &[(&str, &str)],
        ops: &[Operation],
    ) -> (Vec<Summary>, Vec<Summary>) {
        summarize(repos, plans, &facts(ops), NOW)
    }

    #[test]
    fn counts_bytes_and_averages_per_plan_and_repo() {
        let ops = vec![
            op(1, "nas", "docs", S::Success, 48, Some((1000, 100))),
            op(2, "nas", "docs", S::Warning, 24, Some((2000, 300))),
            op(3, "nas", "docs", S::Error, 12, None),
            op(4, "nas", "photos", S::Success, 6, Some((6000, 0))),
            op(5, "usb", "other", S::Success, 3, Some((5, 5))),
            op(6, "nas", "docs", S::UserCancelled, 2, None),
        ];
        let (repos, plans) =
            summarize_ops(&["nas", "usb"], &[("docs", "nas"), ("photos", "nas")], &ops);
        let docs = &plans[0];
        assert_eq!(docs.id, "docs");
        assert_eq!(
            (
                docs.backups_success,
                docs.backups_warning,
                docs.backups_failed
            ),
            (1, 1, 1)
        );
        assert_eq!((docs.bytes_scanned, docs.bytes_added), (3000, 400));
        // Averages over the two that wrote a snapshot, not over all four.
        assert_eq!((docs.bytes_scanned_avg, docs.bytes_added_avg), (1500, 200));
        let nas = &repos[0];
        assert_eq!(
            (nas.backups_success, nas.backups_warning, nas.backups_failed),
            (2, 1, 1)
        );
        assert_eq!((nas.bytes_scanned, nas.bytes_added), (9000, 400));
        assert_eq!((nas.bytes_scanned_avg, nas.bytes_added_avg), (3000, 133));
        // usb's backups belong to a plan that is not in the config: the repo counts them.
        assert_eq!(repos[1].backups_success, 1);
        assert_eq!(plans[1].backups_success, 1);
    }

    #[test]
    fn the_chart_is_newest_first_with_durations_statuses_and_bytes() {
        let mut ops = vec![
            op(1, "nas", "docs", S::Success, 30, Some((10, 7))),
            op(2, "nas", "docs", S::Error, 20, None),
            op(3, "nas", "docs", S::Warning, 10, Some((10, 3))),
            op(4, "nas", "docs", S::InProgress, 1, None),
        ];
        ops[0].flow_id = 77;
        let (_, plans) = summarize_ops(&["nas"], &[("docs", "nas")], &ops);
        let chart = &plans[0].recent_backups;
        assert_eq!(chart.flow_id, [4, 3, 2, 77]);
        assert_eq!(
            chart.timestamp_ms,
            [
                NOW - HOUR,
                NOW - 10 * HOUR,
                NOW - 20 * HOUR,
                NOW - 30 * HOUR
            ]
        );
        // The running one: its duration so far.
        assert_eq!(chart.duration_ms, [HOUR, 90_000, 90_000, 90_000]);
        assert_eq!(
            chart.status,
            [S::InProgress, S::Warning, S::Error, S::Success]
        );
        assert_eq!(chart.bytes_added, [0, 3, 0, 7]);
    }

    #[test]
    fn the_chart_keeps_the_newest_sixty_and_counts_all() {
        let ops: Vec<Operation> = (1..=100)
            .map(|i| op(i, "nas", "docs", S::Success, 200 - i, Some((1, 1))))
            .collect();
        let (_, plans) = summarize_ops(&["nas"], &[("docs", "nas")], &ops);
        let s = &plans[0];
        assert_eq!(s.backups_success, 100);
        assert_eq!(s.recent_backups.flow_id.len(), CHART_MAX);
        assert_eq!(s.recent_backups.flow_id[0], 100);
        assert_eq!(s.recent_backups.flow_id[CHART_MAX - 1], 41);
        assert_eq!(s.recent_backups.status.len(), CHART_MAX);
        assert_eq!(s.recent_backups.bytes_added.len(), CHART_MAX);
    }

    #[test]
    fn old_backups_and_dry_runs_do_not_count() {
        let mut dry = op(3, "nas", "docs", S::Success, 1, Some((50, 50)));
        if let Op::Backup(b) = &mut dry.op {
            b.dry_run = true;
        }
        let ops = vec![
            op(1, "nas", "docs", S::Success, 24 * 30 + 1, Some((9, 9))),
            op(2, "nas", "docs", S::Error, 24 * 29, None),
            dry,
        ];
        let (repos, plans) = summarize_ops(&["nas"], &[("docs", "nas")], &ops);
        for s in [&repos[0], &plans[0]] {
            assert_eq!((s.backups_success, s.backups_failed), (0, 1), "{s:?}");
            assert_eq!((s.bytes_scanned, s.bytes_added_avg), (0, 0));
            assert_eq!(s.recent_backups.flow_id, [2]);
        }
    }

    #[test]
    fn next_backup_is_the_earliest_pending_one_and_the_repos_is_its_plans_earliest() {
        let ops = vec![
            op(1, "nas", "docs", S::Success, 5, Some((1, 1))),
            op(2, "nas", "docs", S::Pending, -24, None),
            op(3, "nas", "docs", S::Pending, 0, None),
            op(4, "nas", "photos", S::Pending, -2, None),
            op(5, "usb", "other", S::Pending, -1, None),
        ];
        let (repos, plans) = summarize_ops(
            &["nas", "usb", "empty"],
            &[("docs", "nas"), ("photos", "nas"), ("idle", "usb")],
            &ops,
        );
        assert_eq!(plans[0].next_backup_time_ms, NOW);
        assert_eq!(plans[1].next_backup_time_ms, NOW + 2 * HOUR);
        assert_eq!(plans[2].next_backup_time_ms, 0);
        assert_eq!(repos[0].next_backup_time_ms, NOW);
        // "other" is not a plan of the config: its planned run is nobody's.
        assert_eq!(repos[1].next_backup_time_ms, 0);
        // Pending runs are neither counted nor charted.
        assert_eq!(plans[0].backups_success, 1);
        assert_eq!(plans[0].recent_backups.flow_id, [1]);
    }

    #[test]
    fn every_repo_and_plan_is_there_without_history_and_encodes_as_proto3_json() {
        let (repos, plans) = summarize(&["nas", "usb"], &[("docs", "nas")], &[], NOW);
        assert_eq!(
            repos.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["nas", "usb"]
        );
        assert_eq!(
            plans[0],
            Summary {
                id: "docs".into(),
                ..Summary::default()
            }
        );
        let body = DashboardResponse {
            repo_summaries: Vec::new(),
            plan_summaries: plans,
            config_path: "/etc/footrest/config.json".into(),
            data_path: "/var/lib/footrest".into(),
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"repoSummaries":[],"planSummaries":[{"id":"docs","recentBackups":{}}],"configPath":"/etc/footrest/config.json","dataPath":"/var/lib/footrest"}"#
        );
        let ops = vec![op(
            9,
            "nas",
            "docs",
            S::Warning,
            1,
            Some((5_000_000_000, 42)),
        )];
        let (_, plans) = summarize_ops(&["nas"], &[("docs", "nas")], &ops);
        let json = serde_json::to_value(&plans[0]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "docs",
                "backupsWarningLast30days": "1",
                "bytesScannedLast30days": "5000000000",
                "bytesAddedLast30days": "42",
                "bytesScannedAvg": "5000000000",
                "bytesAddedAvg": "42",
                "recentBackups": {
                    "flowId": ["9"],
                    "timestampMs": [(NOW - HOUR).to_string()],
                    "durationMs": ["90000"],
                    "status": ["STATUS_WARNING"],
                    "bytesAdded": ["42"]
                }
            })
        );
    }
}
