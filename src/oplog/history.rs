//! Removing operations from the history: ClearHistory (what a user picks) and the daily
//! upkeep that keeps the log within per-plan limits while keeping every snapshot's
//! record whole. It only deletes rows and reports what went; removing the deleted
//! operations' logs is the caller's job, and nothing here decides when the upkeep runs.

use rusqlite::types::Value;

use super::{OpEvent, OpLog, OpLogError, selector};
use crate::proto::{OpSelector, Operation};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A forgotten snapshot's index operation (and the rest of its flow) is kept at most
/// this long after it started, whatever the limits of the flow's other members.
pub const FORGOTTEN_SNAPSHOT_MAX_AGE_DAYS: u32 = 30;

/// How much finished history [`OpLog::prune_history`] keeps. A kind no rule names is
/// never deleted by count or age; the index snapshot kind follows its own rule (see
/// `prune_history`) and is ignored here. When two rules name the same kind, the first
/// one applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryLimits {
    pub rules: Vec<HistoryRule>,
}

/// A limit on operations of some kinds. Each kind is limited on its own, per plan and
/// repo: `kinds: [backup, hook]` with `max_count: 100` keeps 100 backups and 100 hook
/// runs of each plan, not 100 of both together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRule {
    /// Oneof member names, e.g. "operationBackup".
    pub kinds: Vec<&'static str>,
    /// The newest this many finished operations of a kind are kept (unless too old).
    pub max_count: usize,
    /// Finished operations that started longer ago than this go, whatever their rank.
    pub max_age_days: Option<u32>,
}

impl Default for HistoryLimits {
    /// footrest's limits: backups and hook runs 100 and 30 days, forgets 30, prunes and
    /// checks 12 each, stats 100, restores and commands 50 and 30 days; index snapshot
    /// operations are not limited by count (they describe snapshots).
    fn default() -> Self {
        let rule = |kinds: &[&'static str], max_count, max_age_days| HistoryRule {
            kinds: kinds.to_vec(),
            max_count,
            max_age_days,
        };
        HistoryLimits {
            rules: vec![
                rule(&["operationBackup", "operationRunHook"], 100, Some(30)),
                rule(&["operationForget"], 30, None),
                rule(&["operationPrune", "operationCheck"], 12, None),
                rule(&["operationStats"], 100, None),
                rule(&["operationRestore", "operationRunCommand"], 50, Some(30)),
            ],
        }
    }
}

impl HistoryLimits {
    /// The limits as the JSON array `[[kind, max_count, cutoff_ms or null], ...]` that
    /// [`PRUNE_SELECT`] reads, one entry per kind.
    pub(super) fn to_param(&self, now_ms: i64) -> Value {
        let mut seen: Vec<&str> = Vec::new();
        let mut entries = Vec::new();
        for rule in &self.rules {
            for &kind in &rule.kinds {
                if kind == INDEX_KIND || seen.contains(&kind) {
                    continue;
                }
                seen.push(kind);
                let cutoff = rule
                    .max_age_days
                    .map(|days| now_ms.saturating_sub(i64::from(days) * DAY_MS));
                let max_count = i64::try_from(rule.max_count).unwrap_or(i64::MAX);
                entries.push(serde_json::json!([kind, max_count, cutoff]));
            }
        }
        Value::Text(serde_json::Value::Array(entries).to_string())
    }
}

const INDEX_KIND: &str = "operationIndexSnapshot";

