//! Runs a hook's script: `/bin/sh -c script`, or, for a script that starts with `#!`,
//! the named interpreter on a private temporary copy of the script. The child gets
//! footrest's environment plus the hook's variables, stdin from /dev/null, its own
//! process group and a parent-death signal; its stdout and stderr share one pipe, so
//! lines reach the log in the order they were written. A timeout or a stop sends
//! SIGTERM to the whole group, then SIGKILL after a grace period; the child is always
//! reaped before this returns. It does not render templates or decide what a failure
//! means for the operation.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::ActionError;
use crate::restic::StopHandle;

/// Between SIGTERM and SIGKILL.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(5);
/// Longest line passed to the log; the rest of a longer line is dropped.
pub(crate) const LINE_CAP: usize = 64 * 1024;
/// Output passed to the log per run; after it, one note and nothing more.
pub(crate) const OUTPUT_CAP: usize = 1024 * 1024;
/// How often the stop handle is looked at while the child is quiet.
const TICK: Duration = Duration::from_millis(50);
/// How long to keep reading after the script exited while something it started in
/// the background still holds the output pipe open.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// Lines quoted in the error of a failed command.
const TAIL_LINES: usize = 3;
const TAIL_LINE_CHARS: usize = 200;

/// See [`super::run_command`].
pub(crate) fn run(
    script: &str,
    env: &[(String, String)],
    timeout: Duration,
    log: &mut dyn Write,
    stop: &StopHandle,
) -> Result<(), ActionError> {
    if stop.is_stopped() {
        return Err(ActionError::Stopped {
            what: "the hook command".into(),
        });
    }
    let (mut cmd, _script_dir) = build_command(script)?;
    let (read_end, write_end) = pipe().map_err(|e| spawn_error("creating a pipe", e))?;
    let write_err = write_end
        .try_clone()
        .map_err(|e| spawn_error("creating a pipe", e))?;
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(write_err));
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (setpgid, prctl, getppid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // footrest may have died between fork and prctl: then no signal would come.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    // The Command holds our copies of the write end; they must go, or we would never
    // see the end of the output.
    drop(cmd);
    let mut child = spawned.map_err(|e| spawn_error("starting the hook command", e))?;
    let pid = child.id() as libc::pid_t;

    let mut out = Output::new(log);
    let ended = supervise(pid, read_end, timeout, stop, &mut out);
    // Reap whatever happened above: the child never outlives this call.
    let status = loop {
        match child.wait() {
            Ok(s) => break Some(s),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break None,
        }
    };
    out.finish();
    match ended {
        Ended::TimedOut => {
            out.note(&format!(
                "[footrest] the hook command timed out after {}; it was stopped",
                super::human_duration(timeout)
            ));
            Err(ActionError::Timeout {
                what: "the hook command".into(),
                after: timeout,
            })
        }
        Ended::Stopped => {
            out.note("[footrest] the hook command was stopped");
            Err(ActionError::Stopped {
                what: "the hook command".into(),
            })
        }
        Ended::Exited => match status {
            Some(s) if s.success() => Ok(()),
            Some(s) => Err(ActionError::Failed {
                message: failure_message(s, &out.tail),
            }),
            None => Err(ActionError::Failed {
                message: "the hook command's exit status could not be read".into(),
            }),
        },
    }
}

fn spawn_error(what: &str, e: io::Error) -> ActionError {
    ActionError::Failed {
        message: format!("{what} failed: {e}"),
    }
}

fn failure_message(status: ExitStatus, tail: &VecDeque<String>) -> String {
    let head = match (status.code(), status.signal()) {
        (Some(code), _) => format!("the hook command exited with status {code}"),
        (None, Some(sig)) => format!("the hook command was killed by signal {sig}"),
        (None, None) => "the hook command failed".to_string(),
    };
    if tail.is_empty() {
        head
    } else {
        let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
        format!("{head}: {}", lines.join(" | "))
    }
}

/// A private directory holding a `#!` script, removed when dropped.
struct ScriptDir(PathBuf);

impl Drop for ScriptDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The command for `script`, and the directory of its temporary copy, if any.
fn build_command(script: &str) -> Result<(Command, Option<ScriptDir>), ActionError> {
    let Some(rest) = script.strip_prefix("#!") else {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(script);
        return Ok((cmd, None));
    };
    let line = rest.split('\n').next().unwrap_or("").trim();
    let words = shlex::split(line).unwrap_or_default();
    let Some((program, args)) = words.split_first() else {
        return Err(ActionError::Invalid {
            message: "the hook command starts with #! but names no interpreter (write e.g. \
                      #!/bin/bash on the first line)"
                .into(),
        });
    };
    let dir = make_private_dir()
        .map_err(|e| spawn_error("creating a temporary directory for the hook script", e))?;
    let path = dir.0.join("hook-script");
    write_script(&path, script)
        .map_err(|e| spawn_error("writing the hook script to a temporary file", e))?;
    // The interpreter is run on the file, as the kernel would for `#!`, with the words
    // of the line split as Backrest splits them (so `#!/usr/bin/env python3 -u` works)
    // and a bare name looked up on PATH. Not exec'ing the file itself also avoids
    // ETXTBSY when another thread forks while the file is being written.
    let mut cmd = Command::new(program);
    cmd.args(args).arg(&path);
    Ok((cmd, Some(dir)))
}

