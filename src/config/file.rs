//! The config file on disk, and what a first start needs: an atomic write (temp file
//! in the same directory, fsync, rename, directory fsync, mode 0600), the host name and
//! a random repository password from `/dev/urandom`.
//!
//! It knows nothing about the config's content; it moves bytes and reports failures
//! as `io::Error`s for `mod.rs` to put in context.

use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces `path` with `bytes` so that a reader sees the old file or the new one,
/// never a mix, even across a crash. Missing parent directories are created (0700).
/// The file ends with mode 0600.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;

    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (tmp, mut file) = loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut name = OsString::from(".");
        name.push(file_name);
        name.push(format!(".tmp.{}.{}", std::process::id(), n));
        let tmp = dir.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(file) => break (tmp, file),
            // A leftover from a crashed run with the same pid: take the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1_000_000 => continue,
            Err(e) => return Err(e),
        }
    };

    let written = (|| {
        file.write_all(bytes)?;
        // The umask can only take bits away from 0600, but make the mode certain.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if written.is_err() {
        // Gone already if the rename happened; otherwise do not leave it behind.
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// This machine's host name, or `None` if the system will not say.
pub(crate) fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname writes at most that.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// Turns a host name into a valid id: other characters become `-`, and a name that
/// would be reserved (`_x_`) or empty falls back to sensible forms.
pub(crate) fn sanitize_id(name: &str) -> String {
    let mut id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if id.starts_with('_') && id.ends_with('_') {
        id = id.trim_matches('_').to_string();
    }
    let id = id.trim_matches('-').to_string();
    if id.is_empty() {
        "footrest".to_string()
    } else {
        id
    }
}

/// `len` characters from `[A-Za-z0-9]`, uniformly, from `/dev/urandom`.
pub(crate) fn random_alphanumeric(len: usize) -> io::Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // 248 = 4 * 62: bytes at or above it are dropped so every character is equally likely.
    const LIMIT: u8 = 248;
    let mut urandom = File::open("/dev/urandom")?;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        urandom.read_exact(&mut buf)?;
        for &b in &buf {
            if b < LIMIT && out.len() < len {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_id_makes_valid_ids() {
        assert_eq!(sanitize_id("nas01"), "nas01");
        assert_eq!(sanitize_id("my box.local"), "my-box.local");
        assert_eq!(sanitize_id("_x_"), "x");
        assert_eq!(sanitize_id("élan"), "lan");
        assert_eq!(sanitize_id(""), "footrest");
        assert_eq!(sanitize_id("___"), "footrest");
    }

    #[test]
    fn random_passwords_are_alphanumeric_and_differ() {
        let a = random_alphanumeric(32).unwrap();
        let b = random_alphanumeric(32).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn host_name_is_known() {
        assert!(host_name().is_some());
    }

    #[test]
    fn write_atomic_creates_dirs_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/config.json");
        write_atomic(&path, b"one\n").unwrap();
        write_atomic(&path, b"two\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two\n");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("config.json")]);
        let mode = fs::metadata(dir.path().join("a"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
