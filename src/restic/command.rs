//! Builds restic command lines and environments from plain values: the repository as
//! restic needs it ([`Repo`]), a backup's inputs ([`BackupRequest`]), a snapshot
//! filter, a restore ([`RestoreRequest`]) and a listing of one folder of a snapshot. Pure functions of their inputs (footrest's environment and current directory
//! are passed in), so every rule of CONTRACT section 7 is unit-tested here. It starts no
//! process and knows nothing about plans, operations or the config file.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use super::ResticError;
use super::words::{expand_env, split_words};

/// A repository as restic needs it; built by the caller from config. Its `Debug` output
/// masks the password and the env values.
#[derive(Clone, Default, PartialEq)]
pub struct Repo {
    /// `RESTIC_REPOSITORY`: a path or a backend uri (`sftp:...`, `rest:https://...`).
    pub uri: String,
    /// `RESTIC_PASSWORD`; may be empty when `env` supplies `RESTIC_PASSWORD_FILE` or
    /// `RESTIC_PASSWORD_COMMAND`.
    pub password: String,
    /// Raw `KEY=VALUE` entries; `${VAR}` and `$VAR` in the value are expanded from
    /// footrest's environment.
    pub env: Vec<String>,
    /// Raw entries, each split like shell words (no shell); they go before the
    /// subcommand.
    pub flags: Vec<String>,
    pub io_nice: Option<IoNice>,
    pub cpu_nice: Option<CpuNice>,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked_env: Vec<String> = self
            .env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, _)) => format!("{k}=********"),
                None => "********".to_string(),
            })
            .collect();
        f.debug_struct("Repo")
            .field("uri", &masked_uri(&self.uri))
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "********"
                },
            )
            .field("env", &masked_env)
            .field("flags", &self.flags)
            .field("io_nice", &self.io_nice)
            .field("cpu_nice", &self.cpu_nice)
            .finish()
    }
}

/// `uri` with a password in it (`rest:https://user:pw@host/`) replaced by `********`.
fn masked_uri(uri: &str) -> String {
    match uri_password(uri) {
        Some(pw) if !pw.is_empty() => uri.replacen(&format!(":{pw}@"), ":********@", 1),
        _ => uri.to_string(),
    }
}

/// I/O scheduling class for restic (`ionice` prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoNice {
    /// `ionice -c2 -n7`: best effort, lowest priority.
    Low,
    /// `ionice -c2 -n0`: best effort, highest priority.
    High,
    /// `ionice -c3`: only when the disk is otherwise idle.
    Idle,
}

/// CPU priority for restic (`nice` prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuNice {
    /// `nice -n 10`.
    Low,
    /// `nice -n -10` (needs privileges; without them `nice` warns and runs restic as is).
    High,
}

/// What to back up and how; the caller fills it from the plan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackupRequest {
    /// Made absolute (relative to the current directory) when the command is built.
    pub paths: Vec<PathBuf>,
    pub excludes: Vec<String>,
    pub iexcludes: Vec<String>,
    /// e.g. `["plan:photos", "created-by:pi4"]`, one `--tag` each.
    pub tags: Vec<String>,
    pub parent: Option<String>,
    /// The plan's `backup_flags`, raw; each entry is split like shell words.
    pub extra_flags: Vec<String>,
    pub dry_run: bool,
}

/// Which snapshots `snapshots` lists. Empty fields do not filter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SnapshotFilter {
    /// Snapshot ids or unique prefixes. When there are any, restic ignores `tags`.
    pub ids: Vec<String>,
    /// One `--tag` each; within one entry a comma means AND (`plan:a,created-by:b`),
    /// separate entries mean OR, as restic does.
    pub tags: Vec<String>,
}

/// What `forget` removes: either snapshots chosen by keep rules among those carrying the
/// tags, or exactly the snapshots named by `ids`. Never prunes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ForgetRequest {
    /// Keep rules; `None` and `Some(0)` both mean "no such rule" (restic reads 0 so).
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    /// One `--tag` each; within one entry a comma means AND, as restic does
    /// (`plan:photos,created-by:pi4`), separate entries mean OR.
    pub tags: Vec<String>,
    /// `--group-by`; `Some("")` makes one group of everything the tags select, `None`
    /// keeps restic's default (`host,paths`).
    pub group_by: Option<String>,
    /// Forget exactly these snapshots (hex ids or unique prefixes). Then no keep rule
    /// may be set, and `tags` and `group_by` are not used.
    pub ids: Vec<String>,
    pub dry_run: bool,
}

impl ForgetRequest {
    fn keep_rules(&self) -> [(&'static str, Option<u32>); 6] {
        [
            ("--keep-last", self.keep_last),
            ("--keep-hourly", self.keep_hourly),
            ("--keep-daily", self.keep_daily),
            ("--keep-weekly", self.keep_weekly),
            ("--keep-monthly", self.keep_monthly),
            ("--keep-yearly", self.keep_yearly),
        ]
    }
}

/// What `restore` writes, and where.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RestoreRequest {
    /// A snapshot id or a unique prefix of one (hex).
    pub snapshot_id: String,
    /// A path inside the snapshot, as `ls` shows it (`/src/sub`); empty or `/` restores
    /// the whole snapshot. It is normalised with [`snapshot_path`].
    pub path: String,
    /// An absolute folder; restic creates it when it is missing. The restored files keep
    /// their snapshot path below it (`<target>/src/sub/...`).
    pub target: PathBuf,
}

