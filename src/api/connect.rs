//! The Connect protocol as footrest speaks it (CONTRACT §1, §5): which paths are RPCs,
//! the method and content-type rules, the envelopes of server streams, and the one place
//! where errors become Connect codes and HTTP statuses (or end-of-stream errors). It
//! knows nothing of what an RPC does; `api::rpc` does that.
//!
//! # Server streams
//!
//! A streaming request's body is one envelope (flag byte, 4-byte big-endian length,
//! JSON). The response is `200 application/connect+json` and a sequence of envelopes:
//! data (flag `0x00`), then one end-of-stream envelope (flag `0x02`) holding `{}` or
//! `{"error":{"code","message"}}`. Once the response has started, errors only ever go
//! there. [`StreamWriter`] writes them.
//!
//! A stream that has nothing to say for a while is *probed*: every `probe` interval
//! (1 s) without a write, [`StreamWriter::quiet`] writes a few bytes of the next
//! keep-alive message, so that the whole message is complete after `keepalive` (60 s)
//! of quiet. Its JSON is padded with spaces to make it long enough. Clients see one
//! keep-alive a minute, because a Connect client reassembles envelopes across HTTP
//! chunks. footrest still writes something every second, so a client that went away
//! is noticed within two probes. The first write after the peer closed draws a reset,
//! and the second one fails. The connection layer does not let a handler look at the
//! socket, so a write is the only check available.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use crate::api::server::{Body, ChunkWriter, Request, Response, StreamFn};

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

/// The content type of Connect server streams, requests and responses alike.
pub const STREAM_CONTENT_TYPE: &str = "application/connect+json";
/// Envelope flag: the payload is compressed (footrest never compresses, and refuses
/// compressed requests).
pub const FLAG_COMPRESSED: u8 = 0x01;
/// Envelope flag: the end-of-stream message.
pub const FLAG_END_STREAM: u8 = 0x02;
/// Flag byte and length.
const ENVELOPE_HEAD: usize = 5;
/// Upper bound of a keep-alive message's padded length (bytes written while quiet).
const MAX_FILLER: usize = 4096;

