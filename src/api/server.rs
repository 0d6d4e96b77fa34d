//! The HTTP/1.1 connection layer: accepts TCP connections, reads requests within hard
//! limits, hands each complete [`Request`] to a [`Handler`] and writes its [`Response`].
//! It owns sockets, framing, timeouts and the request threads; it must not know about
//! Connect, authentication or any RPC (that is `api::connect`, `api::auth`, `api::rpc`),
//! and it must never let a client's input decide how much memory or how many threads
//! the process uses.
//!
//! It sits on `httparse` rather than a server crate: tiny_http 0.12 aborts the whole
//! process on `Content-Length: 100000000000` with a short body (its drain allocates the
//! declared remainder at once), sets no read timeouts, and spawns a thread per
//! connection without bound.
//!
//! # Thread model
//!
//! - **One poller thread** (the thread that calls [`Server::run`]) owns the listening
//!   socket and every idle connection, and waits on all of them with `poll(2)`. An idle
//!   keep-alive connection costs a file descriptor and a few bytes, never a thread.
//! - When an idle connection becomes readable, the poller moves it into a **bounded
//!   ready queue** (`Limits::queue`). A **fixed pool of request threads**
//!   (`Limits::threads`, named `footrest-http-N`, 512 KiB stacks) takes connections
//!   from the queue, reads one request, calls the handler and writes the response.
//! - A **long stream** (`Body::OwnThread`: GetLogs, GetOperationEvents) is written
//!   on a thread of its own, started for it and ended with it; the request thread goes
//!   back to the queue at once. How many streams may be open is the handler's limit
//!   (`api::rpc::streams`, `--max-streams`); shutdown waits for them within the grace.
//! - After a keep-alive response the request thread hands the connection back to the
//!   poller through a self-pipe wake-up (a `UnixStream` pair), unless bytes of a
//!   pipelined next request are already buffered; then it serves that one first.
//! - When the ready queue is full, or `Limits::max_connections` connections are already
//!   open, the poller answers `503` `{"code":"unavailable",...}` itself with a
//!   non-blocking write and closes: the thread count never grows with the clients.
//! - Shutdown ([`ShutdownHandle::shutdown`]): the poller stops accepting, closes idle
//!   connections, lets the request threads finish what they hold (answering with
//!   `Connection: close`) for at most the grace period, and [`Server::run`] returns.
//!
//! # Limits and timeouts
//!
//! | What | Field / constant | Default | When passed |
//! |---|---|---|---|
//! | request body | `Limits::max_body` | 1 MiB | `413 resource_exhausted` at once, from `Content-Length` or while decoding chunks; close |
//! | request line + headers | `Limits::max_header` | 16 KiB | `431 resource_exhausted`, close; read into a fixed buffer of this size |
//! | header fields | `http::MAX_HEADERS` | 100 | `431 resource_exhausted`, close |
//! | chunked trailers | `Limits::max_header` | 16 KiB | `431 resource_exhausted`, close |
//! | one read, and the whole head | `Limits::read_timeout` | 30 s | `408` attempted, close |
//! | the whole body (after the head) | `Limits::read_timeout` | 30 s | `408` attempted, close |
//! | one write (response, each stream chunk, `100 Continue`) | `Limits::write_timeout` | 30 s | close; a stream's `write_chunk` returns the error |
//! | idle keep-alive connection, or new connection that sends nothing | `Limits::idle_timeout` | 60 s | closed by the poller |
//! | request threads | `Limits::threads` | 16 | fixed pool, never grows |
//! | long streams, a thread each | the handler's (`api::rpc::streams`, `--max-streams`) | 64 | the handler ends the stream at once |
//! | ready connections waiting for a thread | `Limits::queue` | 64 | `503 unavailable`, close |
//! | open connections, idle included | `Limits::max_connections` | 1024 | `503 unavailable`, close (keep it below the fd limit) |
//! | excess read and discarded after 413/431/400 | `LINGER_BYTES` / `LINGER_TIME` | 4 MiB / 2 s | the connection is closed |
//! | handshakes waiting to be accepted | listen backlog | `max_connections`, 128..1024 | the kernel drops the SYN; the client retries |
//! | the poller's own `503` | one non-blocking write | - | whatever did not fit is dropped, the connection closed |
//! | in-flight requests at shutdown | `grace` argument of [`Server::run`] | caller's | `run` returns anyway |
//!
//! Error bodies are Connect errors, `{"code":"...","message":"..."}` with
//! `Content-Type: application/json`. A panic in [`Handler::handle`] is caught, logged and
//! answered `500 {"code":"internal","message":"internal error"}`; the thread goes on.

