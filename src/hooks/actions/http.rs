//! Sends one HTTP request for an action, with bounded time, and reports it without
//! secrets: the request's target is always shown through [`redact_url`], and anything
//! a server or the HTTP library says back is passed through the request's
//! [`Scrubber`]. It knows nothing about services: callers build the [`Request`].
//!
//! One `ureq::Agent` per request: hooks fire a few times per operation, so a pooled
//! connection would almost never be reused, while a fresh agent carries exactly the
//! caller's [`Timeouts`] and shares no state between the threads that run hooks.
//! Redirects are not followed (a 3xx is reported as a failure with its status), the
//! proxy variables (`HTTPS_PROXY`, `NO_PROXY`, ...) are honoured as Go's client does
//! for Backrest, and HTTPS trusts the system's CA certificates (see [`super::roots`]).

use std::io::Read;
use std::time::Duration;

use ureq::tls::{Certificate, TlsConfig};

use super::roots;
use super::url::{Scrubber, redact_url};
use super::{ActionError, Outcome, Timeouts};

/// How much of an error response's body is quoted in the error.
const SNIPPET_BYTES: usize = 200;
/// How much of a body is read at most (an error snippet, or a JSON `ok` answer).
const READ_CAP: u64 = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Some(Method::Get),
            "POST" => Some(Method::Post),
            "PUT" => Some(Method::Put),
            "PATCH" => Some(Method::Patch),
            "DELETE" => Some(Method::Delete),
            _ => None,
        }
    }
}

/// One request, ready to send. `url` is `http(s)://host/...` without userinfo (put
/// credentials in a header). `body` is ignored for GET and DELETE.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Secrets beyond the URL's own parts (header tokens, passwords).
    pub scrubber: Scrubber,
    /// The answer is Slack's Web API JSON: a 2xx is a success only with `"ok": true`.
    pub expect_ok_json: bool,
}

impl Request {
    pub fn new(method: Method, url: String) -> Request {
        let mut scrubber = Scrubber::default();
        scrubber.add_url(&url);
        Request {
            method,
            url,
            headers: Vec::new(),
            body: Vec::new(),
            scrubber,
            expect_ok_json: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        // A header value cannot hold a line break; a title with one is flattened.
        let value: String = value
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.headers.push((name.to_string(), value));
        self
    }

    /// A header whose value is a credential: it is also blanked from errors.
    pub fn secret_header(mut self, name: &str, value: &str, secret: &str) -> Request {
        self.scrubber.add_secret(secret);
        self.scrubber.add_secret(value);
        self = self.header(name, value);
        self
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        if !content_type.is_empty() {
            self = self.header("Content-Type", content_type);
        }
        self
    }

    pub fn json(self, value: &serde_json::Value) -> Request {
        let text = value.to_string();
        self.body("application/json", text)
    }

    /// `POST https://host/***`: how this request is named in logs and errors.
    pub fn target(&self) -> String {
        format!("{} {}", self.method.as_str(), redact_url(&self.url))
    }
}

fn agent(t: &Timeouts, roots: Vec<Certificate<'static>>) -> ureq::Agent {
    let total = t.total.max(Duration::from_millis(1));
    let connect = t.connect.min(total).max(Duration::from_millis(1));
    ureq::Agent::config_builder()
        .timeout_global(Some(total))
        .timeout_resolve(Some(connect))
        .timeout_connect(Some(connect))
        .http_status_as_error(false)
        .max_redirects(0)
        .max_idle_connections(0)
        .user_agent(concat!("footrest/", env!("CARGO_PKG_VERSION")))
        // Always explicit: ureq has no roots of its own in this build (webpki-roots is
        // left out), and an empty list makes TLS fail with an error, not a panic.
        .tls_config(TlsConfig::builder().root_certs(roots.into()).build())
        .build()
        .into()
}

/// Sends `req`; a 2xx answer is an [`Outcome`] (`POST https://host/*** -> 204`), anything
/// else an error that names the target (redacted), the status and the start of the body.
pub(crate) fn send(req: &Request, t: &Timeouts) -> Result<Outcome, ActionError> {
    let target = req.target();
    if !(req.url.starts_with("http://") || req.url.starts_with("https://")) {
        return Err(ActionError::Invalid {
            message: format!("{target}: only http:// and https:// URLs can be called"),
        });
    }
    let mut roots_from = None;
    let roots = if needs_tls(&req.url) {
        match roots::load() {
            Ok(roots) => {
                roots_from = Some(roots.source);
                roots.certs
            }
            // Only an https:// target stops here; an https:// proxy for an http://
            // target fails at its handshake instead, with rustls's own words.
            Err(why) if req.url.starts_with("https://") => {
                return Err(ActionError::Failed {
                    message: format!("{target} cannot be sent: {why}"),
                });
            }
            Err(_) => Vec::new(),
        }
    } else {
        Vec::new()
    };
    let agent = agent(t, roots);
    let result = match req.method {
        Method::Get => with_headers(agent.get(&req.url), &req.headers).call(),
        Method::Delete => with_headers(agent.delete(&req.url), &req.headers).call(),
        Method::Post => with_headers(agent.post(&req.url), &req.headers).send(&req.body[..]),
        Method::Put => with_headers(agent.put(&req.url), &req.headers).send(&req.body[..]),
        Method::Patch => with_headers(agent.patch(&req.url), &req.headers).send(&req.body[..]),
    };
    let response =
        result.map_err(|e| transport_error(&target, e, t, &req.scrubber, roots_from.as_deref()))?;
    let status = response.status();
    let code = status.as_u16();
    let status_text = match status.canonical_reason() {
        Some(reason) => format!("{code} {reason}"),
        None => code.to_string(),
    };
    if (300..400).contains(&code) {
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(|l| format!(" to {}", redact_location(l)))
            .unwrap_or_default();
        return Err(ActionError::Failed {
            message: format!(
                "{target} answered {status_text}: a redirect{location}, which is not \
                 followed; put the final URL in the hook"
            ),
        });
    }
    let ok = (200..300).contains(&code);
    if ok && !req.expect_ok_json {
        return Ok(Outcome {
            output: format!("{target} -> {code}"),
        });
    }
    let mut body = Vec::new();
    let read = response
        .into_body()
        .into_reader()
        .take(READ_CAP)
        .read_to_end(&mut body);
    if !ok {
        let snippet = snippet(&body, &req.scrubber);
        let detail = if snippet.is_empty() {
            String::new()
        } else {
            format!(": {snippet}")
        };
        return Err(ActionError::Failed {
            message: format!("{target} answered {status_text}{detail}"),
        });
    }
    // A 2xx whose JSON must say `"ok": true` (Slack's Web API answers errors with 200).
    if let Err(e) = read {
        return Err(ActionError::Failed {
            message: format!(
                "{target} answered {status_text}, but its answer could not be read: {}",
                req.scrubber.clean(&e.to_string())
            ),
        });
    }
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let ok_flag = parsed
        .as_ref()
        .and_then(|v| v.get("ok"))
        .and_then(serde_json::Value::as_bool);
    if ok_flag == Some(true) {
        return Ok(Outcome {
            output: format!("{target} -> {code}"),
        });
    }
    let why = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(serde_json::Value::as_str)
        .map(|e| req.scrubber.clean(e))
        .unwrap_or_else(|| snippet(&body, &req.scrubber));
    Err(ActionError::Failed {
        message: format!("{target} answered {status_text} but refused the message: {why}"),
    })
}

/// Whether this call may need TLS: an https:// target, or an https:// proxy from the
/// environment (ureq reads the same variables).
fn needs_tls(url: &str) -> bool {
    url.starts_with("https://")
        || [
            "ALL_PROXY",
            "all_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
        ]
        .iter()
        .any(|name| {
            std::env::var(name).is_ok_and(|v| v.trim().to_ascii_lowercase().starts_with("https://"))
        })
}

fn with_headers<B>(
    mut builder: ureq::RequestBuilder<B>,
    headers: &[(String, String)],
) -> ureq::RequestBuilder<B> {
    for (k, v) in headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder
}

fn redact_location(location: &str) -> String {
    if location.starts_with('/') {
        "a path on the same host".to_string()
    } else {
        redact_url(location)
    }
}

/// The first [`SNIPPET_BYTES`] of a body, as one readable line with secrets blanked.
fn snippet(body: &[u8], scrubber: &Scrubber) -> String {
    // Scrub the whole text read so far before cutting, so a token cut in half by the
    // snippet's end cannot survive as a prefix.
    let text = String::from_utf8_lossy(body);
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = scrubber.clean(&flat);
    let words: Vec<&str> = clean.split_whitespace().collect();
    let joined = words.join(" ");
    if joined.len() <= SNIPPET_BYTES {
        return joined;
    }
    let mut end = SNIPPET_BYTES;
    while !joined.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &joined[..end])
}

