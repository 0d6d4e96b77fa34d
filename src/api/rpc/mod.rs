//! The RPC handlers, one small file per group: decode the request, call the core,
//! encode the response. Errors become [`ApiError`]s here; `api::connect` turns them into
//! HTTP.

mod backup;
mod operations;

use crate::App;
use crate::api::connect::{ApiError, Service};

/// A unary handler: request body in, response body out.
type Unary = fn(&App, &[u8]) -> Result<Vec<u8>, ApiError>;

/// The handler of `service/method`, `None` for a method footrest does not serve.
pub fn find(service: Service, method: &str) -> Option<Unary> {
    match (service, method) {
        (Service::Backrest, "Backup") => Some(backup::backup),
        (Service::Backrest, "GetOperations") => Some(operations::get_operations),
        _ => None,
    }
}
