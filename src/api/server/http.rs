//! The pure HTTP/1.1 pieces of the connection layer: finding a request head in a byte
//! buffer within the header-size limit, deciding how a request body is framed, decoding
//! chunked bodies, and writing response heads and chunks. Nothing here touches a socket
//! or a clock, so every rule is unit-tested byte by byte. Nothing here may allocate in
//! proportion to a number a client declares: only in proportion to bytes received, and
//! never past the limits the caller passes in.

use httparse::Status;

/// At most this many header fields are parsed; more get `431` like an oversized head.
pub(crate) const MAX_HEADERS: usize = 100;

/// A parsed request head (request line and header fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub method: String,
    /// The request target as sent (path and query, not percent-decoded).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub headers: Vec<(String, String)>,
    /// Bytes the head took in the buffer, blank line included.
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// The head did not end within the limit (`431`).
    TooLarge,
    /// More than [`MAX_HEADERS`] header fields (`431`).
    TooManyHeaders,
    /// Not an HTTP/1.x request head (`400`); the text says what was wrong.
    Malformed(String),
}

/// Looks for a complete request head at the start of `buf`. `Ok(None)`: not complete
/// yet and there is still room under `max_header`; read more and call again.
pub(crate) fn parse_head(buf: &[u8], max_header: usize) -> Result<Option<Head>, HeadError> {
    let window = &buf[..buf.len().min(max_header)];
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    match req.parse(window) {
        Ok(Status::Complete(len)) => {
            let headers = req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            Ok(Some(Head {
                method: req.method.unwrap_or_default().to_string(),
                target: req.path.unwrap_or_default().to_string(),
                minor_version: req.version.unwrap_or(1),
                headers,
                len,
            }))
        }
        Ok(Status::Partial) if window.len() >= max_header => Err(HeadError::TooLarge),
        Ok(Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooManyHeaders),
        Err(e) => Err(HeadError::Malformed(format!("malformed request head: {e}"))),
    }
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes, already checked against the body limit.
    Length(usize),
    /// `Transfer-Encoding: chunked`; the limit is applied while decoding.
    Chunked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FramingError {
    /// The declared `Content-Length` is above the body limit (`413`).
    TooLarge,
    /// Contradictory or unreadable framing headers (`400`).
    Invalid(String),
}

fn values<'a>(headers: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
}

/// Decides the body framing from the request headers (RFC 9112 section 6.3): both
/// `Content-Length` and `Transfer-Encoding`, differing lengths, a non-numeric length or a
/// transfer coding other than plain `chunked` are refused; a length above `max_body` is
/// `TooLarge` however many digits it has.
pub(crate) fn body_framing(
    headers: &[(String, String)],
    max_body: usize,
) -> Result<Framing, FramingError> {
    let has_te = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"));
    let has_cl = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
    if has_te && has_cl {
        return Err(FramingError::Invalid(
            "the request has both Content-Length and Transfer-Encoding; send only one".into(),
        ));
    }
    if has_te {
        let codings: Vec<&str> = values(headers, "transfer-encoding")
            .filter(|c| !c.is_empty())
            .collect();
        return if codings.len() == 1 && codings[0].eq_ignore_ascii_case("chunked") {
            Ok(Framing::Chunked)
        } else {
            Err(FramingError::Invalid(format!(
                "unsupported Transfer-Encoding \"{}\"; only \"chunked\" is accepted",
                codings.join(", ")
            )))
        };
    }
    let mut length: Option<u64> = None;
    for v in values(headers, "content-length") {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FramingError::Invalid(format!(
                "invalid Content-Length \"{v}\": it must be a number of bytes"
            )));
        }
        // Saturate: twenty nines are as much "too large" as 2^63.
        let n = v.bytes().fold(0u64, |acc, b| {
            acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
        });
        match length {
            Some(prev) if prev != n => {
                return Err(FramingError::Invalid(
                    "the request has several different Content-Length values".into(),
                ));
            }
            _ => length = Some(n),
        }
    }
    match length {
        None | Some(0) => Ok(Framing::Empty),
        Some(n) if n > max_body as u64 => Err(FramingError::TooLarge),
        Some(n) => Ok(Framing::Length(n as usize)),
    }
}

fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    values(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// Whether the client allows the connection to stay open after this exchange: HTTP/1.1
/// unless `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
pub(crate) fn wants_keep_alive(minor_version: u8, headers: &[(String, String)]) -> bool {
    if has_token(headers, "connection", "close") {
        return false;
    }
    minor_version >= 1 || has_token(headers, "connection", "keep-alive")
}

/// Whether an HTTP/1.1 client waits for `100 Continue` before sending its body.
pub(crate) fn expects_continue(minor_version: u8, headers: &[(String, String)]) -> bool {
    minor_version >= 1 && has_token(headers, "expect", "100-continue")
}

/// Splits a request target into path and query (without the `?`). An absolute-form
/// target (`http://host/p?q`) loses its scheme and authority.
pub(crate) fn split_target(target: &str) -> (String, String) {
    let mut rest = target;
    for scheme in ["http://", "https://"] {
        if rest.len() >= scheme.len() && rest[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let after = &rest[scheme.len()..];
            rest = after.find('/').map_or("/", |i| &after[i..]);
            break;
        }
    }
    match rest.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (rest.to_string(), String::new()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChunkError {
    /// The decoded body would pass the body limit (`413`).
    TooLarge,
    /// The trailer section is larger than the header limit (`431`).
    TrailersTooLarge,
    /// Not valid chunked coding (`400`).
    Invalid(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

/// Incremental decoder of a chunked request body. Feed it whatever bytes have arrived;
/// it says how many it used and appends chunk data to the body, never past `max_body`.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
    max_body: usize,
    max_trailers: usize,
    trailer_bytes: usize,
}

impl ChunkedDecoder {
    pub(crate) fn new(max_body: usize, max_trailers: usize) -> ChunkedDecoder {
        ChunkedDecoder {
            state: ChunkState::Size,
            max_body,
            max_trailers,
            trailer_bytes: 0,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes from `input`, appending data to `body`; returns the bytes consumed. Bytes
    /// not consumed (a partial size or trailer line) must be offered again with more.
    pub(crate) fn decode(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<usize, ChunkError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.state {
                ChunkState::Done => return Ok(pos),
                ChunkState::Size => match httparse::parse_chunk_size(rest) {
                    Ok(Status::Complete((used, size))) => {
                        pos += used;
                        if size == 0 {
                            self.state = ChunkState::Trailers;
                        } else if (body.len() as u64).saturating_add(size) > self.max_body as u64 {
                            return Err(ChunkError::TooLarge);
                        } else {
                            self.state = ChunkState::Data(size);
                        }
                    }
                    Ok(Status::Partial) => return Ok(pos),
                    Err(_) => return Err(ChunkError::Invalid("invalid chunk size line")),
                },
                ChunkState::Data(remaining) => {
                    if rest.is_empty() {
                        return Ok(pos);
                    }
                    let take = remaining.min(rest.len() as u64) as usize;
                    body.extend_from_slice(&rest[..take]);
                    pos += take;
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::DataEnd => match rest {
                    [] | [b'\r'] => return Ok(pos),
                    [b'\r', b'\n', ..] => {
                        pos += 2;
                        self.state = ChunkState::Size;
                    }
                    [b'\n', ..] => {
                        pos += 1;
                        self.state = ChunkState::Size;
                    }
                    _ => return Err(ChunkError::Invalid("chunk data is not followed by CRLF")),
                },
                ChunkState::Trailers => {
                    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                        if self.trailer_bytes + rest.len() > self.max_trailers {
                            return Err(ChunkError::TrailersTooLarge);
                        }
                        return Ok(pos);
                    };
                    let line = &rest[..=nl];
                    pos += line.len();
                    if line == b"\r\n" || line == b"\n" {
                        self.state = ChunkState::Done;
                    } else {
                        // A trailer field: counted against the limit and dropped.
                        self.trailer_bytes += line.len();
                        if self.trailer_bytes > self.max_trailers {
                            return Err(ChunkError::TrailersTooLarge);
                        }
                    }
                }
            }
        }
    }
}

/// How a response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseFraming {
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: chunked` (HTTP/1.1 clients).
    Chunked,
    /// Neither header: the body ends when the connection closes (streams to HTTP/1.0).
    UntilClose,
    /// No body and no length header (1xx, 204, 304).
    None,
}

/// Whether a status never carries a body.
pub(crate) fn status_has_no_body(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        499 => "Client Closed Request",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Header names the connection layer writes itself; a handler's copies are dropped.
fn is_framing_header(name: &str) -> bool {
    ["content-length", "transfer-encoding", "connection"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

/// Whether a handler's header can be written as is: a token name, and a value without
/// CR, LF or NUL (which would let one header smuggle another).
pub(crate) fn header_is_writable(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// Writes the status line and headers of a response. The framing headers and
/// `Connection` come from the arguments, never from `headers`.
pub(crate) fn response_head(
    status: u16,
    headers: &[(String, String)],
    framing: ResponseFraming,
    close: bool,
    minor_version: u8,
) -> Vec<u8> {
    use std::fmt::Write;
    let mut head = String::with_capacity(128);
    let _ = write!(head, "HTTP/1.1 {} {}\r\n", status, reason(status));
    for (name, value) in headers {
        if !is_framing_header(name) && header_is_writable(name, value) {
            let _ = write!(head, "{name}: {value}\r\n");
        }
    }
    match framing {
        ResponseFraming::Length(n) => {
            let _ = write!(head, "Content-Length: {n}\r\n");
        }
        ResponseFraming::Chunked => head.push_str("Transfer-Encoding: chunked\r\n"),
        ResponseFraming::UntilClose | ResponseFraming::None => {}
    }
    if close {
        head.push_str("Connection: close\r\n");
    } else if minor_version == 0 {
        head.push_str("Connection: keep-alive\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// One chunk of a chunked response: size line, data, CRLF. Empty data gives an empty
/// frame (an empty chunk would end the body).
pub(crate) fn encode_chunk(data: &[u8]) -> Vec<u8> {
    if data.is_empty() {
        return Vec::new();
    }
    let mut frame = format!("{:X}\r\n", data.len()).into_bytes();
    frame.reserve(data.len() + 2);
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\r\n");
    frame
}

/// The end of a chunked body: the zero chunk and an empty trailer section.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn head_is_parsed_with_its_length() {
        let raw =
            b"POST /v1.Backrest/Backup?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}";
        let head = parse_head(raw, 1024).unwrap().unwrap();
        assert_eq!(head.method, "POST");
        assert_eq!(head.target, "/v1.Backrest/Backup?x=1");
        assert_eq!(head.minor_version, 1);
        assert_eq!(head.headers, h(&[("Host", "a"), ("Content-Length", "2")]));
        assert_eq!(head.len, raw.len() - 2);
    }

    #[test]
    fn partial_head_asks_for_more_until_the_limit() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost:", 64), Ok(None));
        assert_eq!(parse_head(b"", 64), Ok(None));
        // The same partial head with no room left is too large.
        let raw = b"GET / HTTP/1.1\r\nHost: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        assert_eq!(parse_head(raw, raw.len()), Err(HeadError::TooLarge));
    }

    #[test]
    fn head_size_counts_request_line_headers_and_blank_line() {
        let raw = b"GET /p HTTP/1.1\r\nA: b\r\n\r\n";
        // Exactly at the limit is accepted ...
        assert_eq!(parse_head(raw, raw.len()).unwrap().unwrap().len, raw.len());
        // ... one byte less is not, even when more bytes are in the buffer.
        assert_eq!(parse_head(raw, raw.len() - 1), Err(HeadError::TooLarge));
    }

    #[test]
    fn head_complete_within_limit_ignores_body_bytes_past_it() {
        let mut raw = b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n".to_vec();
        let head_len = raw.len();
        raw.extend_from_slice(&[b'x'; 100]);
        assert_eq!(parse_head(&raw, head_len).unwrap().unwrap().len, head_len);
    }

    #[test]
    fn too_many_headers_and_malformed_heads() {
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&raw, 1 << 20), Err(HeadError::TooManyHeaders));
        assert!(matches!(
            parse_head(b"GET / HTTP/2.0\r\n\r\n", 1024),
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            parse_head(b"G(T / HTTP/1.1\r\n\r\n", 1024),
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 1024),
            Err(HeadError::Malformed(_))
        ));
    }

    #[test]
    fn http_1_0_is_minor_version_0() {
        let head = parse_head(b"GET / HTTP/1.0\r\n\r\n", 1024)
            .unwrap()
            .unwrap();
        assert_eq!(head.minor_version, 0);
    }

    #[test]
    fn framing_rules() {
        assert_eq!(body_framing(&h(&[]), 10), Ok(Framing::Empty));
        assert_eq!(
            body_framing(&h(&[("content-length", "0")]), 10),
            Ok(Framing::Empty)
        );
        assert_eq!(
            body_framing(&h(&[("Content-Length", "10")]), 10),
            Ok(Framing::Length(10))
        );
        assert_eq!(
            body_framing(&h(&[("Content-Length", "11")]), 10),
            Err(FramingError::TooLarge)
        );
        assert_eq!(
            body_framing(&h(&[("Content-Length", "100000000000")]), 1 << 20),
            Err(FramingError::TooLarge)
        );
        assert_eq!(
            body_framing(&h(&[("Content-Length", "99999999999999999999999999")]), 10),
            Err(FramingError::TooLarge)
        );
        assert_eq!(
            body_framing(
                &h(&[("Content-Length", "5, 5"), ("content-length", "5")]),
                10
            ),
            Ok(Framing::Length(5))
        );
        for bad in ["-1", "+5", "5x", "", "0x10", "1 2"] {
            assert!(
                matches!(
                    body_framing(&h(&[("Content-Length", bad)]), 10),
                    Err(FramingError::Invalid(_))
                ),
                "{bad:?} must be refused"
            );
        }
        assert!(matches!(
            body_framing(&h(&[("Content-Length", "5"), ("Content-Length", "6")]), 10),
            Err(FramingError::Invalid(_))
        ));
        assert_eq!(
            body_framing(&h(&[("Transfer-Encoding", "Chunked")]), 10),
            Ok(Framing::Chunked)
        );
        assert!(matches!(
            body_framing(
                &h(&[("Transfer-Encoding", "chunked"), ("Content-Length", "3")]),
                10
            ),
            Err(FramingError::Invalid(_))
        ));
        for bad in ["gzip", "gzip, chunked", "chunked, chunked", ""] {
            assert!(
                matches!(
                    body_framing(&h(&[("Transfer-Encoding", bad)]), 10),
                    Err(FramingError::Invalid(_))
                ),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn keep_alive_and_expect_rules() {
        assert!(wants_keep_alive(1, &h(&[])));
        assert!(!wants_keep_alive(1, &h(&[("Connection", "Close")])));
        assert!(!wants_keep_alive(
            1,
            &h(&[("Connection", "keep-alive, close")])
        ));
        assert!(!wants_keep_alive(0, &h(&[])));
        assert!(wants_keep_alive(0, &h(&[("connection", "Keep-Alive")])));
        assert!(expects_continue(1, &h(&[("Expect", "100-Continue")])));
        assert!(!expects_continue(0, &h(&[("Expect", "100-continue")])));
        assert!(!expects_continue(1, &h(&[])));
    }

    #[test]
    fn targets_split_into_path_and_query() {
        assert_eq!(split_target("/a/b?x=1&y"), ("/a/b".into(), "x=1&y".into()));
        assert_eq!(split_target("/a"), ("/a".into(), "".into()));
        assert_eq!(split_target("http://h:1/a?q"), ("/a".into(), "q".into()));
        assert_eq!(split_target("HTTP://h"), ("/".into(), "".into()));
        assert_eq!(split_target("*"), ("*".into(), "".into()));
    }

    fn decode_all(pieces: &[&[u8]], max_body: usize) -> Result<(Vec<u8>, usize), ChunkError> {
        // Feeds the pieces like a socket would, keeping unconsumed bytes for the next read.
        let mut dec = ChunkedDecoder::new(max_body, 64);
        let mut pending = Vec::new();
        let mut body = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            pending.extend_from_slice(piece);
            let used = dec.decode(&pending, &mut body)?;
            pending.drain(..used);
            if dec.is_done() {
                // Bytes after the body: left in the buffer, or not even fed yet.
                let unfed: usize = pieces[i + 1..].iter().map(|p| p.len()).sum();
                return Ok((body, pending.len() + unfed));
            }
        }
        Err(ChunkError::Invalid("ended early"))
    }

    #[test]
    fn chunked_body_decodes_whole_and_split_at_every_byte() {
        let raw: &[u8] = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
        assert_eq!(decode_all(&[raw], 100), Ok((b"hello, world".to_vec(), 4)));
        let bytes: Vec<&[u8]> = raw.chunks(1).collect();
        assert_eq!(decode_all(&bytes, 100), Ok((b"hello, world".to_vec(), 4)));
        for cut in 0..raw.len() {
            let (a, b) = raw.split_at(cut);
            assert_eq!(
                decode_all(&[a, b], 100),
                Ok((b"hello, world".to_vec(), 4)),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn chunked_body_accepts_bare_lf_and_uppercase_hex() {
        assert_eq!(
            decode_all(&[b"A\r\n0123456789\n0\r\n\n"], 100),
            Ok((b"0123456789".to_vec(), 0))
        );
    }

    #[test]
    fn chunked_body_limit_is_checked_before_the_data_arrives() {
        assert_eq!(
            decode_all(&[b"5\r\nhello\r\n6\r\n"], 10),
            Err(ChunkError::TooLarge)
        );
        assert_eq!(
            decode_all(&[b"fffffffffffffff\r\n"], 10),
            Err(ChunkError::TooLarge)
        );
        assert_eq!(
            decode_all(&[b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"], 10).map(|r| r.0.len()),
            Ok(10)
        );
    }

    #[test]
    fn chunked_body_errors() {
        assert!(matches!(
            decode_all(&[b"zz\r\n"], 10),
            Err(ChunkError::Invalid(_))
        ));
        assert!(matches!(
            decode_all(&[b"2\r\nabX\r\n"], 10),
            Err(ChunkError::Invalid(_))
        ));
        assert!(matches!(
            decode_all(&[b"ffffffffffffffff0\r\n"], 10),
            Err(ChunkError::Invalid(_))
        ));
        let big_trailer = [b"0\r\n".as_slice(), &[b'x'; 100]].concat();
        assert_eq!(
            decode_all(&[&big_trailer], 10),
            Err(ChunkError::TrailersTooLarge)
        );
    }

    #[test]
    fn response_heads() {
        let head = response_head(
            200,
            &h(&[
                ("Content-Type", "application/json"),
                ("content-length", "99"),
                ("X-Bad", "a\r\nInjected: 1"),
            ]),
            ResponseFraming::Length(2),
            false,
            1,
        );
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
        );
        let head = response_head(503, &[], ResponseFraming::Chunked, true, 1);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        let head = response_head(204, &[], ResponseFraming::None, false, 0);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn chunks_are_framed_in_hex() {
        assert_eq!(
            encode_chunk(&[b'a'; 26]),
            [b"1A\r\n".as_slice(), &[b'a'; 26], b"\r\n"].concat()
        );
        assert!(encode_chunk(b"").is_empty());
    }
}
