//! `GetConfig`: the config in force, with every secret masked as `********`.

use crate::App;
use crate::api::connect::ApiError;

pub fn get_config(app: &App, _body: &[u8]) -> Result<Vec<u8>, ApiError> {
    Ok(app.config.get().redacted().to_json_pretty().into_bytes())
}
