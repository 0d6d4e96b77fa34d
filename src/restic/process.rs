//! Runs one restic child to its end: spawns it in its own process group with a parent-
//! death signal, reads stdout and stderr line by line on two short-lived threads, hands
//! each (bounded, redacted) line to the caller, and stops it on request: SIGINT, then
//! SIGKILL after the grace period; it also stops a restic that does nothing but retry a
//! repository that stopped answering. The child is always reaped. It does not interpret
//! what restic prints (that is `output`) and does not build commands (that is `command`).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::ResticError;
use super::command::CommandSpec;
use super::output;

/// How often the run loop looks at the stop handle when restic is quiet.
const TICK: Duration = Duration::from_millis(200);
/// How long to keep reading after restic exited while something it started (an `ssh`
/// of the sftp backend, say) still holds the pipes open.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// Between SIGINT and SIGKILL when a run's own timeout (not a stop handle) ends it.
const TIMEOUT_GRACE: Duration = Duration::from_secs(2);
/// Longest line passed on for streaming output; the rest of the line is dropped.
pub(crate) const LINE_CAP: usize = 64 * 1024;
/// Line cap for commands that print one JSON document on one line (`snapshots --json`
/// with thousands of snapshots is several MB).
pub(crate) const DOCUMENT_CAP: usize = 64 * 1024 * 1024;
/// Lines in flight between the readers and the run loop.
const CHANNEL_DEPTH: usize = 256;

/// Lets another thread stop a running restic: after [`stop`](StopHandle::stop) the run
/// loop sends SIGINT (restic then removes its lock and exits), keeps reading its output,
/// and sends SIGKILL if it is still running after `grace`. A handle that is already
/// stopped makes the next run return [`ResticError::Stopped`] without starting restic.
/// Cloning shares the handle.
#[derive(Clone, Debug, Default)]
pub struct StopHandle {
    inner: Arc<StopInner>,
}

#[derive(Debug, Default)]
struct StopInner {
    stopped: AtomicBool,
    grace_ms: AtomicU64,
}