/// How much unused space `prune` may leave in the repository rather than repack.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxUnused {
    /// Percent of the repository size: `--max-unused 10%`; restic wants 0 up to (not
    /// including) 100.
    Percent(f64),
    /// Bytes: `--max-unused 1048576` (restic 0.14 takes plain bytes as well as k/M/G/T
    /// suffixes; plain bytes are exact).
    Bytes(u64),
}

/// Environment variables restic reads a repository or its password from. footrest's own
/// values are never passed on: only the repo's settings are.
const REPO_VARS: [&str; 5] = [
    "RESTIC_REPOSITORY",
    "RESTIC_REPOSITORY_FILE",
    "RESTIC_PASSWORD",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND",
];

/// A fully resolved child process: program, arguments and the complete environment.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CommandSpec {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    /// Strings to blank out of everything restic prints (see `process::Redactor`).
    pub secrets: Vec<String>,
}

/// Everything outside the repo that shapes a command: footrest's environment (in order)
/// and where restic keeps its cache when the environment names no home.
pub(crate) struct Host<'a> {
    pub env: &'a [(OsString, OsString)],
    pub cache_fallback: Option<&'a Path>,
}

impl Host<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    }
}

/// The command that runs `restic <repo flags> <sub_args>` for `repo` (or, without a repo,
/// `restic <sub_args>` with the repo variables removed), prefixed by `ionice`/`nice`.
pub(crate) fn command_spec(
    restic: &Path,
    repo: Option<&Repo>,
    sub_args: Vec<OsString>,
    host: &Host<'_>,
) -> Result<CommandSpec, ResticError> {
    let mut words: Vec<OsString> = Vec::new();
    if let Some(repo) = repo {
        match repo.io_nice {
            Some(IoNice::Low) => words.extend(["ionice", "-c2", "-n7"].map(OsString::from)),
            Some(IoNice::High) => words.extend(["ionice", "-c2", "-n0"].map(OsString::from)),
            Some(IoNice::Idle) => words.extend(["ionice", "-c3"].map(OsString::from)),
            None => {}
        }
        match repo.cpu_nice {
            Some(CpuNice::Low) => words.extend(["nice", "-n", "10"].map(OsString::from)),
            Some(CpuNice::High) => words.extend(["nice", "-n", "-10"].map(OsString::from)),
            None => {}
        }
    }
    words.push(restic.as_os_str().to_owned());
    if let Some(repo) = repo {
        for (i, entry) in repo.flags.iter().enumerate() {
            let split = split_words(entry).map_err(|e| ResticError::InvalidArgs {
                detail: format!("repo flags entry {}: {e}", i + 1),
            })?;
            words.extend(split.into_iter().map(OsString::from));
        }
    }
    words.extend(sub_args);
    let program = words.remove(0);
    let env = restic_env(repo, host)?;
    let secrets = repo.map(|r| secrets_of(r, &env)).unwrap_or_default();
    Ok(CommandSpec {
        program,
        args: words,
        env,
        secrets,
    })
}

/// footrest's environment minus every repo variable, then `RESTIC_REPOSITORY`,
/// `RESTIC_PASSWORD` (when set), the repo's own entries (which may bring back
/// `RESTIC_PASSWORD_FILE` and the like), `RESTIC_PROGRESS_FPS=1`, and a cache directory
/// only when neither `XDG_CACHE_HOME` nor `HOME` is there to find one.
fn restic_env(
    repo: Option<&Repo>,
    host: &Host<'_>,
) -> Result<Vec<(OsString, OsString)>, ResticError> {
    let mut env: Vec<(OsString, OsString)> = host
        .env
        .iter()
        .filter(|(k, _)| !REPO_VARS.iter().any(|v| k == v))
        .cloned()
        .collect();
    let Some(repo) = repo else {
        return Ok(env);
    };
    set(&mut env, "RESTIC_REPOSITORY".as_ref(), repo.uri.as_ref());
    if !repo.password.is_empty() {
        set(&mut env, "RESTIC_PASSWORD".as_ref(), repo.password.as_ref());
    }
    let lookup = |name: &str| host.var(name);
    for (i, entry) in repo.env.iter().enumerate() {
        // The value may be a secret: errors name the entry by position only.
        let Some((key, value)) = entry.split_once('=') else {
            return Err(ResticError::InvalidArgs {
                detail: format!("repo env entry {} is not KEY=VALUE", i + 1),
            });
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(ResticError::InvalidArgs {
                detail: format!("repo env entry {} has an empty name", i + 1),
            });
        }
        set(&mut env, key.as_ref(), expand_env(value, &lookup).as_ref());
    }
    set(&mut env, "RESTIC_PROGRESS_FPS".as_ref(), "1".as_ref());
    let has = |name: &str| env.iter().any(|(k, v)| k == name && !v.is_empty());
    if !has("XDG_CACHE_HOME") && !has("HOME") && !has("RESTIC_CACHE_DIR") {
        if let Some(dir) = host.cache_fallback {
            set(&mut env, "RESTIC_CACHE_DIR".as_ref(), dir.as_os_str());
        }
    }
    Ok(env)
}

