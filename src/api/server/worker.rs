//! A request thread of the connection layer: takes a ready connection from the queue,
//! reads one request into its fixed head buffer (and the body into a vector bounded by
//! the body limit), calls the handler with panics caught, writes the response, and then
//! keeps the connection (pipelined bytes already buffered), hands it back to the poller
//! (keep-alive) or closes it. A long stream (`Body::OwnThread`) is written on a thread
//! of its own and the request thread goes back to the queue. It must never wait on a
//! socket without a timeout, and never allocate for bytes a client has only announced.

use std::any::Any;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Instant;

use super::http::{
    self, ChunkError, ChunkedDecoder, Framing, FramingError, HeadError, ResponseFraming,
};
use super::{
    Body, ChunkWriter, Conn, Handler, LINGER_BYTES, LINGER_TIME, REQUEST_THREAD_STACK, Request,
    Response, Shared, StreamCount,
};

/// Bodies up to this size are sent in the same write as the head.
const COALESCE_BODY: usize = 64 * 1024;

enum Next {
    /// The exchange is complete and the connection may carry another request.
    KeepAlive,
    Close,
    /// The response is a stream: it is written on a thread of its own (see `detach`).
    Detach(Detached),
}

/// A streamed response whose head and body are still to be written.
struct Detached {
    resp: Response,
    minor: u8,
    close: bool,
}

enum ReadFail {
    Timeout,
    Eof,
    Io,
}

enum BodyFail {
    Read(ReadFail),
    TooLarge,
    TrailersTooLarge,
    Invalid(String),
}

impl From<ReadFail> for BodyFail {
    fn from(f: ReadFail) -> BodyFail {
        BodyFail::Read(f)
    }
}

pub(crate) struct Worker {
    shared: Arc<Shared>,
    handler: Arc<dyn Handler>,
    /// The head buffer, `max_header` bytes, allocated once per thread. Bytes
    /// `start..end` have been read from the current connection and not used yet.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Worker {
    pub(crate) fn new(shared: Arc<Shared>, handler: Arc<dyn Handler>) -> Worker {
        let buf = vec![0u8; shared.limits.max_header].into_boxed_slice();
        Worker {
            shared,
            handler,
            buf,
            start: 0,
            end: 0,
        }
    }