fn make_private_dir() -> io::Result<ScriptDir> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut last = io::Error::other("no attempt made");
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = base.join(format!(
            "footrest-hook-{}-{n}-{nanos:08x}",
            std::process::id()
        ));
        match fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(ScriptDir(path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn write_script(path: &Path, script: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(path)?;
    f.write_all(script.as_bytes())?;
    f.sync_all()
}

/// A pipe whose both ends close on exec (the child's ends are set up by `Stdio`).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [libc::c_int; 2] = [-1, -1];
    // SAFETY: pipe2 writes two new descriptors into `fds` when it returns 0.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned by nothing else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // Only our read end stays non-blocking; the child's end must block as usual.
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(w.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(w.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((r, w))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    Exited,
    TimedOut,
    Stopped,
}

/// Reads output and watches the clock and the stop handle until the child has exited
/// (it is left unreaped, for the caller) and its output is drained. On a timeout or a
/// stop: SIGTERM to the group, SIGKILL after [`KILL_GRACE`] or once the leader is gone,
/// so nothing the script started outlives it.
fn supervise(
    pid: libc::pid_t,
    pipe: OwnedFd,
    timeout: Duration,
    stop: &StopHandle,
    out: &mut Output<'_>,
) -> Ended {
    let started = Instant::now();
    let mut reader = File::from(pipe);
    let mut buf = vec![0u8; 64 * 1024];
    let mut eof = false;
    let mut exited_at: Option<Instant> = None;
    let mut terminating: Option<(Instant, Ended)> = None;
    let mut killed_at: Option<Instant> = None;
    loop {
        if exited_at.is_none() && terminating.is_none() {
            let why = if stop.is_stopped() {
                Some(Ended::Stopped)
            } else if started.elapsed() >= timeout {
                Some(Ended::TimedOut)
            } else {
                None
            };
            if let Some(why) = why {
                signal_group(pid, libc::SIGTERM);
                terminating = Some((Instant::now(), why));
            }
        }
        if let Some((at, _)) = terminating {
            if killed_at.is_none() && at.elapsed() >= KILL_GRACE {
                signal_group(pid, libc::SIGKILL);
                killed_at = Some(Instant::now());
            }
        }

        if eof {
            // The pipe is closed but the script still runs: just watch it.
            std::thread::sleep(TICK);
        } else {
            let wait = match terminating {
                Some(_) => TICK,
                None => timeout.saturating_sub(started.elapsed()).min(TICK),
            };
            eof = read_available(&mut reader, &mut buf, wait, out);
        }

        if exited_at.is_none() && leader_exited(pid) {
            exited_at = Some(Instant::now());
        }
        let Some(exited) = exited_at else { continue };
        match terminating {
            None => {
                // A normal end. Whatever it left running in the background is its own
                // business once it stops holding our pipe (or after a short while).
                if eof || exited.elapsed() >= DRAIN_AFTER_EXIT {
                    return Ended::Exited;
                }
            }
            Some((_, why)) => {
                // The leader is gone and the pipe closed: kill what is left of its
                // group now, before the leader is reaped (so its pid cannot have been
                // reused as a group id by then).
                if eof && killed_at.is_none() {
                    signal_group(pid, libc::SIGKILL);
                    killed_at = Some(Instant::now());
                }
                let drained = eof || killed_at.is_some_and(|k| k.elapsed() >= DRAIN_AFTER_EXIT);
                if killed_at.is_some() && drained {
                    return why;
                }
            }
        }
    }
}

/// Waits up to `wait` for output and passes on everything available; true at the end
/// of the output.
fn read_available(reader: &mut File, buf: &mut [u8], wait: Duration, out: &mut Output<'_>) -> bool {
    let mut pfd = libc::pollfd {
        fd: reader.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = wait.as_millis().clamp(1, 1000) as libc::c_int;
    // SAFETY: one valid pollfd for the duration of the call.
    let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
    if ready <= 0 {
        return false;
    }
    // A bounded number of reads, so a script that prints without pause cannot keep
    // the caller from looking at the clock.
    for _ in 0..16 {
        match reader.read(buf) {
            Ok(0) => return true,
            Ok(k) => out.feed(&buf[..k]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
    false
}

fn signal_group(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: plain kill(2) on the process group our (not yet reaped) child leads.
    unsafe { libc::kill(-pid, sig) };
}

/// Whether the child has exited, without reaping it (`WNOWAIT`).
fn leader_exited(pid: libc::pid_t) -> bool {
    // SAFETY: waitid writes into a zeroed siginfo_t we own; WNOWAIT leaves the child
    // waitable for `Child::wait`.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        r == 0 && info.si_pid() != 0
    }
}

/// Splits output into lines for the log, with the per-line and total caps, and keeps
/// the last few lines for the error message.
struct Output<'a> {
    log: &'a mut dyn Write,
    line: Vec<u8>,
    cut: bool,
    written: usize,
    capped: bool,
    log_failed: bool,
    tail: VecDeque<String>,
}

impl<'a> Output<'a> {
    fn new(log: &'a mut dyn Write) -> Self {
        Output {
            log,
            line: Vec::new(),
            cut: false,
            written: 0,
            capped: false,
            log_failed: false,
            tail: VecDeque::new(),
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|&b| b == b'\n');
            let chunk = &bytes[..newline.unwrap_or(bytes.len())];
            let room = LINE_CAP.saturating_sub(self.line.len());
            if chunk.len() > room {
                self.cut = true;
            }
            self.line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            match newline {
                Some(i) => {
                    self.emit();
                    bytes = &bytes[i + 1..];
                }
                None => bytes = &[],
            }
        }
    }

    /// Passes on a last line that had no newline.
    fn finish(&mut self) {
        if !self.line.is_empty() || self.cut {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let mut text = String::from_utf8_lossy(&self.line).into_owned();
        if text.ends_with('\r') {
            text.pop();
        }
        if self.cut {
            text.push_str(" [line cut at 64 KiB]");
        }
        self.line.clear();
        self.cut = false;
        let trimmed = text.trim();
        if !trimmed.is_empty() {
            let short: String = trimmed.chars().take(TAIL_LINE_CHARS).collect();
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
            }
            self.tail.push_back(short);
        }
        if self.capped {
            return;
        }
        if self.written + text.len() + 1 > OUTPUT_CAP {
            self.capped = true;
            self.write_line("[footrest] the hook command printed more than 1 MiB; the rest of its output is dropped");
            return;
        }
        self.written += text.len() + 1;
        self.write_line(&text);
    }

    /// A line of footrest's own, past the caps.
    fn note(&mut self, text: &str) {
        self.write_line(text);
    }

    fn write_line(&mut self, text: &str) {
        let res = self
            .log
            .write_all(text.as_bytes())
            .and_then(|_| self.log.write_all(b"\n"));
        if let Err(e) = res {
            if !self.log_failed {
                self.log_failed = true;
                crate::warn!("could not write a hook command's output to the operation log: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(input: &[&[u8]]) -> (String, VecDeque<String>) {
        let mut log = Vec::new();
        let tail = {
            let mut out = Output::new(&mut log);
            for chunk in input {
                out.feed(chunk);
            }
            out.finish();
            out.tail.clone()
        };
        (String::from_utf8(log).unwrap(), tail)
    }

    #[test]
    fn lines_are_split_across_reads_and_a_last_partial_line_is_kept() {
        let (log, tail) = lines_of(&[b"a\nb", b"c\r\n\nd"]);
        assert_eq!(log, "a\nbc\n\nd\n");
        assert_eq!(tail, ["a", "bc", "d"]);
    }

    #[test]
    fn long_lines_are_cut_and_total_output_is_capped() {
        let mut long = vec![b'x'; LINE_CAP + 10];
        long.extend_from_slice(b"\nnext\n");
        let (log, _) = lines_of(&[&long]);
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with(" [line cut at 64 KiB]"));
        assert_eq!(lines[0].len(), LINE_CAP + " [line cut at 64 KiB]".len());
        assert_eq!(lines[1], "next");

        let line = [b'y'; 1023];
        let mut chunk = line.to_vec();
        chunk.push(b'\n');
        let chunks: Vec<&[u8]> = (0..2000).map(|_| &chunk[..]).collect();
        let (log, tail) = lines_of(&chunks);
        assert!(log.len() <= OUTPUT_CAP + 200, "{}", log.len());
        assert!(log.ends_with("the rest of its output is dropped\n"));
        assert_eq!(log.matches("dropped").count(), 1);
        // The tail still follows the output past the cap.
        assert_eq!(tail.len(), TAIL_LINES);
    }

    #[test]
    fn failure_message_quotes_the_last_lines() {
        let tail: VecDeque<String> = ["one", "two"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            failure_message(ExitStatus::from_raw(3 << 8), &tail),
            "the hook command exited with status 3: one | two"
        );
        assert_eq!(
            failure_message(ExitStatus::from_raw(9), &VecDeque::new()),
            "the hook command was killed by signal 9"
        );
    }
}
