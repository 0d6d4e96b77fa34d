//! The server-streaming RPCs end to end: GetLogs (framing, live follow, unknown refs)
//! and GetOperationEvents (created, updated and deleted operations, the cap on open
//! streams, slow and vanished clients, shutdown), over real HTTP against the real binary.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use serde_json::{Value, json};

const STREAM_TYPE: &str = "application/connect+json";

/// One Connect envelope.
fn envelope(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn stream_headers(credentials: Option<(&str, &str)>) -> Vec<(String, String)> {
    let mut h = vec![("Content-Type".to_string(), STREAM_TYPE.to_string())];
    if let Some((u, p)) = credentials {
        h.push(("Authorization".into(), basic(u, p)));
    }
    h
}

/// Splits a whole (de-chunked) stream body into envelopes, checking each one's framing.
fn envelopes(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !body.is_empty() {
        assert!(body.len() >= 5, "a partial envelope head: {body:?}");
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        assert!(body.len() >= 5 + len, "a partial envelope");
        out.push((body[0], body[5..5 + len].to_vec()));
        body = &body[5 + len..];
    }
    out
}

fn decode_chunk(payload: &[u8]) -> Vec<u8> {
    let v: Value = serde_json::from_slice(payload).expect("a data message is JSON");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["value"], "{v}");
    base64::engine::general_purpose::STANDARD
        .decode(v["value"].as_str().unwrap())
        .unwrap()
}

/// A streaming call read as it arrives: HTTP chunks decoded on demand.
struct StreamClient {
    r: BufReader<TcpStream>,
    /// Bytes left in the current HTTP chunk.
    left: usize,
    ended: bool,
}

impl StreamClient {
    fn open(addr: SocketAddr, method: &str, request: &Value) -> StreamClient {
        StreamClient::open_on(TcpStream::connect(addr).unwrap(), addr, method, request)
    }