fn set(env: &mut Vec<(OsString, OsString)>, key: &OsStr, value: &OsStr) {
    match env.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value.to_owned(),
        None => env.push((key.to_owned(), value.to_owned())),
    }
}

/// Shortest secret worth redacting: blanking shorter strings would mangle ordinary words
/// in messages, and no password manager produces one.
const MIN_SECRET_LEN: usize = 4;

/// The strings that must never reach a log or an error: the password, a password inside
/// the uri (`rest:https://user:pw@host/`), and the (expanded) values of the repo's env
/// entries whose name says they are secret.
fn secrets_of(repo: &Repo, env: &[(OsString, OsString)]) -> Vec<String> {
    let mut out = vec![repo.password.clone()];
    if let Some(pw) = uri_password(&repo.uri) {
        out.push(pw.to_string());
    }
    for entry in &repo.env {
        let Some((key, _)) = entry.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let upper = key.to_ascii_uppercase();
        if ["PASSWORD", "SECRET", "TOKEN", "KEY"]
            .iter()
            .any(|w| upper.contains(w))
        {
            if let Some((_, v)) = env.iter().find(|(k, _)| k == key) {
                out.push(v.to_string_lossy().into_owned());
            }
        }
    }
    out.retain(|s| s.chars().count() >= MIN_SECRET_LEN);
    out.sort();
    out.dedup();
    out
}

/// The password in `scheme://user:password@host/...`, if any.
fn uri_password(uri: &str) -> Option<&str> {
    let (_, rest) = uri.split_once("://")?;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, pw) = userinfo.split_once(':')?;
    Some(pw)
}

/// `backup --json <abs paths> --exclude-caches --tag T... [--exclude X]...
/// [--iexclude X]... [--parent P] [--dry-run] [backup_flags]`.
pub(crate) fn backup_args(req: &BackupRequest, cwd: &Path) -> Result<Vec<OsString>, ResticError> {
    if req.paths.is_empty() {
        return Err(ResticError::InvalidArgs {
            detail: "the backup has no source paths".into(),
        });
    }
    let mut args: Vec<OsString> = vec!["backup".into(), "--json".into()];
    for path in &req.paths {
        if path.as_os_str().is_empty() {
            return Err(ResticError::InvalidArgs {
                detail: "a source path is empty".into(),
            });
        }
        args.push(cwd.join(path).into_os_string());
    }
    args.push("--exclude-caches".into());
    for tag in &req.tags {
        args.extend(["--tag".into(), tag.into()]);
    }
    for x in &req.excludes {
        args.extend(["--exclude".into(), x.into()]);
    }
    for x in &req.iexcludes {
        args.extend(["--iexclude".into(), x.into()]);
    }
    if let Some(parent) = &req.parent {
        args.extend(["--parent".into(), parent.into()]);
    }
    if req.dry_run {
        args.push("--dry-run".into());
    }
    for (i, entry) in req.extra_flags.iter().enumerate() {
        let split = split_words(entry).map_err(|e| ResticError::InvalidArgs {
            detail: format!("backup_flags entry {}: {e}", i + 1),
        })?;
        args.extend(split.into_iter().map(OsString::from));
    }
    Ok(args)
}

/// `snapshots --json --no-lock [--tag T]... [-- ids...]`. Listing snapshots only reads
/// the repository: without a lock it never blocks, nor is blocked by, another restic
/// (and leaves nothing behind if it is killed).
pub(crate) fn snapshots_args(filter: &SnapshotFilter) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["snapshots".into(), "--json".into(), "--no-lock".into()];
    for tag in &filter.tags {
        args.extend(["--tag".into(), tag.into()]);
    }
    if !filter.ids.is_empty() {
        // `--` so that no id can ever be read as a flag.
        args.push("--".into());
        args.extend(filter.ids.iter().map(OsString::from));
    }
    args
}

/// `forget --json [--keep-* N]... [--tag T]... [--group-by G] [--dry-run]`, or with ids
/// `forget [--dry-run] -- ids...` (restic 0.14 prints no JSON for ids). Never `--prune`.
pub(crate) fn forget_args(req: &ForgetRequest) -> Result<Vec<OsString>, ResticError> {
    let rules: Vec<(&str, u32)> = req
        .keep_rules()
        .into_iter()
        .filter_map(|(flag, n)| n.filter(|&n| n > 0).map(|n| (flag, n)))
        .collect();
    if !req.ids.is_empty() {
        if !rules.is_empty() {
            return Err(ResticError::InvalidArgs {
                detail: "forget takes either snapshot ids or keep rules, not both".into(),
            });
        }
        for id in &req.ids {
            check_snapshot_id(id, "forget")?;
        }
        let mut args: Vec<OsString> = vec!["forget".into()];
        if req.dry_run {
            args.push("--dry-run".into());
        }
        // `--` so that no id can ever be read as a flag.
        args.push("--".into());
        args.extend(req.ids.iter().map(OsString::from));
        return Ok(args);
    }
    if rules.is_empty() {
        return Err(ResticError::InvalidArgs {
            detail: "forget needs a keep rule above 0 (keep last, hourly, daily, weekly, \
                     monthly or yearly) or snapshot ids; without one restic removes nothing"
                .into(),
        });
    }
    let mut args: Vec<OsString> = vec!["forget".into(), "--json".into()];
    for (flag, n) in rules {
        args.extend([flag.into(), n.to_string().into()]);
    }
    for tag in &req.tags {
        args.extend(["--tag".into(), tag.into()]);
    }
    if let Some(group_by) = &req.group_by {
        args.extend(["--group-by".into(), group_by.into()]);
    }
    if req.dry_run {
        args.push("--dry-run".into());
    }
    Ok(args)
}

