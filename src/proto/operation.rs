//! The Operation message (CONTRACT 3.3) and its members, with their proto3-JSON mapping.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::json::{condition_name, double, int64, is_default, proto_enum};

proto_enum! {
    /// Where an operation is in its lifecycle: PENDING → INPROGRESS → one of the
    /// finished states.
    pub enum OperationStatus ("an operation status") {
        Unknown = 0 => "STATUS_UNKNOWN",
        Pending = 1 => "STATUS_PENDING",
        InProgress = 2 => "STATUS_INPROGRESS",
        Success = 3 => "STATUS_SUCCESS",
        Error = 4 => "STATUS_ERROR",
        SystemCancelled = 5 => "STATUS_SYSTEM_CANCELLED",
        UserCancelled = 6 => "STATUS_USER_CANCELLED",
        Warning = 7 => "STATUS_WARNING",
    }
}

impl OperationStatus {
    /// True for the end states: success, warning, error and both cancellations.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Self::Success
                | Self::Warning
                | Self::Error
                | Self::SystemCancelled
                | Self::UserCancelled
        )
    }
}

/// One entry of the operation history. Build one with [`Operation::new`] and struct
/// update syntax; the log assigns `id`, `modno` and (when 0) `flow_id`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    #[serde(
        serialize_with = "int64::serialize",
        skip_serializing_if = "is_default"
    )]
    pub id: i64,
    #[serde(
        serialize_with = "int64::serialize",
        skip_serializing_if = "is_default"
    )]
    pub modno: i64,
    #[serde(
        serialize_with = "int64::serialize",
        skip_serializing_if = "is_default"
    )]
    pub flow_id: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub repo_id: String,
    #[serde(skip_serializing_if = "is_default")]
    pub repo_guid: String,
    #[serde(skip_serializing_if = "is_default")]
    pub plan_id: String,
    #[serde(skip_serializing_if = "is_default")]
    pub instance_id: String,
    #[serde(skip_serializing_if = "is_default")]
    pub snapshot_id: String,
    #[serde(skip_serializing_if = "is_default")]
    pub status: OperationStatus,
    #[serde(
        serialize_with = "int64::serialize",
        skip_serializing_if = "is_default"
    )]
    pub unix_time_start_ms: i64,
    #[serde(
        serialize_with = "int64::serialize",
        skip_serializing_if = "is_default"
    )]
    pub unix_time_end_ms: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub display_message: String,
    #[serde(skip_serializing_if = "is_default")]
    pub logref: String,
    /// The oneof `op`: written as one key (`"operationBackup": {...}`) beside the others.
    #[serde(flatten)]
    pub op: Op,
}

impl Operation {
    /// An operation of the given kind with every other field at its zero value.
    pub fn new(op: Op) -> Operation {
        Operation {
            id: 0,
            modno: 0,
            flow_id: 0,
            repo_id: String::new(),
            repo_guid: String::new(),
            plan_id: String::new(),
            instance_id: String::new(),
            snapshot_id: String::new(),
            status: OperationStatus::Unknown,
            unix_time_start_ms: 0,
            unix_time_end_ms: 0,
            display_message: String::new(),
            logref: String::new(),
            op,
        }
    }
}

/// The oneof `op` of an Operation: what kind of work it records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Op {
    #[serde(rename = "operationBackup")]
    Backup(OperationBackup),
    #[serde(rename = "operationIndexSnapshot")]
    IndexSnapshot(OperationIndexSnapshot),
    #[serde(rename = "operationForget")]
    Forget(OperationForget),
    #[serde(rename = "operationPrune")]
    Prune(OperationPrune),
    #[serde(rename = "operationRestore")]
    Restore(OperationRestore),
    #[serde(rename = "operationStats")]
    Stats(OperationStats),
    #[serde(rename = "operationRunHook")]
    RunHook(OperationRunHook),
    #[serde(rename = "operationCheck")]
    Check(OperationCheck),
    #[serde(rename = "operationRunCommand")]
    RunCommand(OperationRunCommand),
}

