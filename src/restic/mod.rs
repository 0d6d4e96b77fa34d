//! Everything about the restic binary: finding it and checking its version, building
//! argv and environment for a repository (CONTRACT section 7), running it with output
//! read line by line, parsing its `--json` output (restic 0.14 to current), turning its
//! failures into errors that say what to do, and stopping it cleanly (SIGINT, so restic
//! removes its lock; SIGKILL only after a grace period). It is a plain library over the
//! binary: it knows nothing about plans, operations, the oplog, hooks or HTTP, and it
//! never logs or returns a repository password. It never retries: a locked repository
//! is an error that names the lock's holder, and the caller decides whether to wait.
//!
//! Layout: `command` builds command lines, `process` runs a child, `output` reads what
//! restic prints, `words` holds the shell-word and `$VAR` helpers, `error` the error type.

mod command;
mod error;
pub mod layout;
pub(crate) mod output;
mod process;
mod words;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use command::{
    BackupRequest, CpuNice, ForgetRequest, IoNice, MaxUnused, Repo, RestoreRequest, SnapshotFilter,
    snapshot_path,
};
pub use error::ResticError;
pub use output::{
    BackupStatus, BackupSummary, FileError, ForgetResult, LockHolder, LsEntry, RepoConfig,
    RepoStats, RestoreStatus, Snapshot, Version, parse_rfc3339_ms,
};
pub use process::StopHandle;
pub use words::{expand_env, split_words};

use command::{CommandSpec, Host};
use output::{BackupLine, Diagnostics, LsCollector, RestoreLine};
use process::{DOCUMENT_CAP, LINE_CAP, LogSink, RunOptions, Stream, UNREACHABLE_AFTER};

/// The oldest restic footrest works with (Debian 12's).
pub const MIN_VERSION: Version = Version::new(0, 14, 0);

/// How long `restic version` may take at start-up.
const VERSION_TIMEOUT: Duration = Duration::from_secs(15);

/// The most entries one folder listing ([`Restic::ls`]) returns.
pub const LS_ENTRY_CAP: usize = 100_000;

/// One folder of a snapshot, as [`Restic::ls`] lists it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Listing {
    /// The snapshot's full id (the request may have named it by a prefix).
    pub snapshot_id: String,
    /// The folder, normalised (`/`, `/src/sub`).
    pub path: String,
    /// Its direct children, sorted by name.
    pub entries: Vec<LsEntry>,
}

/// What a backup reports while it runs.
#[derive(Clone, Debug, PartialEq)]
pub enum BackupEvent {
    /// A progress line (restic prints one a second: `RESTIC_PROGRESS_FPS=1`).
    Status(BackupStatus),
    /// A file or directory that could not be read; the backup goes on.
    Error(FileError),
}

/// How a backup that wrote its snapshot ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackupOutcome {
    /// The summary line; `None` only if restic exited 0 without printing one.
    pub summary: Option<BackupSummary>,
    /// restic exited 3: the snapshot was written, but some source files could not be
    /// read (each was reported as a [`BackupEvent::Error`]).
    pub warning: bool,
}

/// A located restic binary of a supported version.
#[derive(Clone, Debug)]
pub struct Restic {
    path: PathBuf,
    version: Version,
    cache_fallback: Option<PathBuf>,
    /// Set when no usable restic was found at start-up ([`Restic::locate_or_later`]).
    later: Option<Arc<Later>>,
}

/// Where to look for restic again, and what was found once it was.
#[derive(Debug)]
struct Later {
    explicit: Option<PathBuf>,
    found: Mutex<Option<PathBuf>>,
}

impl Restic {
    /// Finds restic: the explicit path (a flag), else `BACKREST_RESTIC_COMMAND`, else
    /// `restic` on `PATH`. Runs `restic version`; a missing binary or a version older
    /// than 0.14 is an error that says what to install.
    pub fn locate(explicit: Option<&Path>) -> Result<Restic, ResticError> {
        let from_env = std::env::var_os("BACKREST_RESTIC_COMMAND").filter(|v| !v.is_empty());
        let path_var = std::env::var_os("PATH");
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let path = resolve_binary(explicit, from_env.as_deref(), path_var.as_deref(), &cwd)?;
        Restic::at(path)
    }

