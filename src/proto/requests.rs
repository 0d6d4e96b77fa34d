//! Requests and responses of the operation-history RPCs (CONTRACT 3.2).

use serde::{Deserialize, Serialize};

use super::json::{is_default, opt_int64, opt_vec_int64};
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
