//! The Connect protocol as footrest speaks it (CONTRACT §1): which paths are RPCs, the
//! method and content-type rules, and the one place where errors become Connect codes and
//! HTTP statuses. It knows nothing of what an RPC does; `api::rpc` does that.

use std::fmt;

use crate::api::server::{Request, Response};

/// Connect error codes (CONTRACT §1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Canceled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    Unimplemented,
    Internal,
    Unavailable,
    Unauthenticated,
}

impl Code {
    pub fn name(self) -> &'static str {
        match self {
            Code::Canceled => "canceled",
            Code::Unknown => "unknown",
            Code::InvalidArgument => "invalid_argument",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::PermissionDenied => "permission_denied",
            Code::ResourceExhausted => "resource_exhausted",
            Code::FailedPrecondition => "failed_precondition",
            Code::Aborted => "aborted",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::Unauthenticated => "unauthenticated",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Code::Canceled => 499,
            Code::Unknown | Code::Internal => 500,
            Code::InvalidArgument | Code::FailedPrecondition => 400,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
            Code::Unauthenticated => 401,
        }
    }
}

/// An RPC's failure: a Connect code and a message meant for the person reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::NotFound, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Internal, message)
    }

    /// The HTTP response for this error: `{"code","message"}` as JSON.
    pub fn response(&self) -> Response {
        let mut r = Response::error(self.code.http_status(), self.code.name(), &self.message);
        if self.code == Code::Unauthenticated {
            r.headers.push((
                "WWW-Authenticate".to_string(),
                "Basic realm=\"footrest\"".to_string(),
            ));
        }
        r
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl From<crate::oplog::OpLogError> for ApiError {
    fn from(e: crate::oplog::OpLogError) -> ApiError {
        ApiError::new(Code::Internal, e.to_string())
    }
}

impl From<crate::proto::DecodeError> for ApiError {
    fn from(e: crate::proto::DecodeError) -> ApiError {
        ApiError::invalid(e.to_string())
    }
}

/// The services footrest serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// `v1.Backrest`: authenticated.
    Backrest,
    /// `v1.Authentication`: open.
    Authentication,
}

/// What the request asks for, once the transport rules have been checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Call<'a> {
    pub service: Service,
    pub method: &'a str,
    pub streaming: bool,
}

/// Splits an RPC path `/<package>.<Service>/<Method>`; `None` for paths that are not RPCs.
pub fn parse_path(path: &str) -> Option<(Service, &str)> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    let service = match service {
        "v1.Backrest" => Service::Backrest,
        "v1.Authentication" => Service::Authentication,
        _ => return None,
    };
    Some((service, method))
}

/// Checks the method and content type of a request to an RPC path (405 and 415 of
/// CONTRACT §1). Returns whether the client speaks the streaming framing.
pub fn check_transport(req: &Request) -> Result<bool, Response> {
    if req.method != "POST" {
        let mut r = Response::error(
            405,
            "unimplemented",
            &format!(
                "{} is not allowed here; RPCs are called with POST",
                req.method
            ),
        );
        r.headers.push(("Allow".to_string(), "POST".to_string()));
        return Err(r);
    }
    let content_type = req.header("content-type").unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" => Ok(false),
        "application/connect+json" => Ok(true),
        _ => {
            let shown = if content_type.is_empty() {
                "no Content-Type".to_string()
            } else {
                format!("Content-Type {content_type:?}")
            };
            let mut r = Response::error(
                415,
                "unimplemented",
                &format!(
                    "{shown} is not served; send the request as JSON with \
                     -H 'Content-Type: application/json'"
                ),
            );
            r.headers.push((
                "Accept-Post".to_string(),
                "application/json, application/connect+json".to_string(),
            ));
            Err(r)
        }
    }
}

/// A unary success: the response message as JSON.
pub fn ok_json(body: Vec<u8>) -> Response {
    Response::json(200, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_contract_status() {
        let table = [
            (Code::Canceled, 499),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 400),
            (Code::Aborted, 409),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::Unauthenticated, 401),
        ];
        for (code, status) in table {
            assert_eq!(code.http_status(), status, "{code:?}");
        }
    }

    #[test]
    fn rpc_paths_are_recognised() {
        assert_eq!(
            parse_path("/v1.Backrest/Backup"),
            Some((Service::Backrest, "Backup"))
        );
        assert_eq!(
            parse_path("/v1.Authentication/Login"),
            Some((Service::Authentication, "Login"))
        );
        assert_eq!(parse_path("/v1.Backrest/"), Some((Service::Backrest, "")));
        assert_eq!(parse_path("/v1.Other/Backup"), None);
        assert_eq!(parse_path("/metrics"), None);
        assert_eq!(parse_path(""), None);
    }
}
