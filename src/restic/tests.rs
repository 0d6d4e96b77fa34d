//! The module against the real restic (`/usr/bin/restic` or the first on PATH) in
//! temporary directories. `restic init` costs seconds of key derivation, so one
//! repository is initialised once and copied for each test; every repo runs with
//! `--no-cache` so that copies (which share a repository id) never share a cache.

use super::*;
use std::fs;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;
use tempfile::TempDir;

const PASSWORD: &str = "test-password";

fn restic() -> &'static Restic {
    static R: OnceLock<Restic> = OnceLock::new();
    R.get_or_init(|| Restic::locate(None).expect("restic is installed for these tests"))
}

fn repo_at(dir: &Path) -> Repo {
    Repo {
        uri: dir.to_string_lossy().into_owned(),
        password: PASSWORD.into(),
        flags: vec!["--no-cache".into()],
        ..Repo::default()
    }
}

/// The repository `init` created once; tests get copies.
fn template() -> &'static (TempDir, String) {
    static T: OnceLock<(TempDir, String)> = OnceLock::new();
    T.get_or_init(|| {
        let dir = TempDir::new().unwrap();
        let repo = repo_at(&dir.path().join("repo"));
        let mut log = Vec::new();
        restic().init(&repo, &StopHandle::new(), &mut log).unwrap();
        let log = String::from_utf8(log).unwrap();
        assert!(log.contains("created restic repository"), "{log}");
        assert!(!log.contains(PASSWORD));
        (dir, log)
    })
}

/// A fresh, empty repository of its own (a copy of the template) in a new temp dir.
fn fresh_repo() -> (TempDir, Repo) {
    let dir = TempDir::new().unwrap();
    copy_tree(&template().0.path().join("repo"), &dir.path().join("repo"));
    let repo = repo_at(&dir.path().join("repo"));
    (dir, repo)
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn small_tree(root: &Path) -> PathBuf {
    let src = root.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.txt"), "hello\n").unwrap();
    fs::write(src.join("sub/b.txt"), "world\n").unwrap();
    fs::write(src.join("skip.tmp"), "excluded\n").unwrap();
    src
}

fn backup(
    r: &Restic,
    repo: &Repo,
    req: &BackupRequest,
) -> (Result<BackupOutcome, ResticError>, Vec<BackupEvent>, String) {
    let mut log = Vec::new();
    let mut events = Vec::new();
    let res = r.backup(repo, req, &StopHandle::new(), &mut log, &mut |e| {
        events.push(e)
    });
    (res, events, String::from_utf8(log).unwrap())
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn locate_finds_a_supported_restic() {
    let r = restic();
    assert!(r.path().is_absolute());
    assert!(r.version() >= MIN_VERSION);
    let by_path = Restic::locate(Some(r.path())).unwrap();
    assert_eq!(by_path.path(), r.path());
    assert_eq!(by_path.version(), r.version());
}

#[test]
fn locate_reports_what_is_missing() {
    let dir = TempDir::new().unwrap();
    let err = resolve_binary(None, None, Some(dir.path().as_os_str()), Path::new("/")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "restic not found (no `restic` (the default) on PATH; PATH is {}); install restic \
             0.14 or newer (Debian/Ubuntu: `apt install restic`, or a release from \
             https://github.com/restic/restic/releases) or set BACKREST_RESTIC_COMMAND to its \
             path",
            dir.path().display()
        )
    );
    let err = resolve_binary(
        None,
        Some(OsStr::new("/opt/none/restic")),
        None,
        Path::new("/"),
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "restic not found (/opt/none/restic (from BACKREST_RESTIC_COMMAND) is not an \
             executable file)"
        ),
        "{err}"
    );
    // The flag wins over the env, a relative path is made absolute, a bare name is
    // looked up on PATH.
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let exe = bin.join("my-restic");
    fs::write(&exe, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let found = resolve_binary(
        Some(Path::new("bin/my-restic")),
        Some(OsStr::new("/nope")),
        None,
        dir.path(),
    )
    .unwrap();
    assert_eq!(found, exe);
    let found = resolve_binary(
        None,
        Some(OsStr::new("my-restic")),
        Some(bin.as_os_str()),
        Path::new("/"),
    )
    .unwrap();
    assert_eq!(found, exe);
    // Not executable: not found.
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(resolve_binary(Some(&exe), None, None, Path::new("/")).is_err());
}

#[test]
fn locate_refuses_old_or_foreign_binaries() {
    let dir = TempDir::new().unwrap();
    let script = |name: &str, body: &str| {
        let p = dir.path().join(name);
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    };
    let old = script(
        "old",
        "echo 'restic 0.13.1 compiled with go1.18 on linux/arm'",
    );
    let err = Restic::locate(Some(&old)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "restic at {} is version 0.13.1, footrest needs 0.14.0 or newer; install a newer \
             restic (a release from https://github.com/restic/restic/releases) and point \
             BACKREST_RESTIC_COMMAND at it",
            old.display()
        )
    );
    let foreign = script("foreign", "echo 'usage: something else'");
    let err = Restic::locate(Some(&foreign)).unwrap_err();
    assert!(matches!(err, ResticError::Parse { .. }), "{err}");
    let failing = script("failing", "echo 'cannot run' >&2; exit 4");
    let err = Restic::locate(Some(&failing)).unwrap_err();
    assert_eq!(err.to_string(), "restic failed (exit code 4): cannot run");
    let newer = script(
        "newer",
        "echo 'restic 0.18.1 compiled with go1.24 on linux/arm64'",
    );
    assert_eq!(
        Restic::locate(Some(&newer)).unwrap().version(),
        Version::new(0, 18, 1)
    );
}

