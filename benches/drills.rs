//! The fault and load drills (run with `bench/drills.sh`): footrest's release binary is
//! made to live through what goes wrong at 3 a.m., and each drill ends PASS or FAIL.
//!
//! - `kill9`: kill -9 at random moments during backups, forgets and prunes, each
//!   followed by a restart: SQLite integrity, no operation lost or left running, the
//!   next backup succeeds, no lock left, `restic check` at the end;
//! - `disk_full`: the data dir on a small tmpfs, filled up before a backup and during
//!   one: the failure is reported and logged, reads go on, and footrest recovers by
//!   itself once there is space again (the history catches up with the backup's end);
//! - `repo_gone`: a REST repository (`rclone serve restic`) killed mid-backup: the
//!   backup fails with a clear message within a bounded time;
//! - `restic_missing`, `restic_old`: a clear message at start-up and on every call;
//! - `garbage_config`: a config replaced by garbage, then SIGHUP: refused, the old one
//!   keeps running;
//! - `load`: 300 idle connections, 40 clients polling GetOperations and 50 event streams
//!   during a backup: no failed request, figures printed as `load.<key>: <value>`.
//!
//! Arguments: drill names to run (default: all). Environment: `DRILL_KILLS` (kill -9
//! rounds, default 20), `DRILL_SEED` (random moments; default from the clock, printed).
//! Exit status 1 when a drill failed. Needs root (tmpfs) and rclone for two drills.

mod common;
#[path = "../tests/common/mod.rs"]
mod harness;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use harness::{Footrest, Sandbox, alive, auth_off, restic_children_of, wait_until};
use serde_json::{Value, json};

type Drill = fn() -> Result<(), String>;

const DRILLS: &[(&str, Drill)] = &[
    ("restic_missing", restic_missing),
    ("restic_old", restic_old),
    ("garbage_config", garbage_config),
    ("disk_full", disk_full),
    ("repo_gone", repo_gone),
    ("load", load),
    ("kill9", kill9),
];

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    raise_fd_limit();
    println!("# footrest drills");
    println!(
        "machine: {} cores, {}",
        common::cores(),
        common::cpu_model()
    );
    println!("restic: {}", common::restic_version());
    println!("binary: {}", harness::BIN);
    let mut failed = Vec::new();
    for (name, drill) in DRILLS {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == name) {
            continue;
        }
        println!("\n## drill {name}");
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(drill).unwrap_or_else(|p| {
            Err(p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into()))
        });
        let secs = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => println!("drill {name}: PASS ({secs:.1} s)"),
            Err(e) => {
                println!("drill {name}: FAIL ({secs:.1} s): {e}");
                failed.push(*name);
            }
        }
    }
    println!();
    if failed.is_empty() {
        println!("drills: all PASS");
    } else {
        println!("drills: FAIL: {}", failed.join(", "));
        std::process::exit(1);
    }
}

fn raise_fd_limit() {
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < 4096 {
            l.rlim_cur = l.rlim_max.min(4096);
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// Fails the drill with a message (for `?` in drills).
fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

fn one_plan(sandbox: &Sandbox, src: &Path) -> Value {
    sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src]}]),
        auth_off(),
    )
}

/// A call's answer (status and body), and when it came.
type Answer = (std::io::Result<(u16, Vec<u8>)>, Instant);