    /// Serves connections from the ready queue until the poller drops its sender.
    pub(crate) fn run(&mut self, ready: &Mutex<Receiver<Conn>>) {
        loop {
            let next = ready.lock().unwrap_or_else(PoisonError::into_inner).recv();
            let Ok(conn) = next else { return };
            let peer = conn.peer;
            // Handler panics are caught closer to the handler; this one only guards the
            // thread against a bug in the connection layer itself.
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| self.serve(conn))) {
                error!(
                    "HTTP connection from {peer} failed inside the server: {}",
                    panic_text(&*payload)
                );
            }
        }
    }

    fn serve(&mut self, conn: Conn) {
        self.start = 0;
        self.end = 0;
        if conn
            .stream
            .set_write_timeout(Some(self.shared.limits.write_timeout))
            .is_err()
        {
            return;
        }
        loop {
            match self.serve_one(&conn) {
                Next::Close => return,
                Next::Detach(job) => {
                    self.detach(conn, job);
                    return;
                }
                Next::KeepAlive if self.end > self.start => continue,
                Next::KeepAlive => {
                    self.shared.hand_back(conn);
                    return;
                }
            }
        }
    }

    /// Hands a streamed response and its connection to a thread of its own, so that a
    /// long stream (a dashboard's GetOperationEvents) never holds a request thread. How
    /// many streams may be open is the handler's bound (`api::rpc::streams`); the count
    /// here only lets shutdown wait for them. After the stream the connection goes back
    /// to the poller like any keep-alive one.
    fn detach(&mut self, conn: Conn, job: Detached) {
        // Bytes of a pipelined next request sit in this thread's buffer: such a
        // connection closes after its stream instead of carrying them over.
        let close = job.close || self.end > self.start;
        self.start = 0;
        self.end = 0;
        let shared = Arc::clone(&self.shared);
        let running = StreamCount::enter(&shared);
        let peer = conn.peer;
        let spawned = thread::Builder::new()
            .name("footrest-stream".into())
            .stack_size(REQUEST_THREAD_STACK)
            .spawn(move || {
                let _running = running;
                match write_response(&conn.stream, job.resp, job.minor, false, close) {
                    Ok(true) if !close => shared.hand_back(conn),
                    Ok(_) => close_gently(&conn.stream),
                    Err(_) => {}
                }
            });
        if let Err(e) = spawned {
            error!("cannot start a thread for a response stream to {peer}: {e}; connection closed");
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads more bytes into the head buffer (moving unused bytes to its front first).
    /// Never called with a full buffer.
    fn fill(&mut self, stream: &TcpStream, deadline: Instant) -> Result<(), ReadFail> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = read_before(stream, &mut self.buf[self.end..], deadline)?;
        self.end += n;
        Ok(())
    }

    /// Reads, answers and writes one request. On return the buffer holds only bytes
    /// of the next request, if any.
    fn serve_one(&mut self, conn: &Conn) -> Next {
        let limits = self.shared.limits;
        let stream = &conn.stream;
        let deadline = Instant::now() + limits.read_timeout;

        // The head: parse once a new line has arrived (or the buffer is full).
        let mut try_parse = self.buffered().contains(&b'\n');
        let head = loop {
            if try_parse || self.end - self.start >= self.buf.len() {
                match http::parse_head(self.buffered(), limits.max_header) {
                    Ok(Some(head)) => break head,
                    Ok(None) => {}
                    Err(HeadError::TooLarge) => {
                        let msg = format!(
                            "request line and headers are larger than the limit of {} bytes",
                            limits.max_header
                        );
                        return self.refuse(stream, 431, "resource_exhausted", &msg);
                    }
                    Err(HeadError::TooManyHeaders) => {
                        let msg = format!(
                            "the request has more than {} header fields",
                            http::MAX_HEADERS
                        );
                        return self.refuse(stream, 431, "resource_exhausted", &msg);
                    }
                    Err(HeadError::Malformed(msg)) => {
                        return self.refuse(stream, 400, "invalid_argument", &msg);
                    }
                }
            }
            let before = self.end - self.start;
            match self.fill(stream, deadline) {
                Ok(()) => try_parse = self.buf[before..self.end].contains(&b'\n'),
                Err(ReadFail::Timeout) if self.end > self.start => {
                    return self.timed_out(stream, "request head");
                }
                Err(_) => return Next::Close,
            }
        };
        self.start += head.len;

        let minor = head.minor_version;
        let keep_alive = http::wants_keep_alive(minor, &head.headers);
        let framing = match http::body_framing(&head.headers, limits.max_body) {
            Ok(f) => f,
            Err(FramingError::TooLarge) => {
                let msg = format!(
                    "request body is larger than the limit of {} bytes",
                    limits.max_body
                );
                return self.refuse(stream, 413, "resource_exhausted", &msg);
            }
            Err(FramingError::Invalid(msg)) => {
                return self.refuse(stream, 400, "invalid_argument", &msg);
            }
        };
        if framing != Framing::Empty
            && http::expects_continue(minor, &head.headers)
            && (&*stream)
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .is_err()
        {
            return Next::Close;
        }
        let body_deadline = Instant::now() + limits.read_timeout;
        let body = match framing {
            Framing::Empty => Ok(Vec::new()),
            Framing::Length(n) => self.read_body(stream, n, body_deadline),
            Framing::Chunked => self.read_chunked(stream, body_deadline),
        };
        let body = match body {
            Ok(b) => b,
            Err(BodyFail::Read(ReadFail::Timeout)) => {
                return self.timed_out(stream, "request body");
            }
            Err(BodyFail::Read(_)) => return Next::Close,
            Err(BodyFail::TooLarge) => {
                let msg = format!(
                    "request body is larger than the limit of {} bytes",
                    limits.max_body
                );
                return self.refuse(stream, 413, "resource_exhausted", &msg);
            }
            Err(BodyFail::TrailersTooLarge) => {
                let msg = format!(
                    "chunked body trailers are larger than the limit of {} bytes",
                    limits.max_header
                );
                return self.refuse(stream, 431, "resource_exhausted", &msg);
            }
            Err(BodyFail::Invalid(msg)) => {
                return self.refuse(stream, 400, "invalid_argument", &msg);
            }
        };

        let (path, query) = http::split_target(&head.target);
        let is_head = head.method == "HEAD";
        let req = Request {
            method: head.method,
            path,
            query,
            headers: head.headers,
            body,
            peer: conn.peer,
        };
        let (method, path) = (
            req.method.clone(),
            self.handler.log_path(&req.path).into_owned(),
        );
        let handler = &self.handler;
        let resp = match catch_unwind(AssertUnwindSafe(|| handler.handle(req))) {
            Ok(resp) => resp,
            Err(payload) => {
                error!(
                    "request handler panicked on {method} {path}: {}; answered 500",
                    panic_text(&*payload)
                );
                Response::error(500, "internal", "internal error")
            }
        };
        debug!("{} {method} {path} -> {}", conn.peer, resp.status);

        let close = !keep_alive
            || self.shared.is_shutting_down()
            || resp.headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close")
            });
        if matches!(resp.body, Body::OwnThread(_))
            && !is_head
            && !http::status_has_no_body(resp.status)
        {
            return Next::Detach(Detached { resp, minor, close });
        }
        let sent = write_response(stream, resp, minor, is_head, close);
        match sent {
            Ok(true) if !close => Next::KeepAlive,
            Ok(_) => {
                close_gently(stream);
                Next::Close
            }
            Err(_) => Next::Close,
        }
    }

    fn read_body(
        &mut self,
        stream: &TcpStream,
        len: usize,
        deadline: Instant,
    ) -> Result<Vec<u8>, BodyFail> {
        // `len` is at most max_body: checked before anything is allocated.
        let mut body = vec![0u8; len];
        let have = self.buffered().len().min(len);
        body[..have].copy_from_slice(&self.buf[self.start..self.start + have]);
        self.start += have;
        let mut filled = have;
        while filled < len {
            filled += read_before(stream, &mut body[filled..], deadline)?;
        }
        Ok(body)
    }

    fn read_chunked(&mut self, stream: &TcpStream, deadline: Instant) -> Result<Vec<u8>, BodyFail> {
        let limits = &self.shared.limits;
        let mut decoder = ChunkedDecoder::new(limits.max_body, limits.max_header);
        let mut body = Vec::new();
        loop {
            let used = decoder
                .decode(&self.buf[self.start..self.end], &mut body)
                .map_err(|e| match e {
                    ChunkError::TooLarge => BodyFail::TooLarge,
                    ChunkError::TrailersTooLarge => BodyFail::TrailersTooLarge,
                    ChunkError::Invalid(what) => {
                        BodyFail::Invalid(format!("invalid chunked body: {what}"))
                    }
                })?;
            self.start += used;
            if decoder.is_done() {
                return Ok(body);
            }
            if self.end - self.start >= self.buf.len() {
                return Err(BodyFail::Invalid(format!(
                    "invalid chunked body: a chunk size line is longer than {} bytes",
                    self.buf.len()
                )));
            }
            self.fill(stream, deadline)?;
        }
    }

    /// Answers an error that ends the connection (413, 431, 400), then reads and
    /// discards a bounded amount of whatever the client is still sending, so that it
    /// sees the answer instead of a reset, and closes.
    fn refuse(&mut self, stream: &TcpStream, status: u16, code: &str, message: &str) -> Next {
        let _ = write_response(
            stream,
            Response::error(status, code, message),
            1,
            false,
            true,
        );
        let _ = stream.shutdown(Shutdown::Write);
        let deadline = Instant::now() + LINGER_TIME.min(self.shared.limits.read_timeout);
        let mut discarded = 0;
        while discarded < LINGER_BYTES {
            match read_before(stream, &mut self.buf, deadline) {
                Ok(n) => discarded += n,
                Err(_) => break,
            }
        }
        self.start = 0;
        self.end = 0;
        Next::Close
    }

    /// A request started arriving but did not finish in time: try a 408, then close.
    fn timed_out(&mut self, stream: &TcpStream, what: &str) -> Next {
        let t = self.shared.limits.read_timeout;
        let msg = format!("the {what} did not arrive within {} s", t.as_secs_f64());
        let _ = write_response(
            stream,
            Response::error(408, "deadline_exceeded", &msg),
            1,
            false,
            true,
        );
        Next::Close
    }
}

