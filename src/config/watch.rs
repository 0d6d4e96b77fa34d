//! Noticing that the config file changed, with Linux inotify (through `libc`, no
//! extra crate): [`ConfigWatcher`].
//!
//! Editors, and footrest's own atomic write, save by writing a temp file and renaming
//! it over the config, which replaces the file's inode; so the watch is on the file's
//! directory, and events are kept only when they name the config file (written and
//! closed, moved or created there, deleted). When the config path is a symlink, the
//! directory of the file it points to (as resolved when the watcher is made) is
//! watched too. A save made in several steps is reported once: after the first event,
//! the watcher waits until 200 ms pass with no further one (2 s at most).
//!
//! It only says "changed"; it does not read the file (that is
//! [`ConfigStore::reload`](super::store::ConfigStore::reload)). When inotify is
//! unavailable (another kernel, `fs.inotify.max_user_instances` or
//! `max_user_watches` reached), [`ConfigWatcher::new`] fails, and the caller falls
//! back to comparing [`ConfigStore::file_stamp`](super::store::ConfigStore::file_stamp)
//! once a minute; it does the same when [`ConfigWatcher::wait`] fails, e.g. after the
//! watched directory was deleted or unmounted.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The events that can mean the config file was replaced, written or removed.
const EVENTS: u32 = libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO | libc::IN_CREATE | libc::IN_DELETE;

/// How long a save must stay quiet before it is reported.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// The longest a change is held back by further events.
const DEBOUNCE_MAX: Duration = Duration::from_secs(2);

/// Watches one config file; see the module docs.
pub struct ConfigWatcher {
    fd: OwnedFd,
    /// Watch descriptor and file name pairs whose events are a change of the config.
    targets: Vec<(i32, OsString)>,
    /// The config path, for messages.
    path: PathBuf,
    /// Set when the kernel dropped a watch (its directory deleted or unmounted).
    lost: AtomicBool,
}