    /// [`Restic::locate`], for a server that should run (and answer from its history)
    /// without restic: when no usable restic is found, the error comes back with a
    /// `Restic` that looks again before every run and fails that run with the same kind
    /// of error (missing, too old: what to install) until one is found; then it uses it,
    /// with no restart.
    pub fn locate_or_later(explicit: Option<&Path>) -> (Restic, Option<ResticError>) {
        match Restic::locate(explicit) {
            Ok(restic) => (restic, None),
            Err(e) => {
                let restic = Restic {
                    path: explicit.map_or_else(|| PathBuf::from("restic"), Path::to_path_buf),
                    version: MIN_VERSION,
                    cache_fallback: None,
                    later: Some(Arc::new(Later {
                        explicit: explicit.map(Path::to_path_buf),
                        found: Mutex::new(None),
                    })),
                };
                (restic, Some(e))
            }
        }
    }

    /// The binary to run: the located one, or (after [`Restic::locate_or_later`] found
    /// none) the result of looking again.
    fn usable_path(&self) -> Result<PathBuf, ResticError> {
        let Some(later) = &self.later else {
            return Ok(self.path.clone());
        };
        let mut found = later.found.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(path) = &*found {
            return Ok(path.clone());
        }
        let located = Restic::locate(later.explicit.as_deref())?;
        *found = Some(located.path.clone());
        Ok(located.path)
    }