/// `prune [--max-unused 10% | --max-unused 1048576]`.
pub(crate) fn prune_args(max_unused: Option<MaxUnused>) -> Result<Vec<OsString>, ResticError> {
    let mut args: Vec<OsString> = vec!["prune".into()];
    match max_unused {
        Some(MaxUnused::Percent(p)) => {
            if !(p.is_finite() && (0.0..100.0).contains(&p)) {
                return Err(ResticError::InvalidArgs {
                    detail: format!(
                        "max unused {p}% is not a percentage from 0 up to (not including) 100"
                    ),
                });
            }
            args.extend(["--max-unused".into(), format!("{p}%").into()]);
        }
        Some(MaxUnused::Bytes(n)) => {
            args.extend(["--max-unused".into(), n.to_string().into()]);
        }
        None => {}
    }
    Ok(args)
}

/// `check [--read-data-subset N%]`; the subset only when above 0 (at most 100).
pub(crate) fn check_args(
    read_data_subset_percent: Option<f64>,
) -> Result<Vec<OsString>, ResticError> {
    let mut args: Vec<OsString> = vec!["check".into()];
    if let Some(p) = read_data_subset_percent {
        if !p.is_finite() || p > 100.0 {
            return Err(ResticError::InvalidArgs {
                detail: format!("read data subset {p}% is not a percentage up to 100"),
            });
        }
        if p > 0.0 {
            args.extend(["--read-data-subset".into(), format!("{p}%").into()]);
        }
    }
    Ok(args)
}

/// A path inside a snapshot in the form restic's `ls` and `--include` want: absolute,
/// `/`-separated, no empty, `.` or trailing components (`""` and `/` are the snapshot's
/// root, `src/sub/` is `/src/sub`). A `..` component, which would step out of the
/// snapshot, and a NUL byte are refused with a message that says why.
pub fn snapshot_path(path: &str) -> Result<String, String> {
    if path.contains('\0') {
        return Err(format!("{path:?} contains a NUL byte"));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "{path:?} has a `..` component; give a path inside the snapshot, as \
                     ListSnapshotFiles shows it (such as /home/me/photos)"
                ));
            }
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// A snapshot id as restic takes it on the command line: 1 to 64 hex digits (never a
/// flag, never `latest`).
fn check_snapshot_id(id: &str, purpose: &str) -> Result<(), ResticError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ResticError::InvalidArgs {
            detail: format!("{id:?} is not a snapshot id (1 to 64 hex digits) to {purpose}"),
        });
    }
    Ok(())
}