/// `roots_from` is where the trusted CA certificates came from, named when TLS fails.
fn transport_error(
    target: &str,
    e: ureq::Error,
    t: &Timeouts,
    scrubber: &Scrubber,
    roots_from: Option<&str>,
) -> ActionError {
    use ureq::Error as E;
    let why = match &e {
        E::Timeout(which) => {
            let after = match which {
                ureq::Timeout::Connect | ureq::Timeout::Resolve => t.connect.min(t.total),
                _ => t.total,
            };
            return ActionError::Timeout {
                what: target.to_string(),
                after,
            };
        }
        E::HostNotFound => "the host name could not be resolved".to_string(),
        E::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "the connection was refused (is the service running, and is the port \
                 right?)"
                    .to_string()
            }
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                return ActionError::Timeout {
                    what: target.to_string(),
                    after: t.total,
                };
            }
            // rustls reports a refused certificate (or handshake) as invalid data: say
            // which CAs were trusted, as that is what a user can change.
            std::io::ErrorKind::InvalidData if roots_from.is_some() => format!(
                "TLS error: {io} (trusting the CA certificates in {})",
                roots_from.unwrap_or_default()
            ),
            _ => format!("network error: {io}"),
        },
        E::BadUri(_) | E::Http(_) => {
            return ActionError::Invalid {
                message: format!(
                    "{target}: the URL or a header is not valid: {}",
                    scrubber.clean(&e.to_string())
                ),
            };
        }
        // A certificate the server shows that no trusted CA signed, an old protocol:
        // say which CAs were trusted, as that is what a user can change.
        E::Rustls(_) | E::Tls(_) => match roots_from {
            Some(from) => format!("{e} (trusting the CA certificates in {from})"),
            None => e.to_string(),
        },
        other => other.to_string(),
    };
    ActionError::Failed {
        message: format!("{target} failed: {}", scrubber.clean(&why)),
    }
}
