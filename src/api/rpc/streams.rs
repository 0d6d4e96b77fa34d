//! The two server-streaming RPCs (CONTRACT §4, §5): `GetLogs` sends a log and then follows
//! it live while it is being written; `GetOperationEvents` sends the operation log's
//! changes as they happen. It owns what a stream may cost. The connection layer serves
//! a stream's body on a thread of its own (see `api::server`), so open streams never
//! take request threads from unary calls; at most [`StreamOptions::max_streams`] are
//! open at once (`--max-streams`, default 64); one more gets an immediate end-of-stream
//! `resource_exhausted`. Memory per stream is bounded too. A client that falls behind
//! is cut off. A client that went away is noticed within two probes (see
//! `api::connect`). Every stream ends within a probe interval of footrest beginning to
//! stop. Framing is `api::connect`'s, following a log is `logs`', and the events come
//! from `oplog::OpLog::subscribe`; this file must not read sockets or files itself.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::{Deserialize, Serialize, Serializer};

use crate::App;
use crate::api::connect::{self, ApiError, Code, Service, StreamWriter};
use crate::api::server::{ChunkWriter, Response};
use crate::logs::{Followed, LogFollower};
use crate::oplog::OpEvent;
use crate::proto::{self, Operation};
use crate::settings::DEFAULT_MAX_STREAMS;

/// A quiet stream completes a keep-alive message after this long (CONTRACT §4).
pub const KEEPALIVE: Duration = Duration::from_secs(60);
/// A quiet stream writes a few bytes this often, to notice a client that went away.
pub const PROBE: Duration = Duration::from_secs(1);
/// An event stream with more messages than this waiting for its client is closed.
pub const MAX_BEHIND: usize = 100;
/// ... and so is one holding more operations than this for its client (memory bound).
pub const MAX_PENDING_OPS: usize = 512;
/// Bytes of a log per GetLogs message.
pub const LOG_CHUNK: usize = 64 * 1024;

const KEEPALIVE_EVENT: &[u8] = br#"{"keepAlive":{}}"#;
const EMPTY_LOG_CHUNK: &[u8] = br#"{"value":""}"#;

/// What streams may cost, and how often a quiet one writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamOptions {
    /// Streams open at once; one more ends at once with `resource_exhausted`.
    pub max_streams: usize,
    /// A keep-alive message after this much quiet.
    pub keepalive: Duration,
    /// A few bytes of the next keep-alive after this much quiet; also how often a quiet
    /// stream looks whether footrest is stopping.
    pub probe: Duration,
}

impl StreamOptions {
    /// At most `max_streams` open at once, with the standard keep-alive and probe.
    pub fn with_max_streams(max_streams: usize) -> StreamOptions {
        StreamOptions {
            max_streams,
            keepalive: KEEPALIVE,
            probe: PROBE,
        }
    }
}

impl Default for StreamOptions {
    /// [`DEFAULT_MAX_STREAMS`] streams.
    fn default() -> StreamOptions {
        StreamOptions::with_max_streams(DEFAULT_MAX_STREAMS)
    }
}

/// The streaming methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    GetLogs,
    GetOperationEvents,
}

/// The streaming method `service/method`, `None` for one that is not a stream.
pub fn find(service: Service, method: &str) -> Option<Method> {
    match (service, method) {
        (Service::Backrest, "GetLogs") => Some(Method::GetLogs),
        (Service::Backrest, "GetOperationEvents") => Some(Method::GetOperationEvents),
        _ => None,
    }
}

/// Serves streams and counts the open ones.
#[derive(Debug)]
pub struct Streams {
    options: StreamOptions,
    open: Arc<AtomicUsize>,
}