/// A restic filter pattern that matches exactly `path`: restic reads `*`, `?`, `[` and
/// `\` in `--include` as glob syntax, so they are escaped with a backslash.
fn literal_pattern(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `restore --json --target T [--include P] -- <id>`. The whole snapshot when the path
/// is its root; otherwise only `path` (and what is below it), matched literally.
pub(crate) fn restore_args(req: &RestoreRequest) -> Result<Vec<OsString>, ResticError> {
    check_snapshot_id(&req.snapshot_id, "restore")?;
    let path = snapshot_path(&req.path).map_err(|e| ResticError::InvalidArgs {
        detail: format!("restore path {e}"),
    })?;
    if !req.target.is_absolute() {
        return Err(ResticError::InvalidArgs {
            detail: format!(
                "restore target {} is not an absolute path",
                req.target.display()
            ),
        });
    }
    let mut args: Vec<OsString> = vec![
        "restore".into(),
        "--json".into(),
        "--target".into(),
        req.target.clone().into_os_string(),
    ];
    if path != "/" {
        args.extend(["--include".into(), literal_pattern(&path).into()]);
    }
    // `--` so that the id can never be read as a flag.
    args.extend(["--".into(), req.snapshot_id.clone().into()]);
    Ok(args)
}

/// `ls --json --no-lock -- <id> <dir>`: `dir` and its direct children (restic 0.14
/// lists recursively only when no folder is given). Listing only reads the repository:
/// without a lock it never waits for, nor holds up, another restic.
pub(crate) fn ls_args(snapshot_id: &str, dir: &str) -> Result<Vec<OsString>, ResticError> {
    check_snapshot_id(snapshot_id, "list")?;
    let dir = snapshot_path(dir).map_err(|e| ResticError::InvalidArgs {
        detail: format!("folder {e}"),
    })?;
    Ok(vec![
        "ls".into(),
        "--json".into(),
        "--no-lock".into(),
        "--".into(),
        snapshot_id.into(),
        dir.into(),
    ])
}

/// `stats --json --mode raw-data`: what the repository stores, after deduplication.
pub(crate) fn stats_args() -> Vec<OsString> {
    ["stats", "--json", "--mode", "raw-data"]
        .map(OsString::from)
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        v.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    fn repo() -> Repo {
        Repo {
            uri: "/srv/repo".into(),
            password: "hunter22".into(),
            ..Repo::default()
        }
    }

    fn spec(repo: Option<&Repo>, env: &[(&str, &str)], sub: &[&str]) -> CommandSpec {
        let env = pairs(env);
        let host = Host {
            env: &env,
            cache_fallback: Some(Path::new("/var/lib/footrest/cache")),
        };
        command_spec(Path::new("/usr/bin/restic"), repo, os(sub), &host).unwrap()
    }

    fn get<'a>(spec: &'a CommandSpec, key: &str) -> Option<&'a str> {
        spec.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.to_str().unwrap())
    }

    #[test]
    fn backup_argv_follows_the_contract() {
        let req = BackupRequest {
            paths: vec!["/data/photos".into(), "docs".into()],
            excludes: vec!["*.tmp".into(), "/data/photos/cache dir".into()],
            iexcludes: vec!["*.JPG~".into()],
            tags: vec!["plan:photos".into(), "created-by:pi4".into()],
            parent: Some("9a3c77".into()),
            extra_flags: vec![
                "--exclude-larger-than 4G".into(),
                "--one-file-system".into(),
            ],
            dry_run: true,
        };
        let args = backup_args(&req, Path::new("/home/pi")).unwrap();
        assert_eq!(
            args,
            os(&[
                "backup",
                "--json",
                "/data/photos",
                "/home/pi/docs",
                "--exclude-caches",
                "--tag",
                "plan:photos",
                "--tag",
                "created-by:pi4",
                "--exclude",
                "*.tmp",
                "--exclude",
                "/data/photos/cache dir",
                "--iexclude",
                "*.JPG~",
                "--parent",
                "9a3c77",
                "--dry-run",
                "--exclude-larger-than",
                "4G",
                "--one-file-system",
            ])
        );
    }

    #[test]
    fn backup_argv_minimal() {
        let req = BackupRequest {
            paths: vec!["/x".into()],
            ..BackupRequest::default()
        };
        let args = backup_args(&req, Path::new("/")).unwrap();
        assert_eq!(args, os(&["backup", "--json", "/x", "--exclude-caches"]));
    }

    #[test]
    fn backup_argv_errors() {
        let none = BackupRequest::default();
        let err = backup_args(&none, Path::new("/")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot build the restic command: the backup has no source paths"
        );
        let bad = BackupRequest {
            paths: vec!["/x".into()],
            extra_flags: vec!["--ok".into(), "--exclude 'oops".into()],
            ..BackupRequest::default()
        };
        let err = backup_args(&bad, Path::new("/")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot build the restic command: backup_flags entry 2: unbalanced quote or \
             trailing backslash"
        );
    }

    #[test]
    fn repo_flags_come_first_and_prefix_comes_before_restic() {
        let mut r = repo();
        r.flags = vec![
            "-o sftp.command='ssh -p 2222 nas'".into(),
            "--limit-upload 500".into(),
        ];
        r.io_nice = Some(IoNice::Idle);
        r.cpu_nice = Some(CpuNice::Low);
        let s = spec(Some(&r), &[], &["snapshots", "--json"]);
        assert_eq!(s.program, "ionice");
        assert_eq!(
            s.args,
            os(&[
                "-c3",
                "nice",
                "-n",
                "10",
                "/usr/bin/restic",
                "-o",
                "sftp.command=ssh -p 2222 nas",
                "--limit-upload",
                "500",
                "snapshots",
                "--json",
            ])
        );
    }

    #[test]
    fn nice_prefixes() {
        let cases = [
            (
                Some(IoNice::Low),
                None,
                vec!["ionice", "-c2", "-n7", "/usr/bin/restic"],
            ),
            (
                Some(IoNice::High),
                None,
                vec!["ionice", "-c2", "-n0", "/usr/bin/restic"],
            ),
            (
                None,
                Some(CpuNice::High),
                vec!["nice", "-n", "-10", "/usr/bin/restic"],
            ),
            (None, None, vec!["/usr/bin/restic"]),
        ];
        for (io, cpu, want) in cases {
            let mut r = repo();
            r.io_nice = io;
            r.cpu_nice = cpu;
            let s = spec(Some(&r), &[], &[]);
            let mut got = vec![s.program.clone()];
            got.extend(s.args.clone());
            assert_eq!(got, os(&want));
        }
    }

    #[test]
    fn bad_repo_flag_is_named_by_position() {
        let mut r = repo();
        r.flags = vec!["--x \"y".into()];
        let env = Vec::new();
        let host = Host {
            env: &env,
            cache_fallback: None,
        };
        let err = command_spec(Path::new("/r"), Some(&r), vec![], &host).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot build the restic command: repo flags entry 1: unbalanced quote or trailing \
             backslash"
        );
    }

    #[test]
    fn env_replaces_footrest_repo_variables() {
        let mut r = repo();
        r.env = vec![
            "B2_ACCOUNT_KEY=${B2_SECRET}".into(),
            "RESTIC_COMPRESSION=max".into(),
        ];
        let s = spec(
            Some(&r),
            &[
                ("PATH", "/usr/bin"),
                ("HOME", "/home/pi"),
                ("RESTIC_REPOSITORY", "/elsewhere"),
                ("RESTIC_PASSWORD_FILE", "/etc/other-pw"),
                ("RESTIC_PASSWORD_COMMAND", "pass show x"),
                ("RESTIC_REPOSITORY_FILE", "/etc/repo"),
                ("RESTIC_PROGRESS_FPS", "30"),
                ("B2_SECRET", "s3cr3t-key"),
            ],
            &[],
        );
        assert_eq!(get(&s, "RESTIC_REPOSITORY"), Some("/srv/repo"));
        assert_eq!(get(&s, "RESTIC_PASSWORD"), Some("hunter22"));
        assert_eq!(get(&s, "RESTIC_PASSWORD_FILE"), None);
        assert_eq!(get(&s, "RESTIC_PASSWORD_COMMAND"), None);
        assert_eq!(get(&s, "RESTIC_REPOSITORY_FILE"), None);
        assert_eq!(get(&s, "RESTIC_PROGRESS_FPS"), Some("1"));
        assert_eq!(get(&s, "B2_ACCOUNT_KEY"), Some("s3cr3t-key"));
        assert_eq!(get(&s, "RESTIC_COMPRESSION"), Some("max"));
        assert_eq!(get(&s, "PATH"), Some("/usr/bin"));
        // HOME is there, so restic finds its own cache.
        assert_eq!(get(&s, "RESTIC_CACHE_DIR"), None);
        assert_eq!(
            s.secrets,
            vec!["hunter22".to_string(), "s3cr3t-key".to_string()]
        );
    }

    #[test]
    fn repo_env_may_bring_its_own_password_source() {
        let mut r = repo();
        r.password.clear();
        r.env = vec!["RESTIC_PASSWORD_FILE=$HOME/.restic-pw".into()];
        let s = spec(
            Some(&r),
            &[("HOME", "/home/pi"), ("RESTIC_PASSWORD", "from-footrest")],
            &[],
        );
        assert_eq!(get(&s, "RESTIC_PASSWORD"), None);
        assert_eq!(get(&s, "RESTIC_PASSWORD_FILE"), Some("/home/pi/.restic-pw"));
    }

    #[test]
    fn bad_env_entry_is_named_by_position_not_content() {
        let mut r = repo();
        r.env = vec!["A=1".into(), "secretvalue".into()];
        let env = Vec::new();
        let host = Host {
            env: &env,
            cache_fallback: None,
        };
        let err = command_spec(Path::new("/r"), Some(&r), vec![], &host).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot build the restic command: repo env entry 2 is not KEY=VALUE"
        );
    }

    #[test]
    fn cache_dir_only_without_home() {
        let s = spec(Some(&repo()), &[("PATH", "/bin")], &[]);
        assert_eq!(get(&s, "RESTIC_CACHE_DIR"), Some("/var/lib/footrest/cache"));
        let s = spec(Some(&repo()), &[("XDG_CACHE_HOME", "/c")], &[]);
        assert_eq!(get(&s, "RESTIC_CACHE_DIR"), None);
        let s = spec(Some(&repo()), &[("RESTIC_CACHE_DIR", "/mine")], &[]);
        assert_eq!(get(&s, "RESTIC_CACHE_DIR"), Some("/mine"));
    }

    #[test]
    fn without_a_repo_only_repo_variables_are_removed() {
        let s = spec(
            None,
            &[("PATH", "/bin"), ("RESTIC_PASSWORD", "x"), ("LANG", "C")],
            &["version"],
        );
        assert_eq!(s.program, "/usr/bin/restic");
        assert_eq!(s.args, os(&["version"]));
        assert_eq!(s.env, pairs(&[("PATH", "/bin"), ("LANG", "C")]));
        assert!(s.secrets.is_empty());
    }

    #[test]
    fn secrets_include_uri_passwords() {
        let r = Repo {
            uri: "rest:https://backup:p4ssw0rd@nas:8000/pi".into(),
            password: "abc".into(), // too short to redact safely
            ..Repo::default()
        };
        assert_eq!(secrets_of(&r, &[]), vec!["p4ssw0rd".to_string()]);
        assert_eq!(uri_password("sftp:user@host:/srv/repo"), None);
        assert_eq!(
            format!("{r:?}").split(',').next().unwrap(),
            "Repo { uri: \"rest:https://backup:********@nas:8000/pi\""
        );
        assert_eq!(uri_password("s3:https://s3.example.com/bucket"), None);
    }

    #[test]
    fn debug_output_masks_secrets() {
        let mut r = repo();
        r.env = vec!["B2_ACCOUNT_KEY=abcdef123".into()];
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("hunter22") && !shown.contains("abcdef123"),
            "{shown}"
        );
        assert!(shown.contains("B2_ACCOUNT_KEY=********") && shown.contains("/srv/repo"));
    }

    #[test]
    fn snapshots_argv() {
        assert_eq!(
            snapshots_args(&SnapshotFilter::default()),
            os(&["snapshots", "--json", "--no-lock"])
        );
        let f = SnapshotFilter {
            ids: vec!["9a3c77".into()],
            tags: vec!["plan:photos,created-by:pi4".into(), "legacy".into()],
        };
        assert_eq!(
            snapshots_args(&f),
            os(&[
                "snapshots",
                "--json",
                "--no-lock",
                "--tag",
                "plan:photos,created-by:pi4",
                "--tag",
                "legacy",
                "--",
                "9a3c77",
            ])
        );
    }

    #[test]
    fn forget_argv_with_keep_rules_tags_and_one_group() {
        let req = ForgetRequest {
            keep_last: Some(2),
            keep_hourly: Some(0), // 0 is no rule
            keep_daily: Some(7),
            keep_weekly: Some(4),
            keep_monthly: Some(12),
            keep_yearly: Some(3),
            tags: vec!["plan:photos,created-by:pi4".into()],
            group_by: Some(String::new()),
            ids: vec![],
            dry_run: false,
        };
        assert_eq!(
            forget_args(&req).unwrap(),
            os(&[
                "forget",
                "--json",
                "--keep-last",
                "2",
                "--keep-daily",
                "7",
                "--keep-weekly",
                "4",
                "--keep-monthly",
                "12",
                "--keep-yearly",
                "3",
                "--tag",
                "plan:photos,created-by:pi4",
                "--group-by",
                "",
            ])
        );
        let req = ForgetRequest {
            keep_hourly: Some(24),
            tags: vec!["a".into(), "b,c".into()],
            group_by: Some("host,tags".into()),
            dry_run: true,
            ..ForgetRequest::default()
        };
        assert_eq!(
            forget_args(&req).unwrap(),
            os(&[
                "forget",
                "--json",
                "--keep-hourly",
                "24",
                "--tag",
                "a",
                "--tag",
                "b,c",
                "--group-by",
                "host,tags",
                "--dry-run",
            ])
        );
        // Without group_by restic groups by host and paths itself.
        let req = ForgetRequest {
            keep_last: Some(1),
            ..ForgetRequest::default()
        };
        assert_eq!(
            forget_args(&req).unwrap(),
            os(&["forget", "--json", "--keep-last", "1"])
        );
    }

    #[test]
    fn forget_argv_with_ids() {
        let req = ForgetRequest {
            ids: vec!["9a3c77f0".into(), "ABCDEF0123".into()],
            // Not used with ids, as restic does not use them either.
            tags: vec!["plan:x".into()],
            group_by: Some(String::new()),
            ..ForgetRequest::default()
        };
        assert_eq!(
            forget_args(&req).unwrap(),
            os(&["forget", "--", "9a3c77f0", "ABCDEF0123"])
        );
        let dry = ForgetRequest {
            dry_run: true,
            ..req.clone()
        };
        assert_eq!(
            forget_args(&dry).unwrap(),
            os(&["forget", "--dry-run", "--", "9a3c77f0", "ABCDEF0123"])
        );
    }

    #[test]
    fn forget_argv_errors() {
        let msg = |req: &ForgetRequest| forget_args(req).unwrap_err().to_string();
        assert_eq!(
            msg(&ForgetRequest {
                ids: vec!["9a3c77f0".into()],
                keep_last: Some(3),
                ..ForgetRequest::default()
            }),
            "cannot build the restic command: forget takes either snapshot ids or keep rules, \
             not both"
        );
        for bad in ["", "latest", "--prune", "a".repeat(65).as_str()] {
            let err = msg(&ForgetRequest {
                ids: vec!["9a3c77f0".into(), bad.into()],
                ..ForgetRequest::default()
            });
            assert_eq!(
                err,
                format!(
                    "cannot build the restic command: {bad:?} is not a snapshot id (1 to 64 hex \
                     digits) to forget"
                )
            );
        }
        let no_rule = ForgetRequest {
            keep_last: Some(0),
            tags: vec!["plan:x".into()],
            ..ForgetRequest::default()
        };
        assert_eq!(
            msg(&no_rule),
            "cannot build the restic command: forget needs a keep rule above 0 (keep last, \
             hourly, daily, weekly, monthly or yearly) or snapshot ids; without one restic \
             removes nothing"
        );
    }

    #[test]
    fn prune_argv() {
        assert_eq!(prune_args(None).unwrap(), os(&["prune"]));
        let with = |m| prune_args(Some(m)).unwrap();
        assert_eq!(
            with(MaxUnused::Percent(10.0)),
            os(&["prune", "--max-unused", "10%"])
        );
        assert_eq!(
            with(MaxUnused::Percent(2.5)),
            os(&["prune", "--max-unused", "2.5%"])
        );
        assert_eq!(
            with(MaxUnused::Percent(0.0)),
            os(&["prune", "--max-unused", "0%"])
        );
        assert_eq!(
            with(MaxUnused::Bytes(1_048_576)),
            os(&["prune", "--max-unused", "1048576"])
        );
        assert_eq!(
            with(MaxUnused::Bytes(0)),
            os(&["prune", "--max-unused", "0"])
        );
        for bad in [100.0, 150.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = prune_args(Some(MaxUnused::Percent(bad))).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "cannot build the restic command: max unused {bad}% is not a percentage \
                     from 0 up to (not including) 100"
                )
            );
        }
    }

    #[test]
    fn check_argv() {
        assert_eq!(check_args(None).unwrap(), os(&["check"]));
        assert_eq!(check_args(Some(0.0)).unwrap(), os(&["check"]));
        assert_eq!(check_args(Some(-5.0)).unwrap(), os(&["check"]));
        assert_eq!(
            check_args(Some(10.0)).unwrap(),
            os(&["check", "--read-data-subset", "10%"])
        );
        assert_eq!(
            check_args(Some(0.5)).unwrap(),
            os(&["check", "--read-data-subset", "0.5%"])
        );
        assert_eq!(
            check_args(Some(100.0)).unwrap(),
            os(&["check", "--read-data-subset", "100%"])
        );
        for bad in [100.5, f64::NAN] {
            assert_eq!(
                check_args(Some(bad)).unwrap_err().to_string(),
                format!(
                    "cannot build the restic command: read data subset {bad}% is not a \
                     percentage up to 100"
                )
            );
        }
    }

    #[test]
    fn stats_argv() {
        assert_eq!(stats_args(), os(&["stats", "--json", "--mode", "raw-data"]));
    }

    #[test]
    fn snapshot_paths_are_normalised_and_never_escape() {
        for (given, want) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/src/sub", "/src/sub"),
            ("src/sub/", "/src/sub"),
            ("/src/./sub//b.txt", "/src/sub/b.txt"),
            ("/a b/é/[x]*", "/a b/é/[x]*"),
            ("/src/..data", "/src/..data"),
        ] {
            assert_eq!(snapshot_path(given).as_deref(), Ok(want), "{given:?}");
        }
        for bad in ["..", "/src/../etc", "/src/sub/..", "../x", "/a\0b"] {
            assert!(snapshot_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            snapshot_path("/src/../etc").unwrap_err(),
            "\"/src/../etc\" has a `..` component; give a path inside the snapshot, as \
             ListSnapshotFiles shows it (such as /home/me/photos)"
        );
    }

    #[test]
    fn restore_argv() {
        let req = RestoreRequest {
            snapshot_id: "9a3c77f0".into(),
            path: "src/sub/".into(),
            target: "/srv/restores/7".into(),
        };
        assert_eq!(
            restore_args(&req).unwrap(),
            os(&[
                "restore",
                "--json",
                "--target",
                "/srv/restores/7",
                "--include",
                "/src/sub",
                "--",
                "9a3c77f0",
            ])
        );
        // The whole snapshot: no include at all.
        for root in ["", "/"] {
            let whole = RestoreRequest {
                path: root.into(),
                ..req.clone()
            };
            assert_eq!(
                restore_args(&whole).unwrap(),
                os(&[
                    "restore",
                    "--json",
                    "--target",
                    "/srv/restores/7",
                    "--",
                    "9a3c77f0"
                ])
            );
        }
        // Glob characters in names are matched literally.
        let glob = RestoreRequest {
            path: "/src/a[1]*?.txt/b\\c".into(),
            ..req.clone()
        };
        let args = restore_args(&glob).unwrap();
        assert_eq!(args[5], OsString::from("/src/a\\[1]\\*\\?.txt/b\\\\c"));
    }

    #[test]
    fn restore_argv_errors() {
        let ok = RestoreRequest {
            snapshot_id: "9a3c77f0".into(),
            path: "/src".into(),
            target: "/srv/r".into(),
        };
        let msg = |req: RestoreRequest| restore_args(&req).unwrap_err().to_string();
        for bad in ["", "latest", "--target=/etc", "a".repeat(65).as_str()] {
            assert_eq!(
                msg(RestoreRequest {
                    snapshot_id: bad.into(),
                    ..ok.clone()
                }),
                format!(
                    "cannot build the restic command: {bad:?} is not a snapshot id (1 to 64 hex \
                     digits) to restore"
                )
            );
        }
        assert!(
            msg(RestoreRequest {
                path: "/src/../../etc".into(),
                ..ok.clone()
            })
            .starts_with(
                "cannot build the restic command: restore path \"/src/../../etc\" has a `..`"
            )
        );
        assert_eq!(
            msg(RestoreRequest {
                target: "restores/7".into(),
                ..ok.clone()
            }),
            "cannot build the restic command: restore target restores/7 is not an absolute path"
        );
    }

    #[test]
    fn ls_argv() {
        assert_eq!(
            ls_args("9a3c77f0", "").unwrap(),
            os(&["ls", "--json", "--no-lock", "--", "9a3c77f0", "/"])
        );
        assert_eq!(
            ls_args("9A3C", "src/sub/").unwrap(),
            os(&["ls", "--json", "--no-lock", "--", "9A3C", "/src/sub"])
        );
        assert!(ls_args("latest", "/").is_err());
        assert!(ls_args("9a3c", "/src/../..").is_err());
    }
}
