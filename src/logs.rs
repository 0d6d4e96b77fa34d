//! Per-operation logs on disk: `<data dir>/logs/<ref>.log`, one file per log reference.
//! A log keeps restic's output (and later hooks' output) so a user can read why an
//! operation failed. Size is capped: the first [`HEAD_CAP`] bytes are written as they
//! come, after that only the last [`TAIL_CAP`] bytes are kept and appended when the log is
//! finished, behind a line that says how much was left out.
//!
//! Logs being written can be followed live ([`Logs::follow`]): every [`LogWriter`] is
//! registered under its reference until it is finished or dropped, and wakes its
//! followers (a `Condvar`) after each write. A follower reads the file from where it
//! is; at the end of what is there it waits for the next write or for the end. Past the
//! head cap nothing reaches the file until the writer finishes, so a follower there
//! simply waits for the finish and then reads the note and the tail like everything
//! else. This module knows nothing about operations, restic or HTTP; it only stores
//! and serves bytes under a reference.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Bytes written to a log as they arrive.
pub const HEAD_CAP: usize = 1024 * 1024;
/// Bytes of the end of an over-long log kept and written when it is finished.
pub const TAIL_CAP: usize = 256 * 1024;

/// The folder of operation logs. Clones share the registry of logs being written.
#[derive(Clone, Debug)]
pub struct Logs {
    dir: PathBuf,
    writing: Arc<Registry>,
}

/// The logs being written, by reference.
type Registry = Mutex<HashMap<String, Arc<Live>>>;

/// What followers of one log being written wait on.
#[derive(Debug, Default)]
struct Live {
    state: Mutex<LiveState>,
    changed: Condvar,
}

#[derive(Debug, Default, Clone, Copy)]
struct LiveState {
    /// Goes up after every write that reached the file, and at the end.
    generation: u64,
    /// The writer is finished (or gone): the file will not grow any more.
    done: bool,
}

/// A poisoned lock only means a thread panicked while holding it; the counters behind
/// these locks are always consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Live {
    fn state(&self) -> LiveState {
        *lock(&self.state)
    }

    fn bump(&self, done: bool) {
        let mut state = lock(&self.state);
        state.generation += 1;
        state.done |= done;
        self.changed.notify_all();
    }

    /// Waits until the generation is no longer `seen`, at most `timeout`.
    fn wait_past(&self, seen: u64, timeout: Duration) {
        let state = lock(&self.state);
        let _ = self
            .changed
            .wait_timeout_while(state, timeout, |s| s.generation == seen && !s.done)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// A writer's place in the registry: dropping it ends the log for its followers.
struct Registration {
    writing: Arc<Registry>,
    logref: String,
    live: Arc<Live>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.live.bump(true);
        let mut writing = lock(&self.writing);
        if writing
            .get(&self.logref)
            .is_some_and(|l| Arc::ptr_eq(l, &self.live))
        {
            writing.remove(&self.logref);
        }
    }
}

impl Logs {
    /// Opens (and creates) `<data dir>/logs`.
    pub fn open(data_dir: &Path) -> io::Result<Logs> {
        let dir = data_dir.join("logs");
        fs::create_dir_all(&dir)?;
        Ok(Logs {
            dir,
            writing: Arc::default(),
        })
    }

    /// Where the log with this reference lives, or `None` for a reference that is not a
    /// plain name (so a reference from a request can never point outside the folder).
    pub fn path(&self, logref: &str) -> Option<PathBuf> {
        let plain = !logref.is_empty()
            && logref.len() <= 64
            && logref
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        plain.then(|| self.dir.join(format!("{logref}.log")))
    }

