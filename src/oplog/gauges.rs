//! The few figures a metrics scrape reads from the history: the last outcome of a
//! task, the next planned backups, live snapshots per repo, operations per status.
//! Each is one small indexed query that pulls its numbers out of the stored JSON in
//! SQLite, so a scrape costs about the same with a hundred operations or a hundred
//! thousand (the per-status count is the one that grows with the log: it walks a
//! one-column index, never the rows). What the figures mean for Prometheus is
//! `api::metrics`' business, not this file's.

use rusqlite::OptionalExtension;

use super::{OpLog, OpLogError};
use crate::proto::OperationStatus;

/// `last_outcome`: ?1 plan, ?2 repo, ?3 kind. One seek in operations_by_kind walked
/// backwards by start; the newest rows (a pending or running one) are stepped over.
/// Only outcomes count: SUCCESS 3, ERROR 4, WARNING 7 (a cancelled task has none), and
/// dry runs are not backups. The summary counters are JSON strings, hence the casts;
/// missing ones give NULL.
pub(crate) const LAST_OUTCOME_SQL: &str = "SELECT id, status, start_ms, end_ms,
        CAST(json_extract(json, '$.operationBackup.lastStatus.summary.dataAdded') AS INTEGER),
        CAST(json_extract(json, '$.operationBackup.lastStatus.summary.totalFilesProcessed')
             AS INTEGER),
        CAST(json_extract(json, '$.operationBackup.lastStatus.summary.totalBytesProcessed')
             AS INTEGER)
    FROM operations
    WHERE plan_id = ?1 AND repo_id = ?2 AND kind = ?3 AND status IN (3, 4, 7)
      AND json_extract(json, '$.operationBackup.dryRun') IS NOT 1
    ORDER BY start_ms DESC, id DESC LIMIT 1";

/// `last_success`: as [`LAST_OUTCOME_SQL`], SUCCESS or WARNING only.
pub(crate) const LAST_SUCCESS_SQL: &str = "SELECT end_ms FROM operations
    WHERE plan_id = ?1 AND repo_id = ?2 AND kind = ?3 AND status IN (3, 7)
      AND json_extract(json, '$.operationBackup.dryRun') IS NOT 1
    ORDER BY start_ms DESC, id DESC LIMIT 1";

/// `next_backups`: the partial index on PENDING (a handful of rows); the status is a
/// literal so that the planner can use it.
pub(crate) const NEXT_BACKUPS_SQL: &str = "SELECT plan_id, repo_id, min(start_ms)
    FROM operations WHERE status = 1 AND kind = 'operationBackup'
    GROUP BY plan_id, repo_id ORDER BY plan_id, repo_id";

/// `live_snapshots`: the partial index operations_live_snapshots_by_repo (one entry per
/// snapshot that still exists, in repo order: no row read, no sort); its WHERE is
/// repeated word for word so the planner matches it.
pub(crate) const LIVE_SNAPSHOTS_SQL: &str = "SELECT repo_id, count(DISTINCT snapshot_id)
    FROM operations
    WHERE kind = 'operationIndexSnapshot'
      AND json_extract(json, '$.operationIndexSnapshot.forgot') IS NOT 1
    GROUP BY repo_id ORDER BY repo_id";

/// `count_by_status`: one walk of the partial index operations_status_counts, whose
/// condition (`status >= 0`, true of every row) only this query states.
pub(crate) const BY_STATUS_SQL: &str = "SELECT status, count(*) FROM operations
    WHERE status >= 0 GROUP BY status ORDER BY status";

/// How a task last ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub id: i64,
    /// SUCCESS, WARNING or ERROR.
    pub status: OperationStatus,
    pub start_ms: i64,
    pub end_ms: i64,
    /// A backup's summary: `dataAdded`, `totalFilesProcessed`, `totalBytesProcessed`;
    /// 0 without a summary (a failed backup, another kind of task).
    pub bytes_added: i64,
    pub files_processed: i64,
    pub bytes_processed: i64,
}

