//! The backup facts a summary needs (the dashboard): one row per backup operation that
//! started since a given time, newest first, with only the columns and the two summary
//! counters that a summary reads, pulled out of the stored JSON by SQLite so that no
//! operation is decoded whole. It does not aggregate anything: what the facts mean for
//! a dashboard is the caller's business.

use super::{OpLog, OpLogError};
use crate::proto::{BackupProgressEntry, Op, Operation, OperationStatus};

/// `backups_since`: ?1 the earliest start time. One range scan of operations_by_start
/// walked backwards (start_ms DESC, then the rowid = id DESC), so the rows come out in
/// order with no sort; only backup rows have their JSON looked into. Pending backups
/// (planned in the future) are in the range too. The int64 counters are stored as JSON
/// strings, hence the casts; a missing summary gives NULL.
pub(crate) const BACKUPS_SINCE_SQL: &str = "SELECT id, flow_id, repo_id, plan_id, status,
        start_ms, end_ms,
        CAST(json_extract(json, '$.operationBackup.lastStatus.summary.totalBytesProcessed')
             AS INTEGER),
        CAST(json_extract(json, '$.operationBackup.lastStatus.summary.dataAdded') AS INTEGER),
        json_extract(json, '$.operationBackup.dryRun') IS 1
    FROM operations
    WHERE start_ms >= ?1 AND kind = 'operationBackup'
    ORDER BY start_ms DESC, id DESC";

/// What a summary needs to know about one backup operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFacts {
    pub id: i64,
    pub flow_id: i64,
    pub repo_id: String,
    pub plan_id: String,
    pub status: OperationStatus,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The summary's `totalBytesProcessed`; 0 without a summary.
    pub bytes_scanned: i64,
    /// The summary's `dataAdded`; 0 without a summary.
    pub bytes_added: i64,
    pub dry_run: bool,
}

impl BackupFacts {
    /// The facts of a backup operation (`None` for any other kind): what
    /// [`OpLog::backups_since`] reads from the stored JSON, taken from the value itself.
    pub fn of(op: &Operation) -> Option<BackupFacts> {
        let Op::Backup(backup) = &op.op else {
            return None;
        };
        let (bytes_scanned, bytes_added) = match &backup.last_status {
            Some(BackupProgressEntry::Summary(s)) => (s.total_bytes_processed, s.data_added),
            _ => (0, 0),
        };
        Some(BackupFacts {
            id: op.id,
            flow_id: op.flow_id,
            repo_id: op.repo_id.clone(),
            plan_id: op.plan_id.clone(),
            status: op.status,
            start_ms: op.unix_time_start_ms,
            end_ms: op.unix_time_end_ms,
            bytes_scanned,
            bytes_added,
            dry_run: backup.dry_run,
        })
    }
}

impl OpLog {
    /// Every backup operation whose start time is `since_ms` or later (pending ones
    /// included: their start is the planned time), newest first (ties: the higher id).
    pub fn backups_since(&self, since_ms: i64) -> Result<Vec<BackupFacts>, OpLogError> {
        self.with_reader(|conn| {
            let mut st = conn
                .prepare_cached(BACKUPS_SINCE_SQL)
                .map_err(self.sql_err("listing recent backups"))?;
            let rows = st
                .query_map([since_ms], |r| {
                    let status: i32 = r.get(4)?;
                    Ok(BackupFacts {
                        id: r.get(0)?,
                        flow_id: r.get(1)?,
                        repo_id: r.get(2)?,
                        plan_id: r.get(3)?,
                        status: OperationStatus::from_i32(status).unwrap_or_default(),
                        start_ms: r.get(5)?,
                        end_ms: r.get(6)?,
                        bytes_scanned: r.get::<_, Option<i64>>(7)?.unwrap_or(0),
                        bytes_added: r.get::<_, Option<i64>>(8)?.unwrap_or(0),
                        dry_run: r.get(9)?,
                    })
                })
                .map_err(self.sql_err("listing recent backups"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(self.sql_err("listing recent backups"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::lock;
    use super::*;
    use crate::proto::{BackupProgressSummary, OperationBackup, OperationPrune};

    fn backup(
        plan: &str,
        status: OperationStatus,
        start: i64,
        summary: Option<(i64, i64)>,
    ) -> Operation {
        let mut op = Operation::new(Op::Backup(OperationBackup {
            last_status: summary.map(|(scanned, added)| {
                BackupProgressEntry::Summary(BackupProgressSummary {
                    total_bytes_processed: scanned,
                    data_added: added,
                    files_new: 3,
                    snapshot_id: "ab".repeat(32),
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

    fn open() -> (tempfile::TempDir, OpLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = OpLog::open(&dir.path().join("oplog.sqlite")).unwrap();
        (dir, log)
    }

    #[test]
    fn reads_the_same_facts_as_the_operation_holds_newest_first() {
        let (_dir, log) = open();
        let big = 5_000_000_000_i64; // beyond i32: the JSON string must come back whole
        let mut dry = backup("docs", OperationStatus::Success, 4_000, Some((7, 7)));
        if let Op::Backup(b) = &mut dry.op {
            b.dry_run = true;
        }
        let mut prune = Operation::new(Op::Prune(OperationPrune::default()));
        prune.unix_time_start_ms = 3_500;
        prune.status = OperationStatus::Success;
        let mut ops = vec![
            backup("docs", OperationStatus::Success, 1_000, Some((big, 42))),
            backup("docs", OperationStatus::Error, 3_000, None),
            backup("photos", OperationStatus::Warning, 3_000, Some((10, 0))),
            prune,
            dry,
            backup("docs", OperationStatus::Pending, 90_000, None),
            backup("docs", OperationStatus::Success, 500, Some((1, 1))),
        ];
        log.add_batch(&mut ops).unwrap();
        let got = log.backups_since(1_000).unwrap();
        // Newest start first; the two at 3000 by id, higher first; the prune and the
        // backup that started before 1000 are not there.
        let want: Vec<BackupFacts> = [5, 4, 2, 1, 0]
            .iter()
            .map(|&i| BackupFacts::of(&ops[i]).unwrap())
            .collect();
        assert_eq!(got, want);
        assert_eq!(got[4].bytes_scanned, big);
        assert_eq!(got[4].bytes_added, 42);
        assert!(got[1].dry_run);
        assert_eq!(got[3].bytes_scanned, 0);
        assert!(log.backups_since(100_000).unwrap().is_empty());
    }

    fn query_plan(log: &OpLog) -> Vec<String> {
        log.with_reader(|conn| {
            let mut st = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {BACKUPS_SINCE_SQL}"))
                .unwrap();
            let rows = st
                .query_map([0_i64], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            Ok(rows)
        })
        .unwrap()
    }

    #[test]
    fn walks_the_start_index_without_sorting() {
        let want = ["SEARCH operations USING INDEX operations_by_start (start_ms>?)"];
        let (_dir, log) = open();
        assert_eq!(query_plan(&log), want);
        // Still so once the planner has statistics of a realistic log: many plans, and
        // backups among hooks, index and forget operations.
        let mut ops: Vec<Operation> = (0..3000)
            .map(|i| {
                let mut op = match i % 4 {
                    0 => backup(&format!("p{}", i % 40), OperationStatus::Success, i, None),
                    _ => Operation::new(Op::Prune(OperationPrune::default())),
                };
                op.unix_time_start_ms = i * 1000;
                op
            })
            .collect();
        log.add_batch(&mut ops).unwrap();
        lock(&log.writer).execute_batch("ANALYZE").unwrap();
        assert_eq!(query_plan(&log), want);
    }
}
