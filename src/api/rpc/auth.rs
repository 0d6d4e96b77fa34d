//! `v1.Authentication` (CONTRACT §2), the open service: `Login` trades a user name and
//! password for a login token, `HashPassword` makes a `passwordBcrypt` value for the
//! config. This file only decodes and encodes: checking passwords and making tokens is
//! `api::auth`'s. A password is never echoed, not even in a decode error.

use serde_json::{Map, Value, json};

use super::encode;
use crate::App;
use crate::api::auth;
use crate::api::connect::ApiError;

/// bcrypt uses only the first 72 bytes of a password.
const BCRYPT_MAX_BYTES: usize = 72;

/// `Login` `{"username","password"}` → `{"token"}`.
pub fn login(app: &App, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req = object(body)?;
    let username = string_field(&req, "username")?;
    let password = string_field(&req, "password")?;
    let token = app.auth.login(&username, &password)?;
    encode(&json!({ "token": token }))
}

/// `HashPassword` `{"value": "<password>"}` → `{"value": "<base64 of the bcrypt hash>"}`.
pub fn hash_password(_app: &App, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req = object(body)?;
    let password = string_field(&req, "value")?;
    if password.is_empty() {
        return Err(ApiError::invalid(
            "value: give the password to hash, e.g. {\"value\": \"my password\"}",
        ));
    }
    if password.len() > BCRYPT_MAX_BYTES {
        return Err(ApiError::invalid(format!(
            "value: bcrypt uses only the first {BCRYPT_MAX_BYTES} bytes of a password and this \
             one has {}: choose a shorter one",
            password.len()
        )));
    }
    let hash = auth::hash_password(&password).map_err(ApiError::internal)?;
    encode(&json!({ "value": hash }))
}

/// The request as a JSON object; an empty body is `{}`.
fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("the request must be a JSON object")),
        Err(e) => Err(ApiError::invalid(format!("malformed JSON: {e}"))),
    }
}

/// A string member; absent or `null` is empty. A member of another type is refused
/// without showing its value (it may be a password).
fn string_field(req: &Map<String, Value>, name: &str) -> Result<String, ApiError> {
    match req.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::invalid(format!("{name}: expected a string"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_strings_and_never_echoed() {
        let req = object(br#"{"username":"admin","password":12345,"value":null}"#).unwrap();
        assert_eq!(string_field(&req, "username").unwrap(), "admin");
        assert_eq!(string_field(&req, "value").unwrap(), "");
        assert_eq!(string_field(&req, "missing").unwrap(), "");
        let e = string_field(&req, "password").unwrap_err();
        assert_eq!(e.message, "password: expected a string");
        assert!(!e.message.contains("12345"));
        assert!(object(b"  ").unwrap().is_empty());
        assert!(object(b"[1]").is_err());
        assert!(
            object(b"{\"password\": \"s3cret")
                .unwrap_err()
                .message
                .starts_with("malformed JSON")
        );
    }
}
