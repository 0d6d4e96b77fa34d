//! `GetOperations` (CONTRACT §3.2): the operation history, filtered by a selector.

use crate::App;
use crate::api::connect::ApiError;
use crate::proto::{self, GetOperationsRequest, OpSelector};

pub fn get_operations(app: &App, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: GetOperationsRequest = proto::decode(body)?;
    let selector = req.selector.unwrap_or_default();
    if selector.ids.is_some() && has_field_besides_ids(&selector) {
        return Err(ApiError::invalid(
            "selector.ids cannot be combined with other selector fields; send the ids alone",
        ));
    }
    Ok(app.oplog.query_json(&selector, req.last_n)?)
}

fn has_field_besides_ids(s: &OpSelector) -> bool {
    s.instance_id.is_some()
        || s.original_instance_keyid.is_some()
        || s.repo_guid.is_some()
        || s.repo_id.is_some()
        || s.plan_id.is_some()
        || s.snapshot_id.is_some()
        || s.flow_id.is_some()
        || s.modno_gte.is_some()
}
