//! The restore task: `restic restore` of a snapshot, or of one path in it, into a folder
//! that is missing or empty, recorded as `operationRestore {path, target, lastStatus}`.
//! It never restores over data: the target is checked when the call is made
//! ([`check_target`]) and again right before restic starts. restic 0.14 prints no
//! progress for a restore, so `lastStatus` is set at the end from what was restored
//! (newer restic's progress and summary lines are used when it prints them). It also
//! lists one folder of a snapshot for a waiting request ([`list_files`]), the one restic
//! run that happens outside the worker. It never deletes or changes anything in a
//! target, and it knows nothing about HTTP or how the restored files are served.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config;
use crate::orchestrator::Shared;
use crate::proto::{Op, OperationRestore, RestoreProgressEntry};
use crate::restic::{Listing, ResticError, RestoreRequest, RestoreStatus, StopHandle};

use super::{Ctx, FollowUp, TaskError, restic_repo};

/// Progress is written to the oplog at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Where a restore writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreTarget {
    /// This folder (absolute; missing or empty).
    Folder(PathBuf),
    /// A new folder named after the operation's id inside this one
    /// (`<data dir>/restores/<op id>`), created with mode 0700.
    FreshUnder(PathBuf),
}

/// A restore to queue, checked by the caller (see [`check_target`] and
/// [`crate::restic::snapshot_path`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreJob {
    pub repo_id: String,
    /// The plan the operation is recorded under (`_system_` when none).
    pub plan_id: String,
    /// The snapshot's full id.
    pub snapshot_id: String,
    /// A path inside the snapshot (`/home/me/photos`); `/` restores everything.
    pub path: String,
    pub target: RestoreTarget,
    /// The flow to record the restore in (the snapshot's, so it shows beside the backup
    /// that made it); 0 starts its own.
    pub flow_id: i64,
}

/// Why a folder cannot receive a restore.
#[derive(Debug)]
pub enum TargetError {
    NotAbsolute(PathBuf),
    NotEmpty(PathBuf),
    NotAFolder(PathBuf),
    Unreadable { path: PathBuf, source: io::Error },
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::NotAbsolute(p) => write!(
                f,
                "restore target {} is not an absolute path; give a full path such as \
                 /srv/restores/photos, or leave it empty for a new folder in footrest's data dir",
                p.display()
            ),
            TargetError::NotEmpty(p) => write!(
                f,
                "restore target {} exists and is not empty; footrest never restores over \
                 existing files: give a new or empty folder, or leave the target empty",
                p.display()
            ),
            TargetError::NotAFolder(p) => write!(
                f,
                "restore target {} exists and is not a folder; give a new or empty folder",
                p.display()
            ),
            TargetError::Unreadable { path, source } => write!(
                f,
                "cannot look into restore target {}: {source}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for TargetError {}

/// Whether `target` may receive a restore: an absolute path that is missing or an
/// empty folder (a symlink to one counts as that folder).
pub fn check_target(target: &Path) -> Result<(), TargetError> {
    if !target.is_absolute() {
        return Err(TargetError::NotAbsolute(target.to_path_buf()));
    }
    let unreadable = |source| TargetError::Unreadable {
        path: target.to_path_buf(),
        source,
    };
    match fs::metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A dangling symlink would make restic restore wherever it points.
            if fs::symlink_metadata(target).is_ok() {
                return Err(TargetError::NotAFolder(target.to_path_buf()));
            }
            Ok(())
        }
        Err(e) => Err(unreadable(e)),
        Ok(meta) if !meta.is_dir() => Err(TargetError::NotAFolder(target.to_path_buf())),
        Ok(_) => match fs::read_dir(target).map_err(unreadable)?.next() {
            None => Ok(()),
            Some(_) => Err(TargetError::NotEmpty(target.to_path_buf())),
        },
    }
}