/// The earliest PENDING backup of a plan in a repo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextBackup {
    pub plan_id: String,
    pub repo_id: String,
    pub start_ms: i64,
}

impl OpLog {
    /// The newest operation of this kind (a oneof member name such as
    /// "operationBackup") for this plan and repo, by start time, that ran to an
    /// outcome: SUCCESS, WARNING or ERROR. Pending, running and cancelled operations
    /// and dry runs are passed over. Repo-level tasks use the plan id `_system_`.
    pub fn last_outcome(
        &self,
        repo_id: &str,
        plan_id: &str,
        kind: &str,
    ) -> Result<Option<Outcome>, OpLogError> {
        self.with_reader(|conn| {
            conn.prepare_cached(LAST_OUTCOME_SQL)
                .and_then(|mut st| {
                    st.query_row([plan_id, repo_id, kind], |r| {
                        let status: i32 = r.get(1)?;
                        Ok(Outcome {
                            id: r.get(0)?,
                            status: OperationStatus::from_i32(status).unwrap_or_default(),
                            start_ms: r.get(2)?,
                            end_ms: r.get(3)?,
                            bytes_added: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
                            files_processed: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
                            bytes_processed: r.get::<_, Option<i64>>(6)?.unwrap_or(0),
                        })
                    })
                    .optional()
                })
                .map_err(self.sql_err("finding the last outcome of a task"))
        })
    }

    /// The end time of the newest SUCCESS or WARNING operation of this kind for this
    /// plan and repo (dry runs passed over), like [`last_outcome`](Self::last_outcome).
    pub fn last_success_end(
        &self,
        repo_id: &str,
        plan_id: &str,
        kind: &str,
    ) -> Result<Option<i64>, OpLogError> {
        self.with_reader(|conn| {
            conn.prepare_cached(LAST_SUCCESS_SQL)
                .and_then(|mut st| {
                    st.query_row([plan_id, repo_id, kind], |r| r.get(0))
                        .optional()
                })
                .map_err(self.sql_err("finding the last success of a task"))
        })
    }

    /// Per plan and repo, the planned start of its earliest PENDING backup; sorted by
    /// plan, then repo.
    pub fn next_backups(&self) -> Result<Vec<NextBackup>, OpLogError> {
        self.with_reader(|conn| {
            conn.prepare_cached(NEXT_BACKUPS_SQL)
                .and_then(|mut st| {
                    st.query_map([], |r| {
                        Ok(NextBackup {
                            plan_id: r.get(0)?,
                            repo_id: r.get(1)?,
                            start_ms: r.get(2)?,
                        })
                    })?
                    .collect()
                })
                .map_err(self.sql_err("listing the next planned backups"))
        })
    }

    /// Per repo id, the number of distinct snapshots the history holds as still
    /// existing (indexed and not forgotten): what ListSnapshots would list. Repos with
    /// none are not in the list; sorted by repo id.
    pub fn live_snapshots(&self) -> Result<Vec<(String, i64)>, OpLogError> {
        self.with_reader(|conn| {
            conn.prepare_cached(LIVE_SNAPSHOTS_SQL)
                .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(self.sql_err("counting snapshots"))
        })
    }

