//! The one error type of the `restic` module. Every message says what failed in terms a
//! user can act on; none ever contains a repository password (restic's own output is
//! redacted before it gets here, see `process`).

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::{LockHolder, Version};

/// Something went wrong locating, starting or running restic.
#[derive(Debug)]
pub enum ResticError {
    /// No restic binary where we looked. `looked_for` says where (a path, or the PATH).
    NotFound { looked_for: String },
    /// The binary is older than the oldest restic footrest speaks to (0.14.0).
    TooOld { path: PathBuf, version: Version },
    /// The binary (or the `ionice`/`nice` prefix) could not be started.
    Spawn { program: String, source: io::Error },
    /// Reading restic's output or another local I/O step failed.
    Io { what: String, source: io::Error },
    /// A repo or plan setting cannot be turned into arguments (unbalanced quote in a
    /// flag, an env entry without `=`, no source paths).
    InvalidArgs { detail: String },
    /// There is no repository at the uri (0.14: "Is there a repository at the following
    /// location?", newer: exit code 10).
    RepoNotFound { detail: String },
    /// The repository stopped answering: restic did nothing but retry it for `seconds`
    /// and was stopped. `detail` is its last retry's error (a refused connection, a
    /// timeout).
    RepoUnreachable { seconds: u64, detail: String },
    /// The password does not open any key of the repository (newer: exit code 12).
    WrongPassword { detail: String },
    /// Another restic holds a lock that conflicts (newer: exit code 11). `holder` is who
    /// holds it, when restic's text names them (it always does in 0.14 and newer).
    Locked {
        detail: String,
        holder: Option<LockHolder>,
    },
    /// `check` found damage: restic said "repository contains errors". `detail` ends
    /// with the last errors it listed; the operation log has them all.
    RepoDamaged { detail: String },
    /// `forget` by id: no snapshot has this id, or the prefix fits several.
    NoSuchSnapshot { id: String },
    /// A path asked for is not in the snapshot (`ls` of a folder restic did not find).
    PathNotInSnapshot { path: String, snapshot: String },
    /// A folder was asked for, but the snapshot holds something else at that path.
    NotADirectory {
        path: String,
        snapshot: String,
        kind: String,
    },
    /// A folder has more entries than footrest lists in one answer.
    TooManyEntries { path: String, limit: usize },
    /// A run with a time limit (a listing for a waiting request) did not end in time;
    /// restic was stopped.
    TimedOut { what: String, seconds: u64 },
    /// The run was stopped through its [`StopHandle`](super::StopHandle).
    Stopped,
    /// restic ended with an error not covered above. `message` is the useful end of its
    /// stderr (at most about 2 KB); `exit_code` is `None` when a signal ended it.
    Failed {
        exit_code: Option<i32>,
        message: String,
    },
    /// restic's output could not be understood.
    Parse { what: String, detail: String },
}

impl ResticError {
    pub fn is_repo_not_found(&self) -> bool {
        matches!(self, ResticError::RepoNotFound { .. })
    }

    pub fn is_wrong_password(&self) -> bool {
        matches!(self, ResticError::WrongPassword { .. })
    }

    pub fn is_locked(&self) -> bool {
        matches!(self, ResticError::Locked { .. })
    }

    pub fn is_stopped(&self) -> bool {
        matches!(self, ResticError::Stopped)
    }

    /// Who holds the lock, when this is a [`ResticError::Locked`] that names them.
    pub fn lock_holder(&self) -> Option<LockHolder> {
        match self {
            ResticError::Locked { holder, .. } => holder.clone(),
            _ => None,
        }
    }

    /// True when this is a [`ResticError::Locked`] whose holder ran on `this_host` and
    /// is no longer alive (no `/proc/<pid>`): a lock left behind by a killed restic, for
    /// `unlock` to remove, rather than one to wait for. A lock from another host is never
    /// judged stale here: its process cannot be seen from this machine.
    pub fn lock_is_stale(&self, this_host: &str) -> bool {
        self.lock_is_stale_with(this_host, &|pid| {
            std::path::Path::new("/proc").join(pid.to_string()).exists()
        })
    }

    fn lock_is_stale_with(&self, this_host: &str, is_alive: &dyn Fn(u32) -> bool) -> bool {
        match self.lock_holder() {
            Some(h) => {
                !this_host.is_empty() && h.host.eq_ignore_ascii_case(this_host) && !is_alive(h.pid)
            }
            None => false,
        }
    }
}