/// A Backup call from a thread.
fn backup_in_thread(addr: SocketAddr, plan: &str) -> std::thread::JoinHandle<Answer> {
    let body = format!(r#"{{"value":"{plan}"}}"#);
    std::thread::spawn(move || {
        let r = Client::new(addr).and_then(|mut c| c.post("Backup", &body));
        (r, Instant::now())
    })
}

/// The `message` of a Connect error body, or the body.
fn body_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

fn message_of(r: &harness::HttpResponse) -> String {
    serde_json::from_slice::<Value>(&r.body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| r.text())
}

// ---------------------------------------------------------------- restic missing/old

fn start_with_env(sandbox: &Sandbox, extra: &[&str], path: Option<&Path>) -> Footrest {
    let mut cmd = Command::new(harness::BIN);
    cmd.arg("--config")
        .arg(sandbox.config_path())
        .arg("--data-dir")
        .arg(sandbox.data_dir())
        .args(["--bind", "127.0.0.1:0", "--log-level", "info"])
        .args(extra)
        .env_remove("BACKREST_RESTIC_COMMAND");
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    Footrest::spawn(cmd)
}

/// Two Backup calls fail naming `words`; GetOperations still answers with both.
fn every_call_says(fr: &Footrest, words: &[&str]) -> Result<(), String> {
    for round in 0..2 {
        let r = fr.rpc("Backup", &json!({"value": "docs"}));
        let m = message_of(&r);
        check(r.status != 200, || {
            "a Backup without restic succeeded".into()
        })?;
        for w in words {
            check(m.contains(w), || {
                format!("Backup call {round}: {w:?} not in {m:?}")
            })?;
        }
        println!("backup answer {}: {m}", r.status);
    }
    let ops = fr.rpc("GetOperations", &json!({"selector": {}}));
    check(ops.status == 200, || {
        format!("GetOperations: {}", ops.text())
    })?;
    let n = ops.json()["operations"].as_array().map_or(0, Vec::len);
    check(n == 2, || format!("{n} operations in the history, not 2"))
}

fn restic_missing() -> Result<(), String> {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 3);
    sandbox.write_config(&one_plan(&sandbox, &src));
    let bin = sandbox.path("bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    let fr = start_with_env(&sandbox, &[], Some(&bin));
    let line = fr
        .stderr()
        .lines()
        .find(|l| l.contains("restic not found"))
        .map(str::to_string);
    println!("start-up log: {}", line.as_deref().unwrap_or("(none)"));
    check(line.is_some(), || {
        format!("no start-up message; stderr:\n{}", fr.stderr())
    })?;
    every_call_says(&fr, &["restic not found", "install restic 0.14 or newer"])?;
    std::os::unix::fs::symlink("/usr/bin/restic", bin.join("restic")).map_err(|e| e.to_string())?;
    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    check(r.status == 200, || {
        format!("after installing restic: {}", r.text())
    })
}

fn restic_old() -> Result<(), String> {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 3);
    sandbox.write_config(&one_plan(&sandbox, &src));
    let fake = sandbox.path("old-restic");
    std::fs::write(
        &fake,
        "#!/bin/sh\n# Fault injector for footrest's drills: a restic older than footrest supports.\n\
         [ \"$1\" = version ] && { echo 'restic 0.9.6 compiled with go1.13.8 on linux/amd64'; exit 0; }\n\
         echo 'fake old restic: only version' >&2; exit 99\n",
    )
    .map_err(|e| e.to_string())?;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let fr = start_with_env(&sandbox, &["--restic", fake.to_str().unwrap_or("")], None);
    let line = fr
        .stderr()
        .lines()
        .find(|l| l.contains("is version 0.9.6"))
        .map(str::to_string);
    println!("start-up log: {}", line.as_deref().unwrap_or("(none)"));
    check(line.is_some(), || {
        format!("no start-up message; stderr:\n{}", fr.stderr())
    })?;
    let path = fake.display().to_string();
    every_call_says(&fr, &[&path, "0.9.6", "needs 0.14.0 or newer"])
}

// ---------------------------------------------------------------- garbage config

fn garbage_config() -> Result<(), String> {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 3);
    sandbox.write_config(&one_plan(&sandbox, &src));
    let fr = Footrest::start(&sandbox);
    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    check(r.status == 200, || format!("first backup: {}", r.text()))?;
    std::fs::write(sandbox.config_path(), b"\x00\xffgarbage {{{").map_err(|e| e.to_string())?;
    fr.signal(libc::SIGHUP);
    wait_until("the refusal", Duration::from_secs(20), || {
        fr.stderr().contains("config not reloaded")
    });
    let line = fr
        .stderr()
        .lines()
        .find(|l| l.contains("config not reloaded"))
        .unwrap_or("")
        .to_string();
    println!("log: {line}");
    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    check(r.status == 200, || {
        format!("backup after the refused reload: {}", r.text())
    })
}