/// One read into `buf`, waiting until `deadline` at most. Returns at least one byte.
fn read_before(stream: &TcpStream, buf: &mut [u8], deadline: Instant) -> Result<usize, ReadFail> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadFail::Timeout);
        }
        if stream.set_read_timeout(Some(left)).is_err() {
            return Err(ReadFail::Io);
        }
        match (&*stream).read(buf) {
            Ok(0) => return Err(ReadFail::Eof),
            Ok(n) => return Ok(n),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return Err(ReadFail::Io),
        }
    }
}

/// Ends our side of the connection and drops what the client already sent, so that
/// closing does not turn into a reset that could destroy the response in flight.
fn close_gently(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    if stream.set_nonblocking(true).is_ok() {
        let mut scratch = [0u8; 1024];
        for _ in 0..64 {
            match (&*stream).read(&mut scratch) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }
}

/// Writes a response. Ok(true): complete, the connection can carry another request;
/// Ok(false): the body ended with the connection (HTTP/1.0 stream) or a stream failed.
fn write_response(
    stream: &TcpStream,
    resp: Response,
    minor: u8,
    is_head: bool,
    close: bool,
) -> io::Result<bool> {
    let Response {
        status,
        headers,
        body,
    } = resp;
    let no_body = http::status_has_no_body(status);
    let mut w = stream;
    match body {
        Body::Bytes(bytes) => {
            let framing = if no_body {
                ResponseFraming::None
            } else {
                ResponseFraming::Length(bytes.len())
            };
            let mut out = http::response_head(status, &headers, framing, close, minor);
            let send_body = !is_head && !no_body;
            if send_body && bytes.len() <= COALESCE_BODY {
                out.extend_from_slice(&bytes);
                w.write_all(&out)?;
            } else {
                w.write_all(&out)?;
                if send_body {
                    w.write_all(&bytes)?;
                }
            }
            Ok(true)
        }
        Body::Stream(_) | Body::OwnThread(_) if no_body || is_head => {
            let framing = if no_body {
                ResponseFraming::None
            } else {
                ResponseFraming::Chunked
            };
            w.write_all(&http::response_head(
                status, &headers, framing, close, minor,
            ))?;
            Ok(true)
        }
        Body::Stream(produce) | Body::OwnThread(produce) => {
            // HTTP/1.0 has no chunked coding: the body ends when the connection does.
            let chunked = minor >= 1;
            let framing = if chunked {
                ResponseFraming::Chunked
            } else {
                ResponseFraming::UntilClose
            };
            let close = close || !chunked;
            w.write_all(&http::response_head(
                status, &headers, framing, close, minor,
            ))?;
            let mut sink = ChunkSink {
                stream,
                chunked,
                failed: false,
            };
            match catch_unwind(AssertUnwindSafe(|| produce(&mut sink))) {
                Ok(Ok(())) if !sink.failed => {
                    if chunked {
                        w.write_all(http::LAST_CHUNK)?;
                    }
                    Ok(chunked)
                }
                Ok(Ok(())) => Ok(false),
                Ok(Err(e)) => {
                    debug!("response stream ended early: {e}");
                    Ok(false)
                }
                Err(payload) => {
                    error!(
                        "response stream panicked after its head was sent: {}; connection closed",
                        panic_text(&*payload)
                    );
                    Ok(false)
                }
            }
        }
    }
}

struct ChunkSink<'a> {
    stream: &'a TcpStream,
    chunked: bool,
    failed: bool,
}

impl ChunkWriter for ChunkSink<'_> {
    fn write_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::new(
                ErrorKind::BrokenPipe,
                "the client is gone (an earlier chunk could not be sent)",
            ));
        }
        if data.is_empty() {
            return Ok(());
        }
        let mut w = self.stream;
        let result = if self.chunked {
            w.write_all(&http::encode_chunk(data))
        } else {
            w.write_all(data)
        };
        if result.is_err() {
            self.failed = true;
        }
        result
    }
}

fn panic_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}
