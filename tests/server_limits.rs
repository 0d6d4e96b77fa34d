//! The connection layer against hostile and ordinary clients, over real TCP with raw
//! bytes: size limits, timeouts, bounded threads, keep-alive, chunked coding, streams,
//! handler panics and shutdown. Tests run one at a time (thread and memory counts are
//! per process).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use footrest::api::server::{
    Body, ChunkWriter, Handler, Limits, Request, Response, Server, ShutdownHandle,
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The test handler: a few paths with known behaviour.
struct TestHandler {
    /// Where `/forever` reports how its stream ended.
    stream_end: Mutex<Option<Sender<std::io::Result<()>>>>,
}

impl Handler for TestHandler {
    fn handle(&self, req: Request) -> Response {
        match req.path.as_str() {
            "/hello" => Response::json(200, br#"{"ok":true}"#.to_vec()),
            "/echo" => {
                let test_header = req.header("x-TEST").unwrap_or("").to_string();
                Response::json(200, req.body)
                    .with_header("X-Query", &req.query)
                    .with_header("X-Test-Header", &test_header)
            }
            "/slow" => {
                thread::sleep(Duration::from_millis(20));
                Response::json(200, b"{}".to_vec())
            }
            "/sleep" => {
                thread::sleep(Duration::from_millis(300));
                Response::json(200, b"{}".to_vec())
            }
            "/panic" => panic!("test handler panics on purpose"),
            "/stream" => Response {
                status: 200,
                headers: vec![("Content-Type".into(), "application/connect+json".into())],
                body: Body::Stream(Box::new(|w: &mut dyn ChunkWriter| {
                    for i in 0..3 {
                        w.write_chunk(format!("chunk-{i}").as_bytes())?;
                    }
                    w.write_chunk(&[b'z'; 300])?;
                    w.write_chunk(b"")
                })),
            },
            "/forever" => {
                let report = self.stream_end.lock().unwrap().take();
                Response {
                    status: 200,
                    headers: vec![],
                    body: Body::Stream(Box::new(move |w: &mut dyn ChunkWriter| {
                        let result: std::io::Result<()> = (|| loop {
                            w.write_chunk(b"tick\n")?;
                            thread::sleep(Duration::from_millis(5));
                        })();
                        if let Some(tx) = report {
                            let _ = tx.send(match &result {
                                Ok(()) => Ok(()),
                                Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
                            });
                        }
                        result
                    })),
                }
            }
            _ => Response::error(404, "not_found", "no such path"),
        }
    }
}

struct TestServer {
    addr: SocketAddr,
    handle: ShutdownHandle,
    done: Receiver<()>,
    handler: Arc<TestHandler>,
}

impl TestServer {
    fn start(limits: Limits) -> TestServer {
        let server = Server::bind("127.0.0.1:0", limits).unwrap();
        let addr = server.local_addr();
        let handle = server.shutdown_handle();
        let handler = Arc::new(TestHandler {
            stream_end: Mutex::new(None),
        });
        let h: Arc<dyn Handler> = handler.clone();
        let (tx, done) = mpsc::channel();
        thread::spawn(move || {
            server.run(h, Duration::from_secs(5));
            let _ = tx.send(());
        });
        TestServer {
            addr,
            handle,
            done,
            handler,
        }
    }

    fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Shuts down and returns how long `run` took to return.
    fn stop(&self) -> Duration {
        let t = Instant::now();
        self.handle.shutdown();
        self.done
            .recv_timeout(Duration::from_secs(10))
            .expect("Server::run did not return after shutdown");
        t.elapsed()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        let _ = self.done.recv_timeout(Duration::from_secs(10));
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.json()["code"], code, "{self:?}");
    }
}

