//! The one error type of the `restic` module. Every message says what failed in terms a
//! user can act on; none ever contains a repository password (restic's own output is
//! redacted before it gets here, see `process`).

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::Version;

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
    /// The password does not open any key of the repository (newer: exit code 12).
    WrongPassword { detail: String },
    /// Another restic holds a lock that conflicts (newer: exit code 11).
    Locked { detail: String },
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
            ResticError::WrongPassword { .. } => write!(
                f,
                "restic could not open the repository: wrong password or no key found; check \
                 the repo's password (or the RESTIC_PASSWORD_FILE/RESTIC_PASSWORD_COMMAND in \
                 its env)"
            ),
            ResticError::Locked { detail } => write!(
                f,
                "the repository is locked by another restic process; if none is running, \
                 remove the stale lock with unlock — restic said: {detail}"
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