impl StopHandle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the running (or next) restic to stop; SIGKILL follows after `grace`.
    pub fn stop(&self, grace: Duration) {
        let ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        self.inner.grace_ms.store(ms, Ordering::SeqCst);
        self.inner.stopped.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    fn grace(&self) -> Duration {
        Duration::from_millis(self.inner.grace_ms.load(Ordering::SeqCst))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

pub(crate) struct RunOptions {
    /// Longest stdout line passed on (stderr always uses [`LINE_CAP`]).
    pub stdout_line_cap: usize,
    /// Stop restic (as if stopped, with a short grace) when it runs longer than this.
    pub timeout: Option<Duration>,
    /// Stop restic (with a short grace) when it has been retrying its repository
    /// without a break, and without backup progress, for this long: the run then ends
    /// with [`ResticError::RepoUnreachable`]. See [`UNREACHABLE_AFTER`].
    pub unreachable_after: Duration,
}

/// The default of [`RunOptions::unreachable_after`]. restic 0.14 retries each failed
/// request ten times with back-off and then, at exit, the removal of its lock as long
/// again: a backup whose repository went away took almost three minutes to fail. Two
/// minutes of nothing but retries is an outage, not a slow link.
pub(crate) const UNREACHABLE_AFTER: Duration = Duration::from_secs(120);
/// Retry reports further apart than this belong to separate hiccups, not one outage.
const RETRY_GAP: Duration = Duration::from_secs(60);

/// Watches restic's output for an unreachable repository: an unbroken run of retry
/// reports (`... returned error, retrying after ...`) with no backup progress between.
#[derive(Debug, Default)]
struct RetryWatch {
    since: Option<Instant>,
    last: Option<Instant>,
    error: String,
    progress: Option<i64>,
}

impl RetryWatch {
    fn observe(&mut self, stream: Stream, line: &str, now: Instant) {
        match stream {
            Stream::Stderr => {
                if let Some(e) = output::retry_error(line) {
                    if self.last.is_none_or(|t| now.duration_since(t) > RETRY_GAP) {
                        self.since = Some(now);
                    }
                    self.last = Some(now);
                    self.error = e.chars().take(400).collect();
                }
            }
            Stream::Stdout => {
                if let Some(p) = output::progress_counter(line) {
                    if self.progress.is_some_and(|old| p > old) {
                        self.since = None;
                        self.last = None;
                    }
                    self.progress = Some(p);
                }
            }
        }
    }

    /// Whether restic has been retrying, without a break, for `limit` by `now`.
    fn gave_up(&self, now: Instant, limit: Duration) -> bool {
        match (self.since, self.last) {
            (Some(since), Some(last)) => {
                now.duration_since(since) >= limit && now.duration_since(last) <= RETRY_GAP
            }
            _ => false,
        }
    }
}

pub(crate) struct Finished {
    pub status: ExitStatus,
    /// restic was sent SIGINT because of the stop handle or the timeout.
    pub stop_requested: bool,
    pub timed_out: bool,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Blanks secrets out of a line and drops terminal control sequences (restic 0.14
/// starts its "signal interrupt received" line with `ESC [2K`).
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: &[String]) -> Self {
        let mut secrets: Vec<String> = secrets.iter().filter(|s| !s.is_empty()).cloned().collect();
        // Longest first, so a secret containing another is blanked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }

    pub fn clean(&self, line: &str) -> String {
        let mut out = strip_control(line);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

fn strip_control(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ params final-byte(0x40..=0x7e); other escapes: drop ESC + 1.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' => {}
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// Runs `spec` to its end, passing every output line (redacted) to `on_line`.
///
/// The child runs in its own process group (`setpgid(0, 0)`), so a Ctrl-C in footrest's
/// terminal reaches footrest, which then stops restic in order, rather than restic
/// directly. It also gets `PR_SET_PDEATHSIG = SIGINT`: if footrest dies (even by
/// `kill -9`), restic is interrupted and removes its own lock. PDEATHSIG fires when the
/// *thread* that spawned the child exits, not the process, so callers must run restic
/// from a long-lived thread (footrest's worker thread), never from a short-lived one.
///
/// restic also inherits the read ends of its own stdout/stderr pipes. Without them, a
/// restic whose footrest died would write "signal interrupt received" into a pipe with
/// no reader, and Go kills a program that writes to a broken stdout/stderr with SIGPIPE
/// before it removes its lock. With them, its last lines land in the pipe buffer.
pub(crate) fn run(
    spec: &CommandSpec,
    stop: &StopHandle,
    opts: &RunOptions,
    on_line: &mut dyn FnMut(Stream, &str),
) -> Result<Finished, ResticError> {
    if stop.is_stopped() {
        return Err(ResticError::Stopped);
    }
    let redactor = Redactor::new(&spec.secrets);
    let (out_read, out_write) = cloexec_pipe()?;
    let (err_read, err_write) = cloexec_pipe()?;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_write))
        .stderr(Stdio::from(err_write));
    let parent = std::process::id() as libc::pid_t;
    let keep_open = [out_read.as_raw_fd(), err_read.as_raw_fd()];
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (setpgid, prctl, getppid, fcntl); it allocates
    // nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // footrest may have died between fork and prctl: then no signal would come.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            // restic keeps the read ends of its own output pipes (see `run`).
            for fd in keep_open {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    // The Command holds our copies of the write ends; they must go, or the readers
    // would never see the end of restic's output.
    drop(cmd);
    let mut child = spawned.map_err(|source| ResticError::Spawn {
        program: spec.program.to_string_lossy().into_owned(),
        source,
    })?;

    let (tx, rx) = mpsc::sync_channel::<(Stream, String)>(CHANNEL_DEPTH);
    let mut readers = Vec::new();
    let mut spawned = Ok(());
    let cap = opts.stdout_line_cap;
    match spawn_reader("restic-stdout", out_read, Stream::Stdout, cap, tx.clone()) {
        Ok(h) => readers.push(h),
        Err(e) => spawned = Err(e),
    }
    match spawn_reader(
        "restic-stderr",
        err_read,
        Stream::Stderr,
        LINE_CAP,
        tx.clone(),
    ) {
        Ok(h) => readers.push(h),
        Err(e) => spawned = Err(e),
    }
    drop(tx);
    if let Err(source) = spawned {
        // Without a reader restic could block on a full pipe: do not let it run.
        let _ = child.kill();
        let _ = child.wait();
        return Err(ResticError::Io {
            what: "starting a thread to read restic's output".into(),
            source,
        });
    }

    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let mut signals = Signals {
        pid,
        interrupted_at: None,
        killed: false,
    };
    let mut status: Option<ExitStatus> = None;
    let mut exited_at: Option<Instant> = None;
    let mut readers_done = false;
    let mut timed_out = false;
    let mut exit_poll = Duration::from_millis(1);
    let mut watch = RetryWatch::default();
    let mut unreachable = false;
    loop {
        if status.is_none() {
            if !timed_out && opts.timeout.is_some_and(|t| started.elapsed() >= t) {
                timed_out = true;
            }
            if !unreachable && watch.gave_up(Instant::now(), opts.unreachable_after) {
                unreachable = true;
            }
            let grace = if timed_out || unreachable {
                TIMEOUT_GRACE
            } else {
                stop.grace()
            };
            if stop.is_stopped() || timed_out || unreachable {
                signals.escalate(grace);
            }
        }
        if readers_done {
            if status.is_some() {
                break;
            }
            // Both pipes are closed but restic still runs: just watch it. It usually
            // exits a moment after closing them, so look again soon and back off to
            // TICK (a flat TICK here added up to 200 ms to every restic call).
            thread::sleep(exit_poll);
            exit_poll = (exit_poll * 2).min(TICK);
        } else {
            match rx.recv_timeout(TICK) {
                Ok((stream, line)) => {
                    let line = redactor.clean(&line);
                    watch.observe(stream, &line, Instant::now());
                    on_line(stream, &line);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => readers_done = true,
            }
        }
        if status.is_none() {
            status = try_wait(&mut child)?;
            if status.is_some() {
                exited_at = Some(Instant::now());
            }
        }
        if exited_at.is_some_and(|t| t.elapsed() >= DRAIN_AFTER_EXIT) {
            // Something restic started keeps the pipes open; its readers end when it does.
            break;
        }
    }
    if readers_done {
        for r in readers {
            let _ = r.join();
        }
    }
    let Some(status) = status else {
        // Unreachable: the loop only ends once the child is reaped.
        return Err(ResticError::Io {
            what: "waiting for restic".into(),
            source: io::Error::other("restic was not reaped"),
        });
    };
    if unreachable && !stop.is_stopped() {
        return Err(ResticError::RepoUnreachable {
            seconds: opts.unreachable_after.as_secs(),
            detail: watch.error,
        });
    }
    Ok(Finished {
        status,
        stop_requested: signals.interrupted_at.is_some(),
        timed_out,
    })
}

struct Signals {
    pid: libc::pid_t,
    interrupted_at: Option<Instant>,
    killed: bool,
}

impl Signals {
    /// First call: SIGINT to restic. After `grace`: SIGKILL to its whole process group
    /// (restic leads it), so nothing it started outlives it. Only called before the child
    /// is reaped, so the pid cannot have been reused.
    fn escalate(&mut self, grace: Duration) {
        match self.interrupted_at {
            None => {
                // SAFETY: plain kill(2) on our own, not yet reaped child.
                unsafe { libc::kill(self.pid, libc::SIGINT) };
                self.interrupted_at = Some(Instant::now());
            }
            Some(at) if !self.killed && at.elapsed() >= grace => {
                // SAFETY: as above; the group id is the child's pid (setpgid(0, 0)).
                unsafe { libc::kill(-self.pid, libc::SIGKILL) };
                self.killed = true;
            }
            Some(_) => {}
        }
    }
}

/// A pipe whose both ends close on exec (the child's ends are then set up explicitly).
fn cloexec_pipe() -> Result<(OwnedFd, OwnedFd), ResticError> {
    let mut fds: [libc::c_int; 2] = [-1, -1];
    // SAFETY: pipe2 writes two new descriptors into `fds` when it returns 0.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(ResticError::Io {
            what: "creating a pipe for restic's output".into(),
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: both descriptors are fresh and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn try_wait(child: &mut Child) -> Result<Option<ExitStatus>, ResticError> {
    loop {
        match child.try_wait() {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                // Do not leave it running unobserved.
                let _ = child.kill();
                let _ = child.wait();
                return Err(ResticError::Io {
                    what: "waiting for restic".into(),
                    source,
                });
            }
        }
    }
}

fn spawn_reader(
    name: &str,
    pipe: OwnedFd,
    stream: Stream,
    cap: usize,
    tx: mpsc::SyncSender<(Stream, String)>,
) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name(name.into()).spawn(move || {
        read_lines(File::from(pipe), cap, &mut |line| {
            tx.send((stream, line)).is_ok()
        })
    })
}

/// Reads `pipe` to its end, calling `emit` per line (without the newline, lossily
/// decoded, at most `cap` bytes; the rest of a longer line is dropped). Stops early
/// when `emit` returns false.
fn read_lines<R: Read>(pipe: R, cap: usize, emit: &mut dyn FnMut(String) -> bool) {
    let mut reader = BufReader::with_capacity(64 * 1024, pipe);
    let mut line: Vec<u8> = Vec::new();
    let mut pending = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok([]) => break,
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let newline = buf.iter().position(|&b| b == b'\n');
        let chunk = &buf[..newline.unwrap_or(buf.len())];
        let room = cap.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        pending = true;
        let used = chunk.len() + usize::from(newline.is_some());
        reader.consume(used);
        if newline.is_some() {
            pending = false;
            if !emit(String::from_utf8_lossy(&line).into_owned()) {
                return;
            }
            line.clear();
        }
    }
    if pending && !line.is_empty() {
        emit(String::from_utf8_lossy(&line).into_owned());
    }
}

/// Writes restic's lines to the caller's log (an operation log file). Trouble writing is
/// reported once and never stops restic.
#[derive(Default)]
pub(crate) struct LogSink {
    failed: bool,
}

impl LogSink {
    pub fn write(&mut self, log: &mut dyn io::Write, line: &str) {
        let res = log
            .write_all(line.as_bytes())
            .and_then(|_| log.write_all(b"\n"));
        if let Err(e) = res {
            if !self.failed {
                self.failed = true;
                crate::warn!("could not write restic output to the operation log: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::process::ExitStatusExt;

    fn lines(input: &[u8], cap: usize) -> Vec<String> {
        let mut out = Vec::new();
        read_lines(input, cap, &mut |l| {
            out.push(l);
            true
        });
        out
    }

    #[test]
    fn splits_lines_and_keeps_a_last_partial_one() {
        assert_eq!(lines(b"a\nb\n\nc", 100), ["a", "b", "", "c"]);
        assert_eq!(lines(b"", 100), Vec::<String>::new());
        assert_eq!(lines(b"x\n", 100), ["x"]);
    }

    #[test]
    fn long_lines_are_cut_not_buffered() {
        let mut input = vec![b'a'; 200_000];
        input.extend_from_slice(b"\nnext\n");
        let got = lines(&input, 1000);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), 1000);
        assert_eq!(got[1], "next");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(
            lines(b"ok \xff\xfe end\n", 100),
            ["ok \u{fffd}\u{fffd} end"]
        );
    }

    #[test]
    fn redacts_secrets_and_terminal_codes() {
        let r = Redactor::new(&["hunter22".into(), "hunter22-long".into(), String::new()]);
        assert_eq!(
            r.clean("\u{1b}[2Ksignal interrupt received, cleaning up\r"),
            "signal interrupt received, cleaning up"
        );
        assert_eq!(r.clean("pw=hunter22-long and hunter22."), "pw=*** and ***.");
        assert_eq!(r.clean("tab\tkept"), "tab\tkept");
    }

    fn sh(script: &str) -> CommandSpec {
        CommandSpec {
            program: "/bin/sh".into(),
            args: vec![OsString::from("-c"), OsString::from(script)],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            secrets: vec!["s3cret".into()],
        }
    }

    fn opts() -> RunOptions {
        RunOptions {
            stdout_line_cap: LINE_CAP,
            timeout: None,
            unreachable_after: UNREACHABLE_AFTER,
        }
    }

    fn collect(
        spec: &CommandSpec,
        stop: &StopHandle,
    ) -> (Result<Finished, ResticError>, Vec<(Stream, String)>) {
        let mut got = Vec::new();
        let res = run(spec, stop, &opts(), &mut |s, l| {
            got.push((s, l.to_string()))
        });
        (res, got)
    }

    #[test]
    fn runs_a_child_and_reads_both_streams() {
        let spec =
            sh("echo out1; echo err1 >&2; echo 'pw s3cret'; read x; echo \"stdin=[$x]\"; exit 7");
        let (res, got) = collect(&spec, &StopHandle::new());
        let fin = res.unwrap();
        assert_eq!(fin.code(), Some(7));
        assert!(!fin.stop_requested);
        let out: Vec<_> = got
            .iter()
            .filter(|(s, _)| *s == Stream::Stdout)
            .map(|(_, l)| l.as_str())
            .collect();
        let err: Vec<_> = got
            .iter()
            .filter(|(s, _)| *s == Stream::Stderr)
            .map(|(_, l)| l.as_str())
            .collect();
        // stdin is /dev/null, and the secret never reaches the caller.
        assert_eq!(out, ["out1", "pw ***", "stdin=[]"]);
        assert_eq!(err, ["err1"]);
    }

    #[test]
    fn child_has_its_own_process_group_and_only_our_env() {
        let spec = sh("ps -o pgid= -p $$; echo \"pid=$$\"; echo \"home=[$HOME]\"");
        let (res, got) = collect(&spec, &StopHandle::new());
        assert_eq!(res.unwrap().code(), Some(0));
        let pgid = got[0].1.trim().to_string();
        assert_eq!(format!("pid={pgid}"), got[1].1);
        assert_eq!(got[2].1, "home=[]");
    }

    #[test]
    fn stop_sends_sigint_and_the_child_may_exit_cleanly() {
        let stop = StopHandle::new();
        // The child reports itself ready, then waits; on SIGINT it prints and exits 130.
        let spec =
            sh("trap 'echo got-int; exit 130' INT; echo ready; while :; do sleep 0.05; done");
        let mut got = Vec::new();
        let s2 = stop.clone();
        let res = run(&spec, &stop, &opts(), &mut |_, l| {
            got.push(l.to_string());
            if l == "ready" {
                s2.stop(Duration::from_secs(30));
            }
        });
        let fin = res.unwrap();
        assert!(fin.stop_requested);
        assert_eq!(fin.code(), Some(130));
        assert_eq!(got, ["ready", "got-int"]);
    }

    #[test]
    fn sigkill_follows_after_grace_when_sigint_is_ignored() {
        let stop = StopHandle::new();
        let spec = sh("trap '' INT; echo ready; while :; do sleep 0.05; done");
        let s2 = stop.clone();
        let t0 = Instant::now();
        let res = run(&spec, &stop, &opts(), &mut |_, l| {
            if l == "ready" {
                s2.stop(Duration::from_millis(300));
            }
        });
        let fin = res.unwrap();
        assert_eq!(fin.status.signal(), Some(libc::SIGKILL));
        assert!(fin.stop_requested);
        assert!(t0.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_stopped_handle_starts_nothing() {
        let stop = StopHandle::new();
        stop.stop(Duration::ZERO);
        assert!(stop.is_stopped());
        let (res, got) = collect(&sh("echo hi"), &stop);
        assert!(matches!(res, Err(ResticError::Stopped)));
        assert!(got.is_empty());
    }

    #[test]
    fn timeout_stops_the_child() {
        let spec = sh("trap 'exit 130' INT; while :; do sleep 0.05; done");
        let res = run(
            &spec,
            &StopHandle::new(),
            &RunOptions {
                stdout_line_cap: LINE_CAP,
                timeout: Some(Duration::from_millis(300)),
                unreachable_after: UNREACHABLE_AFTER,
            },
            &mut |_, _| {},
        );
        let fin = res.unwrap();
        assert!(fin.timed_out && fin.stop_requested);
        assert_eq!(fin.code(), Some(130));
    }

    #[test]
    fn a_restic_that_only_retries_is_stopped_as_unreachable() {
        let spec = sh("trap 'exit 130' INT; while :; do \
             echo 'Save(<data/ab12>) returned error, retrying after 1.5s: client.Post: Post \"http://h/data/ab\": dial tcp 127.0.0.1:1: connect: connection refused' >&2; \
             sleep 0.1; done");
        let t0 = Instant::now();
        let res = run(
            &spec,
            &StopHandle::new(),
            &RunOptions {
                stdout_line_cap: LINE_CAP,
                timeout: None,
                unreachable_after: Duration::from_millis(500),
            },
            &mut |_, _| {},
        );
        let err = res.err().expect("stopped as unreachable");
        assert!(matches!(err, ResticError::RepoUnreachable { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("connect: connection refused"), "{text}");
        assert!(!text.contains("Save("), "{text}");
        assert!(t0.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn backup_progress_between_retries_is_no_outage() {
        // Retries, but bytes_done grows between them: a slow, flaky link still working.
        let spec = sh("i=0; while [ $i -lt 12 ]; do i=$((i+1)); \
             echo 'Save(<data/ab12>) returned error, retrying after 1s: timeout' >&2; \
             echo \"{\\\"message_type\\\":\\\"status\\\",\\\"bytes_done\\\":$i,\\\"files_done\\\":0}\"; \
             sleep 0.1; done");
        let res = run(
            &spec,
            &StopHandle::new(),
            &RunOptions {
                stdout_line_cap: LINE_CAP,
                timeout: None,
                unreachable_after: Duration::from_millis(500),
            },
            &mut |_, _| {},
        );
        assert_eq!(res.unwrap().code(), Some(0));
    }

    #[test]
    fn a_grandchild_holding_the_pipes_does_not_hang_the_run() {
        // The shell exits at once; its background child keeps stdout open for 5 s.
        let spec = sh("sleep 5 & echo bye");
        let t0 = Instant::now();
        let (res, got) = collect(&spec, &StopHandle::new());
        assert_eq!(res.unwrap().code(), Some(0));
        assert_eq!(got, [(Stream::Stdout, "bye".to_string())]);
        assert!(t0.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let mut spec = sh("");
        spec.program = "/nonexistent/restic".into();
        let (res, _) = collect(&spec, &StopHandle::new());
        let err = res.err().unwrap();
        assert!(
            err.to_string()
                .starts_with("could not start /nonexistent/restic: "),
            "{err}"
        );
    }
}
