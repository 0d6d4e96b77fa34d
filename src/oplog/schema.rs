//! The database schema as a list of migrations, applied in order inside one
//! transaction and recorded in `schema_version`. A step, once released, is never edited:
//! changes go in a new step at the end.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::error::OpLogError;

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the operations table and the modno counter.
    //
    // Every selector field has a column; `json` holds the operation's full proto JSON so
    // reads can hand it out without building it again. Indexes, with the queries they
    // serve (the sort key start_ms rides along so "WHERE x = ? ORDER BY start_ms DESC,
    // id DESC LIMIT n" walks one index backwards with no sort; the rowid is every
    // index's implicit last column, which settles ties by id):
    // - modno: modnoGte polling (a range scan); unique because each write takes a new one.
    // - flow_id: one run's operations (a handful).
    // - repo_id, repo_guid, plan_id (+ start_ms): per-repo/plan views, lastN, and the
    //   latest backup of a plan (--parent).
    // - snapshot_id: the operations of one snapshot.
    // - start_ms: lastN over everything.
    // - status = 2 (partial): the in-progress operations to fail after a restart.
    // instance_id has no index: every operation of this server has the same one, so an
    // index could only make a full scan slower.
    "CREATE TABLE operations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        modno INTEGER NOT NULL,
        flow_id INTEGER NOT NULL,
        instance_id TEXT NOT NULL,
        repo_id TEXT NOT NULL,
        repo_guid TEXT NOT NULL,
        plan_id TEXT NOT NULL,
        snapshot_id TEXT NOT NULL,
        status INTEGER NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        json TEXT NOT NULL
    );
    CREATE UNIQUE INDEX operations_by_modno ON operations (modno);
    CREATE INDEX operations_by_flow ON operations (flow_id);
    CREATE INDEX operations_by_repo ON operations (repo_id, start_ms);
    CREATE INDEX operations_by_repo_guid ON operations (repo_guid, start_ms);
    CREATE INDEX operations_by_plan ON operations (plan_id, start_ms);
    CREATE INDEX operations_by_snapshot ON operations (snapshot_id);
    CREATE INDEX operations_by_start ON operations (start_ms);
    CREATE INDEX operations_in_progress ON operations (status) WHERE status = 2;
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO counters (name, value) VALUES ('modno', 0);",
    // 2: indexes for the scheduler and history upkeep.
    // - by_kind: the last run of a (plan, repo, kind) (one seek, walked backwards by
    //   start), and the ranking in `prune_history`, which walks the whole index in
    //   (plan, repo, kind, start, id) order: exactly its window's partition and order, so
    //   it needs no sort. status and flow_id ride along so that walk never reads a row;
    //   they come after id, which is named (rather than left implicit at the end) so
    //   that ties on start_ms are still in id order.
    // - pending (partial): the queued operations, a handful among many thousands.
    // - live_snapshots (partial): the flows holding a snapshot that still exists, which
    //   `prune_history` keeps whole; small, and read without touching a row's JSON.
    "CREATE INDEX operations_by_kind ON operations
        (plan_id, repo_id, kind, start_ms, id, status, flow_id);
    CREATE INDEX operations_pending ON operations (status) WHERE status = 1;
    CREATE INDEX operations_live_snapshots ON operations (flow_id)
        WHERE kind = 'operationIndexSnapshot'
          AND json_extract(json, '$.operationIndexSnapshot.forgot') IS NOT 1;",
    // 3: indexes for a metrics scrape (`gauges`).
    // - status_counts (partial on a condition no other query states, `status >= 0`, true
    //   of every row): the operations per status, one walk of a one-column index in
    //   status order. Partial so that the planner never picks this unselective index
    //   for the queries that filter on status among other columns.
    // - live_snapshots_by_repo (partial, same condition as live_snapshots): the
    //   snapshots per repo, counted without reading a row.
    "CREATE INDEX operations_status_counts ON operations (status) WHERE status >= 0;
    CREATE INDEX operations_live_snapshots_by_repo ON operations (repo_id, snapshot_id)
        WHERE kind = 'operationIndexSnapshot'
          AND json_extract(json, '$.operationIndexSnapshot.forgot') IS NOT 1;",
];

/// Brings the database up to the newest schema; a no-op when it is there already.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), OpLogError> {
    let sql = |action: &'static str| move |e| OpLogError::from_sqlite(path, action, e);
    // IMMEDIATE: a second process opening the same file waits instead of migrating twice.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql("starting the schema migration"))?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(sql("creating the schema_version table"))?;
    let found: Option<i64> = tx
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .optional()
        .map_err(sql("reading the schema version"))?;
    let known = MIGRATIONS.len() as i64;
    let current = found.unwrap_or(0);
    if current > known {
        return Err(OpLogError::NewerSchema {
            path: path.to_path_buf(),
            found: current,
            known,
        });
    }
    if current == known && found.is_some() {
        return Ok(());
    }
    for step in &MIGRATIONS[current.max(0) as usize..] {
        tx.execute_batch(step)
            .map_err(sql("applying a schema migration"))?;
    }
    if found.is_some() {
        tx.execute("UPDATE schema_version SET version = ?1", [known])
    } else {
        tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [known])
    }
    .map_err(sql("recording the schema version"))?;
    tx.commit().map_err(sql("committing the schema migration"))
}