mod http;
mod worker;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// Stack size of a request thread. Pages are only committed when touched; this leaves
/// room for SQLite and serde_json under a handler while keeping address space small.
pub(crate) const REQUEST_THREAD_STACK: usize = 512 * 1024;
/// At most this much of a refused request's excess is read and discarded before closing.
pub(crate) const LINGER_BYTES: usize = 4 * 1024 * 1024;
/// ... and for at most this long (also capped by `read_timeout`).
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(2);
/// How long the poller stops accepting after the process ran out of file descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Upper bound of the listen backlog (pending handshakes not yet accepted).
const LISTEN_BACKLOG_MAX: usize = 1024;
/// How often shutdown looks whether the streams have ended.
const STREAM_END_POLL: Duration = Duration::from_millis(20);
/// New connections accepted per poll round, so returning connections are not starved.
const ACCEPT_BATCH: usize = 256;

/// Every bound the connection layer enforces. See the module docs for what happens
/// when each one is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body in bytes (default 1 MiB).
    pub max_body: usize,
    /// Largest request line plus headers in bytes (default 16 KiB).
    pub max_header: usize,
    /// Longest wait for one read, and for a whole head or body once it started (30 s).
    pub read_timeout: Duration,
    /// Longest wait for one write (30 s).
    pub write_timeout: Duration,
    /// How long an idle keep-alive connection is kept open (60 s).
    pub idle_timeout: Duration,
    /// Request threads (16).
    pub threads: usize,
    /// Ready connections waiting for a request thread (64).
    pub queue: usize,
    /// Open connections, idle ones included (1024).
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body: 1024 * 1024,
            max_header: 16 * 1024,
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            threads: 16,
            queue: 64,
            max_connections: 1024,
        }
    }
}

impl Limits {
    fn check(&self) -> io::Result<()> {
        let bad = |what: &str| Err(io::Error::new(ErrorKind::InvalidInput, what.to_string()));
        if self.threads == 0 {
            return bad("the HTTP server needs at least 1 request thread (Limits::threads is 0)");
        }
        if self.max_connections == 0 {
            return bad("Limits::max_connections is 0: the HTTP server could accept nothing");
        }
        if self.max_header < 256 {
            return bad(
                "Limits::max_header is below 256 bytes: not even a request line and Host fit",
            );
        }
        let timeouts = [
            ("read_timeout", self.read_timeout),
            ("write_timeout", self.write_timeout),
            ("idle_timeout", self.idle_timeout),
        ];
        for (name, t) in timeouts {
            if t.is_zero() {
                return Err(io::Error::new(
                    ErrorKind::InvalidInput,
                    format!("Limits::{name} is zero; give it a positive duration"),
                ));
            }
        }
        Ok(())
    }
}

/// One request, read in full (body included) before the handler sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path as sent (not percent-decoded), without the query.
    pub path: String,
    /// The query without the `?`; empty when there is none.
    pub query: String,
    /// Header fields in the order sent; names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
}