/// A place among the open streams, given back when the stream ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Streams {
    pub fn new(options: StreamOptions) -> Streams {
        Streams {
            options,
            open: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    fn take_slot(&self) -> Option<Slot> {
        let max = self.options.max_streams;
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(Arc::clone(&self.open)))
    }

    /// Answers a streaming call whose transport and credentials have been checked.
    /// Always `200 application/connect+json`; every failure is in the end-of-stream
    /// envelope.
    pub fn serve(&self, app: &Arc<App>, method: Method, body: &[u8]) -> Response {
        let Some(slot) = self.take_slot() else {
            warn_refused(self.options.max_streams);
            return connect::stream_error(ApiError::new(
                Code::ResourceExhausted,
                format!(
                    "too many open streams (at most {} at once); close a dashboard or a log \
                     view, or retry in a moment",
                    self.options.max_streams
                ),
            ));
        };
        let message = match connect::request_message(body) {
            Ok(m) => m,
            Err(e) => return connect::stream_error(e),
        };
        let started = match method {
            Method::GetLogs => get_logs(app, message, slot, self.options),
            Method::GetOperationEvents => operation_events(app, message, slot, self.options),
        };
        started.unwrap_or_else(connect::stream_error)
    }
}

/// Logs a refused stream, at most once a minute.
fn warn_refused(max: usize) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + 60
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        warn!(
            "refused a stream: {max} streams are open already; raise --max-streams if more \
             dashboards should stay connected"
        );
    }
}

/// `GetLogs`: `{ref}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LogDataRequest {
    #[serde(rename = "ref")]
    logref: String,
}

/// `GetOperationEvents` takes an empty message; anything in it is ignored.
#[derive(Debug, Default, Deserialize)]
struct Empty {}

/// Whether footrest is stopping: streams end then.
type Stopping = Box<dyn Fn() -> bool + Send>;

fn stopping(app: &Arc<App>) -> Stopping {
    let app = Arc::clone(app);
    Box::new(move || app.orchestrator.shared().stopping())
}

fn shutting_down() -> ApiError {
    ApiError::new(
        Code::Unavailable,
        "footrest is shutting down; reconnect once it is back",
    )
}

fn get_logs(
    app: &Arc<App>,
    message: &[u8],
    slot: Slot,
    options: StreamOptions,
) -> Result<Response, ApiError> {
    let req: LogDataRequest = proto::decode(message)?;
    if req.logref.is_empty() {
        return Err(ApiError::invalid(
            "ref: give the log reference, an operation's `logref` (e.g. {\"ref\": \"t-7\"})",
        ));
    }
    let follower = app
        .logs
        .follow(&req.logref)
        .map_err(|e| ApiError::internal(format!("cannot open the log {:?}: {e}", req.logref)))?;
    let stopping = stopping(app);
    Ok(connect::long_stream_response(Box::new(
        move |out: &mut dyn ChunkWriter| {
            let _slot = slot;
            let w = StreamWriter::new(out, options.probe, options.keepalive);
            match follower {
                Some(f) => send_log(f, &req.logref, w, &*stopping),
                None => no_such_log(&req.logref, w),
            }
        },
    )))
}

/// `{"value":"<base64>"}`.
fn log_chunk(bytes: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = Vec::with_capacity(b64.len() + 12);
    out.extend_from_slice(b"{\"value\":\"");
    out.extend_from_slice(b64.as_bytes());
    out.extend_from_slice(b"\"}");
    out
}

fn no_such_log(logref: &str, mut w: StreamWriter) -> io::Result<()> {
    let text = format!(
        "footrest: there is no log {logref:?}: no operation wrote it, or it was removed with \
         its operation's history\n"
    );
    w.send(&log_chunk(text.as_bytes()))?;
    w.finish(None)
}

/// Sends the log, then what is added to it while it is being written, then the end.
fn send_log(
    mut follower: LogFollower,
    logref: &str,
    mut w: StreamWriter,
    stopping: &dyn Fn() -> bool,
) -> io::Result<()> {
    let mut buf = vec![0u8; LOG_CHUNK];
    loop {
        if stopping() {
            return w.finish(Some(&shutting_down()));
        }
        match follower.read(&mut buf, w.until_probe()) {
            Ok(Followed::Data(n)) => w.send(&log_chunk(&buf[..n]))?,
            Ok(Followed::Quiet) => w.quiet(EMPTY_LOG_CHUNK)?,
            Ok(Followed::End) => return w.finish(None),
            Err(e) => {
                warn!("reading the log {logref:?} for GetLogs failed: {e}");
                let e = ApiError::internal(format!("reading the log {logref:?} failed: {e}"));
                return w.finish(Some(&e));
            }
        }
    }
}

