//! The operation history in SQLite: schema and migrations, id/modno/flow assignment,
//! selector queries (including the GetOperations fast path that hands out stored JSON),
//! the look-ups the scheduler needs, the facts of recent backups for summaries
//! (`backups`), the figures a metrics scrape reads (`gauges`), the start-up repair of interrupted operations,
//! history clearing and upkeep (`history`), and change events for subscribers.
//! It knows nothing about restic, HTTP or scheduling: callers hand it finished
//! [`Operation`] values and it stores, finds and announces them.
//!
//! Concurrency: one writer connection behind a mutex (every write is one transaction)
//! and a small pool of read connections. The database runs in WAL mode, so a reader
//! never waits for the writer, however long its transaction.

mod backups;
mod error;
mod gauges;
mod history;
mod schema;
pub(crate) mod selector;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};

pub use backups::BackupFacts;
pub use error::OpLogError;
pub use gauges::{NextBackup, Outcome};
pub use history::{FORGOTTEN_SNAPSHOT_MAX_AGE_DAYS, HistoryLimits, HistoryRule};

use crate::proto::{self, Op, OpSelector, Operation, OperationStatus};

/// How long a connection waits for a lock held by another connection before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Read connections kept open between queries; more are opened when all are busy.
const MAX_IDLE_READERS: usize = 4;
/// Events a subscriber may fall behind before it is dropped.
const SUBSCRIBER_BUFFER: usize = 256;

/// `last_run`: ?1 plan, ?2 repo, ?3 kind. Walks operations_by_kind backwards.
const LAST_RUN_SQL: &str = "SELECT id, json FROM operations
    WHERE plan_id = ?1 AND repo_id = ?2 AND kind = ?3 AND status NOT IN (1, 5)
    ORDER BY start_ms DESC, id DESC LIMIT 1";

/// `mark_forgotten`: ?1 a JSON array of snapshot ids, ?2 the repo. The `+` keeps the
/// planner off the repo index (every operation of the repo) so that it looks the few
/// snapshot ids up in the snapshot index.
const INDEX_OPS_OF_SNAPSHOTS_SQL: &str = "SELECT id, json FROM operations
    WHERE snapshot_id IN (SELECT value FROM json_each(?1))
      AND +repo_id = ?2 AND kind = 'operationIndexSnapshot'
    ORDER BY id";

/// A change to the log, in commit order.
#[derive(Debug, Clone, PartialEq)]
pub enum OpEvent {
    Created(Operation),
    Updated(Operation),
    /// The ids that were deleted, ascending.
    Deleted(Vec<i64>),
}

/// The events of one write; collected only when someone is subscribed, so that a log
/// nobody watches never clones an operation.
struct Events(Option<Vec<OpEvent>>);

impl Events {
    fn push(&mut self, event: impl FnOnce() -> OpEvent) {
        if let Some(events) = &mut self.0 {
            events.push(event());
        }
    }
}

/// The operation log. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct OpLog {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    subscribers: Mutex<Vec<SyncSender<OpEvent>>>,
}

/// A poisoned lock only means another thread panicked while holding it; SQLite rolls
/// back an unfinished transaction when its handle drops, so the data behind it is sound.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The columns that mirror an operation's fields for selectors, in table order.
const INDEXED_COLUMNS: [&str; 10] = [
    "flow_id",
    "instance_id",
    "repo_id",
    "repo_guid",
    "plan_id",
    "snapshot_id",
    "status",
    "start_ms",
    "end_ms",
    "kind",
];

fn indexed_values(op: &Operation) -> [Value; 10] {
    [
        Value::Integer(op.flow_id),
        Value::Text(op.instance_id.clone()),
        Value::Text(op.repo_id.clone()),
        Value::Text(op.repo_guid.clone()),
        Value::Text(op.plan_id.clone()),
        Value::Text(op.snapshot_id.clone()),
        Value::Integer(i64::from(op.status.as_i32())),
        Value::Integer(op.unix_time_start_ms),
        Value::Integer(op.unix_time_end_ms),
        Value::Text(op.op.member_name().to_string()),
    ]
}