    /// The number of operations in each status; statuses with none are not in the
    /// list. Sorted by status number.
    pub fn count_by_status(&self) -> Result<Vec<(OperationStatus, i64)>, OpLogError> {
        self.with_reader(|conn| {
            conn.prepare_cached(BY_STATUS_SQL)
                .and_then(|mut st| {
                    st.query_map([], |r| {
                        let status: i32 = r.get(0)?;
                        Ok((
                            OperationStatus::from_i32(status).unwrap_or_default(),
                            r.get(1)?,
                        ))
                    })?
                    .collect()
                })
                .map_err(self.sql_err("counting operations by status"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::lock;
    use super::*;
    use crate::proto::{
        BackupProgressEntry, BackupProgressSummary, Op, Operation, OperationBackup,
        OperationIndexSnapshot, OperationPrune, ResticSnapshot,
    };

    fn open() -> (tempfile::TempDir, OpLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = OpLog::open(&dir.path().join("oplog.sqlite")).unwrap();
        (dir, log)
    }

    fn backup(plan: &str, status: OperationStatus, start: i64, added: Option<i64>) -> Operation {
        let mut op = Operation::new(Op::Backup(OperationBackup {
            last_status: added.map(|added| {
                BackupProgressEntry::Summary(BackupProgressSummary {
                    data_added: added,
                    total_files_processed: 40,
                    total_bytes_processed: 5_000_000_000,
                    ..Default::default()
                })
            }),
            ..Default::default()
        }));
        op.repo_id = "nas".into();
        op.plan_id = plan.into();
        op.status = status;
        op.unix_time_start_ms = start;
        if status.is_finished() {
            op.unix_time_end_ms = start + 1500;
        }
        op
    }

    fn system(op: Op, status: OperationStatus, start: i64) -> Operation {
        let mut op = Operation::new(op);
        op.repo_id = "nas".into();
        op.plan_id = "_system_".into();
        op.status = status;
        op.unix_time_start_ms = start;
        op.unix_time_end_ms = start + 10;
        op
    }

    fn index(repo: &str, snapshot: &str, forgot: bool) -> Operation {
        let mut op = Operation::new(Op::IndexSnapshot(OperationIndexSnapshot {
            snapshot: Some(ResticSnapshot {
                id: snapshot.into(),
                ..Default::default()
            }),
            forgot,
        }));
        op.repo_id = repo.into();
        op.snapshot_id = snapshot.into();
        op.status = OperationStatus::Success;
        op
    }

    #[test]
    fn the_last_outcome_passes_over_running_cancelled_and_dry_runs() {
        let (_dir, log) = open();
        let mut dry = backup("docs", OperationStatus::Success, 5_000, Some(1));
        if let Op::Backup(b) = &mut dry.op {
            b.dry_run = true;
        }
        let mut ops = vec![
            backup("docs", OperationStatus::Success, 1_000, Some(42)),
            backup("docs", OperationStatus::Error, 2_000, None),
            backup("docs", OperationStatus::UserCancelled, 3_000, None),
            backup("docs", OperationStatus::InProgress, 6_000, None),
            dry,
            backup("docs", OperationStatus::Pending, 90_000, None),
            backup("photos", OperationStatus::Warning, 7_000, Some(9)),
            system(
                Op::Prune(OperationPrune::default()),
                OperationStatus::Success,
                100,
            ),
        ];
        log.add_batch(&mut ops).unwrap();
        let last = log
            .last_outcome("nas", "docs", "operationBackup")
            .unwrap()
            .unwrap();
        assert_eq!(last.id, ops[1].id);
        assert_eq!(last.status, OperationStatus::Error);
        assert_eq!((last.start_ms, last.end_ms), (2_000, 3_500));
        assert_eq!(
            (last.bytes_added, last.files_processed, last.bytes_processed),
            (0, 0, 0)
        );
        assert_eq!(
            log.last_success_end("nas", "docs", "operationBackup")
                .unwrap(),
            Some(2_500)
        );
        let photos = log
            .last_outcome("nas", "photos", "operationBackup")
            .unwrap()
            .unwrap();
        assert_eq!(photos.status, OperationStatus::Warning);
        assert_eq!(
            (
                photos.bytes_added,
                photos.files_processed,
                photos.bytes_processed
            ),
            (9, 40, 5_000_000_000)
        );
        let prune = log
            .last_outcome("nas", "_system_", "operationPrune")
            .unwrap()
            .unwrap();
        assert_eq!(
            (prune.status, prune.end_ms),
            (OperationStatus::Success, 110)
        );
        assert_eq!(
            log.last_outcome("nas", "_system_", "operationCheck")
                .unwrap(),
            None
        );
        assert_eq!(
            log.last_outcome("other", "docs", "operationBackup")
                .unwrap(),
            None
        );
    }

    #[test]
    fn next_backups_snapshots_and_statuses() {
        let (_dir, log) = open();
        let mut ops = vec![
            backup("docs", OperationStatus::Pending, 9_000, None),
            backup("docs", OperationStatus::Pending, 8_000, None),
            backup("photos", OperationStatus::Pending, 7_000, None),
            backup("photos", OperationStatus::Success, 1_000, None),
            index("nas", "a", false),
            index("nas", "a", false), // indexed twice: one snapshot
            index("nas", "b", true),
            index("nas", "c", false),
            index("usb", "d", false),
        ];
        log.add_batch(&mut ops).unwrap();
        let next = log.next_backups().unwrap();
        let got: Vec<(&str, i64)> = next
            .iter()
            .map(|n| (n.plan_id.as_str(), n.start_ms))
            .collect();
        assert_eq!(got, [("docs", 8_000), ("photos", 7_000)]);
        assert_eq!(
            log.live_snapshots().unwrap(),
            [("nas".to_string(), 2), ("usb".to_string(), 1)]
        );
        assert_eq!(
            log.count_by_status().unwrap(),
            [(OperationStatus::Pending, 3), (OperationStatus::Success, 6)]
        );
    }

    fn query_plan(log: &OpLog, sql: &str, params: &[&str]) -> Vec<String> {
        log.with_reader(|conn| {
            let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = st
                .query_map(rusqlite::params_from_iter(params), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            Ok(rows)
        })
        .unwrap()
    }

    /// The queries keep to their indexes once the planner has the statistics of a big,
    /// realistic log (many plans; backups among index and prune operations).
    #[test]
    fn each_query_keeps_to_its_index() {
        let (_dir, log) = open();
        let mut ops: Vec<Operation> = (0..3000)
            .map(|i| {
                let mut op = match i % 3 {
                    0 => backup(
                        &format!("p{}", i % 40),
                        OperationStatus::Success,
                        i,
                        Some(1),
                    ),
                    1 => index("nas", &format!("s{i}"), i % 2 == 0),
                    _ => system(
                        Op::Prune(OperationPrune::default()),
                        OperationStatus::Success,
                        i,
                    ),
                };
                op.unix_time_start_ms = i * 1000;
                op
            })
            .collect();
        log.add_batch(&mut ops).unwrap();
        lock(&log.writer).execute_batch("ANALYZE").unwrap();
        let outcome = ["p1", "nas", "operationBackup"];
        for sql in [LAST_OUTCOME_SQL, LAST_SUCCESS_SQL] {
            assert_eq!(
                query_plan(&log, sql, &outcome),
                ["SEARCH operations USING INDEX operations_by_kind \
                  (plan_id=? AND repo_id=? AND kind=?)"],
                "{sql}"
            );
        }
        let next = query_plan(&log, NEXT_BACKUPS_SQL, &[]);
        assert!(
            next[0].contains("USING INDEX operations_pending"),
            "{next:?}"
        );
        // No row read, no sort.
        assert_eq!(
            query_plan(&log, LIVE_SNAPSHOTS_SQL, &[]),
            ["SCAN operations USING INDEX operations_live_snapshots_by_repo"]
        );
        assert_eq!(
            query_plan(&log, BY_STATUS_SQL, &[]),
            ["SEARCH operations USING COVERING INDEX operations_status_counts (status>?)"]
        );
    }

    /// The same plans before the planner has any statistics (a fresh log on a NAS),
    /// where a GROUP BY could tempt it to walk a whole index for its order.
    #[test]
    fn the_metrics_queries_need_no_statistics() {
        let (_dir, log) = open();
        assert_eq!(
            query_plan(&log, LIVE_SNAPSHOTS_SQL, &[]),
            ["SCAN operations USING INDEX operations_live_snapshots_by_repo"]
        );
        assert_eq!(
            query_plan(&log, BY_STATUS_SQL, &[]),
            ["SEARCH operations USING COVERING INDEX operations_status_counts (status>?)"]
        );
    }
}