/// The folder a restore writes into, once its operation has an id: a fresh one is
/// `<root>/<op id>`.
pub fn target_path(target: &RestoreTarget, op_id: i64) -> PathBuf {
    match target {
        RestoreTarget::Folder(p) => p.clone(),
        RestoreTarget::FreshUnder(root) => root.join(op_id.to_string()),
    }
}

/// Creates the folder that holds fresh targets (mode 0700: restored files are private);
/// a given folder is left for restic to create.
fn prepare(target: &RestoreTarget) -> Result<(), TaskError> {
    if let RestoreTarget::FreshUnder(root) = target {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| {
                TaskError::Other(format!(
                    "cannot create the restores folder {}: {e}",
                    root.display()
                ))
            })?;
    }
    Ok(())
}

pub fn run(
    ctx: &mut Ctx,
    snapshot_id: &str,
    path: &str,
    target: &RestoreTarget,
) -> Result<Option<FollowUp>, TaskError> {
    let target_kind = target;
    let folder = target_path(target, ctx.op.id);
    let target = folder.as_path();
    ctx.op.snapshot_id = snapshot_id.to_string();
    ctx.op.op = Op::Restore(OperationRestore {
        path: path.to_string(),
        target: target.to_string_lossy().into_owned(),
        last_status: None,
    });
    ctx.shared.save(&mut ctx.op);
    prepare(target_kind)?;
    // Again, right before restic: something may have written there since the call.
    check_target(target).map_err(|e| TaskError::Other(e.to_string()))?;
    let req = RestoreRequest {
        snapshot_id: snapshot_id.to_string(),
        path: path.to_string(),
        target: target.to_path_buf(),
    };
    let started = Instant::now();
    let shared = ctx.shared;
    let result = ctx.with_lock_retry(|ctx| {
        let mut last_write: Option<Instant> = None;
        let (op, log) = (&mut ctx.op, &mut ctx.log);
        shared
            .restic
            .restore(&ctx.target, &req, ctx.stop, log, &mut |status| {
                if let Op::Restore(r) = &mut op.op {
                    r.last_status = Some(progress_entry(&status));
                }
                if last_write.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                    last_write = Some(Instant::now());
                    shared.save(op);
                }
            })
    });
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            if e.is_stopped() {
                ctx.log.line(&format!(
                    "[footrest: the restore was interrupted; {} may hold part of it]",
                    target.display()
                ));
            }
            return Err(e.into());
        }
    };
    let status = match summary {
        Some(s) => progress_entry(&s),
        None => {
            // restic 0.14: no summary. Count what is now below the restored path.
            let restored = target.join(path.trim_start_matches('/'));
            let (files, bytes) = count_files(&restored);
            RestoreProgressEntry {
                message_type: "summary".into(),
                seconds_elapsed: started.elapsed().as_secs_f64(),
                total_bytes: bytes,
                bytes_restored: bytes,
                total_files: files,
                files_restored: files,
                percent_done: 1.0,
            }
        }
    };
    if let Op::Restore(r) = &mut ctx.op.op {
        r.last_status = Some(status);
    }
    Ok(None)
}

fn progress_entry(s: &RestoreStatus) -> RestoreProgressEntry {
    let percent_done = if s.message_type == "summary" && s.percent_done == 0.0 {
        // restic leaves the percentage out of its summary.
        1.0
    } else {
        s.percent_done
    };
    RestoreProgressEntry {
        message_type: s.message_type.clone(),
        seconds_elapsed: s.seconds_elapsed,
        total_bytes: s.total_bytes,
        bytes_restored: s.bytes_restored,
        total_files: s.total_files,
        files_restored: s.files_restored,
        percent_done,
    }
}