// ---------------------------------------------------------------- disk full

/// A tmpfs mounted on a folder, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        check(out.status.success(), || {
            format!(
                "mount -t tmpfs failed (the drill needs root): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        Ok(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes a file until the filesystem is full.
fn fill(path: &Path) -> u64 {
    let Ok(mut f) = std::fs::File::create(path) else {
        return 0;
    };
    let block = vec![0x5au8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&block) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n as u64,
        }
    }
    // Small writes for the last partial block.
    while let Ok(n) = f.write(&block[..512]) {
        if n == 0 {
            break;
        }
        written += n as u64;
    }
    let _ = f.sync_all();
    written
}

fn disk_full() -> Result<(), String> {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 20);
    sandbox.write_config(&one_plan(&sandbox, &src));
    let _mount = Tmpfs::mount(&sandbox.data_dir(), "16m")?;
    // At info level: the failure must be in the log a user actually sees.
    let fr = Footrest::start_with(&sandbox, &["--log-level", "info"]);
    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    check(r.status == 200, || format!("first backup: {}", r.text()))?;

    let filler = sandbox.data_dir().join("filler");
    let written = fill(&filler);
    println!("disk_full.filled_bytes: {written}");
    let before = fr.stderr().len();
    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    let m = message_of(&r);
    println!("backup on a full disk: {} {m}", r.status);
    check(r.status != 200, || {
        "a backup on a full data dir reported success".into()
    })?;
    check(
        m.contains("full") || m.contains("No space") || m.contains("space"),
        || format!("the answer does not say the disk is full: {m:?}"),
    )?;
    // The log line travels through a pipe: wait for it a little.
    let logged = |fr: &Footrest| {
        fr.stderr()[before..]
            .lines()
            .find(|l| l.contains("full") || l.contains("space"))
            .map(str::to_string)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while logged(&fr).is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = fr.stderr()[before..].to_string();
    let line = logged(&fr);
    println!("log: {}", line.as_deref().unwrap_or("(none)"));
    check(line.is_some(), || {
        format!("no log line about the full disk; log since:\n{log}")
    })?;
    let ops = fr.rpc("GetOperations", &json!({"selector": {}}));
    check(ops.status == 200, || {
        format!("GetOperations on a full disk: {}", ops.text())
    })?;
    let n = ops.json()["operations"].as_array().map_or(0, Vec::len);
    println!("operations readable on a full disk: {n}");
    if let Some(failed) = ops.json()["operations"]
        .as_array()
        .and_then(|a| a.iter().rev().find(|o| o["planId"] == "docs").cloned())
    {
        println!(
            "latest backup operation: {} {}",
            failed["status"], failed["displayMessage"]
        );
    }

    std::fs::remove_file(&filler).map_err(|e| e.to_string())?;
    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    check(r.status == 200, || {
        format!("backup after space was freed: {}", r.text())
    })?;

    // The disk fills up while a backup runs: its progress and its end cannot be
    // written. Once there is space again the history must catch up by itself.
    let big = sandbox.random_source("big", 4 * 1024 * 1024);
    let mut config = one_plan(&sandbox, &big);
    config["repos"][0]["flags"] = json!(["--limit-upload 512"]);
    let tmp = sandbox.path("config.json.new");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&config).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, sandbox.config_path()).map_err(|e| e.to_string())?;
    wait_until("the new config", Duration::from_secs(20), || {
        fr.rpc("GetConfig", &json!({})).json()["repos"][0]["flags"] == json!(["--limit-upload 512"])
    });
    let call = backup_in_thread(fr.addr, "docs");
    fr.wait_for_op("the slow backup to run", |o| {
        o["status"] == "STATUS_INPROGRESS" && o.get("operationBackup").is_some()
    });
    std::thread::sleep(Duration::from_secs(2));
    fill(&filler);
    let (r, _) = call.join().map_err(|_| "the Backup thread panicked")?;
    let (status, body) = r.map_err(|e| format!("the Backup call during a full disk: {e}"))?;
    println!("backup filled up mid-way: {status} {}", body_message(&body));
    std::thread::sleep(Duration::from_secs(3));
    std::fs::remove_file(&filler).map_err(|e| e.to_string())?;
    let freed = Instant::now();
    let running = |fr: &Footrest| {
        fr.operations(json!({}))
            .into_iter()
            .filter(|o| o["status"] == "STATUS_INPROGRESS")
            .collect::<Vec<_>>()
    };
    let settle = Instant::now() + Duration::from_secs(90);
    while !running(&fr).is_empty() && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(500));
    }
    let stuck = running(&fr);
    println!(
        "disk_full.seconds_to_record_the_end: {:.1}",
        freed.elapsed().as_secs_f64()
    );
    check(stuck.is_empty(), || {
        format!(
            "{} operations still INPROGRESS 90 s after space was freed: {}",
            stuck.len(),
            stuck[0]
        )
    })?;
    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    check(r.status == 200, || {
        format!("backup after space was freed again: {}", r.text())
    })?;
    Ok(())
}