impl Op {
    /// The member's JSON name, e.g. `operationBackup`.
    pub fn member_name(&self) -> &'static str {
        match self {
            Op::Backup(_) => "operationBackup",
            Op::IndexSnapshot(_) => "operationIndexSnapshot",
            Op::Forget(_) => "operationForget",
            Op::Prune(_) => "operationPrune",
            Op::Restore(_) => "operationRestore",
            Op::Stats(_) => "operationStats",
            Op::RunHook(_) => "operationRunHook",
            Op::Check(_) => "operationCheck",
            Op::RunCommand(_) => "operationRunCommand",
        }
    }
}

/// The Operation as read: every field optional and the oneof as one optional field per
/// member, checked afterwards so that a message with no member or two members gets a
/// clear error.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OperationIn {
    #[serde(default, deserialize_with = "int64::deserialize")]
    id: i64,
    #[serde(default, deserialize_with = "int64::deserialize")]
    modno: i64,
    #[serde(default, alias = "flow_id", deserialize_with = "int64::deserialize")]
    flow_id: i64,
    #[serde(default, alias = "repo_id")]
    repo_id: String,
    #[serde(default, alias = "repo_guid")]
    repo_guid: String,
    #[serde(default, alias = "plan_id")]
    plan_id: String,
    #[serde(default, alias = "instance_id")]
    instance_id: String,
    #[serde(default, alias = "snapshot_id")]
    snapshot_id: String,
    #[serde(default)]
    status: OperationStatus,
    #[serde(
        default,
        alias = "unix_time_start_ms",
        deserialize_with = "int64::deserialize"
    )]
    unix_time_start_ms: i64,
    #[serde(
        default,
        alias = "unix_time_end_ms",
        deserialize_with = "int64::deserialize"
    )]
    unix_time_end_ms: i64,
    #[serde(default, alias = "display_message")]
    display_message: String,
    #[serde(default)]
    logref: String,
    #[serde(default, alias = "operation_backup")]
    operation_backup: Option<OperationBackup>,
    #[serde(default, alias = "operation_index_snapshot")]
    operation_index_snapshot: Option<OperationIndexSnapshot>,
    #[serde(default, alias = "operation_forget")]
    operation_forget: Option<OperationForget>,
    #[serde(default, alias = "operation_prune")]
    operation_prune: Option<OperationPrune>,
    #[serde(default, alias = "operation_restore")]
    operation_restore: Option<OperationRestore>,
    #[serde(default, alias = "operation_stats")]
    operation_stats: Option<OperationStats>,
    #[serde(default, alias = "operation_run_hook")]
    operation_run_hook: Option<OperationRunHook>,
    #[serde(default, alias = "operation_check")]
    operation_check: Option<OperationCheck>,
    #[serde(default, alias = "operation_run_command")]
    operation_run_command: Option<OperationRunCommand>,
}