#[test]
fn init_and_cat_config() {
    let (_dir, repo) = fresh_repo();
    let config = restic().cat_config(&repo, &StopHandle::new()).unwrap();
    assert!(is_hex(&config.id, 64), "{config:?}");
    assert!(template().1.contains(&config.id[..10]));
    // A second init refuses to overwrite.
    let mut log = Vec::new();
    let err = restic()
        .init(&repo, &StopHandle::new(), &mut log)
        .unwrap_err();
    let ResticError::Failed { exit_code, message } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*exit_code, Some(1));
    assert!(message.contains("config file already exists"), "{message}");
}

#[test]
fn backup_then_list_snapshots() {
    let (dir, repo) = fresh_repo();
    let src = small_tree(dir.path());
    let req = BackupRequest {
        paths: vec![src.clone()],
        excludes: vec!["*.tmp".into()],
        tags: vec!["plan:docs".into(), "created-by:pi4".into()],
        extra_flags: vec!["--host footrest-test".into()],
        ..BackupRequest::default()
    };
    let before = now_ms();
    let (res, events, log) = backup(restic(), &repo, &req);
    let outcome = res.unwrap();
    assert!(!outcome.warning);
    let summary = outcome.summary.unwrap();
    assert_eq!(summary.files_new, 2, "{summary:?}");
    assert_eq!(summary.total_files_processed, 2);
    assert_eq!(summary.total_bytes_processed, 12);
    assert!(summary.data_added > 0 && summary.total_duration > 0.0);
    assert!(is_hex(&summary.snapshot_id, 8) || is_hex(&summary.snapshot_id, 64));
    assert!(
        events.iter().any(|e| matches!(e, BackupEvent::Status(_))),
        "{events:?}"
    );
    assert!(!events.iter().any(|e| matches!(e, BackupEvent::Error(_))));
    // The log has the summary but no progress lines.
    assert!(log.contains("\"message_type\":\"summary\""), "{log}");
    assert!(!log.contains("\"message_type\":\"status\""), "{log}");

    let stop = StopHandle::new();
    let all = restic()
        .snapshots(&repo, &SnapshotFilter::default(), &stop)
        .unwrap();
    assert_eq!(all.len(), 1);
    let snap = &all[0];
    assert!(snap.id.starts_with(&summary.snapshot_id));
    assert!(is_hex(&snap.id, 64));
    assert_eq!(snap.short_id, snap.id[..8]);
    assert_eq!(snap.hostname, "footrest-test");
    assert_eq!(snap.paths, vec![src.to_string_lossy().into_owned()]);
    assert_eq!(
        snap.tags,
        vec!["plan:docs".to_string(), "created-by:pi4".to_string()]
    );
    assert!(snap.time_ms >= before - 2000 && snap.time_ms <= now_ms() + 2000);
    assert_eq!(snap.parent, "");

    // A second run names its parent; a dry run writes nothing and reports no id.
    fs::write(src.join("c.txt"), "more\n").unwrap();
    let req2 = BackupRequest {
        parent: Some(snap.id.clone()),
        tags: vec!["plan:docs".into()],
        ..req.clone()
    };
    let (res, _, _) = backup(restic(), &repo, &req2);
    assert_eq!(res.unwrap().summary.unwrap().files_new, 1);
    let (res, _, _) = backup(
        restic(),
        &repo,
        &BackupRequest {
            dry_run: true,
            ..req.clone()
        },
    );
    assert_eq!(res.unwrap().summary.unwrap().snapshot_id, "");

    let all = restic()
        .snapshots(&repo, &SnapshotFilter::default(), &stop)
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].parent, all[0].id);
    assert!(all[0].time_ms <= all[1].time_ms);
    let tagged = |tags: &[&str]| {
        let f = SnapshotFilter {
            ids: vec![],
            tags: tags.iter().map(|t| t.to_string()).collect(),
        };
        restic()
            .snapshots(&repo, &f, &stop)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        tagged(&["plan:docs,created-by:pi4"]),
        vec![all[0].id.clone()]
    );
    assert_eq!(tagged(&["plan:docs"]).len(), 2);
    assert!(tagged(&["plan:other"]).is_empty());
    let by_id = restic()
        .snapshots(
            &repo,
            &SnapshotFilter {
                ids: vec![all[1].short_id.clone()],
                tags: vec![],
            },
            &stop,
        )
        .unwrap();
    assert_eq!(by_id, vec![all[1].clone()]);
}

