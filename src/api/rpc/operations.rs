//! The operation history: `GetOperations` (CONTRACT §3.2), `Cancel` and `ClearHistory`.

use crate::App;
use crate::api::connect::ApiError;
use crate::proto::{self, CancelRequest, ClearHistoryRequest, GetOperationsRequest, OpSelector};

use super::orchestrator_error;

pub fn get_operations(app: &App, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: GetOperationsRequest = proto::decode(body)?;
    let selector = checked(req.selector.unwrap_or_default())?;
    Ok(app.oplog.query_json(&selector, req.last_n)?)
}

pub fn cancel(app: &App, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: CancelRequest = proto::decode(body)?;
    let Some(id) = req.operation_id.or(req.value) else {
        return Err(ApiError::invalid(
            "operationId: give the id of the operation to cancel, e.g. {\"operationId\": \"42\"}",
        ));
    };
    app.orchestrator.cancel(id).map_err(orchestrator_error)?;
    Ok(b"{}".to_vec())
}

pub fn clear_history(app: &App, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req: ClearHistoryRequest = proto::decode(body)?;
    let selector = checked(req.selector.unwrap_or_default())?;
    if selector == OpSelector::default() {
        return Err(ApiError::invalid(
            "selector: say which operations to clear, e.g. {\"selector\": {\"planId\": \"docs\"}}; \
             an empty selector would clear the whole history",
        ));
    }
    let deleted = app.oplog.clear(&selector, req.only_failed)?;
    let shared = app.orchestrator.shared();
    for op in &deleted {
        shared.remove_logs(op);
    }
    info!("history cleared: {} operation(s) removed", deleted.len());
    Ok(b"{}".to_vec())
}

fn checked(selector: OpSelector) -> Result<OpSelector, ApiError> {
    if selector.ids.is_some() && has_field_besides_ids(&selector) {
        return Err(ApiError::invalid(
            "selector.ids cannot be combined with other selector fields; send the ids alone",
        ));
    }
    Ok(selector)
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
