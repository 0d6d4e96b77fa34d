//! Per-operation logs on disk: `<data dir>/logs/<ref>.log`, one file per log reference.
//! A log keeps restic's output (and later hooks' output) so a user can read why an
//! operation failed. Size is capped: the first [`HEAD_CAP`] bytes are written as they
//! come, after that only the last [`TAIL_CAP`] bytes are kept and appended when the log is
//! finished, behind a line that says how much was left out. This module knows nothing
//! about operations or restic; it only stores bytes under a reference.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Bytes written to a log as they arrive.
pub const HEAD_CAP: usize = 1024 * 1024;
/// Bytes of the end of an over-long log kept and written when it is finished.
pub const TAIL_CAP: usize = 256 * 1024;

/// The folder of operation logs.
#[derive(Clone, Debug)]
pub struct Logs {
    dir: PathBuf,
}

impl Logs {
    /// Opens (and creates) `<data dir>/logs`.
    pub fn open(data_dir: &Path) -> io::Result<Logs> {
        let dir = data_dir.join("logs");
        fs::create_dir_all(&dir)?;
        Ok(Logs { dir })
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

    /// Starts (or truncates) the log with this reference.
    pub fn create(&self, logref: &str) -> io::Result<LogWriter> {
        let path = self.path(logref).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("log reference {logref:?} is not a plain name"),
            )
        })?;
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)?;
        Ok(LogWriter {
            file: Some(file),
            written: 0,
            tail: VecDeque::new(),
            dropped: 0,
            error: None,
        })
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
        if let Some(file) = &mut self.file
            && let Err(e) = file.write_all(data)
        {
            self.error = Some(e);
            self.file = None;
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
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
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