impl ConfigWatcher {
    /// Starts watching `path`'s directory for changes to `path` (which need not exist
    /// yet). Fails when the directory does not exist or inotify is unavailable; the
    /// error says which and what limit to raise.
    pub fn new(path: &Path) -> io::Result<ConfigWatcher> {
        // SAFETY: inotify_init1 takes flags only and returns a new descriptor or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if raw < 0 {
            let e = io::Error::last_os_error();
            let hint = if e.raw_os_error() == Some(libc::EMFILE) {
                " (the limit fs.inotify.max_user_instances is reached)"
            } else {
                ""
            };
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "cannot start inotify to watch {}: {e}{hint}",
                    path.display()
                ),
            ));
        }
        // SAFETY: `raw` is a descriptor just opened and owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut watcher = ConfigWatcher {
            fd,
            targets: Vec::new(),
            path: path.to_path_buf(),
            lost: AtomicBool::new(false),
        };
        let (dir, name) = split(path)?;
        watcher.add(&dir, name.clone())?;
        // A symlinked config (dotfiles) is edited where it really is.
        if let Ok(real) = std::fs::canonicalize(path) {
            let (real_dir, real_name) = split(&real)?;
            let watched_dir = std::fs::canonicalize(&dir).ok();
            if watched_dir.as_deref() != Some(real_dir.as_path()) || real_name != name {
                watcher.add(&real_dir, real_name)?;
            }
        }
        Ok(watcher)
    }

    fn add(&mut self, dir: &Path, name: OsString) -> io::Result<()> {
        let c_dir = CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot watch {}: the path holds a NUL byte", dir.display()),
            )
        })?;
        // SAFETY: the descriptor is open and `c_dir` is a NUL-terminated string.
        let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), c_dir.as_ptr(), EVENTS) };
        if wd < 0 {
            let e = io::Error::last_os_error();
            let hint = if e.raw_os_error() == Some(libc::ENOSPC) {
                " (the limit fs.inotify.max_user_watches is reached)"
            } else {
                ""
            };
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "cannot watch {} for changes to {}: {e}{hint}",
                    dir.display(),
                    self.path.display()
                ),
            ));
        }
        self.targets.push((wd, name));
        Ok(())
    }

    /// Waits up to `timeout` for the config file to change; true when it changed since
    /// the last call (changes made between calls are not missed), false when the time
    /// ran out. A change is reported once its save has stayed quiet for 200 ms, so the
    /// call may return up to 2 s after `timeout`. Short timeouts let the calling thread
    /// check for shutdown between calls. An error means the watch is gone (the
    /// directory was deleted or unmounted) or inotify failed; every later call fails
    /// too, and the caller should poll the file's stamp instead.
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        if !self.next_change(deadline_after(timeout))? {
            return Ok(false);
        }
        let stop = deadline_after(DEBOUNCE_MAX);
        while Instant::now() < stop && self.next_change(deadline_after(DEBOUNCE).min(stop))? {}
        Ok(true)
    }

    /// Reads events until one is a change of the config (true) or `deadline` passes
    /// (false). Every pending event is consumed.
    fn next_change(&self, deadline: Instant) -> io::Result<bool> {
        loop {
            self.check_lost()?;
            let left = deadline.saturating_duration_since(Instant::now());
            let millis = left.as_nanos().div_ceil(1_000_000);
            let millis = i32::try_from(millis).unwrap_or(i32::MAX);
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, and the count says one.
            let ready = unsafe { libc::poll(&mut pfd, 1, millis) };
            if ready < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if ready > 0 && self.drain()? {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }

    fn check_lost(&self) -> io::Result<()> {
        if self.lost.load(Ordering::Relaxed) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "the watch on the directory of {} is gone (the directory was deleted, \
                     moved or unmounted); changes to the file are no longer seen",
                    self.path.display()
                ),
            ));
        }
        Ok(())
    }

    /// Reads every pending event; true when one is a change of the config. A lost
    /// queue (overflow) counts as a change, since one may be among the lost events.
    fn drain(&self) -> io::Result<bool> {
        const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
        // Room for many events; one needs at most HEADER + NAME_MAX + 1.
        let mut buf = [0u8; 8192];
        let mut changed = false;
        loop {
            // SAFETY: the buffer is valid for writes of its whole length.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock => break,
                    io::ErrorKind::Interrupted => continue,
                    _ => return Err(e),
                }
            }
            let n = usize::try_from(n).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut at = 0;
            while at + HEADER <= n {
                let word = |i: usize| {
                    let mut b = [0u8; 4];
                    b.copy_from_slice(&buf[at + i..at + i + 4]);
                    b
                };
                let wd = i32::from_ne_bytes(word(0));
                let mask = u32::from_ne_bytes(word(4));
                let len = usize::try_from(u32::from_ne_bytes(word(12))).unwrap_or(usize::MAX);
                let end = at.saturating_add(HEADER).saturating_add(len).min(n);
                let name = &buf[at + HEADER..end];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                at = end;

                if mask & libc::IN_Q_OVERFLOW != 0 {
                    changed = true;
                } else if mask & libc::IN_IGNORED != 0 {
                    if self.targets.iter().any(|(t, _)| *t == wd) {
                        self.lost.store(true, Ordering::Relaxed);
                    }
                } else if mask & EVENTS != 0
                    && self
                        .targets
                        .iter()
                        .any(|(t, target)| *t == wd && target.as_bytes() == name)
                {
                    changed = true;
                }
            }
        }
        self.check_lost()?;
        Ok(changed)
    }
}

/// The directory to watch and the file name to look for.
fn split(path: &Path) -> io::Result<(PathBuf, OsString)> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot watch {}: it does not name a file", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, OsString::from_vec(name.as_bytes().to_vec())))
}