    /// Starts (or truncates) the log with this reference. Until the writer is finished
    /// or dropped, [`Logs::follow`] follows it live.
    pub fn create(&self, logref: &str) -> io::Result<LogWriter> {
        let path = self.path(logref).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("log reference {logref:?} is not a plain name"),
            )
        })?;
        // The registry lock is held while the file is truncated, so a follower sees
        // either the old file and no writer, or the new file and its writer.
        let mut writing = lock(&self.writing);
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)?;
        let live = Arc::new(Live::default());
        if let Some(previous) = writing.insert(logref.to_string(), Arc::clone(&live)) {
            // Two writers of one reference should not happen; release the old one's
            // followers rather than leave them waiting on a file that was truncated.
            previous.bump(true);
        }
        drop(writing);
        Ok(LogWriter {
            file: Some(file),
            written: 0,
            tail: VecDeque::new(),
            dropped: 0,
            error: None,
            registration: Some(Registration {
                writing: Arc::clone(&self.writing),
                logref: logref.to_string(),
                live,
            }),
        })
    }

    /// Opens a log for reading from its start, following it live while it is being
    /// written. `None` when there is no such log (or the reference is not a plain name).
    pub fn follow(&self, logref: &str) -> io::Result<Option<LogFollower>> {
        let Some(path) = self.path(logref) else {
            return Ok(None);
        };
        let writing = lock(&self.writing);
        let live = writing.get(logref).cloned();
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        drop(writing);
        Ok(Some(LogFollower { file, live }))
    }

    /// Reads a whole log, `None` when there is no such log.
    pub fn read(&self, logref: &str) -> io::Result<Option<Vec<u8>>> {
        let Some(path) = self.path(logref) else {
            return Ok(None);
        };
        match fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a log; a log that is already gone is fine.
    pub fn remove(&self, logref: &str) -> io::Result<()> {
        let Some(path) = self.path(logref) else {
            return Ok(());
        };
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Writes one log with the size cap. Write errors (a full disk, say) never fail the
/// operation that produces the output: the first one is kept and reported by
/// [`LogWriter::finish`], later output is dropped.
pub struct LogWriter {
    file: Option<File>,
    written: usize,
    tail: VecDeque<u8>,
    dropped: u64,
    error: Option<io::Error>,
    /// Where followers wait; `None` for [`LogWriter::discard`]. Dropped (which ends the
    /// log for them) when the writer is finished or dropped.
    registration: Option<Registration>,
}

impl LogWriter {
    /// A writer that keeps nothing, for when a log file could not be created.
    pub fn discard() -> LogWriter {
        LogWriter {
            file: None,
            written: 0,
            tail: VecDeque::new(),
            dropped: 0,
            error: None,
            registration: None,
        }
    }

    /// Appends bytes, keeping to the cap.
    pub fn append(&mut self, mut data: &[u8]) {
        if self.file.is_none() {
            return;
        }
        if self.written < HEAD_CAP {
            let n = data.len().min(HEAD_CAP - self.written);
            self.write_file(&data[..n]);
            self.written += n;
            data = &data[n..];
        }
        if data.is_empty() {
            return;
        }
        self.tail.extend(data);
        let excess = self.tail.len().saturating_sub(TAIL_CAP);
        if excess > 0 {
            self.tail.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// Appends one line (a newline is added).
    pub fn line(&mut self, text: &str) {
        self.append(text.as_bytes());
        self.append(b"\n");
    }

    fn write_file(&mut self, data: &[u8]) {
        if let Some(file) = &mut self.file {
            if let Err(e) = file.write_all(data) {
                self.error = Some(e);
                self.file = None;
            }
            if let Some(r) = &self.registration {
                r.live.bump(false);
            }
        }
    }

    /// Writes the kept tail and closes the file; returns the first write error, if any.
    pub fn finish(mut self) -> io::Result<()> {
        if self.dropped > 0 {
            let note = format!(
                "\n[footrest: {} bytes of output left out here]\n",
                self.dropped
            );
            self.write_file(note.as_bytes());
        }
        let tail: Vec<u8> = self.tail.drain(..).collect();
        self.write_file(&tail);
        if let Some(file) = &mut self.file
            && let Err(e) = file.flush()
        {
            self.error = Some(e);
        }
        // Everything is in the file: followers may read to its end and stop.
        drop(self.registration.take());
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// What [`LogFollower::read`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Followed {
    /// This many new bytes were put at the start of the buffer.
    Data(usize),
    /// Nothing new arrived within the wait; the log is still being written.
    Quiet,
    /// The log is complete and everything has been read.
    End,
}

/// Reads one log from its start, and then what its writer adds until it is finished.
#[derive(Debug)]
pub struct LogFollower {
    file: File,
    /// The log's writer, while there was one when following began.
    live: Option<Arc<Live>>,
}

impl LogFollower {
    /// Reads the next bytes. At the end of what the file holds, waits at most `wait`
    /// for the writer to add more or to finish.
    pub fn read(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<Followed> {
        let deadline = Instant::now() + wait;
        loop {
            // The state is taken before reading, so a write that lands after the read
            // has a newer generation and is not slept through.
            let state = self.live.as_ref().map(|l| l.state());
            let n = loop {
                match self.file.read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if n > 0 {
                return Ok(Followed::Data(n));
            }
            let (Some(live), Some(state)) = (&self.live, state) else {
                return Ok(Followed::End);
            };
            if state.done {
                return Ok(Followed::End);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Followed::Quiet);
            }
            live.wait_past(state.generation, left);
        }
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.append(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_log_is_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::open(dir.path()).unwrap();
        let mut w = logs.create("t-1").unwrap();
        w.line("hello");
        w.append(b"world");
        w.finish().unwrap();
        assert_eq!(logs.read("t-1").unwrap().unwrap(), b"hello\nworld");
    }

    #[test]
    fn long_log_keeps_head_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::open(dir.path()).unwrap();
        let mut w = logs.create("t-2").unwrap();
        w.append(&vec![b'a'; HEAD_CAP]);
        w.append(&vec![b'b'; TAIL_CAP * 3]);
        w.append(b"END");
        w.finish().unwrap();
        let text = logs.read("t-2").unwrap().unwrap();
        assert!(text.starts_with(&vec![b'a'; HEAD_CAP]));
        assert!(text.ends_with(b"bbbEND"));
        let note = format!(
            "[footrest: {} bytes of output left out here]",
            2 * TAIL_CAP + 3
        );
        assert!(String::from_utf8_lossy(&text).contains(&note));
        assert!(text.len() < HEAD_CAP + TAIL_CAP + 100);
    }

    /// Reads everything a follower gives until the end, with `step` run (on this
    /// thread) every time the follower is quiet.
    fn follow_all(f: &mut LogFollower, mut on_quiet: impl FnMut()) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1000];
        loop {
            match f.read(&mut buf, Duration::from_millis(20)).unwrap() {
                Followed::Data(n) => out.extend_from_slice(&buf[..n]),
                Followed::Quiet => on_quiet(),
                Followed::End => return out,
            }
        }
    }

    #[test]
    fn a_finished_log_is_read_whole_and_ends() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::open(dir.path()).unwrap();
        let mut w = logs.create("t-1").unwrap();
        w.line("all there");
        w.finish().unwrap();
        let mut f = logs.follow("t-1").unwrap().unwrap();
        assert_eq!(follow_all(&mut f, || panic!("not quiet")), b"all there\n");
        assert!(logs.follow("missing").unwrap().is_none());
        assert!(logs.follow("../etc/passwd").unwrap().is_none());
    }

    #[test]
    fn a_follower_sees_writes_as_they_come_and_ends_with_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::open(dir.path()).unwrap();
        let mut w = logs.create("t-2").unwrap();
        w.line("first");
        let mut f = logs.follow("t-2").unwrap().unwrap();
        let mut buf = [0u8; 100];
        assert_eq!(f.read(&mut buf, Duration::ZERO).unwrap(), Followed::Data(6));
        assert_eq!(
            f.read(&mut buf, Duration::from_millis(10)).unwrap(),
            Followed::Quiet
        );
        // A write from another thread wakes a follower that waits much longer.
        let writer = std::thread::spawn(move || {
            w.append(b"second");
            w
        });
        let started = Instant::now();
        let got = f.read(&mut buf, Duration::from_secs(30)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(20));
        let Followed::Data(n) = got else {
            panic!("expected data, got {got:?}")
        };
        assert_eq!(&buf[..n], b"second");
        let w = writer.join().unwrap();
        let finisher = std::thread::spawn(move || w.finish().unwrap());
        assert_eq!(
            f.read(&mut buf, Duration::from_secs(30)).unwrap(),
            Followed::End
        );
        finisher.join().unwrap();
    }

    #[test]
    fn a_follower_past_the_head_cap_gets_the_note_and_tail_at_the_finish() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::open(dir.path()).unwrap();
        let mut w = logs.create("t-3").unwrap();
        // The head is written at once; the 5 bytes past it wait in memory.
        w.append(&vec![b'a'; HEAD_CAP + 5]);
        let mut f = logs.follow("t-3").unwrap().unwrap();
        let mut w = Some(w);
        let mut quiet = 0;
        let got = follow_all(&mut f, || {
            // The follower has read the head and waits: add more output, then finish.
            quiet += 1;
            if let Some(mut w) = w.take() {
                w.append(&vec![b'b'; TAIL_CAP + 10]);
                w.append(b"END");
                w.finish().unwrap();
            }
        });
        assert_eq!(quiet, 1);
        assert_eq!(got, logs.read("t-3").unwrap().unwrap());
        assert!(got.starts_with(&vec![b'a'; HEAD_CAP]));
        assert!(got.ends_with(b"bEND"));
        assert!(String::from_utf8_lossy(&got).contains("bytes of output left out here"));
    }

    #[test]
    fn a_dropped_writer_ends_its_followers() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::open(dir.path()).unwrap();
        let mut w = logs.create("t-4").unwrap();
        w.line("partial");
        let mut f = logs.follow("t-4").unwrap().unwrap();
        drop(w);
        assert_eq!(follow_all(&mut f, || panic!("not quiet")), b"partial\n");
        // A new writer of the same reference starts a new live log.
        let w = logs.create("t-4").unwrap();
        let mut f = logs.follow("t-4").unwrap().unwrap();
        let mut buf = [0u8; 10];
        assert_eq!(
            f.read(&mut buf, Duration::from_millis(5)).unwrap(),
            Followed::Quiet
        );
        w.finish().unwrap();
        assert_eq!(
            f.read(&mut buf, Duration::from_millis(5)).unwrap(),
            Followed::End
        );
    }

    #[test]
    fn references_that_are_not_plain_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::open(dir.path()).unwrap();
        assert!(logs.path("../etc/passwd").is_none());
        assert!(logs.path("a/b").is_none());
        assert!(logs.path("").is_none());
        assert!(logs.create("..").is_err());
        assert_eq!(logs.read("../x").unwrap(), None);
        assert_eq!(logs.read("missing").unwrap(), None);
        logs.remove("missing").unwrap();
    }
}