    /// Sends the call on `s` and reads the response head (200, connect+json, chunked).
    fn open_on(mut s: TcpStream, addr: SocketAddr, method: &str, request: &Value) -> StreamClient {
        s.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
        let body = envelope(0, &serde_json::to_vec(request).unwrap());
        let head = format!(
            "POST /v1.Backrest/{method} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: {STREAM_TYPE}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&body).unwrap();
        let mut r = BufReader::new(s);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            assert!(
                r.read_line(&mut line).unwrap() > 0,
                "head cut short: {head}"
            );
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        let lower = head.to_ascii_lowercase();
        assert!(
            lower.contains(&format!("content-type: {STREAM_TYPE}")),
            "{head}"
        );
        assert!(lower.contains("transfer-encoding: chunked"), "{head}");
        StreamClient {
            r,
            left: 0,
            ended: false,
        }
    }

    /// The next body byte; `None` at the end of the body (or when the server closed).
    fn byte(&mut self) -> Option<u8> {
        if self.ended {
            return None;
        }
        if self.left == 0 {
            let mut line = String::new();
            if self.r.read_line(&mut line).ok()? == 0 {
                self.ended = true;
                return None;
            }
            if line == "\r\n" {
                // The end of the previous chunk.
                line.clear();
                if self.r.read_line(&mut line).ok()? == 0 {
                    self.ended = true;
                    return None;
                }
            }
            self.left = usize::from_str_radix(line.trim(), 16).expect("chunk size");
            if self.left == 0 {
                self.ended = true;
                return None;
            }
        }
        let mut b = [0u8; 1];
        self.r.read_exact(&mut b).ok()?;
        self.left -= 1;
        Some(b[0])
    }

    fn bytes(&mut self, n: usize) -> Option<Vec<u8>> {
        (0..n).map(|_| self.byte()).collect()
    }

    /// The next envelope: (flags, payload).
    fn next(&mut self) -> Option<(u8, Vec<u8>)> {
        let head = self.bytes(5)?;
        let len = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
        Some((head[0], self.bytes(len)?))
    }

    /// The next message that is not a keep-alive, as JSON.
    fn next_event(&mut self) -> Option<(u8, Value)> {
        loop {
            let (flags, payload) = self.next()?;
            let v: Value = serde_json::from_slice(&payload).unwrap();
            if v != json!({"keepAlive": {}}) {
                return Some((flags, v));
            }
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn log_file(sandbox: &Sandbox, logref: &str) -> Vec<u8> {
    std::fs::read(
        sandbox
            .data_dir()
            .join("logs")
            .join(format!("{logref}.log")),
    )
    .unwrap()
}

#[test]
fn get_logs_framing_byte_by_byte() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 3);
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src]}]),
        auth_users(&[("admin", CHANGEME_HASH)]),
    ));
    let fr = Footrest::start(&sandbox).with_credentials("admin", "changeme");
    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let op = fr.operations(json!({"planId": "docs"}))[0].clone();
    let logref = op["logref"].as_str().unwrap().to_string();
    let expected = log_file(&sandbox, &logref);
    assert!(expected.windows(7).any(|w| w == b"summary"));

    let request = format!(r#"{{"ref":"{logref}"}}"#);
    let body = envelope(0, request.as_bytes());
    // The request envelope, byte by byte, as CONTRACT §5's curl example sends it.
    assert_eq!(body[..5], [0, 0, 0, 0, request.len() as u8]);
    let r = fr.request(
        "POST",
        "/v1.Backrest/GetLogs",
        &stream_headers(Some(("admin", "changeme"))),
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some(STREAM_TYPE));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    // Data envelopes: flag 0, a 4-byte big-endian length, then {"value": base64}.
    let b = &r.body;
    assert_eq!(b[0], 0x00);
    let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
    let first: Value = serde_json::from_slice(&b[5..5 + len]).unwrap();
    assert!(first["value"].is_string(), "{first}");
    // The last envelope ends the body: flag 2, length 2, `{}`.
    assert!(b.ends_with(b"\x02\x00\x00\x00\x02{}"), "{:?}", r.text());
    let all = envelopes(b);
    let (last, data) = all.split_last().unwrap();
    assert_eq!(*last, (2, b"{}".to_vec()));
    assert!(data.iter().all(|(flags, _)| *flags == 0));
    let text: Vec<u8> = data.iter().flat_map(|(_, p)| decode_chunk(p)).collect();
    assert_eq!(text, expected);

    // Credentials are checked as for unary calls.
    let r = fr.request(
        "POST",
        "/v1.Backrest/GetLogs",
        &stream_headers(Some(("admin", "wrong"))),
        &body,
    );
    r.assert_error(401, "unauthenticated");
    let r = fr.request("POST", "/v1.Backrest/GetLogs", &stream_headers(None), &body);
    r.assert_error(401, "unauthenticated");
    // A unary content type on a streaming method names the right one.
    let r = fr.rpc("GetLogs", &json!({"ref": logref}));
    let message = r.assert_error(400, "invalid_argument");
    assert!(message.contains("application/connect+json"), "{message}");
    // And the other way round.
    let r = fr.request(
        "POST",
        "/v1.Backrest/GetOperations",
        &stream_headers(Some(("admin", "changeme"))),
        &envelope(0, b"{}"),
    );
    let message = r.assert_error(400, "invalid_argument");
    assert!(message.contains("application/json"), "{message}");
    // A body that is not an envelope: still 200, the error in the end envelope.
    let r = fr.request(
        "POST",
        "/v1.Backrest/GetLogs",
        &stream_headers(Some(("admin", "changeme"))),
        request.as_bytes(),
    );
    assert_eq!(r.status, 200);
    let all = envelopes(&r.body);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, 2);
    let end: Value = serde_json::from_slice(&all[0].1).unwrap();
    assert_eq!(end["error"]["code"], "invalid_argument", "{end}");
    assert!(
        end["error"]["message"]
            .as_str()
            .unwrap()
            .contains("one Connect envelope")
    );
    // An empty ref is an invalid argument, in the end envelope too.
    let r = fr.request(
        "POST",
        "/v1.Backrest/GetLogs",
        &stream_headers(Some(("admin", "changeme"))),
        &envelope(0, b"{}"),
    );
    let all = envelopes(&r.body);
    let end: Value = serde_json::from_slice(&all[0].1).unwrap();
    assert_eq!(end["error"]["code"], "invalid_argument", "{end}");
}

