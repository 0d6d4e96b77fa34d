//! The oplog's error type: what failed, on which file or operation, and what to do.

use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpLogError {
    /// The database file could not be opened or prepared for use.
    Open { path: PathBuf, detail: String },
    /// SQLITE_FULL: no room left for the log (or its write-ahead log).
    DiskFull { path: PathBuf },
    /// Another process holds the database locked longer than the busy timeout.
    Busy { path: PathBuf },
    /// The file (or its directory) cannot be written.
    ReadOnly { path: PathBuf },
    /// The file is not a database or is damaged.
    Corrupt { path: PathBuf, detail: String },
    /// The file was written by a newer footrest whose schema this build does not know.
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// The selector cannot be answered as given (the API answers 400).
    InvalidSelector(String),
    /// `update` of an operation that is not in the log.
    NotFound(i64),
    /// `add` of an operation that already has an id.
    AlreadyAdded(i64),
    /// A stored operation that cannot be read back (or an operation that cannot be
    /// written as JSON).
    BadRecord {
        path: PathBuf,
        id: i64,
        detail: String,
    },
    /// Any other SQLite failure, with what was being done.
    Sqlite {
        path: PathBuf,
        action: &'static str,
        detail: String,
    },
}

impl OpLogError {
    /// Turns a SQLite error into the variant a person can act on.
    pub(crate) fn from_sqlite(path: &Path, action: &'static str, e: rusqlite::Error) -> Self {
        let path = path.to_path_buf();
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => OpLogError::DiskFull { path },
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
                OpLogError::Busy { path }
            }
            Some(ErrorCode::ReadOnly) => OpLogError::ReadOnly { path },
            Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
                OpLogError::Corrupt {
                    path,
                    detail: e.to_string(),
                }
            }
            Some(ErrorCode::CannotOpen) => OpLogError::Open {
                path,
                detail: e.to_string(),
            },
            _ => OpLogError::Sqlite {
                path,
                action,
                detail: e.to_string(),
            },
        }
    }
}

impl fmt::Display for OpLogError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            OpLogError::Open { path, detail } => write!(
                f,
                "cannot open the operation log {}: {detail}; check that its directory \
                 exists and that footrest may write to it",
                path.display()
            ),
            OpLogError::DiskFull { path } => write!(
                f,
                "the disk holding the operation log is full ({})",
                path.display()
            ),
            OpLogError::Busy { path } => write!(
                f,
                "the operation log {} is locked by another process; is a second footrest \
                 using the same data directory?",
                path.display()
            ),
            OpLogError::ReadOnly { path } => write!(
                f,
                "the operation log {} cannot be written; check the permissions of the file \
                 and its directory",
                path.display()
            ),
            OpLogError::Corrupt { path, detail } => write!(
                f,
                "the operation log {} is damaged ({detail}); stop footrest and move the file \
                 aside to start a fresh history",
                path.display()
            ),
            OpLogError::NewerSchema { path, found, known } => write!(
                f,
                "the operation log {} was written by a newer footrest (schema version {found}, \
                 this build knows up to {known}); run the newer footrest or move the file aside",
                path.display()
            ),
            OpLogError::InvalidSelector(message) => f.write_str(message),
            OpLogError::NotFound(id) => write!(f, "operation {id} is not in the operation log"),
            OpLogError::AlreadyAdded(id) => write!(
                f,
                "operation {id} already has an id, so it cannot be added again; update it instead"
            ),
            OpLogError::BadRecord { path, id, detail } => write!(
                f,
                "operation {id} in the operation log {} cannot be read: {detail}",
                path.display()
            ),
            OpLogError::Sqlite {
                path,
                action,
                detail,
            } => write!(
                f,
                "operation log {}: {action} failed: {detail}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for OpLogError {}