/// A raw HTTP/1.1 client that keeps unread bytes between responses (for pipelining).
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads more bytes; false at EOF or reset.
    fn more(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.more(), "connection ended early");
        }
        self.buf.drain(..n).collect()
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.take(i + 2);
                return String::from_utf8(line[..i].to_vec()).unwrap();
            }
            assert!(self.more(), "connection ended inside a line");
        }
    }

    fn try_head(&mut self) -> Option<(u16, Vec<(String, String)>)> {
        loop {
            let mut fields = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut fields);
            if let httparse::Status::Complete(n) = resp.parse(&self.buf).unwrap() {
                let status = resp.code.unwrap();
                let headers = resp
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                self.buf.drain(..n);
                return Some((status, headers));
            }
            if !self.more() {
                return None;
            }
        }
    }

    /// Reads one whole response (Content-Length, chunked, or until close).
    fn try_response(&mut self) -> Option<Resp> {
        let (status, headers) = self.try_head()?;
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        if resp.header("transfer-encoding") == Some("chunked") {
            loop {
                let size = usize::from_str_radix(&self.line(), 16).unwrap();
                let data = self.take(size);
                assert_eq!(self.take(2), b"\r\n");
                if size == 0 {
                    break;
                }
                resp.body.extend_from_slice(&data);
            }
        } else if let Some(len) = resp.header("content-length") {
            let len = len.parse().unwrap();
            resp.body = self.take(len);
        } else {
            while self.more() {}
            resp.body = std::mem::take(&mut self.buf);
        }
        Some(resp)
    }

    fn response(&mut self) -> Resp {
        self.try_response().expect("no response")
    }

    fn request(&mut self, raw: &str) -> Resp {
        self.send(raw.as_bytes());
        self.response()
    }

    /// True when the server closed the connection and nothing more came.
    fn closed(&mut self) -> bool {
        !self.more() && self.buf.is_empty()
    }
}

const HELLO: &str = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn vm_rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn short_timeouts() -> Limits {
    Limits {
        read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        ..Limits::default()
    }
}

#[test]
fn huge_content_length_gets_413_at_once_and_costs_nothing() {
    let _s = serial();
    let srv = TestServer::start(Limits::default());
    let t = Instant::now();
    let mut c = srv.connect();
    let resp =
        c.request("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000000\r\n\r\nabc");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "413 took {:?}",
        t.elapsed()
    );
    resp.assert_error(413, "resource_exhausted");
    assert_eq!(
        resp.json()["message"],
        "request body is larger than the limit of 1048576 bytes"
    );
    assert_eq!(resp.header("connection"), Some("close"));
    drop(c);

    // With Expect: 100-continue the answer is the 413, never a 100 Continue.
    let mut c = srv.connect();
    let resp = c.request(
        "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 100000000000\r\n\r\n",
    );
    resp.assert_error(413, "resource_exhausted");
    assert!(c.closed());

    // An ordinary client that sends a 2 MiB body anyway still gets the answer.
    let mut c = srv.connect();
    let body = vec![b'x'; 2 << 20];
    c.send(
        format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let _ = c.stream.write_all(&body);
    c.response().assert_error(413, "resource_exhausted");

    assert_eq!(srv.connect().request(HELLO).status, 200);
}

#[test]
fn silent_clients_are_cut_off_while_others_are_served() {
    let _s = serial();
    let srv = TestServer::start(short_timeouts());
    let t = Instant::now();
    let mut half_head = srv.connect();
    half_head.send(b"GET /hello HTTP/1.1\r\nHo");
    let mut half_body = srv.connect();
    half_body.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    let mut idle = srv.connect();

    // Others are served meanwhile, on fresh and kept-alive connections.
    let mut other = srv.connect();
    for _ in 0..5 {
        assert_eq!(other.request(HELLO).status, 200);
        assert_eq!(srv.connect().request(HELLO).status, 200);
    }
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "others waited {:?}",
        t.elapsed()
    );

    for (name, c) in [("half head", &mut half_head), ("half body", &mut half_body)] {
        // At most a 408, then the end of the connection.
        if let Some(resp) = c.try_response() {
            resp.assert_error(408, "deadline_exceeded");
        }
        assert!(c.closed(), "{name}: connection still open");
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
            "{name}: cut off after {waited:?}"
        );
    }
    // A connection that never sends anything is closed by the idle timeout.
    assert!(idle.closed());
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "idle closed after {:?}",
        t.elapsed()
    );
    assert_eq!(srv.connect().request(HELLO).status, 200);
}