/// Exit 3 needs a file restic cannot read. As root, `chmod 000` does not stop reading
/// (CAP_DAC_OVERRIDE), so restic then runs through a wrapper that drops
/// CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its bounding set (`setpriv`, util-linux):
/// still root, owner of every file in the test dir, but bound by permission bits.
#[test]
fn unreadable_file_gives_a_warning_and_an_error_event() {
    let (dir, repo) = fresh_repo();
    let src = small_tree(dir.path());
    let locked = src.join("locked.txt");
    fs::write(&locked, "secret\n").unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let as_root = unsafe { libc::geteuid() } == 0;
    let wrapped;
    let r = if as_root {
        let wrapper = dir.path().join("restic-without-dac");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec setpriv --bounding-set -dac_override,-dac_read_search {} \"$@\"\n",
                restic().path().display()
            ),
        )
        .unwrap();
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
        wrapped = Restic::at(wrapper).unwrap();
        &wrapped
    } else {
        restic()
    };
    let req = BackupRequest {
        paths: vec![src],
        ..BackupRequest::default()
    };
    let (res, events, log) = backup(r, &repo, &req);
    let outcome = res.unwrap();
    assert!(outcome.warning);
    let summary = outcome.summary.unwrap();
    assert_eq!(summary.files_new, 3, "{summary:?}");
    let errors: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            BackupEvent::Error(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        errors,
        vec![FileError {
            item: locked.to_string_lossy().into_owned(),
            during: "archival".into(),
            message: format!("open {}: permission denied", locked.display()),
        }]
    );
    assert!(
        log.contains("at least one source file could not be read"),
        "{log}"
    );
    let snaps = r
        .snapshots(&repo, &SnapshotFilter::default(), &StopHandle::new())
        .unwrap();
    assert_eq!(snaps.len(), 1);
}

#[test]
fn missing_source_path_fails_with_restics_words() {
    let (dir, repo) = fresh_repo();
    let missing = dir.path().join("not-mounted");
    let req = BackupRequest {
        paths: vec![missing.clone()],
        ..BackupRequest::default()
    };
    let (res, _, log) = backup(restic(), &repo, &req);
    let err = res.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "restic failed (exit code 1): {} does not exist, skipping\nFatal: all target \
             directories/files do not exist",
            missing.display()
        )
    );
    assert!(log.contains("does not exist, skipping"));
}