/// One envelope: the flag byte, the payload's length (4 bytes, big-endian), the payload.
pub fn envelope(flags: u8, payload: &[u8]) -> Vec<u8> {
    // Payloads are footrest's own messages (at most a 64 KiB log chunk as base64, or a
    // list of operations), far below 4 GiB.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(ENVELOPE_HEAD + payload.len());
    out.push(flags);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The request message of a streaming call: the JSON inside the body's one envelope.
/// An empty body counts as `{}`, as it does for unary calls.
pub fn request_message(body: &[u8]) -> Result<&[u8], ApiError> {
    const HOW: &str = "a streaming request body is one Connect envelope: a flag byte 0, \
                       the JSON's length as 4 bytes big-endian, then the JSON";
    if body.is_empty() {
        return Ok(b"{}");
    }
    if body.len() < ENVELOPE_HEAD {
        return Err(ApiError::invalid(format!(
            "the request body is {} bytes, too short for an envelope; {HOW}",
            body.len()
        )));
    }
    let flags = body[0];
    if flags & !FLAG_COMPRESSED != 0 {
        return Err(ApiError::invalid(format!(
            "the request envelope has flags {flags:#04x}; {HOW}"
        )));
    }
    if flags == FLAG_COMPRESSED {
        return Err(ApiError::new(
            Code::Unimplemented,
            "compressed request envelopes are not supported; send the request uncompressed",
        ));
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let payload = &body[ENVELOPE_HEAD..];
    if payload.len() != len {
        return Err(ApiError::invalid(format!(
            "the request envelope announces {len} bytes of JSON but {} follow; {HOW}",
            payload.len()
        )));
    }
    Ok(payload)
}

/// The JSON of the end-of-stream envelope: `{}`, or the error.
pub fn end_stream_json(error: Option<&ApiError>) -> Vec<u8> {
    match error {
        None => b"{}".to_vec(),
        Some(e) => serde_json::json!({
            "error": {"code": e.code.name(), "message": e.message}
        })
        .to_string()
        .into_bytes(),
    }
}

/// A streaming response: `200 application/connect+json`, the body written by `produce`.
pub fn stream_response(produce: StreamFn) -> Response {
    Response {
        status: 200,
        headers: vec![
            ("Content-Type".to_string(), STREAM_CONTENT_TYPE.to_string()),
            // A reverse proxy (nginx) would otherwise hold the messages back.
            ("X-Accel-Buffering".to_string(), "no".to_string()),
            ("Cache-Control".to_string(), "no-store".to_string()),
        ],
        body: Body::Stream(produce),
    }
}

/// [`stream_response`] for a stream that stays open as long as its client wants: the
/// connection layer writes it on a thread of its own (`Body::OwnThread`); the caller
/// bounds how many are open.
pub fn long_stream_response(produce: StreamFn) -> Response {
    let mut resp = stream_response(produce);
    if let Body::Stream(produce) = resp.body {
        resp.body = Body::OwnThread(produce);
    }
    resp
}

/// A stream that ends at once with this error (the response is still `200`).
pub fn stream_error(error: ApiError) -> Response {
    stream_response(Box::new(move |out: &mut dyn ChunkWriter| {
        out.write_chunk(&envelope(FLAG_END_STREAM, &end_stream_json(Some(&error))))
    }))
}

/// Writes the envelopes of one server stream, and probes the client while the stream
/// is quiet (see the module docs). Every method writes one HTTP chunk at most. An
/// error from any of them means the client is gone, and the stream should stop.
pub struct StreamWriter<'a> {
    out: &'a mut dyn ChunkWriter,
    probe: Duration,
    /// Probes per keep-alive message.
    ticks: usize,
    filler: Option<Filler>,
    last_write: Instant,
}

/// A keep-alive message being written a few bytes per probe.
struct Filler {
    bytes: Vec<u8>,
    sent: usize,
    ticks_left: usize,
}

impl Filler {
    /// The envelope of `message`, padded with spaces so that it is at least `ticks` bytes.
    fn new(message: &[u8], ticks: usize) -> Filler {
        let mut payload = message.to_vec();
        let want = ticks.saturating_sub(ENVELOPE_HEAD);
        if payload.len() < want {
            payload.resize(want, b' ');
        }
        Filler {
            bytes: envelope(0, &payload),
            sent: 0,
            ticks_left: ticks.max(1),
        }
    }
}

impl<'a> StreamWriter<'a> {
    /// A writer that probes every `probe` of quiet and completes a keep-alive message
    /// after `keepalive` of quiet (a probe interval longer than `keepalive` is
    /// shortened to it).
    pub fn new(out: &'a mut dyn ChunkWriter, probe: Duration, keepalive: Duration) -> Self {
        let probe = probe.min(keepalive).max(Duration::from_millis(1));
        let ticks = (keepalive.as_nanos() / probe.as_nanos()).clamp(1, MAX_FILLER as u128);
        StreamWriter {
            out,
            probe,
            ticks: ticks as usize,
            filler: None,
            last_write: Instant::now(),
        }
    }

    /// Sends one data message, completing a keep-alive message that is under way first.
    pub fn send(&mut self, message: &[u8]) -> io::Result<()> {
        let mut bytes = self.filler_rest();
        bytes.extend_from_slice(&envelope(0, message));
        self.write(&bytes)
    }

    /// Ends the stream: the end-of-stream envelope with `{}` or the error.
    pub fn finish(mut self, error: Option<&ApiError>) -> io::Result<()> {
        let mut bytes = self.filler_rest();
        bytes.extend_from_slice(&envelope(FLAG_END_STREAM, &end_stream_json(error)));
        self.write(&bytes)
    }

    /// How long the caller may wait for something to send before calling [`quiet`].
    ///
    /// [`quiet`]: StreamWriter::quiet
    pub fn until_probe(&self) -> Duration {
        self.probe
            .saturating_sub(self.last_write.elapsed())
            .max(Duration::from_millis(1))
    }

    /// The stream has nothing to send. If nothing was written for a probe interval, writes
    /// the next few bytes of `keepalive` (a data message the client can ignore).
    pub fn quiet(&mut self, keepalive: &[u8]) -> io::Result<()> {
        if self.last_write.elapsed() < self.probe {
            return Ok(());
        }
        self.tick(keepalive)
    }

    /// One probe: the next bytes of the keep-alive message, started if none is under way.
    fn tick(&mut self, keepalive: &[u8]) -> io::Result<()> {
        let ticks = self.ticks;
        let filler = self
            .filler
            .get_or_insert_with(|| Filler::new(keepalive, ticks));
        let left = filler.bytes.len() - filler.sent;
        let n = left.div_ceil(filler.ticks_left.max(1));
        let piece = filler.bytes[filler.sent..filler.sent + n].to_vec();
        filler.sent += n;
        filler.ticks_left = filler.ticks_left.saturating_sub(1);
        if filler.sent == filler.bytes.len() {
            self.filler = None;
        }
        self.write(&piece)
    }

    /// What is left of a keep-alive message under way.
    fn filler_rest(&mut self) -> Vec<u8> {
        match self.filler.take() {
            Some(f) => f.bytes[f.sent..].to_vec(),
            None => Vec::new(),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.last_write = Instant::now();
        self.out.write_chunk(bytes)
    }
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

    /// A ChunkWriter that keeps what it is given, chunk by chunk.
    #[derive(Default)]
    struct Chunks(Vec<Vec<u8>>);

    impl ChunkWriter for Chunks {
        fn write_chunk(&mut self, data: &[u8]) -> io::Result<()> {
            self.0.push(data.to_vec());
            Ok(())
        }
    }

    /// Splits a byte stream into (flags, payload) envelopes; panics on a partial one.
    fn envelopes(mut bytes: &[u8]) -> Vec<(u8, String)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let len = u32::from_be_bytes(bytes[1..5].try_into().unwrap()) as usize;
            let payload = String::from_utf8(bytes[5..5 + len].to_vec()).unwrap();
            out.push((bytes[0], payload));
            bytes = &bytes[5 + len..];
        }
        out
    }

    #[test]
    fn envelopes_are_flag_length_payload() {
        assert_eq!(envelope(0, b"{}"), b"\x00\x00\x00\x00\x02{}");
        assert_eq!(
            envelope(FLAG_END_STREAM, &end_stream_json(None)),
            b"\x02\x00\x00\x00\x02{}"
        );
        let e = ApiError::new(Code::ResourceExhausted, "too \"many\"");
        assert_eq!(
            String::from_utf8(end_stream_json(Some(&e))).unwrap(),
            r#"{"error":{"code":"resource_exhausted","message":"too \"many\""}}"#
        );
    }

    #[test]
    fn a_streaming_request_is_one_envelope() {
        let body = envelope(0, br#"{"ref":"t-7"}"#);
        assert_eq!(request_message(&body).unwrap(), br#"{"ref":"t-7"}"#);
        assert_eq!(request_message(b"").unwrap(), b"{}");
        let short = request_message(b"\x00\x00").unwrap_err();
        assert_eq!(short.code, Code::InvalidArgument);
        assert!(short.message.contains("too short"), "{short}");
        let plain = request_message(br#"{"ref":"t-7"}"#).unwrap_err();
        assert_eq!(plain.code, Code::InvalidArgument);
        assert!(plain.message.contains("one Connect envelope"), "{plain}");
        let mut long = envelope(0, b"{}");
        long.push(b' ');
        assert!(
            request_message(&long)
                .unwrap_err()
                .message
                .contains("announces 2 bytes of JSON but 3 follow")
        );
        let compressed = request_message(&envelope(FLAG_COMPRESSED, b"x")).unwrap_err();
        assert_eq!(compressed.code, Code::Unimplemented);
    }

    #[test]
    fn a_quiet_stream_writes_a_keep_alive_a_little_at_a_time() {
        let mut chunks = Chunks::default();
        let keepalive = br#"{"keepAlive":{}}"#;
        {
            let mut w =
                StreamWriter::new(&mut chunks, Duration::from_secs(1), Duration::from_secs(60));
            for _ in 0..59 {
                w.tick(keepalive).unwrap();
            }
        }
        // 59 probes: one byte each, and no whole message yet.
        assert_eq!(chunks.0.len(), 59);
        assert!(chunks.0.iter().all(|c| c.len() == 1));
        let mut w = StreamWriter::new(&mut chunks, Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..60 {
            w.tick(keepalive).unwrap();
        }
        w.send(b"{}").unwrap();
        w.tick(keepalive).unwrap();
        w.finish(None).unwrap();
        let all: Vec<u8> = chunks.0[59..].concat();
        let got = envelopes(&all);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0].0, 0);
        assert_eq!(got[0].1.len(), 55, "padded to 60 bytes in all");
        assert_eq!(got[0].1.trim_end(), r#"{"keepAlive":{}}"#);
        assert_eq!(got[1], (0, "{}".to_string()));
        // The keep-alive begun by the last probe is completed before the end.
        assert_eq!(got[2], got[0]);
        assert_eq!(got[3], (FLAG_END_STREAM, "{}".to_string()));
        assert_eq!(chunks.0.last().unwrap().len(), 60 - 1 + 7);
    }

    #[test]
    fn a_short_keep_alive_interval_writes_several_bytes_per_probe() {
        let mut chunks = Chunks::default();
        let keepalive = br#"{"keepAlive":{}}"#;
        let mut w = StreamWriter::new(&mut chunks, Duration::from_secs(1), Duration::from_secs(4));
        for _ in 0..4 {
            w.tick(keepalive).unwrap();
        }
        w.tick(keepalive).unwrap();
        let msg = w.filler_rest();
        assert_eq!(chunks.0.len(), 5);
        // 21 bytes in 4 probes, the next message begun by the fifth.
        let lens: Vec<usize> = chunks.0.iter().map(Vec::len).collect();
        assert_eq!(lens, vec![6, 5, 5, 5, 6]);
        assert_eq!(
            envelopes(&chunks.0[..4].concat()),
            vec![(0, r#"{"keepAlive":{}}"#.to_string())]
        );
        assert_eq!(msg.len(), 15);
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