/// Regular files below `root` (or `root` itself) and their bytes; links are not
/// followed, unreadable folders are skipped.
fn count_files(root: &Path) -> (i64, i64) {
    let mut files = 0i64;
    let mut bytes = 0i64;
    let mut pending = vec![root.to_path_buf()];
    while let Some(p) = pending.pop() {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_file() {
            files += 1;
            bytes = bytes.saturating_add(i64::try_from(meta.len()).unwrap_or(i64::MAX));
        } else if meta.is_dir()
            && let Ok(entries) = fs::read_dir(&p)
        {
            pending.extend(entries.flatten().map(|e| e.path()));
        }
    }
    (files, bytes)
}

/// Lists one folder of a snapshot for a waiting request: `restic ls` without a lock and
/// with a time limit, so it never waits for the worker nor holds up its restic.
pub fn list_files(
    shared: &Shared,
    repo: &config::Repo,
    snapshot_id: &str,
    dir: &str,
    timeout: Duration,
    stop: &StopHandle,
) -> Result<Listing, ResticError> {
    shared
        .restic
        .ls(&restic_repo(repo), snapshot_id, dir, timeout, stop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn targets_must_be_absolute_and_missing_or_empty() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert!(check_target(&root.join("new/deeper")).is_ok());
        fs::create_dir(root.join("empty")).unwrap();
        assert!(check_target(&root.join("empty")).is_ok());
        fs::create_dir(root.join("full")).unwrap();
        fs::write(root.join("full/.hidden"), "x").unwrap();
        let err = check_target(&root.join("full")).unwrap_err();
        assert!(matches!(err, TargetError::NotEmpty(_)));
        assert_eq!(
            err.to_string(),
            format!(
                "restore target {} exists and is not empty; footrest never restores over \
                 existing files: give a new or empty folder, or leave the target empty",
                root.join("full").display()
            )
        );
        fs::write(root.join("file"), "x").unwrap();
        assert!(matches!(
            check_target(&root.join("file")),
            Err(TargetError::NotAFolder(_))
        ));
        symlink(root.join("nowhere"), root.join("dangling")).unwrap();
        assert!(matches!(
            check_target(&root.join("dangling")),
            Err(TargetError::NotAFolder(_))
        ));
        symlink(root.join("full"), root.join("to-full")).unwrap();
        assert!(matches!(
            check_target(&root.join("to-full")),
            Err(TargetError::NotEmpty(_))
        ));
        assert!(matches!(
            check_target(Path::new("relative/dir")),
            Err(TargetError::NotAbsolute(_))
        ));
    }

    #[test]
    fn fresh_targets_are_named_after_the_operation() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data/restores");
        let fresh = RestoreTarget::FreshUnder(root.clone());
        assert_eq!(target_path(&fresh, 42), root.join("42"));
        prepare(&fresh).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&root).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(!root.join("42").exists());
        let given = dir.path().join("mine");
        let folder = RestoreTarget::Folder(given.clone());
        assert_eq!(target_path(&folder, 42), given);
        prepare(&folder).unwrap();
        assert!(!given.exists());
    }

    #[test]
    fn counting_follows_no_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/one"), "12345").unwrap();
        fs::write(root.join("a/b/two"), "123").unwrap();
        symlink("/etc", root.join("a/link")).unwrap();
        assert_eq!(count_files(&root.join("a")), (2, 8));
        assert_eq!(count_files(&root.join("a/one")), (1, 5));
        assert_eq!(count_files(&root.join("missing")), (0, 0));
    }

    #[test]
    fn summaries_without_a_percentage_are_complete() {
        let s = RestoreStatus {
            message_type: "summary".into(),
            seconds_elapsed: 2.0,
            total_files: 3,
            files_restored: 3,
            total_bytes: 10,
            bytes_restored: 10,
            percent_done: 0.0,
        };
        assert_eq!(progress_entry(&s).percent_done, 1.0);
        let status = RestoreStatus {
            message_type: "status".into(),
            percent_done: 0.25,
            ..s
        };
        let e = progress_entry(&status);
        assert_eq!((e.percent_done, e.message_type.as_str()), (0.25, "status"));
    }
}