#[test]
fn wrong_password_is_recognised() {
    let (dir, mut repo) = fresh_repo();
    repo.password = "not-the-password".into();
    let stop = StopHandle::new();
    let err = restic()
        .snapshots(&repo, &SnapshotFilter::default(), &stop)
        .unwrap_err();
    assert!(err.is_wrong_password(), "{err:?}");
    assert!(!format!("{err:?}").contains("not-the-password"));
    // The password may also come from the repo's env instead of `password`.
    let pw_file = dir.path().join("pw");
    fs::write(&pw_file, format!("{PASSWORD}\n")).unwrap();
    repo.password.clear();
    repo.env = vec![format!("RESTIC_PASSWORD_FILE={}", pw_file.display())];
    assert!(
        restic()
            .snapshots(&repo, &SnapshotFilter::default(), &stop)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn missing_repository_is_recognised() {
    let dir = TempDir::new().unwrap();
    let repo = repo_at(&dir.path().join("nothing-here"));
    let stop = StopHandle::new();
    let err = restic().cat_config(&repo, &stop).unwrap_err();
    assert!(err.is_repo_not_found(), "{err:?}");
    assert!(err.to_string().contains("nothing-here"), "{err}");
    let mut log = Vec::new();
    let err = restic()
        .backup(
            &repo,
            &BackupRequest {
                paths: vec![dir.path().to_path_buf()],
                ..BackupRequest::default()
            },
            &stop,
            &mut log,
            &mut |_| {},
        )
        .unwrap_err();
    assert!(err.is_repo_not_found(), "{err:?}");
}

/// Waits until `child` (a restic) has written its lock file. restic 0.14 writes a file
/// under a temporary name and renames it: only a 64-hex name is a lock.
fn wait_for_lock_file(repo: &Repo, child: &mut std::process::Child) {
    let locks = Path::new(&repo.uri).join("locks");
    let t0 = Instant::now();
    let has_lock = || {
        fs::read_dir(&locks)
            .unwrap()
            .any(|e| is_hex(&e.unwrap().file_name().to_string_lossy(), 64))
    };
    while !has_lock() {
        assert!(t0.elapsed() < Duration::from_secs(20), "no lock appeared");
        assert!(child.try_wait().unwrap().is_none(), "restic ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A stale exclusive lock, as a `restic prune` killed with -9 would leave: `key passwd`
/// takes the exclusive lock, then waits for the new password on stdin, where it is
/// killed.
fn leave_stale_exclusive_lock(repo: &Repo) {
    let mut child = Command::new(restic().path())
        .args(["--no-cache", "key", "passwd"])
        .env("RESTIC_REPOSITORY", &repo.uri)
        .env("RESTIC_PASSWORD", &repo.password)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_lock_file(repo, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn locked_repository_then_unlock() {
    let (dir, repo) = fresh_repo();
    leave_stale_exclusive_lock(&repo);
    let stop = StopHandle::new();
    assert_eq!(restic().list_locks(&repo, &stop).unwrap().len(), 1);
    let src = small_tree(dir.path());
    let (res, _, _) = backup(
        restic(),
        &repo,
        &BackupRequest {
            paths: vec![src],
            ..BackupRequest::default()
        },
    );
    let err = res.unwrap_err();
    let ResticError::Locked { detail, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(detail.contains("locked exclusively by PID"), "{detail}");
    let holder = err.lock_holder().unwrap();
    assert!(holder.exclusive);
    assert_eq!(holder.host, this_host());
    // `key passwd` was killed and reaped: its lock is stale.
    assert!(err.lock_is_stale(&this_host()));
    let mut log = Vec::new();
    restic().unlock(&repo, &stop, &mut log).unwrap();
    assert!(
        String::from_utf8(log)
            .unwrap()
            .contains("successfully removed locks")
    );
    assert!(restic().list_locks(&repo, &stop).unwrap().is_empty());
    // Unlocking a clean repository is fine too.
    restic().unlock(&repo, &stop, &mut Vec::new()).unwrap();
}

/// Incompressible, quick to make: xorshift64 output.
fn write_noise(path: &Path, bytes: usize, seed: u64) {
    let mut f = std::io::BufWriter::new(fs::File::create(path).unwrap());
    let mut x = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..bytes / buf.len() {
        for chunk in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&buf).unwrap();
    }
    f.flush().unwrap();
}

/// 256 MB of noise, made once for the tests that need a backup to take a while.
fn big_tree() -> &'static Path {
    static T: OnceLock<TempDir> = OnceLock::new();
    T.get_or_init(|| {
        let dir = TempDir::new().unwrap();
        for i in 0..8 {
            write_noise(
                &dir.path().join(format!("f{i}.bin")),
                32 << 20,
                0x9E37_79B9 + i,
            );
        }
        dir
    })
    .path()
}

#[test]
fn stop_during_a_long_backup_leaves_no_lock() {
    let (_dir, repo) = fresh_repo();
    let src = big_tree().to_path_buf();
    let stop = StopHandle::new();
    let mut log = Vec::new();
    let mut statuses = 0;
    let t0 = Instant::now();
    let res = restic().backup(
        &repo,
        &BackupRequest {
            paths: vec![src],
            ..BackupRequest::default()
        },
        &stop,
        &mut log,
        &mut |e| {
            if let BackupEvent::Status(_) = e {
                statuses += 1;
                stop.stop(Duration::from_secs(20));
            }
        },
    );
    assert!(matches!(res, Err(ResticError::Stopped)), "{res:?}");
    assert!(statuses >= 1);
    assert!(t0.elapsed() < Duration::from_secs(20));
    let log = String::from_utf8(log).unwrap();
    assert!(
        log.contains("signal interrupt received, cleaning up"),
        "{log}"
    );
    let fresh = StopHandle::new();
    assert!(restic().list_locks(&repo, &fresh).unwrap().is_empty());
    assert!(
        restic()
            .snapshots(&repo, &SnapshotFilter::default(), &fresh)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn nice_prefixes_run_restic() {
    let (dir, mut repo) = fresh_repo();
    repo.io_nice = Some(IoNice::Idle);
    repo.cpu_nice = Some(CpuNice::Low);
    let src = small_tree(dir.path());
    let (res, _, _) = backup(
        restic(),
        &repo,
        &BackupRequest {
            paths: vec![src],
            ..BackupRequest::default()
        },
    );
    assert_eq!(res.unwrap().summary.unwrap().files_new, 3);
}

#[test]
fn a_stopped_handle_runs_nothing() {
    let (_dir, repo) = fresh_repo();
    let stop = StopHandle::new();
    stop.stop(Duration::ZERO);
    let err = restic().cat_config(&repo, &stop).unwrap_err();
    assert!(err.is_stopped());
}

#[test]
fn run_args_passes_every_line_and_the_exit_code() {
    let (_dir, repo) = fresh_repo();
    let mut lines = Vec::new();
    let code = restic()
        .run_args(
            &repo,
            &["snapshots".into(), "--json".into()],
            LINE_CAP,
            &StopHandle::new(),
            &mut |l| lines.push(l.to_string()),
        )
        .unwrap();
    assert_eq!((code, lines), (0, vec!["[]".to_string()]));

    // A failure is an exit code with restic's words among the lines, not an error.
    let mut lines = Vec::new();
    let code = restic()
        .run_args(
            &repo,
            &["cat".into(), "blob".into(), "0".repeat(64)],
            LINE_CAP,
            &StopHandle::new(),
            &mut |l| lines.push(l.to_string()),
        )
        .unwrap();
    assert_eq!(code, 1);
    assert!(
        lines.iter().any(|l| l.contains("blob not found")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains(PASSWORD)));

    let stop = StopHandle::new();
    stop.stop(Duration::ZERO);
    let err = restic()
        .run_args(&repo, &["snapshots".into()], LINE_CAP, &stop, &mut |_| {})
        .unwrap_err();
    assert!(err.is_stopped());
}

const PDEATH_ENV: &str = "FOOTREST_TEST_PDEATH_REPO";
const PDEATH_READY: &str = "footrest-test: backup running";

/// Not a test of its own: the body of the process that `kill_9_of_footrest_...` starts
/// (this test binary again) and kills. It backs up the big tree into the repo named in
/// the environment; without that variable it does nothing.
#[test]
fn pdeath_helper_process() {
    let Some(uri) = std::env::var_os(PDEATH_ENV) else {
        return;
    };
    let repo = repo_at(Path::new(&uri));
    let req = BackupRequest {
        paths: vec![big_tree().to_path_buf()],
        ..BackupRequest::default()
    };
    let mut told = false;
    let _ = restic().backup(&repo, &req, &StopHandle::new(), &mut Vec::new(), &mut |e| {
        if matches!(e, BackupEvent::Status(_)) && !told {
            told = true;
            println!("{PDEATH_READY}");
        }
    });
}

/// `kill -9` of footrest: restic gets SIGINT through PR_SET_PDEATHSIG and, because it
/// still holds readers of its own output pipes, lives long enough to remove its lock.
/// The kill comes after the first progress line: restic 0.14 creates its lock file and
/// only registers it for removal some 200 ms later (after checking for other locks); a
/// SIGINT in that window leaves a stale lock, which footrest's `unlock` after a restart
/// removes.
#[test]
fn kill_9_of_footrest_makes_restic_remove_its_lock() {
    let (_dir, repo) = fresh_repo();
    big_tree();
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "restic::tests::pdeath_helper_process",
            "--nocapture",
        ])
        .env(PDEATH_ENV, &repo.uri)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(helper.stdout.take().unwrap());
    let mut ready = false;
    for line in std::io::BufRead::lines(stdout) {
        if line.unwrap().contains(PDEATH_READY) {
            ready = true;
            break;
        }
    }
    assert!(ready, "the helper ended before its backup ran");
    helper.kill().unwrap();
    helper.wait().unwrap();
    // restic is no child of ours: watch its lock go.
    let locks = Path::new(&repo.uri).join("locks");
    let t0 = Instant::now();
    while fs::read_dir(&locks).unwrap().next().is_some() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "restic left its lock after footrest was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        restic()
            .list_locks(&repo, &StopHandle::new())
            .unwrap()
            .is_empty()
    );
}

/// The host name restic writes into its locks (`uname -n`).
fn this_host() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// Backs up `src` once with `tags` (one `--tag` each, as footrest does) as host `host`
/// and returns the new snapshot's short id.
fn tagged_backup(repo: &Repo, src: &Path, tags: &[&str], host: &str) -> String {
    let req = BackupRequest {
        paths: vec![src.to_path_buf()],
        tags: tags.iter().map(|t| t.to_string()).collect(),
        extra_flags: vec![format!("--host {host}")],
        ..BackupRequest::default()
    };
    let (res, _, log) = backup(restic(), repo, &req);
    let id = res.unwrap().summary.unwrap().snapshot_id;
    assert!(!id.is_empty(), "{log}");
    id[..8].to_string()
}

fn short_ids(snaps: &[Snapshot]) -> Vec<String> {
    snaps.iter().map(|s| s.short_id.clone()).collect()
}

fn all_snapshots(repo: &Repo) -> Vec<Snapshot> {
    restic()
        .snapshots(repo, &SnapshotFilter::default(), &StopHandle::new())
        .unwrap()
}

#[test]
fn forget_keep_last_with_tag_filter_and_one_group() {
    let (dir, repo) = fresh_repo();
    let src = small_tree(dir.path());
    let mut docs = Vec::new();
    for i in 0..5 {
        fs::write(src.join("a.txt"), format!("version {i}\n")).unwrap();
        // Two hosts: restic's default grouping (host, paths) would keep 2 of each.
        let host = if i % 2 == 0 { "pi-a" } else { "pi-b" };
        docs.push(tagged_backup(
            &repo,
            &src,
            &["plan:docs", "created-by:pi4"],
            host,
        ));
    }
    // Same plan tag, another instance: the AND filter must leave it alone.
    let foreign = tagged_backup(&repo, &src, &["plan:docs", "created-by:nas"], "pi-a");
    let req = ForgetRequest {
        keep_last: Some(2),
        tags: vec!["plan:docs,created-by:pi4".into()],
        group_by: Some(String::new()),
        dry_run: true,
        ..ForgetRequest::default()
    };
    let stop = StopHandle::new();
    let mut log = Vec::new();
    let dry = restic().forget(&repo, &req, &stop, &mut log).unwrap();
    assert_eq!(short_ids(&dry.removed), docs[..3]);
    assert_eq!(short_ids(&dry.kept), docs[3..]);
    assert_eq!(all_snapshots(&repo).len(), 6);

    let req = ForgetRequest {
        dry_run: false,
        ..req
    };
    let done = restic().forget(&repo, &req, &stop, &mut log).unwrap();
    assert_eq!(short_ids(&done.removed), docs[..3]);
    assert_eq!(short_ids(&done.kept), docs[3..]);
    assert!(
        done.removed
            .iter()
            .all(|s| s.id.len() == 64 && s.tags == ["plan:docs", "created-by:pi4"])
    );
    let mut left = short_ids(&all_snapshots(&repo));
    left.sort();
    let mut want = vec![docs[3].clone(), docs[4].clone(), foreign];
    want.sort();
    assert_eq!(left, want);
    // The JSON report is parsed, not copied into the log.
    assert!(!String::from_utf8(log).unwrap().contains("\"keep\""));
}

#[test]
fn forget_by_id_then_prune_stats_and_check() {
    let (dir, repo) = fresh_repo();
    let src = small_tree(dir.path());
    write_noise(&src.join("noise-1.bin"), 1 << 20, 1);
    let first = tagged_backup(&repo, &src, &["plan:docs"], "pi");
    fs::remove_file(src.join("noise-1.bin")).unwrap();
    write_noise(&src.join("noise-2.bin"), 1 << 20, 2);
    let second = tagged_backup(&repo, &src, &["plan:docs"], "pi");
    let stop = StopHandle::new();
    let before = restic().stats(&repo, &stop).unwrap();
    assert_eq!(before.snapshot_count, 2);
    assert!(before.total_size > 2 << 20, "{before:?}");
    assert!(before.total_blob_count > 2, "{before:?}");
    // 0.14 reports neither; newer restic reports both.
    if restic().version() < Version::new(0, 15, 0) {
        assert_eq!(before.total_uncompressed_size, 0);
        assert_eq!(before.compression_ratio, 0.0);
    }

    // An unknown id forgets nothing, not even the known one beside it.
    let mut log = Vec::new();
    let err = restic()
        .forget(
            &repo,
            &ForgetRequest {
                ids: vec![first.clone(), "deadbeef".into()],
                ..ForgetRequest::default()
            },
            &stop,
            &mut log,
        )
        .unwrap_err();
    assert!(
        matches!(&err, ResticError::NoSuchSnapshot { id } if id == "deadbeef"),
        "{err:?}"
    );
    assert_eq!(all_snapshots(&repo).len(), 2);

    // By (short) id: the dry run removes nothing, the real one exactly that snapshot.
    let by_id = ForgetRequest {
        ids: vec![first.clone()],
        dry_run: true,
        ..ForgetRequest::default()
    };
    let dry = restic().forget(&repo, &by_id, &stop, &mut log).unwrap();
    assert_eq!(short_ids(&dry.removed), [first.as_str()]);
    assert!(dry.kept.is_empty());
    assert_eq!(all_snapshots(&repo).len(), 2);
    let by_id = ForgetRequest {
        dry_run: false,
        ..by_id
    };
    let done = restic().forget(&repo, &by_id, &stop, &mut log).unwrap();
    assert_eq!(short_ids(&done.removed), [first.as_str()]);
    assert_eq!(done.removed[0].id.len(), 64);
    assert_eq!(short_ids(&all_snapshots(&repo)), [second]);

    // Prune drops the first snapshot's noise; its report is in the log.
    let mut log = Vec::new();
    restic()
        .prune(&repo, Some(MaxUnused::Percent(5.0)), &stop, &mut log)
        .unwrap();
    let log = String::from_utf8(log).unwrap();
    assert!(log.contains("remaining"), "{log}");
    let after = restic().stats(&repo, &stop).unwrap();
    assert_eq!(after.snapshot_count, 1);
    assert!(
        after.total_size > 1 << 20 && after.total_size < before.total_size - (1 << 19),
        "{before:?} {after:?}"
    );
    assert!(after.total_blob_count < before.total_blob_count);

    let mut log = Vec::new();
    restic().check(&repo, Some(100.0), &stop, &mut log).unwrap();
    let log = String::from_utf8(log).unwrap();
    assert!(log.contains("no errors were found"), "{log}");
    assert!(log.contains("100.0% of data packs"), "{log}");
}

#[test]
fn check_finds_a_missing_pack() {
    let (dir, repo) = fresh_repo();
    let src = small_tree(dir.path());
    write_noise(&src.join("noise.bin"), 1 << 20, 4);
    tagged_backup(&repo, &src, &["plan:docs"], "pi");
    let stop = StopHandle::new();
    // Nothing to prune, but the bytes form of max-unused is accepted.
    restic()
        .prune(
            &repo,
            Some(MaxUnused::Bytes(1_048_576)),
            &stop,
            &mut Vec::new(),
        )
        .unwrap();
    let mut log = Vec::new();
    restic().check(&repo, None, &stop, &mut log).unwrap();
    let log = String::from_utf8(log).unwrap();
    assert!(log.contains("no errors were found"), "{log}");
    assert!(!log.contains("data packs"), "{log}");

    // The largest pack holds the noise: a data pack. (A missing tree pack, or reading a
    // missing data pack, costs some 45 s of restic retrying the load.)
    let data = Path::new(&repo.uri).join("data");
    let pack = fs::read_dir(&data)
        .unwrap()
        .flat_map(|d| fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    assert!(fs::metadata(&pack).unwrap().len() > 1 << 20);
    fs::remove_file(&pack).unwrap();
    let mut log = Vec::new();
    let err = restic().check(&repo, None, &stop, &mut log).unwrap_err();
    let ResticError::RepoDamaged { detail } = &err else {
        panic!("{err:?}")
    };
    assert!(
        detail.ends_with("Fatal: repository contains errors"),
        "{detail}"
    );
    let pack_name = pack.file_name().unwrap().to_string_lossy().into_owned();
    let log = String::from_utf8(log).unwrap();
    assert!(log.contains(&pack_name), "{log}");
    assert!(
        err.to_string().starts_with("the repository has errors: "),
        "{err}"
    );
}

/// A backup slowed to 50 KiB/s holds a shared lock; `forget` (exclusive) is refused with
/// the live holder named; once the holder is killed with SIGKILL, the same lock is stale.
#[test]
fn locked_by_a_live_backup_then_stale_after_kill_9() {
    let (dir, repo) = fresh_repo();
    let src = dir.path().join("slow");
    fs::create_dir(&src).unwrap();
    write_noise(&src.join("noise.bin"), 4 << 20, 3);
    let mut holder = Command::new(restic().path())
        .args(["--no-cache", "backup", "--limit-upload", "50"])
        .arg(&src)
        .env("RESTIC_REPOSITORY", &repo.uri)
        .env("RESTIC_PASSWORD", &repo.password)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_lock_file(&repo, &mut holder);
    let req = ForgetRequest {
        keep_last: Some(1),
        tags: vec!["plan:docs,created-by:pi4".into()],
        group_by: Some(String::new()),
        ..ForgetRequest::default()
    };
    let stop = StopHandle::new();
    let err = restic()
        .forget(&repo, &req, &stop, &mut Vec::new())
        .unwrap_err();
    let host = this_host();
    assert_eq!(
        err.lock_holder(),
        Some(LockHolder {
            pid: holder.id(),
            host: host.clone(),
            exclusive: false,
        }),
        "{err:?}"
    );
    assert!(!err.lock_is_stale(&host));
    assert!(!err.lock_is_stale("another-host"));

    holder.kill().unwrap(); // SIGKILL: restic cannot remove its lock
    holder.wait().unwrap();
    assert!(err.lock_is_stale(&host));
    assert!(!err.lock_is_stale("another-host"));
    let again = restic()
        .forget(&repo, &req, &stop, &mut Vec::new())
        .unwrap_err();
    assert!(again.is_locked() && again.lock_is_stale(&host), "{again:?}");
    restic().unlock(&repo, &stop, &mut Vec::new()).unwrap();
    let done = restic()
        .forget(&repo, &req, &stop, &mut Vec::new())
        .unwrap();
    assert_eq!(done, ForgetResult::default());
}

#[test]
fn ls_one_folder_then_restore_it() {
    let (dir, repo) = fresh_repo();
    let src = small_tree(dir.path());
    fs::create_dir_all(src.join("sub/deeper")).unwrap();
    fs::write(src.join("sub/deeper/c.txt"), "deep\n").unwrap();
    fs::write(src.join("sub/a[1]*.txt"), "glob\n").unwrap();
    let (res, _, _) = backup(
        restic(),
        &repo,
        &BackupRequest {
            paths: vec![src.clone()],
            ..BackupRequest::default()
        },
    );
    let short = res.unwrap().summary.unwrap().snapshot_id;
    let stop = StopHandle::new();
    let limit = Duration::from_secs(60);

    // Absolute source paths are kept whole in the snapshot's tree.
    let src_path = src.to_str().unwrap().to_string();
    let top = src_path.split('/').nth(1).unwrap().to_string();
    let root = restic().ls(&repo, &short, "/", limit, &stop).unwrap();
    assert!(is_hex(&root.snapshot_id, 64) && root.snapshot_id.starts_with(&short));
    assert_eq!(root.path, "/");
    let names = |l: &Listing| l.entries.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&root), [top]);
    assert_eq!(root.entries[0].kind, "dir");
    // One level only, sorted by name; the folder itself is not listed.
    let sub = restic()
        .ls(&repo, &short, &format!("{src_path}/sub/"), limit, &stop)
        .unwrap();
    assert_eq!(sub.path, format!("{src_path}/sub"));
    assert_eq!(names(&sub), ["a[1]*.txt", "b.txt", "deeper"]);
    assert_eq!(sub.entries[1].size, 6);
    assert_eq!(sub.entries[1].path, format!("{src_path}/sub/b.txt"));
    assert!(parse_rfc3339_ms(&sub.entries[1].mtime).is_some());

    let err = restic()
        .ls(&repo, &short, &format!("{src_path}/nope"), limit, &stop)
        .unwrap_err();
    assert!(
        matches!(err, ResticError::PathNotInSnapshot { .. }),
        "{err}"
    );
    let err = restic()
        .ls(&repo, &short, &format!("{src_path}/a.txt"), limit, &stop)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{src_path}/a.txt in snapshot {short} is a file, not a folder; list the folder that \
             holds it"
        )
    );
    let err = restic()
        .ls(&repo, "0123abcd", "/", limit, &stop)
        .unwrap_err();
    assert!(matches!(err, ResticError::NoSuchSnapshot { .. }), "{err}");

    // Restore one folder: it lands below the target under its snapshot path, with the
    // same bytes; a name with glob characters is matched literally.
    let target = dir.path().join("restored");
    let mut log = Vec::new();
    let mut statuses = Vec::new();
    let summary = restic()
        .restore(
            &repo,
            &RestoreRequest {
                snapshot_id: short.clone(),
                path: format!("{src_path}/sub"),
                target: target.clone(),
            },
            &stop,
            &mut log,
            &mut |s| statuses.push(s),
        )
        .unwrap();
    if restic().version() < Version::new(0, 16, 0) {
        assert_eq!(summary, None);
        assert!(statuses.is_empty());
        let log = String::from_utf8(log).unwrap();
        assert!(log.contains("restoring <Snapshot"), "{log}");
    }
    let got = target.join(format!("{}/sub", &src_path[1..]));
    assert_eq!(fs::read(got.join("b.txt")).unwrap(), b"world\n");
    assert_eq!(fs::read(got.join("deeper/c.txt")).unwrap(), b"deep\n");
    assert_eq!(fs::read(got.join("a[1]*.txt")).unwrap(), b"glob\n");
    assert!(!target.join(&src_path[1..]).join("a.txt").exists());

    let glob_only = dir.path().join("glob-only");
    restic()
        .restore(
            &repo,
            &RestoreRequest {
                snapshot_id: short.clone(),
                path: format!("{src_path}/sub/a[1]*.txt"),
                target: glob_only.clone(),
            },
            &stop,
            &mut Vec::new(),
            &mut |_| {},
        )
        .unwrap();
    let restored: Vec<_> = fs::read_dir(glob_only.join(&src_path[1..]).join("sub"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(restored, ["a[1]*.txt"]);

    let err = restic()
        .restore(
            &repo,
            &RestoreRequest {
                snapshot_id: "0123abcd".into(),
                path: String::new(),
                target: dir.path().join("never"),
            },
            &stop,
            &mut Vec::new(),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(matches!(err, ResticError::NoSuchSnapshot { .. }), "{err}");
    assert!(!dir.path().join("never").exists());
}