/// Picks the one member of a oneof given as optional fields: `Ok(None)` when none is
/// set, an error naming both when two are.
fn one_of<T>(members: Vec<(&'static str, Option<T>)>) -> Result<Option<(&'static str, T)>, String> {
    let mut found: Option<(&'static str, T)> = None;
    for (name, member) in members {
        if let Some(member) = member {
            if let Some((first, _)) = &found {
                return Err(format!("{first} and {name} are both set; only one may be"));
            }
            found = Some((name, member));
        }
    }
    Ok(found)
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let w = OperationIn::deserialize(d)?;
        let op = one_of(vec![
            ("operationBackup", w.operation_backup.map(Op::Backup)),
            (
                "operationIndexSnapshot",
                w.operation_index_snapshot.map(Op::IndexSnapshot),
            ),
            ("operationForget", w.operation_forget.map(Op::Forget)),
            ("operationPrune", w.operation_prune.map(Op::Prune)),
            ("operationRestore", w.operation_restore.map(Op::Restore)),
            ("operationStats", w.operation_stats.map(Op::Stats)),
            ("operationRunHook", w.operation_run_hook.map(Op::RunHook)),
            ("operationCheck", w.operation_check.map(Op::Check)),
            (
                "operationRunCommand",
                w.operation_run_command.map(Op::RunCommand),
            ),
        ])
        .map_err(D::Error::custom)?
        .ok_or_else(|| {
            D::Error::custom(
                "the operation has no kind: expected one of operationBackup, \
                 operationIndexSnapshot, operationForget, operationPrune, operationRestore, \
                 operationStats, operationRunHook, operationCheck, operationRunCommand",
            )
        })?
        .1;
        Ok(Operation {
            id: w.id,
            modno: w.modno,
            flow_id: w.flow_id,
            repo_id: w.repo_id,
            repo_guid: w.repo_guid,
            plan_id: w.plan_id,
            instance_id: w.instance_id,
            snapshot_id: w.snapshot_id,
            status: w.status,
            unix_time_start_ms: w.unix_time_start_ms,
            unix_time_end_ms: w.unix_time_end_ms,
            display_message: w.display_message,
            logref: w.logref,
            op,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OperationBackup {
    #[serde(alias = "last_status", skip_serializing_if = "Option::is_none")]
    pub last_status: Option<BackupProgressEntry>,
    /// Per-file errors; at most 20 are kept.
    #[serde(skip_serializing_if = "is_default")]
    pub errors: Vec<BackupProgressError>,
    #[serde(alias = "dry_run", skip_serializing_if = "is_default")]
    pub dry_run: bool,
}

/// The oneof `entry` of a backup's `lastStatus`: progress while running, the summary at
/// the end.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BackupProgressEntry {
    Status(BackupProgressStatusEntry),
    Summary(BackupProgressSummary),
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct BackupProgressEntryIn {
    status: Option<BackupProgressStatusEntry>,
    summary: Option<BackupProgressSummary>,
}

impl<'de> Deserialize<'de> for BackupProgressEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let w = BackupProgressEntryIn::deserialize(d)?;
        one_of(vec![
            ("status", w.status.map(BackupProgressEntry::Status)),
            ("summary", w.summary.map(BackupProgressEntry::Summary)),
        ])
        .map_err(D::Error::custom)?
        .map(|(_, entry)| entry)
        .ok_or_else(|| D::Error::custom("expected one of status or summary"))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BackupProgressStatusEntry {
    /// 0..1
    #[serde(
        alias = "percent_done",
        with = "double",
        skip_serializing_if = "is_default"
    )]
    pub percent_done: f64,
    #[serde(
        alias = "total_files",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub total_files: i64,
    #[serde(
        alias = "total_bytes",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub total_bytes: i64,
    #[serde(
        alias = "files_done",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub files_done: i64,
    #[serde(
        alias = "bytes_done",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub bytes_done: i64,
    #[serde(alias = "current_file", skip_serializing_if = "is_default")]
    pub current_file: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BackupProgressSummary {
    #[serde(
        alias = "files_new",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub files_new: i64,
    #[serde(
        alias = "files_changed",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub files_changed: i64,
    #[serde(
        alias = "files_unmodified",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub files_unmodified: i64,
    #[serde(alias = "dirs_new", with = "int64", skip_serializing_if = "is_default")]
    pub dirs_new: i64,
    #[serde(
        alias = "dirs_changed",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub dirs_changed: i64,
    #[serde(
        alias = "dirs_unmodified",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub dirs_unmodified: i64,
    #[serde(
        alias = "data_blobs",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub data_blobs: i64,
    #[serde(
        alias = "tree_blobs",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub tree_blobs: i64,
    #[serde(
        alias = "data_added",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub data_added: i64,
    #[serde(
        alias = "total_files_processed",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub total_files_processed: i64,
    #[serde(
        alias = "total_bytes_processed",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub total_bytes_processed: i64,
    /// Seconds.
    #[serde(
        alias = "total_duration",
        with = "double",
        skip_serializing_if = "is_default"
    )]
    pub total_duration: f64,
    #[serde(alias = "snapshot_id", skip_serializing_if = "is_default")]
    pub snapshot_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BackupProgressError {
    #[serde(skip_serializing_if = "is_default")]
    pub item: String,
    #[serde(skip_serializing_if = "is_default")]
    pub during: String,
    #[serde(skip_serializing_if = "is_default")]
    pub message: String,
}

/// A restic snapshot as the API shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResticSnapshot {
    /// 64 hex digits.
    #[serde(skip_serializing_if = "is_default")]
    pub id: String,
    #[serde(
        alias = "unix_time_ms",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub unix_time_ms: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub hostname: String,
    #[serde(skip_serializing_if = "is_default")]
    pub username: String,
    #[serde(skip_serializing_if = "is_default")]
    pub tree: String,
    #[serde(skip_serializing_if = "is_default")]
    pub parent: String,
    #[serde(skip_serializing_if = "is_default")]
    pub paths: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub tags: Vec<String>,
    /// The backup counters, when restic recorded them (0.17 and newer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<SnapshotSummary>,
}

/// A snapshot's backup counters: [`BackupProgressSummary`] without `snapshotId`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SnapshotSummary {
    #[serde(
        alias = "files_new",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub files_new: i64,
    #[serde(
        alias = "files_changed",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub files_changed: i64,
    #[serde(
        alias = "files_unmodified",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub files_unmodified: i64,
    #[serde(alias = "dirs_new", with = "int64", skip_serializing_if = "is_default")]
    pub dirs_new: i64,
    #[serde(
        alias = "dirs_changed",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub dirs_changed: i64,
    #[serde(
        alias = "dirs_unmodified",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub dirs_unmodified: i64,
    #[serde(
        alias = "data_blobs",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub data_blobs: i64,
    #[serde(
        alias = "tree_blobs",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub tree_blobs: i64,
    #[serde(
        alias = "data_added",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub data_added: i64,
    #[serde(
        alias = "total_files_processed",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub total_files_processed: i64,
    #[serde(
        alias = "total_bytes_processed",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub total_bytes_processed: i64,
    /// Seconds.
    #[serde(
        alias = "total_duration",
        with = "double",
        skip_serializing_if = "is_default"
    )]
    pub total_duration: f64,
}