// ---------------------------------------------------------------- repository gone

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

struct Rclone(Child);

impl Rclone {
    fn serve(dir: &Path, port: u16) -> Result<Rclone, String> {
        let child = Command::new("rclone")
            .args(["serve", "restic", "--addr", &format!("127.0.0.1:{port}")])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start rclone (apt install rclone): {e}"))?;
        let up = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        check(up, || {
            format!("rclone serve restic did not listen on {port}")
        })?;
        Ok(Rclone(child))
    }
}

impl Drop for Rclone {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How long footrest may take to give up on a repository that went away.
const REPO_GONE_BOUND: Duration = Duration::from_secs(180);

fn repo_gone() -> Result<(), String> {
    let sandbox = Sandbox::new();
    let src = sandbox.random_source("big", 24 * 1024 * 1024);
    let store = sandbox.path("rest-store");
    std::fs::create_dir_all(&store).map_err(|e| e.to_string())?;
    let port = free_port();
    let mut rclone = Rclone::serve(&store, port)?;
    let mut config = one_plan(&sandbox, &src);
    config["repos"][0]["uri"] = json!(format!("rest:http://127.0.0.1:{port}/"));
    config["repos"][0]["flags"] = json!(["--limit-upload 256"]);
    sandbox.write_config(&config);
    let fr = Footrest::start(&sandbox);
    let call = backup_in_thread(fr.addr, "docs");
    fr.wait_for_op("the backup to run", |o| {
        o["status"] == "STATUS_INPROGRESS" && o.get("operationBackup").is_some()
    });
    wait_until("restic to upload", Duration::from_secs(60), || {
        fr.operations(json!({"planId": "docs"})).iter().any(|o| {
            o["operationBackup"]["lastStatus"]["status"]["bytesDone"]
                .as_str()
                .and_then(|b| b.parse::<u64>().ok())
                .is_some_and(|b| b > 0)
        })
    });
    std::thread::sleep(Duration::from_secs(3));
    let _ = rclone.0.kill();
    let _ = rclone.0.wait();
    let killed = Instant::now();
    println!("repository killed mid-backup");
    let deadline = killed + REPO_GONE_BOUND + Duration::from_secs(60);
    while !call.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    if !call.is_finished() {
        // Leave no restic behind: stop footrest (and with it restic) before failing.
        let _ = fr.rpc("Cancel", &json!({}));
        return Err(format!(
            "the Backup call was still waiting {} s after the repository went away",
            killed.elapsed().as_secs()
        ));
    }
    let (r, at) = call.join().map_err(|_| "the call thread panicked")?;
    let (status, body) = r.map_err(|e| format!("the Backup call failed: {e}"))?;
    let waited = at.duration_since(killed);
    let m = body_message(&body);
    println!("repo_gone.seconds_to_fail: {:.1}", waited.as_secs_f64());
    println!("backup answer {status}: {m}");
    check(status != 200, || {
        "the backup succeeded without its repository".into()
    })?;
    check(waited < REPO_GONE_BOUND, || {
        format!(
            "the backup took {} s to fail (bound {} s)",
            waited.as_secs(),
            REPO_GONE_BOUND.as_secs()
        )
    })?;
    let op = fr
        .operations(json!({"planId": "docs"}))
        .into_iter()
        .rev()
        .find(|o| o.get("operationBackup").is_some())
        .ok_or("no backup operation")?;
    check(op["status"] == "STATUS_ERROR", || format!("{op}"))?;
    let shown = op["displayMessage"].as_str().unwrap_or("");
    check(
        shown.contains("stopped answering") && shown.contains("connection refused"),
        || format!("the operation's message does not say the repository is gone: {shown:?}"),
    )?;

    // The repository is back: the next backup (at full speed) gets through, and the
    // lock the stopped restic left behind is gone.
    let _rclone = Rclone::serve(&store, port)?;
    config["repos"][0]["flags"] = json!([]);
    let tmp = sandbox.path("config.json.new");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&config).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, sandbox.config_path()).map_err(|e| e.to_string())?;
    wait_until("the new config", Duration::from_secs(20), || {
        fr.rpc("GetConfig", &json!({})).json()["repos"][0]
            .get("flags")
            .is_none_or(|f| f == &json!([]))
    });
    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    check(r.status == 200, || {
        format!("the backup once the repository was back: {}", r.text())
    })?;
    let out = Command::new("restic")
        .args(["list", "locks", "--no-lock"])
        .env(
            "RESTIC_REPOSITORY",
            format!("rest:http://127.0.0.1:{port}/"),
        )
        .env("RESTIC_PASSWORD", harness::REPO_PASSWORD)
        .output()
        .map_err(|e| e.to_string())?;
    let locks = String::from_utf8_lossy(&out.stdout).trim().to_string();
    check(out.status.success() && locks.is_empty(), || {
        format!(
            "locks left in the repository: {locks:?} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

// ---------------------------------------------------------------- load

/// A keep-alive client for unary calls.
struct Client {
    stream: TcpStream,
}

impl Client {
    fn new(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        // Long enough for a Backup call that waits for its backup.
        stream.set_read_timeout(Some(Duration::from_secs(900)))?;
        Ok(Client { stream })
    }

    fn post(&mut self, method: &str, body: &str) -> std::io::Result<(u16, Vec<u8>)> {
        let req = format!(
            "POST /v1.Backrest/{method} HTTP/1.1\r\nHost: drill\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.write_all(req.as_bytes())?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            self.stream.read_exact(&mut byte)?;
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body)?;
        Ok((status, body))
    }
}

/// Opens a GetOperationEvents stream and reads its head.
fn open_stream(addr: SocketAddr) -> std::io::Result<BufReader<TcpStream>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = [0u8, 0, 0, 0, 2, b'{', b'}'];
    let head = format!(
        "POST /v1.Backrest/GetOperationEvents HTTP/1.1\r\nHost: drill\r\n\
         Content-Type: application/connect+json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(&body)?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    if !line.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("stream answered {line:?}")));
    }
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    Ok(r)
}

/// The first body byte of a stream: the first envelope's flags (0 live, 2 ended).
fn first_flag(r: &mut BufReader<TcpStream>) -> std::io::Result<u8> {
    let mut line = String::new();
    r.read_line(&mut line)?; // chunk size
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

fn vm_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn threads_of(pid: u32) -> u64 {
    vm_kib(pid, "Threads:")
}

const IDLE: usize = 300;
const POLLERS: usize = 40;
const STREAMS: usize = 50;

fn load() -> Result<(), String> {
    let sandbox = Sandbox::new();
    let src = sandbox.random_source("big", 8 * 1024 * 1024);
    let mut config = one_plan(&sandbox, &src);
    config["repos"][0]["flags"] = json!(["--limit-upload 512"]);
    sandbox.write_config(&config);
    let fr = Footrest::start_with(&sandbox, &["--log-level", "info"]);
    let pid = fr.child.id();
    println!("load.rss_idle_kib: {}", vm_kib(pid, "VmRSS:"));

    // 300 idle connections: half never send anything, half after one request.
    let idle_since = Instant::now();
    let mut idle = Vec::new();
    for i in 0..IDLE {
        let mut c = Client::new(fr.addr).map_err(|e| format!("idle connection {i}: {e}"))?;
        if i % 2 == 1 {
            let (status, _) = c
                .post("GetOperations", r#"{"selector":{}}"#)
                .map_err(|e| format!("idle connection {i}'s request: {e}"))?;
            check(status == 200, || {
                format!("idle connection {i}'s request: {status}")
            })?;
        }
        idle.push(c);
    }

    // 50 event streams.
    let mut streams = Vec::new();
    for i in 0..STREAMS {
        streams.push(open_stream(fr.addr).map_err(|e| format!("stream {i}: {e}"))?);
    }
    let threads_with_streams = threads_of(pid);

    // The backup, and 40 pollers while it runs.
    let done = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let started = Instant::now();
    let call = backup_in_thread(fr.addr, "docs");
    let mut pollers = Vec::new();
    for _ in 0..POLLERS {
        let (addr, done, requests, failures, latencies) = (
            fr.addr,
            Arc::clone(&done),
            Arc::clone(&requests),
            Arc::clone(&failures),
            Arc::clone(&latencies),
        );
        pollers.push(std::thread::spawn(move || {
            let mut mine = Vec::new();
            let mut client = Client::new(addr);
            while !done.load(Ordering::Acquire) {
                let t = Instant::now();
                let r = match &mut client {
                    Ok(c) => c.post("GetOperations", r#"{"selector":{"planId":"docs"}}"#),
                    Err(e) => Err(std::io::Error::other(e.to_string())),
                };
                requests.fetch_add(1, Ordering::Relaxed);
                match r {
                    Ok((200, _)) => mine.push(t.elapsed().as_secs_f64() * 1000.0),
                    Ok((status, body)) => {
                        failures.lock().unwrap().push(format!(
                            "GetOperations answered {status}: {}",
                            String::from_utf8_lossy(&body)
                        ));
                        client = Client::new(addr);
                    }
                    Err(e) => {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("GetOperations failed: {e}"));
                        client = Client::new(addr);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            latencies.lock().unwrap().extend(mine);
        }));
    }

    // Every stream is live: its first envelope is an event or a keep-alive, not an end.
    let mut live = 0;
    let mut refused = Vec::new();
    for (i, s) in streams.iter_mut().enumerate() {
        match first_flag(s) {
            Ok(0) => live += 1,
            Ok(f) => refused.push(format!("stream {i} ended at once (flags {f})")),
            Err(e) => refused.push(format!("stream {i}: {e}")),
        }
    }
    let mut peak_threads = threads_with_streams;
    while !call.is_finished() && started.elapsed() < Duration::from_secs(600) {
        peak_threads = peak_threads.max(threads_of(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    done.store(true, Ordering::Release);
    for p in pollers {
        let _ = p.join();
    }
    let (r, at) = call.join().map_err(|_| "the Backup thread panicked")?;
    let r = r.map_err(|e| format!("the Backup call under load failed: {e}"))?;
    let backup_secs = at.duration_since(started).as_secs_f64();
    let hwm = vm_kib(pid, "VmHWM:");
    // Idle connections are still open and still answer (unless the drill outlasted
    // footrest's 60 s idle timeout, which then rightly closed them).
    let idle_checked = idle_since.elapsed() < Duration::from_secs(55);
    let mut idle_ok = 0;
    for c in idle.iter_mut().take(if idle_checked { 10 } else { 0 }) {
        if matches!(
            c.post("GetOperations", r#"{"selector":{"ids":["1"]}}"#),
            Ok((200, _))
        ) {
            idle_ok += 1;
        }
    }
    let mut lat = latencies.lock().unwrap().clone();
    let n = lat.len();
    lat.sort_by(f64::total_cmp);
    let p99 = lat
        .get((n * 99 / 100).min(n.saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN);
    let failures = failures.lock().unwrap().clone();
    println!("load.idle_connections: {IDLE}");
    println!("load.pollers: {POLLERS}");
    println!("load.streams_open: {live}");
    println!("load.requests: {}", requests.load(Ordering::Relaxed));
    println!("load.failed_requests: {}", failures.len());
    println!(
        "load.get_operations_median_ms: {:.2}",
        common::median(&mut lat.clone())
    );
    println!("load.get_operations_p99_ms: {p99:.2}");
    println!("load.backup_call_s: {backup_secs:.1}");
    println!("load.threads_peak: {peak_threads}");
    println!("load.vm_hwm_kib: {hwm}");
    println!("load.vm_hwm_mib: {:.1}", hwm as f64 / 1024.0);
    for f in failures.iter().take(5) {
        println!("failure: {f}");
    }
    check(r.0 == 200, || {
        format!("Backup under load: {} {}", r.0, body_message(&r.1))
    })?;
    check(failures.is_empty(), || {
        format!("{} failed requests, first: {}", failures.len(), failures[0])
    })?;
    check(refused.is_empty(), || {
        format!(
            "{} of {STREAMS} streams not live: {}",
            refused.len(),
            refused[0]
        )
    })?;
    if !idle_checked {
        println!("load.idle_answered_after: skipped (the drill outlasted the idle timeout)");
        return Ok(());
    }
    println!("load.idle_answered_after: {idle_ok}/10");
    check(idle_ok == 10, || {
        format!("only {idle_ok} of 10 idle connections answered afterwards")
    })
}

// ---------------------------------------------------------------- kill -9

/// A small xorshift generator: the drill's moments are reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn integrity(oplog: &Path) -> Result<String, String> {
    let conn = rusqlite::Connection::open_with_flags(
        oplog,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("opening {}: {e}", oplog.display()))?;
    conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
        .map_err(|e| format!("integrity_check: {e}"))
}

fn op_ids(fr: &Footrest) -> Vec<String> {
    fr.operations(json!({}))
        .iter()
        .filter_map(|o| o["id"].as_str().map(str::to_string))
        .collect()
}

fn kill9() -> Result<(), String> {
    let rounds = common::env_num("DRILL_KILLS", 20);
    let seed = std::env::var("DRILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    println!("kill9.seed: {seed}");
    let mut rng = Rng(seed);
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 200);
    let mut config = sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src],
                "retention": {"policyKeepLastN": 3}}]),
        auth_off(),
    );
    config["repos"][0]["prunePolicy"] = json!({"maxUnusedPercent": 0});
    config["repos"][0]["forgetPolicy"] = json!({"retention": {"policyKeepLastN": 2}});
    config["repos"][0]["flags"] = json!(["--limit-upload 1024"]);
    sandbox.write_config(&config);
    let oplog = sandbox.data_dir().join("oplog.sqlite");
    let mut fr = Footrest::start_with(&sandbox, &["--log-level", "info"]);
    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    check(r.status == 200, || format!("first backup: {}", r.text()))?;
    let mut kinds = [0usize; 3];
    for round in 0..rounds {
        // New data each round, so every backup uploads for a few seconds.
        let mut data = vec![0u8; 3 * 1024 * 1024];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut data))
            .map_err(|e| e.to_string())?;
        std::fs::write(src.join(format!("round-{round}.bin")), &data).map_err(|e| e.to_string())?;
        // Backups, forgets and prunes in turn; the moment of the kill is random.
        let kind = round % 3;
        kinds[kind] += 1;
        let what = ["backup", "forget", "prune"][kind];
        let _call = match kind {
            0 => Some(backup_in_thread(fr.addr, "docs")),
            _ => {
                let task = if kind == 1 {
                    "TASK_FORGET"
                } else {
                    "TASK_PRUNE"
                };
                let r = fr.rpc("DoRepoTask", &json!({"repoId": "local", "task": task}));
                check(r.status == 200, || format!("{task}: {}", r.text()))?;
                None
            }
        };
        let moment = Duration::from_millis(rng.below(if kind == 0 { 4000 } else { 1500 }));
        std::thread::sleep(moment);
        let seen = op_ids(&fr);
        let running = fr
            .operations(json!({}))
            .iter()
            .filter(|o| o["status"] == "STATUS_INPROGRESS")
            .count();
        let restics = restic_children_of(fr.child.id());
        let _ = fr.child.kill();
        let _ = fr.child.wait();
        // restic gets SIGINT when footrest dies and removes its lock; wait for it.
        for pid in &restics {
            let deadline = Instant::now() + Duration::from_secs(60);
            while alive(*pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let ok = integrity(&oplog)?;
        check(ok == "ok", || {
            format!("round {round}: integrity_check said {ok}")
        })?;

        fr = Footrest::start_with(&sandbox, &["--log-level", "info"]);
        let after = op_ids(&fr);
        let lost: Vec<&String> = seen.iter().filter(|id| !after.contains(id)).collect();
        check(lost.is_empty(), || {
            format!("round {round}: operations lost after kill -9: {lost:?}")
        })?;
        // The restart settles: nothing left running or pending (no plan has a schedule).
        let settle = Instant::now() + Duration::from_secs(120);
        let stuck = loop {
            let stuck: Vec<Value> = fr
                .operations(json!({}))
                .into_iter()
                .filter(|o| {
                    matches!(
                        o["status"].as_str(),
                        Some("STATUS_INPROGRESS" | "STATUS_PENDING")
                    )
                })
                .collect();
            if stuck.is_empty() || Instant::now() > settle {
                break stuck;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        check(stuck.is_empty(), || {
            format!("round {round}: left running after restart: {stuck:?}")
        })?;
        let r = fr.rpc("Backup", &json!({"value": "docs"}));
        check(r.status == 200, || {
            format!(
                "round {round}: the backup after the restart failed: {}\n{}",
                r.text(),
                fr.stderr()
            )
        })?;
        // The backup's retention forget runs after the call is answered.
        wait_until("the worker to go idle", Duration::from_secs(120), || {
            !fr.operations(json!({})).iter().any(|o| {
                matches!(
                    o["status"].as_str(),
                    Some("STATUS_INPROGRESS" | "STATUS_PENDING")
                )
            })
        });
        let locks = sandbox.locks();
        check(locks.is_empty(), || {
            let held: Vec<String> = locks
                .iter()
                .map(|l| {
                    String::from_utf8_lossy(
                        &sandbox.restic(&["cat", "lock", l, "--no-lock"]).stdout,
                    )
                    .into_owned()
                })
                .collect();
            format!(
                "round {round}: locks left: {locks:?} {held:?} restics at the kill {restics:?}\n{}",
                fr.stderr()
            )
        })?;
        println!(
            "round {round}: kill -9 during {what} after {} ms ({running} running, {} restic): ok",
            moment.as_millis(),
            restics.len()
        );
    }
    drop(fr);
    let out = sandbox.restic(&["check"]);
    check(out.status.success(), || {
        format!(
            "restic check at the end: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    println!(
        "kill9.rounds: {rounds} (backup {}, forget {}, prune {})",
        kinds[0], kinds[1], kinds[2]
    );
    println!("kill9.restic_check: ok");
    Ok(())
}