/// `timeout` from now; a timeout too large to represent waits about a year.
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::thread;

    const LONG: Duration = Duration::from_secs(10);
    /// Long enough for an event that is coming to arrive; nothing should.
    const QUIET: Duration = Duration::from_millis(400);

    fn setup() -> (tempfile::TempDir, PathBuf, ConfigWatcher) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, "{}").unwrap();
        let watcher = ConfigWatcher::new(&path).unwrap();
        (dir, path, watcher)
    }

    #[test]
    fn a_rename_into_place_is_a_change() {
        let (dir, path, watcher) = setup();
        let tmp = dir.path().join(".config.json.tmp.1");
        fs::write(&tmp, "{\"modno\": 1}").unwrap();
        fs::rename(&tmp, &path).unwrap();
        assert!(watcher.wait(LONG).unwrap());
        assert!(!watcher.wait(QUIET).unwrap());
    }

    #[test]
    fn a_write_in_place_and_a_deletion_are_changes() {
        let (_dir, path, watcher) = setup();
        fs::write(&path, "{\"modno\": 2}").unwrap();
        assert!(watcher.wait(LONG).unwrap());
        fs::remove_file(&path).unwrap();
        assert!(watcher.wait(LONG).unwrap());
        assert!(!watcher.wait(QUIET).unwrap());
    }

    #[test]
    fn other_files_in_the_directory_are_not_changes() {
        let (dir, _path, watcher) = setup();
        fs::write(dir.path().join("other.json"), "{}").unwrap();
        fs::write(dir.path().join("config.json.bak"), "{}").unwrap();
        fs::rename(dir.path().join("other.json"), dir.path().join("x.json")).unwrap();
        fs::remove_file(dir.path().join("x.json")).unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/config.json"), "{}").unwrap();
        assert!(!watcher.wait(QUIET).unwrap());
    }

    #[test]
    fn a_save_in_several_quick_steps_is_one_change() {
        let (dir, path, watcher) = setup();
        let writer = thread::spawn(move || {
            let tmp = dir.path().join("config.json~");
            for step in 0..3 {
                fs::write(&path, format!("{{\"modno\": {step}}}")).unwrap();
                // The steps of one save, spaced well inside the quiet period.
                thread::sleep(Duration::from_millis(20));
            }
            fs::write(&tmp, "{\"modno\": 9}").unwrap();
            fs::rename(&tmp, &path).unwrap();
            dir
        });
        assert!(watcher.wait(LONG).unwrap());
        let _dir = writer.join().unwrap();
        assert!(!watcher.wait(QUIET).unwrap());
    }

    #[test]
    fn a_timeout_with_no_change_is_false() {
        let (_dir, _path, watcher) = setup();
        let start = Instant::now();
        assert!(!watcher.wait(Duration::from_millis(100)).unwrap());
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(!watcher.wait(Duration::ZERO).unwrap());
    }

    #[test]
    fn changes_between_calls_are_not_missed() {
        let (_dir, path, watcher) = setup();
        fs::write(&path, "{\"modno\": 3}").unwrap();
        // Already queued: seen even with no time to wait.
        assert!(watcher.wait(Duration::ZERO).unwrap());
    }

    #[test]
    fn the_target_of_a_symlinked_config_is_watched() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("dotfiles");
        let link_dir = dir.path().join("conf");
        fs::create_dir(&real_dir).unwrap();
        fs::create_dir(&link_dir).unwrap();
        let real = real_dir.join("footrest.json");
        fs::write(&real, "{}").unwrap();
        let link = link_dir.join("config.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let watcher = ConfigWatcher::new(&link).unwrap();

        fs::write(real_dir.join("unrelated.json"), "{}").unwrap();
        assert!(!watcher.wait(QUIET).unwrap());
        fs::write(&real, "{\"modno\": 1}").unwrap();
        assert!(watcher.wait(LONG).unwrap());
    }

    #[test]
    fn a_missing_file_may_appear_later_but_a_missing_directory_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let watcher = ConfigWatcher::new(&path).unwrap();
        fs::write(&path, "{}").unwrap();
        assert!(watcher.wait(LONG).unwrap());

        let e = ConfigWatcher::new(&dir.path().join("nope/config.json"))
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn a_deleted_directory_ends_the_watch_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf");
        fs::create_dir(&conf).unwrap();
        let path = conf.join("config.json");
        fs::write(&path, "{}").unwrap();
        let watcher = ConfigWatcher::new(&path).unwrap();
        fs::remove_dir_all(&conf).unwrap();
        // The file's deletion may be reported first; then the watch is gone.
        let mut outcome = watcher.wait(LONG);
        if matches!(outcome, Ok(true)) {
            outcome = watcher.wait(LONG);
        }
        let e = outcome.unwrap_err();
        assert!(e.to_string().contains("no longer seen"), "{e}");
        assert!(watcher.wait(Duration::ZERO).is_err());
    }
}