impl From<&BackupProgressSummary> for SnapshotSummary {
    fn from(s: &BackupProgressSummary) -> SnapshotSummary {
        SnapshotSummary {
            files_new: s.files_new,
            files_changed: s.files_changed,
            files_unmodified: s.files_unmodified,
            dirs_new: s.dirs_new,
            dirs_changed: s.dirs_changed,
            dirs_unmodified: s.dirs_unmodified,
            data_blobs: s.data_blobs,
            tree_blobs: s.tree_blobs,
            data_added: s.data_added,
            total_files_processed: s.total_files_processed,
            total_bytes_processed: s.total_bytes_processed,
            total_duration: s.total_duration,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OperationIndexSnapshot {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<ResticSnapshot>,
    /// The snapshot has since been forgotten.
    #[serde(skip_serializing_if = "is_default")]
    pub forgot: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OperationForget {
    /// The snapshots removed.
    #[serde(skip_serializing_if = "is_default")]
    pub forget: Vec<ResticSnapshot>,
    /// The RetentionPolicy used, in the config file's JSON form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OperationPrune {
    #[serde(alias = "output_logref", skip_serializing_if = "is_default")]
    pub output_logref: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OperationCheck {
    #[serde(alias = "output_logref", skip_serializing_if = "is_default")]
    pub output_logref: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OperationRestore {
    #[serde(skip_serializing_if = "is_default")]
    pub path: String,
    #[serde(skip_serializing_if = "is_default")]
    pub target: String,
    #[serde(alias = "last_status", skip_serializing_if = "Option::is_none")]
    pub last_status: Option<RestoreProgressEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RestoreProgressEntry {
    #[serde(alias = "message_type", skip_serializing_if = "is_default")]
    pub message_type: String,
    #[serde(
        alias = "seconds_elapsed",
        with = "double",
        skip_serializing_if = "is_default"
    )]
    pub seconds_elapsed: f64,
    #[serde(
        alias = "total_bytes",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub total_bytes: i64,
    #[serde(
        alias = "bytes_restored",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub bytes_restored: i64,
    #[serde(
        alias = "total_files",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub total_files: i64,
    #[serde(
        alias = "files_restored",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub files_restored: i64,
    #[serde(
        alias = "percent_done",
        with = "double",
        skip_serializing_if = "is_default"
    )]
    pub percent_done: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OperationStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<RepoStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RepoStats {
    #[serde(
        alias = "total_size",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub total_size: i64,
    #[serde(
        alias = "total_uncompressed_size",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub total_uncompressed_size: i64,
    #[serde(
        alias = "total_blob_count",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub total_blob_count: i64,
    #[serde(
        alias = "snapshot_count",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub snapshot_count: i64,
    #[serde(
        alias = "compression_ratio",
        with = "double",
        skip_serializing_if = "is_default"
    )]
    pub compression_ratio: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OperationRunHook {
    /// The operation whose hook this is.
    #[serde(
        alias = "parent_op",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub parent_op: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub name: String,
    /// The hook condition's proto name (`CONDITION_SNAPSHOT_END`); `""` = unknown.
    #[serde(with = "condition_name", skip_serializing_if = "is_default")]
    pub condition: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OperationRunCommand {
    #[serde(skip_serializing_if = "is_default")]
    pub command: String,
    #[serde(alias = "output_logref", skip_serializing_if = "is_default")]
    pub output_logref: String,
    #[serde(
        alias = "output_size_bytes",
        with = "int64",
        skip_serializing_if = "is_default"
    )]
    pub output_size_bytes: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{GetOperationsRequest, GetOperationsResponse, OpSelector, decode};
    use serde_json::json;

    /// CONTRACT 3.3's example, byte for byte (without the line breaks).
    const CONTRACT_EXAMPLE: &str = r#"{"id":"7","modno":"31","flowId":"7","repoId":"nas","repoGuid":"5e1f...c2","planId":"photos",
 "instanceId":"pi4","snapshotId":"9a3c...77","status":"STATUS_SUCCESS",
 "unixTimeStartMs":"1764000000123","unixTimeEndMs":"1764000004456","logref":"t-7",
 "operationBackup":{"lastStatus":{"summary":{"filesNew":"12","filesUnmodified":"4077",
 "dirsChanged":"3","dataBlobs":"20","treeBlobs":"4","dataAdded":"5242880",
 "totalFilesProcessed":"4089","totalBytesProcessed":"2147483648","totalDuration":4.2,
 "snapshotId":"9a3c...77"}}}}"#;

    #[test]
    fn contract_example_round_trips() {
        let op: Operation = decode(CONTRACT_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(op.id, 7);
        assert_eq!(op.modno, 31);
        assert_eq!(op.status, OperationStatus::Success);
        assert_eq!(op.unix_time_end_ms, 1_764_000_004_456);
        let Op::Backup(backup) = &op.op else {
            panic!("not a backup: {op:?}")
        };
        let Some(BackupProgressEntry::Summary(summary)) = &backup.last_status else {
            panic!("no summary: {backup:?}")
        };
        assert_eq!(summary.total_bytes_processed, 2_147_483_648);
        assert_eq!(summary.total_duration, 4.2);
        let original: Value = serde_json::from_str(CONTRACT_EXAMPLE).unwrap();
        assert_eq!(serde_json::to_value(&op).unwrap(), original);
        // Same keys in the same order as the contract writes them.
        let compact: String = CONTRACT_EXAMPLE
            .split('\n')
            .map(|l| l.trim_start())
            .collect();
        assert_eq!(serde_json::to_string(&op).unwrap(), compact);
    }

    fn every_kind() -> Vec<Op> {
        let snapshot = ResticSnapshot {
            id: "ab".repeat(32),
            unix_time_ms: 1_700_000_000_000,
            hostname: "pi4".into(),
            username: "root".into(),
            tree: "cd".repeat(32),
            parent: "ef".repeat(32),
            paths: vec!["/home".into()],
            tags: vec!["plan:photos".into(), "created-by:pi4".into()],
            summary: Some(SnapshotSummary {
                files_new: 1,
                data_added: 1 << 40,
                total_duration: 1.5,
                ..SnapshotSummary::default()
            }),
        };
        vec![
            Op::Backup(OperationBackup {
                last_status: Some(BackupProgressEntry::Status(BackupProgressStatusEntry {
                    percent_done: 0.5,
                    total_files: 10,
                    total_bytes: 1000,
                    files_done: 5,
                    bytes_done: 500,
                    current_file: vec!["/home/a".into()],
                })),
                errors: vec![BackupProgressError {
                    item: "/home/b".into(),
                    during: "archival".into(),
                    message: "permission denied".into(),
                }],
                dry_run: true,
            }),
            Op::Backup(OperationBackup::default()),
            Op::IndexSnapshot(OperationIndexSnapshot {
                snapshot: Some(snapshot.clone()),
                forgot: true,
            }),
            Op::Forget(OperationForget {
                forget: vec![snapshot],
                policy: Some(json!({"policyKeepLastN": 5})),
            }),
            Op::Prune(OperationPrune {
                output_logref: "p-1".into(),
            }),
            Op::Prune(OperationPrune::default()),
            Op::Restore(OperationRestore {
                path: "/home".into(),
                target: "/tmp/r".into(),
                last_status: Some(RestoreProgressEntry {
                    message_type: "status".into(),
                    seconds_elapsed: 3.0,
                    total_bytes: 9,
                    bytes_restored: 3,
                    total_files: 2,
                    files_restored: 1,
                    percent_done: 0.33,
                }),
            }),
            Op::Stats(OperationStats {
                stats: Some(RepoStats {
                    total_size: 5,
                    total_uncompressed_size: 10,
                    total_blob_count: 3,
                    snapshot_count: 2,
                    compression_ratio: 2.0,
                }),
            }),
            Op::RunHook(OperationRunHook {
                parent_op: 4,
                name: "notify".into(),
                condition: "CONDITION_SNAPSHOT_END".into(),
            }),
            Op::Check(OperationCheck {
                output_logref: "c-1".into(),
            }),
            Op::RunCommand(OperationRunCommand {
                command: "ls".into(),
                output_logref: "r-1".into(),
                output_size_bytes: 77,
            }),
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        for op in every_kind() {
            let op = Operation {
                id: 3,
                flow_id: 2,
                status: OperationStatus::InProgress,
                display_message: "working".into(),
                ..Operation::new(op)
            };
            let text = serde_json::to_string(&op).unwrap();
            let back: Operation = decode(text.as_bytes()).unwrap();
            assert_eq!(back, op, "{text}");
            let value: Value = serde_json::from_str(&text).unwrap();
            assert!(value[op.op.member_name()].is_object(), "{text}");
        }
    }

    #[test]
    fn zero_values_are_left_out_and_an_empty_member_is_an_empty_object() {
        let op = Operation::new(Op::Prune(OperationPrune::default()));
        assert_eq!(
            serde_json::to_string(&op).unwrap(),
            r#"{"operationPrune":{}}"#
        );
        let op = Operation {
            id: 1,
            status: OperationStatus::Pending,
            ..Operation::new(Op::RunHook(OperationRunHook::default()))
        };
        assert_eq!(
            serde_json::to_value(&op).unwrap(),
            json!({"id": "1", "status": "STATUS_PENDING", "operationRunHook": {}})
        );
    }

    #[test]
    fn snake_case_numbers_and_enum_numbers_are_read() {
        let op: Operation = decode(
            br#"{"id":5,"flow_id":"4","unix_time_start_ms":10,"status":3,
                 "operation_run_command":{"output_size_bytes":12,"command":"x"},"future":1}"#,
        )
        .unwrap();
        assert_eq!(op.id, 5);
        assert_eq!(op.flow_id, 4);
        assert_eq!(op.unix_time_start_ms, 10);
        assert_eq!(op.status, OperationStatus::Success);
        assert_eq!(
            op.op,
            Op::RunCommand(OperationRunCommand {
                command: "x".into(),
                output_logref: String::new(),
                output_size_bytes: 12
            })
        );
    }

    #[test]
    fn the_oneof_must_have_exactly_one_member() {
        let err = decode::<Operation>(br#"{"id":"1"}"#).unwrap_err();
        assert!(
            err.message.starts_with("the operation has no kind"),
            "{err}"
        );
        let err = decode::<Operation>(br#"{"operationPrune":{},"operationCheck":{}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "operationPrune and operationCheck are both set; only one may be"
        );
        // A member set to null is not set.
        let op: Operation = decode(br#"{"operationPrune":null,"operationCheck":{}}"#).unwrap();
        assert_eq!(op.op, Op::Check(OperationCheck::default()));
        // Nested errors keep their place, inside a list too.
        let err = decode::<GetOperationsResponse>(
            br#"{"operations":[{"operationPrune":{}},{"operationBackup":{"lastStatus":{"summary":{"filesNew":"many"}}}}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.path,
            "operations[1].operationBackup.lastStatus.summary.filesNew"
        );
        let err = decode::<GetOperationsResponse>(br#"{"operations":[{"operationPrune":{}},{}]}"#)
            .unwrap_err();
        assert_eq!(err.path, "operations[1]");
    }

    #[test]
    fn status_helpers() {
        assert!(!OperationStatus::Pending.is_finished());
        assert!(!OperationStatus::InProgress.is_finished());
        assert!(!OperationStatus::Unknown.is_finished());
        for s in [
            OperationStatus::Success,
            OperationStatus::Warning,
            OperationStatus::Error,
            OperationStatus::UserCancelled,
            OperationStatus::SystemCancelled,
        ] {
            assert!(s.is_finished(), "{s:?}");
        }
        for s in OperationStatus::ALL {
            assert_eq!(OperationStatus::from_i32(s.as_i32()), Some(*s));
            assert_eq!(OperationStatus::from_name(s.name()), Some(*s));
        }
        assert_eq!(OperationStatus::InProgress.name(), "STATUS_INPROGRESS");
        assert_eq!(OperationStatus::UserCancelled.as_i32(), 6);
    }

    #[test]
    fn get_operations_request_is_read_leniently() {
        assert_eq!(
            decode::<GetOperationsRequest>(b"").unwrap(),
            GetOperationsRequest::default()
        );
        let camel: GetOperationsRequest = decode(
            br#"{"selector":{"ids":["1",2],"instanceId":"pi4","originalInstanceKeyid":"",
                 "repoGuid":"g","repoId":"nas","planId":"","snapshotId":"s","flowId":"9",
                 "modnoGte":3,"filterStatus":["x"]},"lastN":"10"}"#,
        )
        .unwrap();
        let snake: GetOperationsRequest = decode(
            br#"{"selector":{"ids":[1,"2"],"instance_id":"pi4","original_instance_keyid":"",
                 "repo_guid":"g","repo_id":"nas","plan_id":"","snapshot_id":"s","flow_id":9,
                 "modno_gte":"3"},"last_n":10}"#,
        )
        .unwrap();
        let expected = GetOperationsRequest {
            selector: Some(OpSelector {
                ids: Some(vec![1, 2]),
                instance_id: Some("pi4".into()),
                original_instance_keyid: Some(String::new()),
                repo_guid: Some("g".into()),
                repo_id: Some("nas".into()),
                plan_id: Some(String::new()),
                snapshot_id: Some("s".into()),
                flow_id: Some(9),
                modno_gte: Some(3),
            }),
            last_n: Some(10),
        };
        assert_eq!(camel, expected);
        assert_eq!(snake, expected);
        // Present fields are written even at their zero value.
        let value = serde_json::to_value(&expected).unwrap();
        assert_eq!(value["selector"]["planId"], json!(""));
        assert_eq!(value["selector"]["flowId"], json!("9"));
        assert_eq!(value["lastN"], json!("10"));
        assert_eq!(
            decode::<GetOperationsRequest>(value.to_string().as_bytes()).unwrap(),
            expected
        );
        let nulls: GetOperationsRequest =
            decode(br#"{"selector":{"planId":null,"flowId":null},"lastN":null}"#).unwrap();
        assert_eq!(nulls.selector, Some(OpSelector::default()));
        assert_eq!(nulls.last_n, None);
    }

    #[test]
    fn get_operations_errors_name_the_field() {
        let err = decode::<GetOperationsRequest>(br#"{"selector":{"flowId":"abc"}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"selector.flowId: expected an int64 (a number or a numeric string), got "abc""#
        );
        let err = decode::<GetOperationsRequest>(br#"{"last_n":"ten"}"#).unwrap_err();
        assert_eq!(err.path, "last_n");
        let err = decode::<GetOperationsRequest>(br#"{"selector":{"ids":[1,"x"]}}"#).unwrap_err();
        assert_eq!(err.path, "selector.ids[1]");
        let err = decode::<GetOperationsRequest>(br#"{"selector":{"planId":5}}"#).unwrap_err();
        assert_eq!(err.to_string(), "selector.planId: expected a string, got 5");
        let err = decode::<GetOperationsRequest>(br#"{"selector":[]}"#).unwrap_err();
        assert_eq!(err.to_string(), "selector: expected an object, got a list");
    }

    #[test]
    fn empty_response_is_an_empty_object() {
        assert_eq!(
            serde_json::to_string(&GetOperationsResponse::default()).unwrap(),
            "{}"
        );
    }
}