fn operation_events(
    app: &Arc<App>,
    message: &[u8],
    slot: Slot,
    options: StreamOptions,
) -> Result<Response, ApiError> {
    let _: Empty = proto::decode(message)?;
    // Subscribed before the response starts: every change after the call is answered
    // reaches the client.
    let events = app.oplog.subscribe();
    let stopping = stopping(app);
    Ok(connect::long_stream_response(Box::new(
        move |out: &mut dyn ChunkWriter| {
            let _slot = slot;
            let w = StreamWriter::new(out, options.probe, options.keepalive);
            send_events(&events, w, &*stopping)
        },
    )))
}

fn fell_behind() -> ApiError {
    ApiError::new(
        Code::ResourceExhausted,
        format!(
            "the client fell more than {MAX_BEHIND} events behind and was cut off; reconnect \
             and read the current state with GetOperations"
        ),
    )
}

/// One message waiting for the client. Events of one kind that arrive together travel
/// as one message, as Backrest sends the changes of one write.
#[derive(Debug, PartialEq)]
enum Pending {
    Created(Vec<Operation>),
    Updated(Vec<Operation>),
    Deleted(Vec<i64>),
}

impl Pending {
    fn ops(&self) -> usize {
        match self {
            Pending::Created(ops) | Pending::Updated(ops) => ops.len(),
            Pending::Deleted(_) => 0,
        }
    }
}

/// The messages waiting for a client, bounded by [`MAX_BEHIND`] and [`MAX_PENDING_OPS`].
#[derive(Debug, Default)]
struct Backlog {
    messages: VecDeque<Pending>,
    ops: usize,
}

impl Backlog {
    fn push(&mut self, event: OpEvent) {
        match (self.messages.back_mut(), event) {
            (Some(Pending::Created(ops)), OpEvent::Created(op)) => {
                ops.push(op);
                self.ops += 1;
            }
            (Some(Pending::Updated(ops)), OpEvent::Updated(op)) => {
                // A newer state of an operation already waiting replaces it: the client
                // ends up where it would have after both.
                match ops.iter_mut().find(|o| o.id == op.id) {
                    Some(waiting) => *waiting = op,
                    None => {
                        ops.push(op);
                        self.ops += 1;
                    }
                }
            }
            (Some(Pending::Deleted(ids)), OpEvent::Deleted(more)) => ids.extend(more),
            (_, event) => {
                let message = match event {
                    OpEvent::Created(op) => Pending::Created(vec![op]),
                    OpEvent::Updated(op) => Pending::Updated(vec![op]),
                    OpEvent::Deleted(ids) => Pending::Deleted(ids),
                };
                self.ops += message.ops();
                self.messages.push_back(message);
            }
        }
    }

    fn pop(&mut self) -> Option<Pending> {
        let message = self.messages.pop_front()?;
        self.ops -= message.ops();
        Some(message)
    }

    fn too_far_behind(&self) -> bool {
        self.messages.len() > MAX_BEHIND || self.ops > MAX_PENDING_OPS
    }
}