#[test]
fn five_hundred_connections_keep_threads_bounded() {
    let _s = serial();
    let limits = Limits {
        threads: 4,
        queue: 8,
        max_connections: 300,
        ..Limits::default()
    };
    let baseline = thread_count();
    let srv = TestServer::start(limits);
    // The server's run thread (the poller) and its 4 request threads.
    let bound = baseline + 1 + 4 + 2;
    let mut conns: Vec<Client> = (0..500).map(|_| srv.connect()).collect();
    for c in conns.iter_mut().step_by(2) {
        c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    assert!(
        thread_count() <= bound,
        "{} threads, bound {bound}",
        thread_count()
    );
    let (mut ok, mut busy) = (0, 0);
    let mut reasons = std::collections::BTreeSet::new();
    for (i, c) in conns.iter_mut().enumerate().step_by(2) {
        let resp = c
            .try_response()
            .unwrap_or_else(|| panic!("request {i} got no answer"));
        match resp.status {
            200 => ok += 1,
            503 => {
                resp.assert_error(503, "unavailable");
                reasons.insert(resp.json()["message"].as_str().unwrap().to_string());
                busy += 1;
            }
            other => panic!("request {i} got {other}"),
        }
        assert!(
            thread_count() <= bound,
            "{} threads, bound {bound}",
            thread_count()
        );
    }
    assert_eq!(ok + busy, 250);
    assert!(ok > 0 && busy > 0, "{ok} answered, {busy} refused");
    // Both refusals happened: queue full, and past max_connections.
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    drop(conns);

    // Once the crowd is gone, a fresh request is served (the server may take a moment
    // to notice 500 closed connections).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let resp = srv.connect().request(HELLO);
        if resp.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {resp:?}");
    }
}

#[test]
fn huge_headers_get_431_without_growing_memory() {
    let _s = serial();
    let srv = TestServer::start(Limits::default());
    let mut big = b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: ".to_vec();
    big.resize(big.len() + (1 << 20), b'a');
    big.extend_from_slice(b"\r\n\r\n");
    let one = |big: &[u8]| {
        let mut c = srv.connect();
        let _ = c.stream.write_all(big); // the server may stop reading: fine
        c.response().assert_error(431, "resource_exhausted");
        assert!(c.closed());
    };
    one(&big);
    let before = vm_rss_kib();
    for _ in 0..20 {
        one(&big);
    }
    let grown = vm_rss_kib().saturating_sub(before);
    assert!(grown < 2048, "resident memory grew by {grown} KiB");

    // Too many header fields is the same answer; a malformed head is a 400.
    let mut many = String::from("GET /hello HTTP/1.1\r\n");
    for i in 0..200 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    srv.connect()
        .request(&many)
        .assert_error(431, "resource_exhausted");
    let mut c = srv.connect();
    c.request("GET /hello HTTP/1.1\r\nBad Header\r\n\r\n")
        .assert_error(400, "invalid_argument");
    assert!(c.closed());
    assert_eq!(srv.connect().request(HELLO).status, 200);
}