impl Request {
    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Writes one chunk of a streamed response body.
pub trait ChunkWriter {
    /// Sends `data` as one chunk and flushes it. An error means the client went away or
    /// stopped reading for `write_timeout`; the stream should end. Empty data is a no-op.
    fn write_chunk(&mut self, data: &[u8]) -> io::Result<()>;
}

/// A stream body: called once on the request thread with the connection's writer.
pub type StreamFn = Box<dyn FnOnce(&mut dyn ChunkWriter) -> io::Result<()> + Send>;

pub enum Body {
    Bytes(Vec<u8>),
    /// Sent with Transfer-Encoding: chunked; each write_chunk is flushed at once. The
    /// closure returns when the stream is done or the client went away (write error).
    /// Written on the request thread: for bodies that end by themselves (a download).
    Stream(StreamFn),
    /// A stream that stays open as long as the client wants (GetOperationEvents):
    /// written like `Stream`, but on a thread of its own, so it holds no request
    /// thread. The handler bounds how many it hands out.
    OwnThread(StreamFn),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Body::Stream(_) => f.write_str("Stream"),
            Body::OwnThread(_) => f.write_str("OwnThread"),
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Extra headers. `Content-Length`, `Transfer-Encoding` and `Connection` are set by
    /// the connection layer (a handler's copies are dropped; `Connection: close` from a
    /// handler still closes the connection after the response).
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    /// A response with `Content-Type: application/json` and the given bytes.
    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_string(), "application/json".to_string())],
            body: Body::Bytes(body),
        }
    }

    /// A Connect error: `{"code":..,"message":..}` as `application/json`.
    pub fn error(status: u16, code: &str, message: &str) -> Response {
        let body = serde_json::json!({ "code": code, "message": message }).to_string();
        Response::json(status, body.into_bytes())
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// Turns requests into responses. Called on a request thread; may block (a `Backup`
/// waits for its operation), which holds that thread. A `Body::OwnThread` it returns
/// is written on a thread of its own, so the handler must bound how many it hands out.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request) -> Response;

    /// The request path as the log shows it: a handler whose paths can carry a
    /// credential leaves it out here.
    fn log_path<'a>(&self, path: &'a str) -> std::borrow::Cow<'a, str> {
        path.into()
    }
}

/// An open connection. Its slot in the open-connection count is given back on drop.
pub(crate) struct Conn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    _slot: ConnSlot,
}

struct ConnSlot(Arc<Shared>);

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// State shared by the poller, the request threads and shutdown handles.
pub(crate) struct Shared {
    pub limits: Limits,
    shutting_down: AtomicBool,
    open: AtomicUsize,
    /// Connections handed back by request threads, waiting for the poller to take them.
    returned: Mutex<Vec<Conn>>,
    wake_tx: UnixStream,
    /// Streamed responses being written on their own threads.
    streaming: AtomicUsize,
}

/// One streamed response being written; shutdown waits until none is left.
pub(crate) struct StreamCount(Arc<Shared>);

impl StreamCount {
    pub(crate) fn enter(shared: &Arc<Shared>) -> StreamCount {
        shared.streaming.fetch_add(1, Ordering::AcqRel);
        StreamCount(Arc::clone(shared))
    }
}