#[test]
fn get_logs_of_an_unknown_ref_is_one_message_saying_so() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&sandbox.config(json!([]), auth_off()));
    let fr = Footrest::start(&sandbox);
    for logref in ["t-999", "../../etc/passwd"] {
        let body = envelope(0, &serde_json::to_vec(&json!({"ref": logref})).unwrap());
        let r = fr.request("POST", "/v1.Backrest/GetLogs", &stream_headers(None), &body);
        assert_eq!(r.status, 200);
        let all = envelopes(&r.body);
        assert_eq!(all.len(), 2, "{:?}", r.text());
        assert_eq!(all[0].0, 0);
        let text = String::from_utf8(decode_chunk(&all[0].1)).unwrap();
        assert!(text.contains("there is no log"), "{text}");
        assert!(text.contains(logref), "{text}");
        assert_eq!(all[1], (2, b"{}".to_vec()));
    }
}

#[test]
fn get_logs_follows_a_running_backup_until_it_ends() {
    let sandbox = Sandbox::new();
    let src = sandbox.random_source("big", 3 * 1024 * 1024);
    // A path that is not there makes restic write to its log at once ("does not exist,
    // skipping"); the summary comes at the end, some seconds later (uploads are held to
    // 200 KiB/s).
    let missing = sandbox.path("not-there");
    let mut config = sandbox.config(
        json!([{"id": "slow", "repo": "local", "paths": [src, missing]}]),
        auth_off(),
    );
    config["repos"][0]["flags"] = json!(["--limit-upload 200"]);
    sandbox.write_config(&config);
    let fr = Footrest::start(&sandbox);

    let addr = fr.addr;
    let backup = std::thread::spawn(move || {
        let r = request(
            addr,
            "POST",
            "/v1.Backrest/Backup",
            &[("Content-Type".into(), "application/json".into())],
            br#"{"value":"slow"}"#,
        );
        (r, Instant::now())
    });
    let op = fr.wait_for_op("the backup to run", |o| {
        o["status"] == "STATUS_INPROGRESS" && o.get("operationBackup").is_some()
    });
    let logref = op["logref"].as_str().unwrap().to_string();
    let mut stream = StreamClient::open(fr.addr, "GetLogs", &json!({"ref": logref}));

    // The first message comes while the backup still runs.
    let (flags, payload) = stream.next().expect("a first message");
    assert_eq!(flags, 0);
    let mut text = decode_chunk(&payload);
    let running = fr.operations(json!({"ids": [op["id"]]}))[0].clone();
    assert_eq!(running["status"], "STATUS_INPROGRESS", "{running}");
    assert!(!backup.is_finished());

    let end = loop {
        let (flags, payload) = stream.next().expect("the stream ends with an end envelope");
        if flags == 2 {
            break payload;
        }
        assert_eq!(flags, 0);
        text.extend(decode_chunk(&payload));
    };
    let ended = Instant::now();
    assert_eq!(end, b"{}");
    assert_eq!(stream.byte(), None, "nothing after the end envelope");
    let (r, answered) = backup.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // The log ends just before the operation's final state is written and the call is
    // answered.
    assert!(
        answered + Duration::from_secs(5) >= ended && ended + Duration::from_secs(5) >= answered
    );
    let done = fr.wait_for_op("the backup's final state", |o| {
        o["id"] == op["id"] && o["status"] != "STATUS_INPROGRESS"
    });
    assert_eq!(done["status"], "STATUS_SUCCESS", "{done}");
    // What was streamed is the log file, byte for byte.
    assert_eq!(
        String::from_utf8_lossy(&text),
        String::from_utf8_lossy(&log_file(&sandbox, &logref))
    );
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("not-there"), "{text}");
    assert!(text.contains("summary"), "{text}");
}