impl fmt::Display for ResticError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResticError::NotFound { looked_for } => write!(
                f,
                "restic not found ({looked_for}); install restic 0.14 or newer \
                 (Debian/Ubuntu: `apt install restic`, or a release from \
                 https://github.com/restic/restic/releases) or set BACKREST_RESTIC_COMMAND \
                 to its path"
            ),
            ResticError::TooOld { path, version } => write!(
                f,
                "restic at {} is version {version}, footrest needs 0.14.0 or newer; install a \
                 newer restic (a release from https://github.com/restic/restic/releases) and \
                 point BACKREST_RESTIC_COMMAND at it",
                path.display()
            ),
            ResticError::Spawn { program, source } if source.kind() == io::ErrorKind::NotFound => {
                write!(
                    f,
                    "could not start {program}: it is not there any more ({source}); install \
                     restic 0.14 or newer (Debian/Ubuntu: `apt install restic`) or set \
                     BACKREST_RESTIC_COMMAND to its path"
                )
            }
            ResticError::Spawn { program, source } => {
                write!(f, "could not start {program}: {source}")
            }
            ResticError::Io { what, source } => write!(f, "{what}: {source}"),
            ResticError::InvalidArgs { detail } => {
                write!(f, "cannot build the restic command: {detail}")
            }
            ResticError::RepoNotFound { detail } => write!(
                f,
                "no restic repository at this location; check the repo's uri, or initialise \
                 it (autoInitialize) — restic said: {detail}"
            ),
            ResticError::RepoUnreachable { seconds, detail } => write!(
                f,
                "the repository stopped answering: restic retried it for {seconds} s without \
                 getting through and was stopped (last error: {detail}); check that the \
                 repository's server and the network to it are up, then run the task again \
                 (a lock it left behind is removed before the next task)"
            ),
            ResticError::WrongPassword { .. } => write!(
                f,
                "restic could not open the repository: wrong password or no key found; check \
                 the repo's password (or the RESTIC_PASSWORD_FILE/RESTIC_PASSWORD_COMMAND in \
                 its env)"
            ),
            ResticError::Locked { detail, .. } => write!(
                f,
                "the repository is locked by another restic process; if none is running, \
                 remove the stale lock with unlock — restic said: {detail}"
            ),
            ResticError::RepoDamaged { detail } => write!(
                f,
                "the repository has errors: restic check found damage, listed in the \
                 operation log, and some snapshots may not restore completely; do not prune \
                 it before it is repaired (see \"Troubleshooting\" in restic's documentation) \
                 — restic said: {detail}"
            ),
            ResticError::NoSuchSnapshot { id } => write!(
                f,
                "no snapshot {id} in the repository (or the id prefix fits several); list the \
                 snapshots to find its full id"
            ),
            ResticError::PathNotInSnapshot { path, snapshot } => write!(
                f,
                "snapshot {snapshot} has nothing at {path}; list the folder above it to see \
                 what the snapshot holds"
            ),
            ResticError::NotADirectory {
                path,
                snapshot,
                kind,
            } => write!(
                f,
                "{path} in snapshot {snapshot} is a {kind}, not a folder; list the folder that \
                 holds it"
            ),
            ResticError::TooManyEntries { path, limit } => write!(
                f,
                "folder {path} holds more than {limit} entries, more than footrest lists in \
                 one answer; restore the folder instead"
            ),
            ResticError::TimedOut { what, seconds } => write!(
                f,
                "{what} did not finish within {seconds} s, so restic was stopped; the \
                 repository may be slow to reach, try again later"
            ),
            ResticError::Stopped => write!(f, "restic was stopped before it finished"),
            ResticError::Failed { exit_code, message } => {
                match exit_code {
                    Some(code) => write!(f, "restic failed (exit code {code})")?,
                    None => write!(f, "restic was ended by a signal")?,
                }
                if message.is_empty() {
                    write!(f, " without an error message")
                } else {
                    write!(f, ": {message}")
                }
            }
            ResticError::Parse { what, detail } => {
                write!(f, "could not understand restic's {what}: {detail}")
            }
        }
    }
}

impl std::error::Error for ResticError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ResticError::Spawn { source, .. } | ResticError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locked(host: &str, pid: u32, exclusive: bool) -> ResticError {
        ResticError::Locked {
            detail: String::new(),
            holder: Some(LockHolder {
                pid,
                host: host.into(),
                exclusive,
            }),
        }
    }

    #[test]
    fn stale_only_on_this_host_with_a_dead_holder() {
        let dead = |_: u32| false;
        let alive = |_: u32| true;
        assert!(locked("pi4", 42, false).lock_is_stale_with("pi4", &dead));
        assert!(locked("PI4", 42, true).lock_is_stale_with("pi4", &dead));
        assert!(!locked("pi4", 42, false).lock_is_stale_with("pi4", &alive));
        assert!(!locked("nas", 42, false).lock_is_stale_with("pi4", &dead));
        assert!(!locked("pi4", 42, false).lock_is_stale_with("", &dead));
        let unnamed = ResticError::Locked {
            detail: "locked".into(),
            holder: None,
        };
        assert!(!unnamed.lock_is_stale_with("pi4", &dead));
        assert_eq!(unnamed.lock_holder(), None);
        assert!(!ResticError::Stopped.lock_is_stale_with("pi4", &dead));
        assert_eq!(ResticError::Stopped.lock_holder(), None);
        assert_eq!(
            locked("pi4", 7, true).lock_holder(),
            Some(LockHolder {
                pid: 7,
                host: "pi4".into(),
                exclusive: true
            })
        );
    }

    #[test]
    fn the_real_proc_is_asked() {
        let me = std::process::id();
        let host = "this-host";
        // This process is alive; PID 0 never has a /proc entry.
        assert!(!locked(host, me, false).lock_is_stale(host));
        assert!(locked(host, 0, false).lock_is_stale(host));
    }
}
