//! Requests and responses of the operation-history RPCs (CONTRACT 3.2).

use serde::{Deserialize, Serialize};

use super::json::{is_default, opt_int64, opt_vec_int64, proto_enum};
use super::operation::Operation;

/// Which operations a request is about. Every field is optional; the present ones are
/// ANDed, and a present field filters even when it is `""` or 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OpSelector {
    /// Operation ids; not combinable with the other fields. An empty list is the same
    /// as no list (proto3 cannot tell them apart).
    #[serde(with = "opt_vec_int64", skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<i64>>,
    #[serde(alias = "instance_id", skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// `""` = operations created by this server (all of footrest's); anything else
    /// matches none.
    #[serde(
        alias = "original_instance_keyid",
        skip_serializing_if = "Option::is_none"
    )]
    pub original_instance_keyid: Option<String>,
    #[serde(alias = "repo_guid", skip_serializing_if = "Option::is_none")]
    pub repo_guid: Option<String>,
    #[serde(alias = "repo_id", skip_serializing_if = "Option::is_none")]
    pub repo_id: Option<String>,
    #[serde(alias = "plan_id", skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    #[serde(alias = "snapshot_id", skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    #[serde(
        alias = "flow_id",
        with = "opt_int64",
        skip_serializing_if = "Option::is_none"
    )]
    pub flow_id: Option<i64>,
    /// `modno >= value`: incremental polling.
    #[serde(
        alias = "modno_gte",
        with = "opt_int64",
        skip_serializing_if = "Option::is_none"
    )]
    pub modno_gte: Option<i64>,
}

/// `POST /v1.Backrest/GetOperations`. `{}` selects every operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GetOperationsRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<OpSelector>,
    /// > 0: the N operations that started last; otherwise all.
    #[serde(
        alias = "last_n",
        with = "opt_int64",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_n: Option<i64>,
}

/// The answer to GetOperations: sorted by id ascending; `{}` when nothing matched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GetOperationsResponse {
    #[serde(skip_serializing_if = "is_default")]
    pub operations: Vec<Operation>,
}

proto_enum! {
    /// The repo tasks of DoRepoTask.
    pub enum RepoTaskName ("a repo task") {
        None = 0 => "TASK_NONE",
        IndexSnapshots = 1 => "TASK_INDEX_SNAPSHOTS",
        Prune = 2 => "TASK_PRUNE",
        Check = 3 => "TASK_CHECK",
        Stats = 4 => "TASK_STATS",
        Unlock = 5 => "TASK_UNLOCK",
        Forget = 6 => "TASK_FORGET",
    }
}

/// `DoRepoTask`: `{repoId, task}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DoRepoTaskRequest {
    #[serde(alias = "repo_id")]
    pub repo_id: String,
    pub task: RepoTaskName,
}

/// `Forget`: one snapshot, or the plan's retention policy when `snapshotId` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ForgetRequest {
    #[serde(alias = "repo_id")]
    pub repo_id: String,
    #[serde(alias = "plan_id")]
    pub plan_id: String,
    #[serde(alias = "snapshot_id")]
    pub snapshot_id: String,
}

/// `ListSnapshots`: `{repoId, planId?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListSnapshotsRequest {
    #[serde(alias = "repo_id")]
    pub repo_id: String,
    #[serde(alias = "plan_id")]
    pub plan_id: String,
}

/// `Cancel`: `{"operationId"}` or Backrest's `{"value"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CancelRequest {
    #[serde(alias = "operation_id", with = "opt_int64")]
    pub operation_id: Option<i64>,
    #[serde(with = "opt_int64")]
    pub value: Option<i64>,
}

/// `ClearHistory`: `{selector, onlyFailed}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClearHistoryRequest {
    pub selector: Option<OpSelector>,
    #[serde(alias = "only_failed")]
    pub only_failed: bool,
}

/// The answer of calls that queue work: the new operation's id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationIdResponse {
    #[serde(with = "super::json::int64", skip_serializing_if = "is_default")]
    pub operation_id: i64,
}

/// `ListSnapshots`: oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSnapshotsResponse {
    #[serde(skip_serializing_if = "is_default")]
    pub snapshots: Vec<super::operation::ResticSnapshot>,
}