impl Drop for StreamCount {
    fn drop(&mut self) {
        self.0.streaming.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shared {
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    fn wake(&self) {
        // Non-blocking: a full pipe already holds a wake-up. No SIGPIPE: once `run` has
        // returned the other end is closed and the error is simply ignored.
        // SAFETY: send(2) of one byte from a live buffer on a socket we own.
        let _ = unsafe {
            libc::send(
                self.wake_tx.as_raw_fd(),
                [1u8].as_ptr().cast(),
                1,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
    }

    /// A request thread gives an idle keep-alive connection back to the poller.
    pub(crate) fn hand_back(&self, conn: Conn) {
        if self.is_shutting_down() {
            return; // dropped: closed
        }
        self.returned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
        self.wake();
    }

    fn take_returned(&self) -> Vec<Conn> {
        std::mem::take(&mut *self.returned.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Stops a running [`Server`] from any thread.
#[derive(Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
}

impl ShutdownHandle {
    /// Asks the server to stop; [`Server::run`] returns once in-flight requests are done
    /// or its grace period is over. Calling it again does nothing more.
    pub fn shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::Release);
        self.shared.wake();
    }

    /// Whether shutdown was asked for: long streams should end when this turns true.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.is_shutting_down()
    }
}

/// A bound, not yet running, HTTP server.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    wake_rx: UnixStream,
}

impl Server {
    /// Binds `addr` ("127.0.0.1:9898", "[::]:0", ...) with the given limits.
    pub fn bind(addr: &str, limits: Limits) -> io::Result<Server> {
        limits.check()?;
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| annotate(e, format!("cannot resolve listen address {addr:?}")))?
            .collect();
        let listener = TcpListener::bind(&addrs[..])
            .map_err(|e| annotate(e, format!("cannot listen on {addr:?}")))?;
        // std listens with a backlog of 128; a burst of clients beyond that waits a
        // whole SYN retransmission (1 s and more). Listening again raises the backlog
        // (the kernel caps it at net.core.somaxconn); connections past
        // max_connections are answered 503 by the poller rather than left in the queue.
        let backlog = limits.max_connections.clamp(128, LISTEN_BACKLOG_MAX) as libc::c_int;
        // SAFETY: listen(2) on a socket we own; it only reads the integer arguments.
        if unsafe { libc::listen(listener.as_raw_fd(), backlog) } != 0 {
            let e = io::Error::last_os_error();
            warn!("cannot raise the listen backlog on {addr:?} to {backlog}: {e}");
        }
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let (wake_tx, wake_rx) = UnixStream::pair()
            .map_err(|e| annotate(e, "cannot create the HTTP server's wake-up pipe".into()))?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            limits,
            shutting_down: AtomicBool::new(false),
            open: AtomicUsize::new(0),
            returned: Mutex::new(Vec::new()),
            wake_tx,
            streaming: AtomicUsize::new(0),
        });
        Ok(Server {
            listener,
            local_addr,
            shared,
            wake_rx,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Serves until shutdown: then stops accepting, closes idle connections, lets in-flight
    /// requests finish for at most `grace`, and returns.
    pub fn run(self, handler: Arc<dyn Handler>, grace: Duration) {
        let Server {
            listener,
            local_addr,
            shared,
            wake_rx,
        } = self;
        let limits = shared.limits;
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Conn>(limits.queue);
        let ready_rx = Arc::new(Mutex::new(ready_rx));
        let (exit_tx, exit_rx) = mpsc::channel::<()>();
        let mut started = 0;
        for i in 0..limits.threads {
            let mut w = worker::Worker::new(Arc::clone(&shared), Arc::clone(&handler));
            let rx = Arc::clone(&ready_rx);
            let exit = exit_tx.clone();
            let spawned = thread::Builder::new()
                .name(format!("footrest-http-{i}"))
                .stack_size(REQUEST_THREAD_STACK)
                .spawn(move || {
                    w.run(&rx);
                    let _ = exit.send(());
                });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => error!("cannot start HTTP request thread {i}: {e}"),
            }
        }
        drop(exit_tx);
        if started == 0 {
            error!("the HTTP server on {local_addr} has no request thread and stops");
            return;
        }
        info!("listening on http://{local_addr} ({started} request threads)");

        let mut poller = Poller {
            shared: &shared,
            listener: &listener,
            wake_rx: &wake_rx,
            ready: ready_tx,
            idle: Vec::new(),
            fds: Vec::new(),
            accept_paused_until: None,
            refused: Refusals::default(),
        };
        poller.run();
        let Poller { ready, idle, .. } = poller;

        // Stop accepting, close idle connections, and let the request threads run dry.
        drop(listener);
        drop(idle);
        drop(ready);
        drop(shared.take_returned());
        let deadline = Instant::now() + grace;
        let mut exited = 0;
        while exited < started {
            let left = deadline.saturating_duration_since(Instant::now());
            match exit_rx.recv_timeout(left) {
                Ok(()) => exited += 1,
                Err(_) => break,
            }
        }
        // Streams end within a probe of footrest stopping (`api::rpc::streams`).
        while shared.streaming.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            thread::sleep(STREAM_END_POLL);
        }
        drop(shared.take_returned());
        if exited < started {
            warn!(
                "HTTP server stopped with {} request(s) still running after the {:?} grace period",
                started - exited,
                grace
            );
        } else {
            info!("HTTP server on {local_addr} stopped");
        }
    }
}