#[test]
fn operation_events_show_a_backup_created_updated_indexed_and_deleted() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 3);
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src]}]),
        auth_off(),
    ));
    let fr = Footrest::start(&sandbox);
    let mut events = StreamClient::open(fr.addr, "GetOperationEvents", &json!({}));

    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let backup = fr.operations(json!({"planId": "docs"}))[0].clone();
    let id = backup["id"].clone();

    let mut created = false;
    let mut statuses = Vec::new();
    let mut index_op = None;
    while index_op.is_none() || statuses.last() != Some(&json!("STATUS_SUCCESS")) {
        let (flags, event) = events.next_event().expect("an event");
        assert_eq!(flags, 0, "{event}");
        let (kind, body) = event.as_object().unwrap().iter().next().unwrap();
        for op in body["operations"].as_array().unwrap() {
            if op["id"] == id {
                match kind.as_str() {
                    "createdOperations" => created = true,
                    "updatedOperations" => {
                        assert!(created, "an update before the create");
                        statuses.push(op["status"].clone());
                    }
                    other => panic!("unexpected {other}"),
                }
            } else if op.get("operationIndexSnapshot").is_some() && kind == "createdOperations" {
                assert_eq!(op["flowId"], id, "{op}");
                index_op = Some(op["id"].clone());
            }
        }
    }
    assert!(created);
    assert!(
        statuses.contains(&json!("STATUS_INPROGRESS")),
        "{statuses:?}"
    );
    assert!(id.is_string(), "int64 ids are strings");

    // ClearHistory with a selector deletes the backup: its id comes as a string.
    fr.wait_for_op("the index operation to end", |o| {
        Some(&o["id"]) == index_op.as_ref() && o["status"] == "STATUS_SUCCESS"
    });
    let r = fr.rpc("ClearHistory", &json!({"selector": {"ids": [id]}}));
    assert_eq!(r.status, 200, "{}", r.text());
    loop {
        let (_, event) = events.next_event().expect("the delete");
        if let Some(deleted) = event.get("deletedOperations") {
            assert_eq!(deleted, &json!({"values": [id]}));
            break;
        }
    }
}