/// The ids `prune_history` deletes. ?1 = the limits ([`HistoryLimits::to_param`]),
/// ?2 = the start time before which a forgotten snapshot's flow goes.
///
/// - `live_flows`: flows holding an index operation whose snapshot was not forgotten;
///   kept whole (read from the partial index operations_live_snapshots).
/// - `candidates`: finished operations outside live flows that are not the newest of
///   their (plan, repo, kind), with `pos` (rank) 1 for the newest finished one of the group.
///   The count runs over every finished operation of the group, protected ones
///   included: a plan with 150 live snapshots keeps all 150 backups, and none of its
///   failed backups beyond the newest 100. The window walks operations_by_kind, whose
///   order is the window's, so there is no sort.
/// - `over_limit`: candidates beyond their kind's count or age.
/// - `gone_flows`: flows of forgotten index operations (a candidate of the index kind
///   is forgotten, or its flow would be live) that started before ?2, or whose other
///   members (index operations aside) are all over their limits or already gone.
///   Every candidate of such a flow goes, the index operation included.
pub(crate) const PRUNE_SELECT: &str = "
    WITH
    limits(kind, max_count, cutoff) AS MATERIALIZED (
        SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),
               json_extract(value, '$[2]')
        FROM json_each(?1)),
    live_flows(flow_id) AS MATERIALIZED (
        SELECT flow_id FROM operations
        WHERE kind = 'operationIndexSnapshot'
          AND json_extract(json, '$.operationIndexSnapshot.forgot') IS NOT 1),
    candidates(id, flow_id, kind, start_ms, pos) AS MATERIALIZED (
        SELECT id, flow_id, kind, start_ms, pos FROM (
            SELECT id, flow_id, kind, start_ms,
                   count(*) OVER (PARTITION BY plan_id, repo_id, kind ORDER BY start_ms, id
                                  ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS pos
            FROM operations
            WHERE status NOT IN (1, 2))
        WHERE pos > 1 AND flow_id NOT IN live_flows),
    over_limit(id) AS MATERIALIZED (
        SELECT c.id FROM candidates c JOIN limits l ON l.kind = c.kind
        WHERE c.pos > l.max_count OR c.start_ms < l.cutoff),
    gone_flows(flow_id) AS MATERIALIZED (
        SELECT DISTINCT c.flow_id FROM candidates c
        WHERE c.kind = 'operationIndexSnapshot'
          AND (c.start_ms < ?2 OR NOT EXISTS (
                SELECT 1 FROM operations o
                WHERE o.flow_id = c.flow_id AND o.kind != 'operationIndexSnapshot'
                  AND o.id NOT IN over_limit)))
    SELECT id FROM over_limit
    UNION
    SELECT id FROM candidates WHERE flow_id IN gone_flows";

impl OpLog {
    /// ClearHistory: deletes the finished operations (neither PENDING nor INPROGRESS)
    /// that match the selector, with the same semantics as [`query`](Self::query) (an
    /// empty selector matches everything; `ids` alone is allowed) and, when
    /// `only_failed`, only those with status ERROR. Returns them in id order so that the
    /// caller can remove their logs; subscribers get one `Deleted` event with their ids.
    pub fn clear(&self, sel: &OpSelector, only_failed: bool) -> Result<Vec<Operation>, OpLogError> {
        let Some(filter) = selector::filter(sel)? else {
            return Ok(Vec::new());
        };
        let status = if only_failed {
            "status = 4"
        } else {
            "status NOT IN (1, 2)"
        };
        let sql = format!(
            "DELETE FROM operations{} RETURNING id, json",
            filter.where_clause(Some(status))
        );
        self.write(|tx, events| {
            let ops = self.delete_returning(tx, &sql, filter.params, "clearing history")?;
            if !ops.is_empty() {
                events.push(|| OpEvent::Deleted(ops.iter().map(|op| op.id).collect()));
            }
            Ok(ops)
        })
    }

    /// History upkeep, meant to run once a day: deletes finished operations beyond
    /// `limits` and returns them in id order (the caller removes their logs), all in one
    /// transaction; subscribers get one `Deleted` event with every id.
    ///
    /// Limits count per plan, repo and kind (`_system_` is a plan like the others, so
    /// each repo's prunes are counted apart). Never deleted:
    /// 1. anything in the flow of an index operation whose snapshot still exists
    ///    (`forgot` false): a snapshot's backup, hooks and index record stay together;
    /// 2. the newest finished operation of each (plan, repo, kind);
    /// 3. unfinished operations (PENDING, INPROGRESS).
    ///
    /// Forgotten snapshots: an index operation with `forgot` true has no count or age
    /// limit of its own. It goes, taking the rest of its flow with it (except what 2 and
    /// 3 protect), when it started more than [`FORGOTTEN_SNAPSHOT_MAX_AGE_DAYS`] days
    /// ago, or when every other member of its flow (index operations aside) is beyond
    /// its own limits or already gone.
    pub fn prune_history(
        &self,
        now_ms: i64,
        limits: &HistoryLimits,
    ) -> Result<Vec<Operation>, OpLogError> {
        let forgotten_cutoff =
            now_ms.saturating_sub(i64::from(FORGOTTEN_SNAPSHOT_MAX_AGE_DAYS) * DAY_MS);
        let sql = format!("DELETE FROM operations WHERE id IN ({PRUNE_SELECT}) RETURNING id, json");
        let params = vec![limits.to_param(now_ms), Value::Integer(forgotten_cutoff)];
        self.write(|tx, events| {
            let ops = self.delete_returning(tx, &sql, params, "pruning the history")?;
            if !ops.is_empty() {
                events.push(|| OpEvent::Deleted(ops.iter().map(|op| op.id).collect()));
            }
            Ok(ops)
        })
    }

    /// Runs a `DELETE ... RETURNING id, json` and hands back the deleted operations
    /// sorted by id.
    fn delete_returning(
        &self,
        tx: &rusqlite::Transaction,
        sql: &str,
        params: Vec<Value>,
        action: &'static str,
    ) -> Result<Vec<Operation>, OpLogError> {
        let mut rows: Vec<(i64, String)> = tx
            .prepare_cached(sql)
            .and_then(|mut st| {
                st.query_map(rusqlite::params_from_iter(params), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<Result<_, _>>()
            })
            .map_err(self.sql_err(action))?;
        rows.sort_unstable_by_key(|(id, _)| *id);
        rows.iter()
            .map(|(id, json)| self.decode(*id, json))
            .collect()
    }
}