fn annotate(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// Counts 503 refusals so a flood is logged once a second, not once per connection.
#[derive(Default)]
struct Refusals {
    count: u64,
    last_log: Option<Instant>,
}

impl Refusals {
    fn note(&mut self, why: &str) {
        self.count += 1;
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            warn!(
                "HTTP server busy: answered 503 to {} connection(s) since the last report \
                 (latest: {why}); consider raising the request threads or the queue",
                self.count
            );
            self.count = 0;
            self.last_log = Some(now);
        }
    }
}

struct Poller<'a> {
    shared: &'a Arc<Shared>,
    listener: &'a TcpListener,
    wake_rx: &'a UnixStream,
    ready: SyncSender<Conn>,
    idle: Vec<Idle>,
    fds: Vec<libc::pollfd>,
    accept_paused_until: Option<Instant>,
    refused: Refusals,
}

impl Poller<'_> {
    fn run(&mut self) {
        let idle_timeout = self.shared.limits.idle_timeout;
        while !self.shared.is_shutting_down() {
            let now = Instant::now();
            // Close connections idle for too long.
            self.idle
                .retain(|c| now.duration_since(c.since) < idle_timeout);

            let mut wait = self
                .idle
                .iter()
                .map(|c| (c.since + idle_timeout).saturating_duration_since(now))
                .min()
                .unwrap_or(idle_timeout);
            let accepting = match self.accept_paused_until {
                Some(t) if now < t => {
                    wait = wait.min(t - now);
                    false
                }
                _ => {
                    self.accept_paused_until = None;
                    true
                }
            };

            self.fds.clear();
            self.fds.push(pollfd(self.wake_rx.as_raw_fd()));
            if accepting {
                self.fds.push(pollfd(self.listener.as_raw_fd()));
            }
            let first_idle = self.fds.len();
            for c in &self.idle {
                self.fds.push(pollfd(c.conn.stream.as_raw_fd()));
            }
            // Round up so a deadline is not missed by a fraction of a millisecond.
            let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
            // SAFETY: `fds` is a live, initialised slice of pollfd for the whole call.
            let r =
                unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != ErrorKind::Interrupted {
                    error!("poll on HTTP connections failed: {e}; retrying");
                    thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
            if self.fds[0].revents != 0 {
                let mut sink = [0u8; 64];
                while matches!(self.wake_rx.read(&mut sink), Ok(n) if n > 0) {}
            }
            if self.shared.is_shutting_down() {
                break;
            }

            // Readable idle connections go to the request threads. Walk backwards so
            // swap_remove only moves an element that was already visited.
            for i in (0..self.idle.len()).rev() {
                let revents = self.fds[first_idle + i].revents;
                if revents == 0 {
                    continue;
                }
                let Idle { conn, .. } = self.idle.swap_remove(i);
                // A client that closed its end is readable too (end of file): close it
                // here instead of spending a place in the ready queue on it. The peek
                // cannot block: poll said there is data or an end of file.
                let has_data = revents & libc::POLLIN != 0
                    && matches!(conn.stream.peek(&mut [0u8; 1]), Ok(n) if n > 0);
                if has_data {
                    self.dispatch(conn);
                } // else: closed, hung up or in error; dropping closes it
            }

            if accepting && self.fds[1].revents != 0 {
                self.accept_batch();
            }

            let now = Instant::now();
            for conn in self.shared.take_returned() {
                self.idle.push(Idle { conn, since: now });
            }
        }
    }

    fn dispatch(&mut self, conn: Conn) {
        match self.ready.try_send(conn) {
            Ok(()) => {}
            Err(TrySendError::Full(conn)) => {
                self.refused
                    .note("all request threads busy and the ready queue full");
                refuse(conn.stream, "the server is busy; retry in a moment");
            }
            Err(TrySendError::Disconnected(_)) => {
                error!("no HTTP request thread is left to serve a connection");
            }
        }
    }

    fn accept_batch(&mut self) {
        let now = Instant::now();
        for _ in 0..ACCEPT_BATCH {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if self.shared.open.load(Ordering::Acquire)
                        >= self.shared.limits.max_connections
                    {
                        self.refused.note("too many open connections");
                        refuse(
                            stream,
                            "the server has too many open connections; retry in a moment",
                        );
                        continue;
                    }
                    // Accepted sockets do not inherit the listener's O_NONBLOCK on Linux;
                    // make sure anyway, request threads rely on blocking reads with timeouts.
                    if stream.set_nonblocking(false).is_err() {
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    self.shared.open.fetch_add(1, Ordering::AcqRel);
                    let slot = ConnSlot(Arc::clone(self.shared));
                    self.idle.push(Idle {
                        conn: Conn {
                            stream,
                            peer,
                            _slot: slot,
                        },
                        since: now,
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue;
                }
                Err(e) => {
                    // EMFILE/ENFILE/ENOBUFS: the listener stays readable, so pause accepting
                    // instead of spinning; the kernel backlog holds new clients meanwhile.
                    warn!(
                        "cannot accept HTTP connections: {e}; pausing accepts for {ACCEPT_PAUSE:?}"
                    );
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                    return;
                }
            }
        }
    }
}

fn pollfd(fd: std::os::fd::RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Answers `503 unavailable` from the poller without ever blocking it: reads what the
/// client already sent (so closing does not reset the connection under the answer),
/// writes the answer once non-blocking, and closes.
fn refuse(mut stream: TcpStream, message: &str) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut scratch = [0u8; 4096];
    for _ in 0..16 {
        match stream.read(&mut scratch) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let resp = Response::error(503, "unavailable", message);
    let mut bytes = http::response_head(
        503,
        &resp.headers,
        http::ResponseFraming::Length(body_len(&resp.body)),
        true,
        1,
    );
    if let Body::Bytes(b) = &resp.body {
        bytes.extend_from_slice(b);
    }
    let _ = stream.write(&bytes);
    let _ = stream.shutdown(Shutdown::Write);
}

fn body_len(body: &Body) -> usize {
    match body {
        Body::Bytes(b) => b.len(),
        Body::Stream(_) | Body::OwnThread(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_table() {
        let l = Limits::default();
        assert_eq!(l.max_body, 1 << 20);
        assert_eq!(l.max_header, 16 << 10);
        assert_eq!(l.read_timeout, Duration::from_secs(30));
        assert_eq!(l.write_timeout, Duration::from_secs(30));
        assert_eq!(l.idle_timeout, Duration::from_secs(60));
        assert_eq!((l.threads, l.queue, l.max_connections), (16, 64, 1024));
        assert!(l.check().is_ok());
    }

    #[test]
    fn unusable_limits_are_refused_with_the_field_named() {
        let zero_threads = Limits {
            threads: 0,
            ..Limits::default()
        };
        let e = zero_threads.check().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("Limits::threads"), "{e}");
        let no_timeout = Limits {
            read_timeout: Duration::ZERO,
            ..Limits::default()
        };
        assert!(
            no_timeout
                .check()
                .unwrap_err()
                .to_string()
                .contains("read_timeout")
        );
        let tiny_header = Limits {
            max_header: 10,
            ..Limits::default()
        };
        assert!(tiny_header.check().is_err());
    }

    #[test]
    fn error_responses_are_connect_json() {
        let r = Response::error(413, "resource_exhausted", "too \"big\"");
        assert_eq!(r.status, 413);
        assert_eq!(
            r.headers,
            vec![("Content-Type".to_string(), "application/json".to_string())]
        );
        let Body::Bytes(b) = r.body else {
            panic!("error bodies are bytes")
        };
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"{"code":"resource_exhausted","message":"too \"big\""}"#
        );
    }

    #[test]
    fn request_headers_are_found_case_insensitively() {
        let req = Request {
            method: "GET".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![
                ("Content-Type".into(), "a".into()),
                ("content-type".into(), "b".into()),
            ],
            body: Vec::new(),
            peer: "127.0.0.1:1".parse().unwrap(),
        };
        assert_eq!(req.header("CONTENT-TYPE"), Some("a"));
        assert_eq!(req.header("accept"), None);
    }
}
