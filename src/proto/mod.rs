//! The wire types (Operation and its members, GetOperations' request and response) with
//! their proto3-JSON mapping (CONTRACT 1.1): lowerCamelCase out, int64 as strings, enums
//! as names, zero values left out, a oneof as one key; lenient in (snake_case too,
//! numbers or strings, enum names or numbers, `null` = not set, unknown fields
//! ignored), with decode errors that name the field. This module is a leaf: it holds
//! plain data and its encoding, and must not know about HTTP, SQLite or restic.

mod decode;
pub mod json;
mod operation;
mod requests;

pub use decode::{DecodeError, decode, decode_value};
pub use operation::{
    BackupProgressEntry, BackupProgressError, BackupProgressStatusEntry, BackupProgressSummary, Op,
    Operation, OperationBackup, OperationCheck, OperationForget, OperationIndexSnapshot,
    OperationPrune, OperationRestore, OperationRunCommand, OperationRunHook, OperationStats,
    OperationStatus, RepoStats, ResticSnapshot, RestoreProgressEntry, SnapshotSummary,
};
pub use requests::{
    CancelRequest, ClearHistoryRequest, DoRepoTaskRequest, ForgetRequest, GetOperationsRequest,
    GetOperationsResponse, ListSnapshotsRequest, ListSnapshotsResponse, OpSelector,
    OperationIdResponse, RepoTaskName,
};