impl OpLog {
    /// Opens the log at `path`, creating the file if needed (its directory must exist),
    /// and brings its schema up to date.
    pub fn open(path: &Path) -> Result<OpLog, OpLogError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut writer =
            Connection::open_with_flags(path, flags).map_err(|e| OpLogError::Open {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        let sql = |action: &'static str| move |e| OpLogError::from_sqlite(path, action, e);
        writer
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(sql("setting the busy timeout"))?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sql("switching to write-ahead logging"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(OpLogError::Open {
                path: path.to_path_buf(),
                detail: format!(
                    "the file system does not support write-ahead logging (journal mode \
                     stayed {mode}); keep the data directory on a local disk"
                ),
            });
        }
        // WAL + synchronous=NORMAL: a commit is in the WAL file (written with write(2))
        // before it returns, so it survives any crash of this process, kill -9 included;
        // only an OS crash or power cut can lose the last few commits, and even then the
        // database stays consistent. FULL would add an fsync per write, which is costly on
        // SD cards and buys nothing against process crashes.
        writer
            .execute_batch(
                "PRAGMA synchronous = NORMAL;
                 PRAGMA foreign_keys = ON;
                 PRAGMA journal_size_limit = 8388608;",
            )
            .map_err(sql("setting up the connection"))?;
        schema::migrate(&mut writer, path)?;
        // Lets the planner learn, once in a while, which indexes are selective; cheap
        // (bounded work) and only an optimisation, so a failure is not fatal.
        if let Err(e) = writer.execute_batch("PRAGMA optimize = 0x10002") {
            debug!(
                "operation log {}: PRAGMA optimize failed: {e}",
                path.display()
            );
        }
        let log = OpLog {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            subscribers: Mutex::new(Vec::new()),
        };
        // Open one reader now so that a problem with read connections shows at start-up.
        let reader = log.open_reader()?;
        lock(&log.readers).push(reader);
        Ok(log)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql_err(&self, action: &'static str) -> impl Fn(rusqlite::Error) -> OpLogError + '_ {
        move |e| OpLogError::from_sqlite(&self.path, action, e)
    }

    fn open_reader(&self) -> Result<Connection, OpLogError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(&self.path, flags).map_err(|e| OpLogError::Open {
                path: self.path.clone(),
                detail: e.to_string(),
            })?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(self.sql_err("setting the busy timeout"))?;
        // Opened read-write because WAL readers need the shared-memory file; query_only
        // makes sure nothing is ever written through it.
        conn.execute_batch("PRAGMA query_only = ON")
            .map_err(self.sql_err("opening a read connection"))?;
        Ok(conn)
    }

    /// Runs `f` on an idle read connection (or a new one when all are busy).
    fn with_reader<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, OpLogError>,
    ) -> Result<R, OpLogError> {
        let pooled = lock(&self.readers).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.open_reader()?,
        };
        let result = f(&conn);
        let mut idle = lock(&self.readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    /// Runs `f` in one IMMEDIATE transaction on the writer connection and commits it,
    /// then sends the events `f` recorded. The writer lock is held until they are sent,
    /// so subscribers see events in commit order; nothing is sent for a rolled-back write.
    fn write<R>(
        &self,
        f: impl FnOnce(&Transaction, &mut Events) -> Result<R, OpLogError>,
    ) -> Result<R, OpLogError> {
        let mut conn = lock(&self.writer);
        let mut events = Events(self.has_subscribers().then(Vec::new));
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sql_err("starting a write"))?;
        let result = f(&tx, &mut events)?;
        tx.commit().map_err(self.sql_err("committing a write"))?;
        if let Some(events) = events.0 {
            self.notify(events);
        }
        Ok(result)
    }

    fn next_modno(&self, tx: &Transaction) -> Result<i64, OpLogError> {
        tx.prepare_cached(
            "UPDATE counters SET value = value + 1 WHERE name = 'modno' RETURNING value",
        )
        .and_then(|mut st| st.query_row([], |r| r.get(0)))
        .map_err(self.sql_err("taking the next modno"))
    }

    fn encode(&self, op: &Operation) -> Result<String, OpLogError> {
        serde_json::to_string(op).map_err(|e| OpLogError::BadRecord {
            path: self.path.clone(),
            id: op.id,
            detail: e.to_string(),
        })
    }

    fn decode(&self, id: i64, json: &str) -> Result<Operation, OpLogError> {
        proto::decode(json.as_bytes()).map_err(|e| OpLogError::BadRecord {
            path: self.path.clone(),
            id,
            detail: e.to_string(),
        })
    }

    /// Stores a new operation: assigns `id` (sequential, never reused), `modno` (the
    /// next value of the log's counter) and `flow_id` (= id when 0). An operation that
    /// already has an id is refused. On error `op` is left as it was.
    pub fn add(&self, op: &mut Operation) -> Result<(), OpLogError> {
        self.add_batch(std::slice::from_mut(op))
    }

    /// [`add`](Self::add) for many operations in one transaction (imports, benchmarks).
    /// Subscribers get one `Created` event per operation.
    pub fn add_batch(&self, ops: &mut [Operation]) -> Result<(), OpLogError> {
        if let Some(op) = ops.iter().find(|op| op.id != 0) {
            return Err(OpLogError::AlreadyAdded(op.id));
        }
        let saved: Vec<(i64, i64)> = ops.iter().map(|op| (op.modno, op.flow_id)).collect();
        let result = self.write(|tx, events| {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO operations (id, modno, flow_id, instance_id, repo_id, \
                         repo_guid, plan_id, snapshot_id, status, start_ms, end_ms, kind, json) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .map_err(self.sql_err("adding an operation"))?;
            let mut next_id = tx
                .prepare_cached(
                    "SELECT COALESCE((SELECT seq FROM sqlite_sequence \
                         WHERE name = 'operations'), 0) + 1",
                )
                .map_err(self.sql_err("taking the next operation id"))?;
            for op in ops.iter_mut() {
                // AUTOINCREMENT keeps the highest id ever used in sqlite_sequence, so
                // ids of deleted operations never come back. The id is taken before
                // the insert because the stored JSON carries it.
                op.id = next_id
                    .query_row([], |r| r.get(0))
                    .map_err(self.sql_err("taking the next operation id"))?;
                op.modno = self.next_modno(tx)?;
                if op.flow_id == 0 {
                    op.flow_id = op.id;
                }
                let json = self.encode(op)?;
                let mut params = vec![Value::Integer(op.id), Value::Integer(op.modno)];
                params.extend(indexed_values(op));
                params.push(Value::Text(json));
                insert
                    .execute(rusqlite::params_from_iter(params))
                    .map_err(self.sql_err("adding an operation"))?;
                events.push(|| OpEvent::Created(op.clone()));
            }
            Ok(())
        });
        if result.is_err() {
            for (op, (modno, flow_id)) in ops.iter_mut().zip(saved) {
                op.id = 0;
                op.modno = modno;
                op.flow_id = flow_id;
            }
        }
        result
    }

    /// Stores a changed operation under its id with the next modno (and flow_id = id
    /// when 0). The operation must be in the log. On error `op` is left as it was.
    pub fn update(&self, op: &mut Operation) -> Result<(), OpLogError> {
        let saved = (op.modno, op.flow_id);
        let result = self.write(|tx, events| {
            let id = op.id;
            let old: Option<Vec<Value>> = tx
                .prepare_cached(&format!(
                    "SELECT {} FROM operations WHERE id = ?",
                    INDEXED_COLUMNS.join(", ")
                ))
                .and_then(|mut st| {
                    st.query_row([id], |r| {
                        (0..INDEXED_COLUMNS.len())
                            .map(|i| r.get::<_, Value>(i))
                            .collect()
                    })
                    .optional()
                })
                .map_err(self.sql_err("reading an operation to update"))?;
            let old = old.ok_or(OpLogError::NotFound(id))?;
            op.modno = self.next_modno(tx)?;
            if op.flow_id == 0 {
                op.flow_id = op.id;
            }
            let json = self.encode(op)?;
            // Only the columns that changed are written, so that a progress update
            // (once a second during a backup) rewrites the row and the modno index
            // but not every other index.
            let mut sql = String::from("UPDATE operations SET modno = ?, json = ?");
            let mut params = vec![Value::Integer(op.modno), Value::Text(json)];
            for ((column, new), old) in INDEXED_COLUMNS.iter().zip(indexed_values(op)).zip(old) {
                if new != old {
                    sql.push_str(&format!(", {column} = ?"));
                    params.push(new);
                }
            }
            sql.push_str(" WHERE id = ?");
            params.push(Value::Integer(id));
            tx.prepare_cached(&sql)
                .and_then(|mut st| st.execute(rusqlite::params_from_iter(params)))
                .map_err(self.sql_err("updating an operation"))?;
            events.push(|| OpEvent::Updated(op.clone()));
            Ok(())
        });
        if result.is_err() {
            (op.modno, op.flow_id) = saved;
        }
        result
    }

    /// The operation with this id, if it is in the log.
    pub fn get(&self, id: i64) -> Result<Option<Operation>, OpLogError> {
        let json: Option<String> = self.with_reader(|conn| {
            conn.prepare_cached("SELECT json FROM operations WHERE id = ?")
                .and_then(|mut st| st.query_row([id], |r| r.get(0)).optional())
                .map_err(self.sql_err("reading an operation"))
        })?;
        json.map(|json| self.decode(id, &json)).transpose()
    }

    /// Runs a selector query and hands each stored `(id, json)` row to `each`.
    fn select(
        &self,
        sel: &OpSelector,
        last_n: Option<i64>,
        mut each: impl FnMut(i64, &str) -> Result<(), OpLogError>,
    ) -> Result<(), OpLogError> {
        let Some(query) = selector::build(sel, last_n)? else {
            return Ok(());
        };
        self.with_reader(|conn| {
            let mut st = conn
                .prepare_cached(&query.sql)
                .map_err(self.sql_err("querying operations"))?;
            let mut rows = st
                .query(rusqlite::params_from_iter(query.params))
                .map_err(self.sql_err("querying operations"))?;
            while let Some(row) = rows.next().map_err(self.sql_err("querying operations"))? {
                let id: i64 = row.get(0).map_err(self.sql_err("querying operations"))?;
                let json = row
                    .get_ref(1)
                    .and_then(|v| v.as_str().map_err(Into::into))
                    .map_err(self.sql_err("querying operations"))?;
                each(id, json)?;
            }
            Ok(())
        })
    }

    /// The operations matching the selector, sorted by id. Present selector fields are
    /// ANDed; `ids` cannot be combined with other fields ([`OpLogError::InvalidSelector`]).
    /// `last_n > 0`: only the N that started last (ties: the higher id).
    pub fn query(
        &self,
        sel: &OpSelector,
        last_n: Option<i64>,
    ) -> Result<Vec<Operation>, OpLogError> {
        let mut ops = Vec::new();
        self.select(sel, last_n, |id, json| {
            ops.push(self.decode(id, json)?);
            Ok(())
        })?;
        Ok(ops)
    }

    /// The GetOperations response body `{"operations":[...]}` (or `{}` when nothing
    /// matches), built from the stored JSON without decoding it again: the fast path.
    /// Same selection as [`query`](Self::query).
    pub fn query_json(&self, sel: &OpSelector, last_n: Option<i64>) -> Result<Vec<u8>, OpLogError> {
        let mut body = Vec::new();
        self.select(sel, last_n, |_, json| {
            body.extend_from_slice(if body.is_empty() {
                b"{\"operations\":["
            } else {
                b","
            });
            body.extend_from_slice(json.as_bytes());
            Ok(())
        })?;
        if body.is_empty() {
            body.extend_from_slice(b"{}");
        } else {
            body.extend_from_slice(b"]}");
        }
        Ok(body)
    }

    /// Deletes the operations with these ids; ids not in the log are ignored.
    /// Subscribers get one `Deleted` event with the ids actually deleted.
    pub fn delete(&self, ids: &[i64]) -> Result<(), OpLogError> {
        if ids.is_empty() {
            return Ok(());
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        self.write(|tx, events| {
            let mut deleted: Vec<i64> = tx
                .prepare_cached(
                    "DELETE FROM operations WHERE id IN (SELECT value FROM json_each(?)) \
                         RETURNING id",
                )
                .and_then(|mut st| {
                    st.query_map([format!("[{list}]")], |r| r.get(0))?
                        .collect::<Result<Vec<i64>, _>>()
                })
                .map_err(self.sql_err("deleting operations"))?;
            deleted.sort_unstable();
            if !deleted.is_empty() {
                events.push(|| OpEvent::Deleted(deleted));
            }
            Ok(())
        })
    }

    /// At start-up: every INPROGRESS operation becomes ERROR with `message` as its
    /// display message and `now_ms` as its end time (each with a new modno). Returns
    /// them, in id order.
    pub fn fail_interrupted(
        &self,
        message: &str,
        now_ms: i64,
    ) -> Result<Vec<Operation>, OpLogError> {
        self.end_all(
            OperationStatus::InProgress,
            OperationStatus::Error,
            message,
            now_ms,
        )
    }

    /// At start-up: every PENDING operation left by an earlier run (queued work that
    /// never started) becomes SYSTEM_CANCELLED with `message`; returns them.
    pub fn cancel_pending(&self, message: &str, now_ms: i64) -> Result<Vec<Operation>, OpLogError> {
        self.end_all(
            OperationStatus::Pending,
            OperationStatus::SystemCancelled,
            message,
            now_ms,
        )
    }

    /// Ends every operation with status `from` as `to`, in one transaction.
    fn end_all(
        &self,
        from: OperationStatus,
        to: OperationStatus,
        message: &str,
        now_ms: i64,
    ) -> Result<Vec<Operation>, OpLogError> {
        self.write(|tx, events| {
            // The status is written into the SQL so that the partial indexes apply.
            let rows: Vec<(i64, String)> = tx
                .prepare_cached(&format!(
                    "SELECT id, json FROM operations WHERE status = {} ORDER BY id",
                    from.as_i32()
                ))
                .and_then(|mut st| {
                    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<Result<_, _>>()
                })
                .map_err(self.sql_err("finding unfinished operations"))?;
            let mut failed = Vec::with_capacity(rows.len());
            for (id, json) in rows {
                let mut op = self.decode(id, &json)?;
                op.status = to;
                op.display_message = message.to_string();
                op.unix_time_end_ms = now_ms;
                op.modno = self.next_modno(tx)?;
                let json = self.encode(&op)?;
                tx.prepare_cached(
                    "UPDATE operations SET modno = ?, status = ?, end_ms = ?, json = ? \
                         WHERE id = ?",
                )
                .and_then(|mut st| {
                    st.execute(rusqlite::params![
                        op.modno,
                        op.status.as_i32(),
                        now_ms,
                        json,
                        id
                    ])
                })
                .map_err(self.sql_err("ending an unfinished operation"))?;
                events.push(|| OpEvent::Updated(op.clone()));
                failed.push(op);
            }
            Ok(failed)
        })
    }

    /// The snapshot id of the newest successful (or warning) backup of this plan in
    /// this repo, for restic's `--parent`; snapshots whose index operation says they
    /// were forgotten are skipped.
    pub fn last_snapshot(
        &self,
        repo_id: &str,
        plan_id: &str,
    ) -> Result<Option<String>, OpLogError> {
        self.with_reader(|conn| {
            conn.prepare_cached(
                "SELECT o.snapshot_id FROM operations o
                 WHERE o.plan_id = ?1 AND o.repo_id = ?2 AND o.kind = 'operationBackup'
                   AND o.status IN (3, 7) AND o.snapshot_id != ''
                   AND NOT EXISTS (
                     SELECT 1 FROM operations i
                     WHERE i.snapshot_id = o.snapshot_id AND i.kind = 'operationIndexSnapshot'
                       AND json_extract(i.json, '$.operationIndexSnapshot.forgot') = 1)
                 ORDER BY o.start_ms DESC, o.id DESC LIMIT 1",
            )
            .and_then(|mut st| st.query_row([plan_id, repo_id], |r| r.get(0)).optional())
            .map_err(self.sql_err("finding the last snapshot of a plan"))
        })
    }

    /// The newest operation of this kind (a oneof member name such as
    /// "operationBackup") for this plan and repo that has started, i.e. whose status is
    /// not PENDING, by start time (ties: the higher id): the "last run" of a schedule.
    /// Repo-level tasks use the plan id `_system_`. An operation a user cancelled counts,
    /// with its planned start time (the user skipped that run); one that footrest itself
    /// cancelled (SYSTEM_CANCELLED: it stopped before or while the task ran) does not,
    /// so the task is caught up after a restart.
    pub fn last_run(
        &self,
        repo_id: &str,
        plan_id: &str,
        kind: &str,
    ) -> Result<Option<Operation>, OpLogError> {
        let row: Option<(i64, String)> = self.with_reader(|conn| {
            conn.prepare_cached(LAST_RUN_SQL)
                .and_then(|mut st| {
                    st.query_row([plan_id, repo_id, kind], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(self.sql_err("finding the last run of a task"))
        })?;
        row.map(|(id, json)| self.decode(id, &json)).transpose()
    }

    /// Every operation with this status (e.g. all PENDING ones), in id order.
    pub fn with_status(&self, status: OperationStatus) -> Result<Vec<Operation>, OpLogError> {
        // The status is written into the SQL, not bound, so that the planner can use the
        // partial indexes on PENDING and INPROGRESS.
        let sql = format!(
            "SELECT id, json FROM operations WHERE status = {} ORDER BY id",
            status.as_i32()
        );
        let rows: Vec<(i64, String)> = self.with_reader(|conn| {
            conn.prepare_cached(&sql)
                .and_then(|mut st| {
                    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<Result<_, _>>()
                })
                .map_err(self.sql_err("listing operations by status"))
        })?;
        rows.iter()
            .map(|(id, json)| self.decode(*id, json))
            .collect()
    }

    /// Marks the index operations of these snapshots (matched on the operation's
    /// `snapshotId`, full ids, in this repo only) as forgotten: `forgot` = true, each
    /// with a new modno and an `Updated` event. Ones already marked are left alone.
    /// Returns the operations it changed, in id order.
    pub fn mark_forgotten(
        &self,
        repo_id: &str,
        snapshot_ids: &[String],
    ) -> Result<Vec<Operation>, OpLogError> {
        if snapshot_ids.is_empty() {
            return Ok(Vec::new());
        }
        // One parameter whatever the number of ids; serde_json does the quoting.
        let list = serde_json::Value::from(snapshot_ids.to_vec()).to_string();
        self.write(|tx, events| {
            let rows: Vec<(i64, String)> = tx
                .prepare_cached(INDEX_OPS_OF_SNAPSHOTS_SQL)
                .and_then(|mut st| {
                    st.query_map(rusqlite::params![list, repo_id], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?
                    .collect::<Result<_, _>>()
                })
                .map_err(self.sql_err("finding the index operations of snapshots"))?;
            let mut marked = Vec::with_capacity(rows.len());
            for (id, json) in rows {
                let mut op = self.decode(id, &json)?;
                match &mut op.op {
                    Op::IndexSnapshot(index) if !index.forgot => index.forgot = true,
                    _ => continue,
                }
                op.modno = self.next_modno(tx)?;
                let json = self.encode(&op)?;
                tx.prepare_cached("UPDATE operations SET modno = ?, json = ? WHERE id = ?")
                    .and_then(|mut st| st.execute(rusqlite::params![op.modno, json, id]))
                    .map_err(self.sql_err("marking a snapshot as forgotten"))?;
                events.push(|| OpEvent::Updated(op.clone()));
                marked.push(op);
            }
            Ok(marked)
        })
    }

    /// A channel of every change from now on. A subscriber that falls
    /// `SUBSCRIBER_BUFFER` (256) events behind is dropped (its channel disconnects)
    /// rather than slowing the writer; a dropped receiver is forgotten at the next write.
    pub fn subscribe(&self) -> Receiver<OpEvent> {
        let (tx, rx) = mpsc::sync_channel(SUBSCRIBER_BUFFER);
        lock(&self.subscribers).push(tx);
        rx
    }

    fn has_subscribers(&self) -> bool {
        !lock(&self.subscribers).is_empty()
    }

    fn notify(&self, events: Vec<OpEvent>) {
        if events.is_empty() {
            return;
        }
        lock(&self.subscribers).retain(|subscriber| {
            for event in &events {
                match subscriber.try_send(event.clone()) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        warn!(
                            "an operation-event subscriber fell {SUBSCRIBER_BUFFER} events \
                             behind and was dropped"
                        );
                        return false;
                    }
                    Err(TrySendError::Disconnected(_)) => return false,
                }
            }
            true
        });
    }
}

#[cfg(test)]
mod tests;