#[test]
fn keep_alive_pipelining_and_connection_close() {
    let _s = serial();
    let srv = TestServer::start(Limits::default());
    let mut c = srv.connect();
    let r = c.request(
        "POST /echo?a=1 HTTP/1.1\r\nHost: t\r\nX-Test: v1\r\nContent-Length: 5\r\n\r\nfirst",
    );
    assert_eq!((r.status, r.body.as_slice()), (200, b"first".as_slice()));
    assert_eq!(r.header("x-query"), Some("a=1"));
    assert_eq!(r.header("x-test-header"), Some("v1"));
    assert_eq!(r.header("connection"), None);
    // The same connection, after the server parked it with the poller.
    let r = c.request("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nsecond");
    assert_eq!(r.body, b"second");

    // Three pipelined requests in one write: three answers in order.
    c.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nA\
          POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nB\
          GET /hello HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(c.response().body, b"A");
    assert_eq!(c.response().body, b"B");
    assert_eq!(c.response().body, br#"{"ok":true}"#);

    // Connection: close is honoured and announced.
    let r = c.request("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed());

    // HTTP/1.0: closes by default, stays open with Connection: keep-alive.
    let mut c = srv.connect();
    let r = c.request("GET /hello HTTP/1.0\r\n\r\n");
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert!(c.closed());
    let mut c = srv.connect();
    let r = c.request("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(r.header("connection"), Some("keep-alive"));
    assert_eq!(c.request("GET /hello HTTP/1.0\r\n\r\n").status, 200);

    // HEAD gets the length but no body; unknown paths are the handler's 404.
    let mut c = srv.connect();
    c.send(b"HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    let (status, headers) = c.try_head().unwrap();
    assert_eq!(status, 200);
    assert!(headers.contains(&("Content-Length".into(), "11".into())));
    c.request("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
        .assert_error(404, "not_found");
}

#[test]
fn expect_continue_and_chunked_request_bodies() {
    let _s = serial();
    let srv = TestServer::start(Limits {
        max_body: 1000,
        ..Limits::default()
    });
    let mut c = srv.connect();
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(c.take(25), b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"hello");
    assert_eq!(c.response().body, b"hello");

    let r = c.request(
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, b"hello world".as_slice())
    );
    // Still usable afterwards: the decoder stopped at the end of the body.
    assert_eq!(c.request(HELLO).status, 200);

    // Chunked with Expect, sent in pieces.
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(c.take(25), b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"3\r\nab");
    c.send(b"c\r\n0\r\n\r\n");
    assert_eq!(c.response().body, b"abc");

    // Over the limit while decoding: 413.
    let mut c = srv.connect();
    let mut raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        raw.extend_from_slice(b"190\r\n");
        raw.extend_from_slice(&[b'x'; 400]);
        raw.extend_from_slice(b"\r\n");
    }
    c.send(&raw);
    c.response().assert_error(413, "resource_exhausted");
    assert!(c.closed());

    // Framing the server cannot trust: 400.
    for bad in [
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: -3\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
    ] {
        let mut c = srv.connect();
        c.request(bad).assert_error(400, "invalid_argument");
        assert!(c.closed());
    }
}

#[test]
fn streams_are_chunked_and_end_when_the_client_leaves() {
    let _s = serial();
    // One request thread: if a stream lost it, nothing would be served afterwards.
    let srv = TestServer::start(Limits {
        threads: 1,
        ..Limits::default()
    });
    let mut c = srv.connect();
    c.send(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    let (status, headers) = c.try_head().unwrap();
    assert_eq!(status, 200);
    assert!(headers.contains(&("Transfer-Encoding".into(), "chunked".into())));
    assert!(
        !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    );
    // The exact bytes of the first chunks, then the end.
    assert_eq!(c.take(14), b"7\r\nchunk-0\r\n7\r");
    assert_eq!(c.take(22), b"\nchunk-1\r\n7\r\nchunk-2\r\n");
    assert_eq!(c.line(), "12C");
    assert_eq!(c.take(302), [&[b'z'; 300][..], b"\r\n"].concat());
    assert_eq!(c.take(5), b"0\r\n\r\n");
    // The connection stays usable after a complete stream.
    assert_eq!(c.request(HELLO).status, 200);

    // HTTP/1.0 gets the stream unframed, ended by closing.
    let mut c10 = srv.connect();
    let r = c10.request("GET /stream HTTP/1.0\r\n\r\n");
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.body.len(), 7 * 3 + 300);

    let (tx, ended) = mpsc::channel();
    *srv.handler.stream_end.lock().unwrap() = Some(tx);
    let mut c = srv.connect();
    c.send(b"GET /forever HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.try_head().unwrap().0, 200);
    assert_eq!(c.line(), "5");
    drop(c);
    let result = ended
        .recv_timeout(Duration::from_secs(5))
        .expect("the stream did not end after the client left");
    assert!(result.is_err());
    assert_eq!(srv.connect().request(HELLO).status, 200);
}

#[test]
fn handler_panic_is_500_and_the_thread_goes_on() {
    let _s = serial();
    let srv = TestServer::start(Limits {
        threads: 1,
        ..Limits::default()
    });
    let mut c = srv.connect();
    for _ in 0..3 {
        let r = c.request("GET /panic HTTP/1.1\r\nHost: t\r\n\r\n");
        r.assert_error(500, "internal");
        assert_eq!(r.json()["message"], "internal error");
    }
    assert_eq!(c.request(HELLO).status, 200);
    assert_eq!(srv.connect().request(HELLO).status, 200);
}

#[test]
fn shutdown_returns_promptly_with_idle_connections_open() {
    let _s = serial();
    let srv = TestServer::start(Limits::default());
    let mut used = srv.connect();
    assert_eq!(used.request(HELLO).status, 200);
    let mut idle: Vec<Client> = (0..5).map(|_| srv.connect()).collect();
    // Make sure the fresh connections were accepted before shutting down.
    assert_eq!(srv.connect().request(HELLO).status, 200);

    let took = srv.stop();
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
    assert!(used.closed());
    for c in &mut idle {
        assert!(c.closed());
    }
    match TcpStream::connect(srv.addr) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused),
        Ok(s) => panic!("still accepting after shutdown: {s:?}"),
    }
}

#[test]
fn shutdown_lets_an_in_flight_request_finish() {
    let _s = serial();
    let srv = TestServer::start(Limits::default());
    let mut c = srv.connect();
    c.send(b"GET /sleep HTTP/1.1\r\nHost: t\r\n\r\n");
    // Wait until the request is on a request thread: a second connection's answer
    // comes back after the first request was taken from the queue.
    assert_eq!(srv.connect().request(HELLO).status, 200);
    let took = srv.stop();
    let r = c.response();
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    assert!(c.closed());
}