#[test]
fn fifty_event_streams_do_not_block_a_backup_and_gone_clients_free_their_place() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 3);
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src]}]),
        auth_off(),
    ));
    // At most 8 streams; streams run on threads of their own, so the Backup below is
    // answered however many are open.
    let fr = Footrest::start_with(&sandbox, &["--max-streams", "8"]);
    let mut streams: Vec<StreamClient> = (0..50)
        .map(|_| StreamClient::open(fr.addr, "GetOperationEvents", &json!({})))
        .collect();

    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    assert_eq!(r.status, 200, "{}", r.text());

    let (mut live, mut refused) = (Vec::new(), 0);
    for (i, s) in streams.iter_mut().enumerate() {
        let (flags, event) = s.next_event().expect("every stream is answered");
        if flags == 2 {
            assert_eq!(event["error"]["code"], "resource_exhausted", "{event}");
            let message = event["error"]["message"].as_str().unwrap();
            assert!(message.contains("too many open streams"), "{message}");
            assert_eq!(s.byte(), None);
            refused += 1;
        } else {
            assert!(event.get("createdOperations").is_some(), "{event}");
            live.push(i);
        }
    }
    assert_eq!((live.len(), refused), (8, 42));

    // Clients that go away free their places within a few probes (1 s each).
    drop(streams);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut reopened = Vec::new();
    while reopened.len() < 8 {
        let mut s = StreamClient::open(fr.addr, "GetOperationEvents", &json!({}));
        // A live stream's first byte is the start of a keep-alive (flag 0) after a
        // second of quiet; a refused one's is the end envelope's flag 2.
        match s.byte() {
            Some(0) => reopened.push(s),
            Some(2) => {
                assert!(
                    Instant::now() < deadline,
                    "closed streams still hold their places; stderr:\n{}",
                    fr.stderr()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            other => panic!("unexpected first byte {other:?}"),
        }
    }
}

/// A loopback connection with a tiny receive window and segment size, so that a client
/// that stops reading makes footrest's writes block after a few hundred events rather
/// than after megabytes of kernel buffers.
fn small_window_connection(addr: SocketAddr) -> TcpStream {
    let SocketAddr::V4(v4) = addr else {
        panic!("the harness listens on IPv4")
    };
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let set = |level, name, value: libc::c_int| {
            let rc = libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            assert_eq!(rc, 0, "setsockopt {name}");
        };
        set(libc::SOL_SOCKET, libc::SO_RCVBUF, 4096);
        set(libc::IPPROTO_TCP, libc::TCP_MAXSEG, 536);
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}

/// Queues a repo task and cancels it while it waits: two events, no restic.
fn queue_and_cancel(fr: &Footrest) {
    let r = fr.rpc(
        "DoRepoTask",
        &json!({"repoId": "local", "task": "TASK_STATS"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["operationId"].clone();
    let r = fr.rpc("Cancel", &json!({"operationId": id}));
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_client_that_stops_reading_is_cut_off_without_growing_memory() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 1);
    // The worker waits in a start hook, so queued repo tasks stay pending and cost
    // nothing but their events.
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src], "hooks": [
            {"conditions": ["CONDITION_SNAPSHOT_START"],
             "actionCommand": {"command": "sleep 60", "timeoutSeconds": 60}}
        ]}]),
        auth_off(),
    ));
    let fr = Footrest::start(&sandbox);
    // The Backup call is sent and never read: it waits for the backup.
    let mut backup = TcpStream::connect(fr.addr).unwrap();
    let body = br#"{"value":"docs"}"#;
    let head = format!(
        "POST /v1.Backrest/Backup HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        fr.addr,
        body.len()
    );
    backup.write_all(head.as_bytes()).unwrap();
    backup.write_all(body).unwrap();
    fr.wait_for_op("the start hook to run", |o| {
        o.get("operationRunHook").is_some() && o["status"] == "STATUS_INPROGRESS"
    });
    let pid = fr.child.id();
    // Warm up: the first requests allocate the server's buffers and SQLite's cache.
    for _ in 0..20 {
        queue_and_cancel(&fr);
    }
    let before = rss_kib(pid);

    // The client reads the response head, then nothing more.
    let conn = small_window_connection(fr.addr);
    let mut stream = StreamClient::open_on(conn, fr.addr, "GetOperationEvents", &json!({}));

    // Events until the log drops the stream's subscription: its 256-event channel is
    // full because footrest cannot write to the client any more.
    let mut events = 0;
    while !fr.stderr().contains("fell 256 events behind") {
        assert!(
            events < 20_000,
            "footrest never stopped writing to a client that reads nothing; stderr:\n{}",
            fr.stderr()
        );
        for _ in 0..25 {
            queue_and_cancel(&fr);
            events += 2;
        }
    }
    let after = rss_kib(pid);
    assert!(
        after < before + 20 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );

    // Reading again: what was in flight, then the end-of-stream error.
    let mut seen = 0;
    let end = loop {
        let (flags, event) = stream.next_event().expect("an end envelope");
        if flags == 2 {
            break event;
        }
        seen += 1;
    };
    assert!(
        seen < events,
        "{seen} of {events} events reached the client"
    );
    assert_eq!(end["error"]["code"], "resource_exhausted", "{end}");
    assert!(
        end["error"]["message"].as_str().unwrap().contains("behind"),
        "{end}"
    );
    assert_eq!(stream.byte(), None);
}

#[test]
fn streams_end_promptly_at_shutdown() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&sandbox.config(json!([]), auth_off()));
    let mut fr = Footrest::start(&sandbox);
    let mut stream = StreamClient::open(fr.addr, "GetOperationEvents", &json!({}));
    let started = Instant::now();
    fr.signal(libc::SIGTERM);
    let (flags, end) = stream.next_event().expect("an end envelope");
    assert_eq!(flags, 2);
    assert_eq!(end["error"]["code"], "unavailable", "{end}");
    let status = fr.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", fr.stderr());
    // Far below the 40 s the server gives requests to finish.
    assert!(started.elapsed() < Duration::from_secs(10));
}