/// An OperationEvent as proto3 JSON.
#[derive(Serialize)]
enum EventMessage<'a> {
    #[serde(rename = "createdOperations")]
    Created { operations: &'a [Operation] },
    #[serde(rename = "updatedOperations")]
    Updated { operations: &'a [Operation] },
    #[serde(rename = "deletedOperations")]
    Deleted {
        #[serde(serialize_with = "int64_list")]
        values: &'a [i64],
    },
}

fn int64_list<S: Serializer>(values: &&[i64], s: S) -> Result<S::Ok, S::Error> {
    proto::json::vec_int64::serialize(values, s)
}

fn encode_event(message: &Pending) -> Result<Vec<u8>, ApiError> {
    let event = match message {
        Pending::Created(ops) => EventMessage::Created { operations: ops },
        Pending::Updated(ops) => EventMessage::Updated { operations: ops },
        Pending::Deleted(ids) => EventMessage::Deleted { values: ids },
    };
    serde_json::to_vec(&event)
        .map_err(|e| ApiError::internal(format!("encoding an operation event failed: {e}")))
}

/// Sends the log's changes until the client goes away, falls behind, or footrest stops.
fn send_events(
    events: &Receiver<OpEvent>,
    mut w: StreamWriter,
    stopping: &dyn Fn() -> bool,
) -> io::Result<()> {
    let mut backlog = Backlog::default();
    loop {
        // Take everything that waits, to see how far behind the client is. The oplog
        // drops (disconnects) a subscriber whose channel is full.
        let mut dropped = false;
        while !backlog.too_far_behind() {
            match events.try_recv() {
                Ok(event) => backlog.push(event),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    dropped = true;
                    break;
                }
            }
        }
        if dropped || backlog.too_far_behind() {
            warn!(
                "an operation-event stream fell too far behind ({} messages, {} operations \
                 waiting{}) and was closed",
                backlog.messages.len(),
                backlog.ops,
                if dropped { ", dropped by the log" } else { "" }
            );
            return w.finish(Some(&fell_behind()));
        }
        if stopping() {
            return w.finish(Some(&shutting_down()));
        }
        if let Some(message) = backlog.pop() {
            match encode_event(&message) {
                Ok(json) => w.send(&json)?,
                Err(e) => return w.finish(Some(&e)),
            }
            continue;
        }
        match events.recv_timeout(w.until_probe()) {
            Ok(event) => backlog.push(event),
            Err(RecvTimeoutError::Timeout) => w.quiet(KEEPALIVE_EVENT)?,
            Err(RecvTimeoutError::Disconnected) => {
                warn!("an operation-event stream was dropped by the log and closed");
                return w.finish(Some(&fell_behind()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    use crate::proto::{Op, OperationStats, OperationStatus};
    use serde_json::{Value, json};

    /// A ChunkWriter that keeps what it is given and can be made to fail.
    #[derive(Default)]
    struct Sink {
        bytes: Vec<u8>,
        chunks: usize,
        fail_after: Option<usize>,
    }

    impl ChunkWriter for Sink {
        fn write_chunk(&mut self, data: &[u8]) -> io::Result<()> {
            if self.fail_after.is_some_and(|n| self.chunks >= n) {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "client gone"));
            }
            self.chunks += 1;
            self.bytes.extend_from_slice(data);
            Ok(())
        }
    }

    /// The envelopes written: (flags, payload as JSON).
    fn messages(mut bytes: &[u8]) -> Vec<(u8, Value)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let len = u32::from_be_bytes(bytes[1..5].try_into().unwrap()) as usize;
            out.push((
                bytes[0],
                serde_json::from_slice(&bytes[5..5 + len]).unwrap(),
            ));
            bytes = &bytes[5 + len..];
        }
        out
    }

    fn op(id: i64, status: OperationStatus) -> Operation {
        let mut op = Operation::new(Op::Stats(OperationStats::default()));
        op.id = id;
        op.flow_id = id;
        op.status = status;
        op
    }

    fn writer(sink: &mut Sink) -> StreamWriter<'_> {
        StreamWriter::new(sink, Duration::from_millis(10), Duration::from_millis(10))
    }

    fn five_events() -> Vec<OpEvent> {
        vec![
            OpEvent::Created(op(1, OperationStatus::Pending)),
            OpEvent::Created(op(2, OperationStatus::Pending)),
            OpEvent::Updated(op(1, OperationStatus::InProgress)),
            OpEvent::Updated(op(1, OperationStatus::Success)),
            OpEvent::Deleted(vec![1, 2]),
        ]
    }

    #[test]
    fn events_are_sent_in_order_as_operation_events() {
        let (tx, rx) = mpsc::sync_channel(16);
        for e in five_events() {
            tx.send(e).unwrap();
        }
        let mut sink = Sink::default();
        // Each round of the loop looks once: three rounds send the three messages,
        // the fourth sees footrest stopping.
        let polls = AtomicUsize::new(0);
        let stopping = || polls.fetch_add(1, Ordering::Relaxed) >= 3;
        send_events(&rx, writer(&mut sink), &stopping).unwrap();
        let got = messages(&sink.bytes);
        assert_eq!(got.len(), 4, "{got:?}");
        let created = &got[0].1["createdOperations"]["operations"];
        assert_eq!(created[0]["id"], "1");
        assert_eq!(created[1]["id"], "2");
        assert_eq!(created[1]["status"], "STATUS_PENDING");
        let updated = got[1].1["updatedOperations"]["operations"]
            .as_array()
            .unwrap();
        assert_eq!(updated.len(), 1);
        assert_eq!(updated[0]["status"], "STATUS_SUCCESS");
        assert_eq!(
            got[2],
            (0, json!({"deletedOperations": {"values": ["1", "2"]}}))
        );
        assert_eq!(got[3].0, connect::FLAG_END_STREAM);
        assert_eq!(got[3].1["error"]["code"], "unavailable");
        drop(tx);
    }

    #[test]
    fn a_subscription_the_log_dropped_ends_with_an_error() {
        let (tx, rx) = mpsc::sync_channel(16);
        for e in five_events() {
            tx.send(e).unwrap();
        }
        drop(tx);
        let mut sink = Sink::default();
        send_events(&rx, writer(&mut sink), &|| false).unwrap();
        let got = messages(&sink.bytes);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, connect::FLAG_END_STREAM);
        assert_eq!(got[0].1["error"]["code"], "resource_exhausted");
    }

    #[test]
    fn events_that_wait_together_travel_together() {
        let mut backlog = Backlog::default();
        backlog.push(OpEvent::Created(op(1, OperationStatus::Pending)));
        backlog.push(OpEvent::Created(op(2, OperationStatus::Pending)));
        backlog.push(OpEvent::Updated(op(1, OperationStatus::InProgress)));
        backlog.push(OpEvent::Updated(op(2, OperationStatus::InProgress)));
        backlog.push(OpEvent::Updated(op(1, OperationStatus::Success)));
        backlog.push(OpEvent::Deleted(vec![3]));
        backlog.push(OpEvent::Deleted(vec![4, 5]));
        assert_eq!(backlog.messages.len(), 3);
        assert_eq!(backlog.ops, 4);
        let created = encode_event(&backlog.pop().unwrap()).unwrap();
        let created: Value = serde_json::from_slice(&created).unwrap();
        assert_eq!(created["createdOperations"]["operations"][1]["id"], "2");
        let Some(Pending::Updated(updated)) = backlog.pop() else {
            panic!("updates second")
        };
        // Operation 1's newer state replaced the older one, in its place.
        assert_eq!(
            updated.iter().map(|o| (o.id, o.status)).collect::<Vec<_>>(),
            vec![
                (1, OperationStatus::Success),
                (2, OperationStatus::InProgress)
            ]
        );
        assert_eq!(backlog.pop(), Some(Pending::Deleted(vec![3, 4, 5])));
        assert_eq!((backlog.messages.len(), backlog.ops), (0, 0));
    }

    #[test]
    fn a_client_too_far_behind_is_cut_off_with_an_end_of_stream_error() {
        let (tx, rx) = mpsc::sync_channel(1000);
        // Alternating kinds cannot travel together: 101 messages wait.
        for i in 0..=MAX_BEHIND as i64 {
            let event = if i % 2 == 0 {
                OpEvent::Created(op(i, OperationStatus::Pending))
            } else {
                OpEvent::Deleted(vec![i])
            };
            tx.send(event).unwrap();
        }
        let mut sink = Sink::default();
        send_events(&rx, writer(&mut sink), &|| false).unwrap();
        let got = messages(&sink.bytes);
        assert_eq!(got.len(), 1, "nothing but the end: {got:?}");
        assert_eq!(got[0].0, connect::FLAG_END_STREAM);
        assert_eq!(got[0].1["error"]["code"], "resource_exhausted");
        assert!(
            got[0].1["error"]["message"]
                .as_str()
                .unwrap()
                .contains("fell more than 100 events behind")
        );
        drop(tx);

        // Many operations in one message count too.
        let mut backlog = Backlog::default();
        for i in 0..=MAX_PENDING_OPS as i64 {
            backlog.push(OpEvent::Created(op(i, OperationStatus::Pending)));
        }
        assert_eq!(backlog.messages.len(), 1);
        assert!(backlog.too_far_behind());
    }

    #[test]
    fn a_quiet_event_stream_sends_keep_alives_and_stops_when_footrest_does() {
        let (tx, rx) = mpsc::sync_channel::<OpEvent>(4);
        let mut sink = Sink::default();
        let polls = AtomicUsize::new(0);
        // Probe and keep-alive every 10 ms; "stopping" after 5 looks.
        let stopping = || polls.fetch_add(1, Ordering::Relaxed) >= 5;
        send_events(&rx, writer(&mut sink), &stopping).unwrap();
        drop(tx);
        let got = messages(&sink.bytes);
        let (last, keepalives) = got.split_last().unwrap();
        assert!(!keepalives.is_empty(), "{got:?}");
        assert!(
            keepalives
                .iter()
                .all(|m| *m == (0, json!({"keepAlive": {}})))
        );
        assert_eq!(last.0, 2);
        assert_eq!(last.1["error"]["code"], "unavailable");
    }

    #[test]
    fn a_client_gone_ends_the_stream() {
        let (tx, rx) = mpsc::sync_channel::<OpEvent>(4);
        let mut sink = Sink {
            fail_after: Some(2),
            ..Sink::default()
        };
        // Nothing to send: the probes find the client gone.
        let e = send_events(&rx, writer(&mut sink), &|| false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(sink.chunks, 2);
        drop(tx);
    }

    #[test]
    fn log_chunks_are_base64_values() {
        let v: Value = serde_json::from_slice(&log_chunk(b"hello\n")).unwrap();
        assert_eq!(v, json!({"value": "aGVsbG8K"}));
        let empty: Value = serde_json::from_slice(EMPTY_LOG_CHUNK).unwrap();
        assert_eq!(empty, json!({"value": ""}));
    }

    #[test]
    fn a_log_is_sent_then_followed_until_its_writer_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let logs = crate::logs::Logs::open(dir.path()).unwrap();
        let mut w = logs.create("t-1").unwrap();
        w.append(b"before\n");
        let follower = logs.follow("t-1").unwrap().unwrap();
        let writer = std::thread::spawn(move || {
            w.append(b"during\n");
            w.finish().unwrap();
        });
        let mut sink = Sink::default();
        let stream = StreamWriter::new(&mut sink, Duration::from_millis(5), KEEPALIVE);
        send_log(follower, "t-1", stream, &|| false).unwrap();
        writer.join().unwrap();
        let got = messages(&sink.bytes);
        let (last, data) = got.split_last().unwrap();
        assert_eq!(*last, (2, json!({})));
        let text: Vec<u8> = data
            .iter()
            .flat_map(|(flags, m)| {
                assert_eq!(*flags, 0);
                base64::engine::general_purpose::STANDARD
                    .decode(m["value"].as_str().unwrap())
                    .unwrap()
            })
            .collect();
        assert_eq!(text, b"before\nduring\n");
    }

    #[test]
    fn an_unknown_log_is_one_message_saying_so() {
        let mut sink = Sink::default();
        no_such_log("t-99", writer(&mut sink)).unwrap();
        let got = messages(&sink.bytes);
        assert_eq!(got.len(), 2);
        let text = base64::engine::general_purpose::STANDARD
            .decode(got[0].1["value"].as_str().unwrap())
            .unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("there is no log \"t-99\""), "{text}");
        assert_eq!(got[1], (2, json!({})));
    }

    #[test]
    fn open_streams_are_counted_against_their_limit() {
        assert_eq!(StreamOptions::default().max_streams, 64);
        let streams = Streams::new(StreamOptions::with_max_streams(2));
        let a = streams.take_slot().unwrap();
        let b = streams.take_slot().unwrap();
        assert!(streams.take_slot().is_none());
        assert_eq!(streams.open(), 2);
        drop(a);
        let c = streams.take_slot().unwrap();
        drop((b, c));
        assert_eq!(streams.open(), 0);
    }
}