    /// Uses the binary at `path` (absolute) after checking its version.
    fn at(path: PathBuf) -> Result<Restic, ResticError> {
        let mut restic = Restic {
            path,
            version: MIN_VERSION,
            cache_fallback: None,
            later: None,
        };
        let version = restic.query_version()?;
        if version < MIN_VERSION {
            return Err(ResticError::TooOld {
                path: restic.path,
                version,
            });
        }
        restic.version = version;
        Ok(restic)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// Where restic keeps its cache when footrest's environment has neither
    /// `XDG_CACHE_HOME` nor `HOME` (a bare systemd service); otherwise restic's own
    /// default (`~/.cache/restic`) is left alone.
    pub fn set_cache_fallback(&mut self, dir: Option<PathBuf>) {
        self.cache_fallback = dir;
    }

    fn query_version(&self) -> Result<Version, ResticError> {
        let spec = self.spec(None, vec!["version".into()])?;
        let mut stdout = String::new();
        let mut diag = Diagnostics::default();
        let fin = process::run(
            &spec,
            &StopHandle::new(),
            &RunOptions {
                stdout_line_cap: LINE_CAP,
                timeout: Some(VERSION_TIMEOUT),
                unreachable_after: UNREACHABLE_AFTER,
            },
            &mut |stream, line| match stream {
                Stream::Stdout => {
                    stdout.push_str(line);
                    stdout.push('\n');
                }
                Stream::Stderr => diag.observe_stderr(line),
            },
        )?;
        let what = || format!("output of `{} version`", self.path.display());
        if fin.timed_out {
            return Err(ResticError::Failed {
                exit_code: fin.code(),
                message: format!(
                    "`{} version` did not answer within {} s",
                    self.path.display(),
                    VERSION_TIMEOUT.as_secs()
                ),
            });
        }
        if fin.code() != Some(0) {
            return Err(output::classify_failure(fin.code(), &diag));
        }
        output::parse_version(&stdout).map_err(|detail| ResticError::Parse {
            what: what(),
            detail,
        })
    }

    fn spec(&self, repo: Option<&Repo>, args: Vec<OsString>) -> Result<CommandSpec, ResticError> {
        let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        let host = Host {
            env: &env,
            cache_fallback: self.cache_fallback.as_deref(),
        };
        command::command_spec(&self.usable_path()?, repo, args, &host)
    }

    /// Runs a backup. Every stdout/stderr line except progress status lines goes to
    /// `log`; `on_event` gets each status line and each per-file error. Exit 0 is
    /// success, exit 3 success with `warning` (snapshot written, some files unreadable).
    /// A stop through `stop` gives [`ResticError::Stopped`], unless restic had already
    /// finished its snapshot, which is then reported as usual.
    pub fn backup(
        &self,
        repo: &Repo,
        req: &BackupRequest,
        stop: &StopHandle,
        log: &mut dyn Write,
        on_event: &mut dyn FnMut(BackupEvent),
    ) -> Result<BackupOutcome, ResticError> {
        let cwd = std::env::current_dir().map_err(|source| ResticError::Io {
            what: "reading the current directory to make source paths absolute".into(),
            source,
        })?;
        let spec = self.spec(Some(repo), command::backup_args(req, &cwd)?)?;
        let mut summary = None;
        let mut diag = Diagnostics::default();
        let mut sink = LogSink::default();
        let fin = process::run(
            &spec,
            stop,
            &RunOptions {
                stdout_line_cap: LINE_CAP,
                timeout: None,
                unreachable_after: UNREACHABLE_AFTER,
            },
            &mut |stream, line| {
                match output::parse_backup_line(line) {
                    BackupLine::Status(status) => {
                        on_event(BackupEvent::Status(status));
                        return;
                    }
                    BackupLine::Summary(mut s) => {
                        if req.dry_run {
                            s.snapshot_id.clear();
                        }
                        summary = Some(s);
                    }
                    BackupLine::FileError(e) => on_event(BackupEvent::Error(e)),
                    BackupLine::ExitError { .. } | BackupLine::Other => {}
                }
                if stream == Stream::Stderr {
                    diag.observe_stderr(line);
                }
                sink.write(log, line);
            },
        )?;
        match fin.code() {
            Some(0) => Ok(BackupOutcome {
                summary,
                warning: false,
            }),
            Some(3) => Ok(BackupOutcome {
                summary,
                warning: true,
            }),
            _ if fin.stop_requested => Err(ResticError::Stopped),
            code => Err(output::classify_failure(code, &diag)),
        }
    }

    /// Lists snapshots, oldest first: `restic snapshots --json [--tag t]... [ids]`. When
    /// `ids` is not empty, restic ignores the tags.
    pub fn snapshots(
        &self,
        repo: &Repo,
        filter: &SnapshotFilter,
        stop: &StopHandle,
    ) -> Result<Vec<Snapshot>, ResticError> {
        let stdout = self.run_document(repo, command::snapshots_args(filter), stop)?;
        output::parse_snapshots(&stdout).map_err(|detail| ResticError::Parse {
            what: "snapshot list (`snapshots --json`)".into(),
            detail,
        })
    }

    /// Reads the repository's config (`restic cat config`): its id, which Backrest
    /// calls the repo's guid.
    pub fn cat_config(&self, repo: &Repo, stop: &StopHandle) -> Result<RepoConfig, ResticError> {
        let stdout = self.run_document(repo, vec!["cat".into(), "config".into()], stop)?;
        output::parse_repo_config(&stdout).map_err(|detail| ResticError::Parse {
            what: "repository config (`cat config`)".into(),
            detail,
        })
    }

    /// Creates the repository (`restic init`).
    pub fn init(
        &self,
        repo: &Repo,
        stop: &StopHandle,
        log: &mut dyn Write,
    ) -> Result<(), ResticError> {
        self.run_logged(repo, vec!["init".into()], stop, log)
            .map(drop)
    }

    /// Removes stale locks (`restic unlock`; locks of live processes stay).
    pub fn unlock(
        &self,
        repo: &Repo,
        stop: &StopHandle,
        log: &mut dyn Write,
    ) -> Result<(), ResticError> {
        self.run_logged(repo, vec!["unlock".into()], stop, log)
            .map(drop)
    }

    /// Who holds a lock (`restic cat lock <id>`, which takes no lock of its own).
    pub fn lock_holder(
        &self,
        repo: &Repo,
        id: &str,
        stop: &StopHandle,
    ) -> Result<LockHolder, ResticError> {
        let mut sink = Vec::new();
        let args = vec!["cat".into(), "lock".into(), id.into(), "--no-lock".into()];
        let lines = self.run_logged(repo, args, stop, &mut sink)?;
        output::parse_lock_file(&lines.join("\n")).ok_or_else(|| ResticError::Parse {
            what: format!("lock {id}"),
            detail: "no hostname and pid in it".into(),
        })
    }

    /// Removes every lock (`restic unlock --remove-all`). Only for locks whose holders
    /// are known to be dead: restic would remove a live holder's lock too.
    pub fn remove_all_locks(
        &self,
        repo: &Repo,
        stop: &StopHandle,
        log: &mut dyn Write,
    ) -> Result<(), ResticError> {
        let args = vec!["unlock".into(), "--remove-all".into()];
        self.run_logged(repo, args, stop, log).map(drop)
    }

    /// Lists the lock files (`restic list locks`), for tests and diagnostics.
    pub fn list_locks(&self, repo: &Repo, stop: &StopHandle) -> Result<Vec<String>, ResticError> {
        let mut sink = Vec::new();
        let lines = self.run_logged(repo, vec!["list".into(), "locks".into()], stop, &mut sink)?;
        Ok(lines
            .into_iter()
            .map(|l| l.trim().to_string())
            .filter(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect())
    }

    /// Applies a retention policy, or forgets the snapshots named by id; never prunes.
    ///
    /// With keep rules: `forget --json`, whose groups give what was kept and removed
    /// (for a dry run: what would be). With ids, restic 0.14 prints no JSON, so the
    /// snapshots are looked up first (`snapshots --json`, a shared lock): an id that
    /// matches none (or a prefix that fits several) is [`ResticError::NoSuchSnapshot`]
    /// and nothing is forgotten; otherwise exactly the snapshots found are forgotten by
    /// their full ids and reported as `removed`, and `kept` is empty. restic's other
    /// output goes to `log`.
    pub fn forget(
        &self,
        repo: &Repo,
        req: &ForgetRequest,
        stop: &StopHandle,
        log: &mut dyn Write,
    ) -> Result<ForgetResult, ResticError> {
        let args = command::forget_args(req)?;
        if !req.ids.is_empty() {
            return self.forget_ids(repo, req, stop, log);
        }
        let mut json = String::new();
        self.run_streamed(repo, args, stop, DOCUMENT_CAP, log, &mut |line| {
            // Not a progress line such as `[0:00] 100.00%  3 / 3 files deleted`.
            let t = line.trim_start();
            let is_json = t.starts_with("[{") || t.starts_with("[]");
            if is_json {
                json.push_str(line);
                json.push('\n');
            }
            is_json
        })?;
        output::parse_forget(&json).map_err(|detail| ResticError::Parse {
            what: "forget report (`forget --json`)".into(),
            detail,
        })
    }

    fn forget_ids(
        &self,
        repo: &Repo,
        req: &ForgetRequest,
        stop: &StopHandle,
        log: &mut dyn Write,
    ) -> Result<ForgetResult, ResticError> {
        let filter = SnapshotFilter {
            ids: req.ids.clone(),
            tags: Vec::new(),
        };
        let mut found = self.snapshots(repo, &filter, stop)?;
        // Two prefixes of one snapshot name it twice.
        let mut seen = std::collections::HashSet::new();
        found.retain(|s| seen.insert(s.id.clone()));
        for id in &req.ids {
            let prefix = id.to_ascii_lowercase();
            if !found.iter().any(|s| s.id.starts_with(&prefix)) {
                return Err(ResticError::NoSuchSnapshot { id: id.clone() });
            }
        }
        let exact = ForgetRequest {
            ids: found.iter().map(|s| s.id.clone()).collect(),
            dry_run: req.dry_run,
            ..ForgetRequest::default()
        };
        self.run_streamed(
            repo,
            command::forget_args(&exact)?,
            stop,
            LINE_CAP,
            log,
            &mut |_| false,
        )?;
        Ok(ForgetResult {
            kept: Vec::new(),
            removed: found,
        })
    }

    /// Removes data no snapshot uses (`restic prune [--max-unused ...]`; an exclusive
    /// lock). Its long report goes to `log` line by line.
    pub fn prune(
        &self,
        repo: &Repo,
        max_unused: Option<MaxUnused>,
        stop: &StopHandle,
        log: &mut dyn Write,
    ) -> Result<(), ResticError> {
        let args = command::prune_args(max_unused)?;
        self.run_streamed(repo, args, stop, LINE_CAP, log, &mut |_| false)
    }

    /// Checks the repository's structure and, when `read_data_subset_percent` is above
    /// 0, reads that share of the data packs (`restic check [--read-data-subset N%]`; an
    /// exclusive lock in 0.14). Its report goes to `log` line by line. Damage found is
    /// [`ResticError::RepoDamaged`].
    ///
    /// On SIGINT, restic 0.14 first finishes reading the data pack in hand; on a slow
    /// backend (or with `--limit-download`) that can outlast the grace period, and the
    /// SIGKILL that follows leaves a stale lock for `unlock`. Damage also costs time:
    /// restic retries loading a missing pack for some 45 s before it reports it.
    pub fn check(
        &self,
        repo: &Repo,
        read_data_subset_percent: Option<f64>,
        stop: &StopHandle,
        log: &mut dyn Write,
    ) -> Result<(), ResticError> {
        let args = command::check_args(read_data_subset_percent)?;
        self.run_streamed(repo, args, stop, LINE_CAP, log, &mut |_| false)
    }

    /// What the repository stores (`restic stats --json --mode raw-data`; a shared lock).
    pub fn stats(&self, repo: &Repo, stop: &StopHandle) -> Result<RepoStats, ResticError> {
        let stdout = self.run_document(repo, command::stats_args(), stop)?;
        output::parse_stats(&stdout).map_err(|detail| ResticError::Parse {
            what: "repository statistics (`stats --json --mode raw-data`)".into(),
            detail,
        })
    }

    /// Lists one folder of a snapshot: `ls --json --no-lock <id> <dir>`, reading the
    /// output line by line and keeping only the folder's direct children (at most
    /// [`LS_ENTRY_CAP`]). Takes no lock, so it may run beside any other restic; it is
    /// stopped after `timeout` ([`ResticError::TimedOut`]). An unknown snapshot is
    /// [`ResticError::NoSuchSnapshot`] (restic 0.14 exits 0 then, printing nothing); a
    /// folder that is not there, or is a file, is [`ResticError::PathNotInSnapshot`] or
    /// [`ResticError::NotADirectory`].
    pub fn ls(
        &self,
        repo: &Repo,
        snapshot_id: &str,
        dir: &str,
        timeout: Duration,
        stop: &StopHandle,
    ) -> Result<Listing, ResticError> {
        let args = command::ls_args(snapshot_id, dir)?;
        let path = snapshot_path(dir).map_err(|detail| ResticError::InvalidArgs { detail })?;
        let spec = self.spec(Some(repo), args)?;
        let mut collector = LsCollector::new(&path, LS_ENTRY_CAP);
        let mut diag = Diagnostics::default();
        let fin = process::run(
            &spec,
            stop,
            &RunOptions {
                stdout_line_cap: LINE_CAP,
                timeout: Some(timeout),
                unreachable_after: UNREACHABLE_AFTER,
            },
            &mut |stream, line| match stream {
                Stream::Stdout => collector.observe(line),
                Stream::Stderr => {
                    crate::debug!("restic: {line}");
                    diag.observe_stderr(line);
                }
            },
        )?;
        if fin.timed_out {
            return Err(ResticError::TimedOut {
                what: format!("listing {path} of snapshot {snapshot_id}"),
                seconds: timeout.as_secs(),
            });
        }
        finish(&fin, &diag)?;
        let Some(full_id) = collector.snapshot_id.clone() else {
            return Err(ResticError::NoSuchSnapshot {
                id: snapshot_id.to_string(),
            });
        };
        if collector.overflow {
            return Err(ResticError::TooManyEntries {
                path,
                limit: LS_ENTRY_CAP,
            });
        }
        if path != "/" {
            match &collector.dir_node {
                None => {
                    return Err(ResticError::PathNotInSnapshot {
                        path,
                        snapshot: snapshot_id.to_string(),
                    });
                }
                Some(node) if node.kind != "dir" => {
                    return Err(ResticError::NotADirectory {
                        path,
                        snapshot: snapshot_id.to_string(),
                        kind: node.kind.clone(),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(Listing {
            snapshot_id: full_id,
            path,
            entries: collector.into_sorted_children(),
        })
    }

    /// Restores a snapshot, or one path of it, into `req.target`: `restore --json
    /// --target T [--include P] <id>` (a shared lock, like a backup's). Newer restic's
    /// progress lines go to `on_status`, everything else to `log`; the summary line,
    /// when restic prints one, is returned. restic 0.14 prints no progress and no
    /// summary at all, only `restoring <Snapshot ...> to T`: then `Ok(None)`. It
    /// overwrites files already in the target: the caller makes sure there are none.
    /// An unknown snapshot is [`ResticError::NoSuchSnapshot`].
    pub fn restore(
        &self,
        repo: &Repo,
        req: &RestoreRequest,
        stop: &StopHandle,
        log: &mut dyn Write,
        on_status: &mut dyn FnMut(RestoreStatus),
    ) -> Result<Option<RestoreStatus>, ResticError> {
        let spec = self.spec(Some(repo), command::restore_args(req)?)?;
        let mut summary = None;
        let mut diag = Diagnostics::default();
        let mut sink = LogSink::default();
        let fin = process::run(
            &spec,
            stop,
            &RunOptions {
                stdout_line_cap: LINE_CAP,
                timeout: None,
                unreachable_after: UNREACHABLE_AFTER,
            },
            &mut |stream, line| {
                match stream {
                    Stream::Stdout => match output::parse_restore_line(line) {
                        RestoreLine::Status(s) => {
                            on_status(s);
                            return;
                        }
                        RestoreLine::Summary(s) => summary = Some(s),
                        RestoreLine::Other => {}
                    },
                    Stream::Stderr => diag.observe_stderr(line),
                }
                sink.write(log, line);
            },
        )?;
        match finish(&fin, &diag) {
            Ok(()) => Ok(summary),
            Err(ResticError::Failed { .. }) if diag.mentions("no matching ID found") => {
                Err(ResticError::NoSuchSnapshot {
                    id: req.snapshot_id.clone(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Runs `restic <repo flags> <args>` against the repository, with its environment
    /// and password like every other command: a command a user typed (RunCommand). The
    /// caller decides which arguments are acceptable; nothing here looks at them. Every
    /// line of output, stdout and stderr alike, goes to `on_line` as it is read
    /// (redacted; a stdout line longer than `max_line` bytes is cut there).
    ///
    /// Returns restic's exit code, whatever it is: what a non-zero code means is the
    /// caller's to say, with the output it has seen. A stop through `stop` gives
    /// [`ResticError::Stopped`] (unless restic had already exited 0); a death by a
    /// signal footrest did not send gives [`ResticError::Failed`] without a code.
    pub fn run_args(
        &self,
        repo: &Repo,
        args: &[String],
        max_line: usize,
        stop: &StopHandle,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<i32, ResticError> {
        let spec = self.spec(Some(repo), args.iter().map(OsString::from).collect())?;
        let fin = process::run(
            &spec,
            stop,
            &RunOptions {
                stdout_line_cap: max_line,
                timeout: None,
                unreachable_after: UNREACHABLE_AFTER,
            },
            &mut |_, line| on_line(line),
        )?;
        match fin.code() {
            Some(0) => Ok(0),
            _ if fin.stop_requested => Err(ResticError::Stopped),
            Some(code) => Ok(code),
            None => Err(ResticError::Failed {
                exit_code: None,
                message: format!("restic was ended by a signal ({})", fin.status),
            }),
        }
    }

    /// Runs a command whose stdout is one JSON document and returns that stdout.
    fn run_document(
        &self,
        repo: &Repo,
        args: Vec<OsString>,
        stop: &StopHandle,
    ) -> Result<String, ResticError> {
        let spec = self.spec(Some(repo), args)?;
        let mut stdout = String::new();
        let mut diag = Diagnostics::default();
        let fin = process::run(
            &spec,
            stop,
            &RunOptions {
                stdout_line_cap: DOCUMENT_CAP,
                timeout: None,
                unreachable_after: UNREACHABLE_AFTER,
            },
            &mut |stream, line| match stream {
                Stream::Stdout => {
                    stdout.push_str(line);
                    stdout.push('\n');
                }
                Stream::Stderr => {
                    crate::debug!("restic: {line}");
                    diag.observe_stderr(line);
                }
            },
        )?;
        finish(&fin, &diag).map(|()| stdout)
    }

    /// Runs a command whose output is for people: every line goes to `log`; stdout
    /// lines are also returned (for short outputs only).
    fn run_logged(
        &self,
        repo: &Repo,
        args: Vec<OsString>,
        stop: &StopHandle,
        log: &mut dyn Write,
    ) -> Result<Vec<String>, ResticError> {
        let mut stdout = Vec::new();
        self.run_streamed(repo, args, stop, LINE_CAP, log, &mut |line| {
            stdout.push(line.to_string());
            false
        })?;
        Ok(stdout)
    }

    /// Runs a command whose output may be long: each line goes to `log` as it comes and
    /// is not kept, except stdout lines that `take` claims (it returns true for them;
    /// they are not logged). Stdout lines are cut at `stdout_cap`, stderr lines at
    /// [`LINE_CAP`]; of stderr only the few lines that explain a failure are kept.
    fn run_streamed(
        &self,
        repo: &Repo,
        args: Vec<OsString>,
        stop: &StopHandle,
        stdout_cap: usize,
        log: &mut dyn Write,
        take: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(), ResticError> {
        let spec = self.spec(Some(repo), args)?;
        let mut diag = Diagnostics::default();
        let mut sink = LogSink::default();
        let fin = process::run(
            &spec,
            stop,
            &RunOptions {
                stdout_line_cap: stdout_cap,
                timeout: None,
                unreachable_after: UNREACHABLE_AFTER,
            },
            &mut |stream, line| {
                match stream {
                    Stream::Stdout => {
                        if take(line) {
                            return;
                        }
                    }
                    Stream::Stderr => diag.observe_stderr(line),
                }
                sink.write(log, line);
            },
        )?;
        finish(&fin, &diag)
    }
}

/// Exit 0 is success; a requested stop is `Stopped`; anything else says what failed.
fn finish(fin: &process::Finished, diag: &Diagnostics) -> Result<(), ResticError> {
    match fin.code() {
        Some(0) => Ok(()),
        _ if fin.stop_requested => Err(ResticError::Stopped),
        code => Err(output::classify_failure(code, diag)),
    }
}

/// Where restic is: `explicit`, else `from_env`, else `restic` on `path_var`. A value
/// with a `/` is a path (made absolute against `cwd`); a bare name is looked up on
/// `path_var`.
fn resolve_binary(
    explicit: Option<&Path>,
    from_env: Option<&OsStr>,
    path_var: Option<&OsStr>,
    cwd: &Path,
) -> Result<PathBuf, ResticError> {
    let (wanted, source): (&OsStr, &str) = match (explicit, from_env) {
        (Some(p), _) => (p.as_os_str(), "given on the command line"),
        (None, Some(v)) => (v, "from BACKREST_RESTIC_COMMAND"),
        (None, None) => (OsStr::new("restic"), "the default"),
    };
    let wanted_path = Path::new(wanted);
    if wanted.as_encoded_bytes().contains(&b'/') {
        let abs = cwd.join(wanted_path);
        if is_executable(&abs) {
            return Ok(abs);
        }
        return Err(ResticError::NotFound {
            looked_for: format!("{} ({source}) is not an executable file", abs.display()),
        });
    }
    let dirs: Vec<PathBuf> = path_var
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    for dir in &dirs {
        let candidate = cwd.join(dir).join(wanted_path);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    let shown = if dirs.is_empty() {
        "PATH is empty".to_string()
    } else {
        format!(
            "PATH is {}",
            std::env::join_paths(&dirs)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        )
    };
    Err(ResticError::NotFound {
        looked_for: format!("no `{}` ({source}) on PATH; {shown}", wanted_path.display()),
    })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests;
