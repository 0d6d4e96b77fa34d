//! The core benchmark (run with `bench/core.sh`): footrest's release binary against
//! baselines on the same machine in the same run.
//!
//! - idle resident memory after start-up;
//! - a `Backup` call against plain `restic backup` of the same 10,000-file tree, run
//!   alternately; median ratio;
//! - GetOperations latency (median, p99) over an oplog of 100,000 operations;
//! - authenticated calls per second with the credential cache, against the rate at which
//!   bcrypt can check the same password (the ceiling of a server that runs bcrypt on
//!   every call);
//! - the release binary's size.
//!
//! Environment: `BENCH_ROUNDS` (backup rounds, default 5), `BENCH_OPS` (oplog size,
//! default 100000), `BENCH_FILES` (files in the tree, default 10000).

mod common;

use common::{cores, cpu_model, env_num, median, restic_version};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use footrest::oplog::OpLog;
use footrest::proto::{
    BackupProgressEntry, BackupProgressSummary, Op, Operation, OperationBackup, OperationStatus,
};

const PASSWORD: &str = "bench-password";
/// base64 of the bcrypt hash (cost 10) of `changeme`.
const CHANGEME_HASH: &str =
    "JDJhJDEwJC9iekxLWkN5Z056QUlidjhmZmwyMy45TmNXVE1PNnNVRTViLmtUclBpcHVnd1IxaGpzOHFh";

fn main() {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/footrest");
    assert!(
        bin.exists(),
        "build the release binary first: cargo build --release"
    );
    let rounds = env_num("BENCH_ROUNDS", 5);
    let ops = env_num("BENCH_OPS", 100_000);
    let files = env_num("BENCH_FILES", 10_000);
    println!("# footrest core benchmark");
    println!();
    println!("machine: {} cores, {}", cores(), cpu_model());
    println!("restic: {}", restic_version());
    println!();
    let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| release binary size (stripped) | {:.2} MiB |",
        size as f64 / 1048576.0
    );
    idle_memory(&bin);
    backup_vs_restic(&bin, rounds, files);
    get_operations(&bin, ops);
    auth_throughput(&bin);
}

/// A running footrest on a temp dir.
struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &Path, dir: tempfile::TempDir, config: Option<serde_json::Value>) -> Server {
    let config_path = dir.path().join("config.json");
    if let Some(c) = config {
        std::fs::write(&config_path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(&config_path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--bind", "127.0.0.1:0", "--log-level", "info"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(a) = line.split("listening on http://").nth(1) {
                let _ = tx.send(a.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("footrest started")
        .parse()
        .unwrap();
    Server {
        child,
        addr,
        _dir: dir,
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn idle_memory(bin: &Path) {
    let mut samples = Vec::new();
    for _ in 0..3 {
        let server = start(bin, tempfile::tempdir().unwrap(), None);
        std::thread::sleep(Duration::from_secs(2));
        samples.push(rss_kib(server.child.id()) as f64);
    }
    println!(
        "| idle resident memory after start-up (starter config; median of 3) | {:.2} MiB |",
        median(&mut samples) / 1024.0
    );
}

/// A persistent keep-alive client.
struct Client {
    stream: TcpStream,
    auth: Option<String>,
}

impl Client {
    fn new(addr: SocketAddr, auth: Option<(&str, &str)>) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(600)))
            .unwrap();
        let auth = auth.map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        Client { stream, auth }
    }

    fn post(&mut self, method: &str, body: &str) -> (u16, Vec<u8>) {
        let mut req = format!(
            "POST /v1.Backrest/{method} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(a) = &self.auth {
            req.push_str(&format!("Authorization: {a}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.stream.write_all(req.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            self.stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let status = head[9..12].parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).unwrap();
        (status, body)
    }
}

fn make_tree(root: &Path, files: usize) {
    for i in 0..files {
        let dir = root.join(format!("d{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::write(
            dir.join(format!("f{i:05}.txt")),
            format!("file {i} {}\n", "x".repeat(i % 4096)),
        )
        .unwrap();
    }
}

fn backup_vs_restic(bin: &Path, rounds: usize, files: usize) {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree, files);
    let plain_repo = dir.path().join("plain-repo");
    let restic = |args: &[&str]| {
        let out = Command::new("restic")
            .args(args)
            .env("RESTIC_REPOSITORY", &plain_repo)
            .env("RESTIC_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    restic(&["init", "-q"]);
    // footrest's repo is made the same way as the plain one, before the clock starts.
    let sdir = tempfile::tempdir().unwrap();
    let fr_repo = sdir.path().join("repo");
    let guid = {
        let run = |args: &[&str]| {
            Command::new("restic")
                .args(args)
                .env("RESTIC_REPOSITORY", &fr_repo)
                .env("RESTIC_PASSWORD", PASSWORD)
                .stdin(Stdio::null())
                .output()
                .unwrap()
        };
        assert!(run(&["init", "-q"]).status.success());
        let out = run(&["cat", "config"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["id"].as_str().unwrap().to_string()
    };
    let config = serde_json::json!({
        "version": 6, "instance": "bench",
        "repos": [{"id": "r", "uri": fr_repo, "password": PASSWORD, "guid": guid}],
        "plans": [{"id": "p", "repo": "r", "paths": [tree]}],
        "auth": {"disabled": true}
    });
    let server = start(bin, sdir, Some(config));
    let mut client = Client::new(server.addr, None);
    let mut first = Vec::new();
    let mut ratios = Vec::new();
    let mut fr_times = Vec::new();
    let mut restic_times = Vec::new();
    for round in 0..=rounds {
        // Change a few files so each round has a little new data, as a nightly run does.
        for i in 0..10 {
            let f = tree.join(format!("d000/f{:05}.txt", i));
            std::fs::write(f, format!("round {round} file {i}\n")).unwrap();
        }
        let t = Instant::now();
        let (status, body) = client.post("Backup", r#"{"value":"p"}"#);
        let fr = t.elapsed().as_secs_f64();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let t = Instant::now();
        restic(&[
            "backup",
            "--json",
            "-q",
            "--exclude-caches",
            "--tag",
            "plan:p",
            "--tag",
            "created-by:bench",
            tree.to_str().unwrap(),
        ]);
        let plain = t.elapsed().as_secs_f64();
        if round == 0 {
            first = vec![fr, plain];
        } else {
            fr_times.push(fr);
            restic_times.push(plain);
            ratios.push(fr / plain);
        }
    }
    println!(
        "| first Backup of {files} files: footrest / plain restic | {:.2} s / {:.2} s = {:.3} |",
        first[0],
        first[1],
        first[0] / first[1]
    );
    println!(
        "| incremental Backup, median of {rounds} alternating rounds: footrest / plain restic | {:.3} s / {:.3} s, median ratio {:.3} |",
        median(&mut fr_times),
        median(&mut restic_times),
        median(&mut ratios)
    );
    println!(
        "| peak resident memory of footrest during the backups (restic excluded) | {:.2} MiB |",
        hwm_kib(server.child.id()) as f64 / 1024.0
    );
}

fn seed(data: &Path, count: usize) {
    std::fs::create_dir_all(data).unwrap();
    let oplog = OpLog::open(&data.join("oplog.sqlite")).unwrap();
    let base = 1_700_000_000_000i64;
    let mut batch = Vec::with_capacity(1000);
    for i in 0..count {
        let op = Operation {
            id: 0,
            modno: 0,
            flow_id: 0,
            display_message: String::new(),
            repo_id: "r".into(),
            repo_guid: "a".repeat(64),
            plan_id: format!("plan-{}", i % 100),
            instance_id: "bench".into(),
            snapshot_id: format!("{:064x}", i),
            status: OperationStatus::Success,
            unix_time_start_ms: base + i as i64 * 60_000,
            unix_time_end_ms: base + i as i64 * 60_000 + 5_000,
            logref: format!("t-{i}"),
            op: Op::Backup(OperationBackup {
                last_status: Some(BackupProgressEntry::Summary(BackupProgressSummary {
                    files_new: 12,
                    files_unmodified: 4077,
                    data_added: 5_242_880,
                    total_files_processed: 4089,
                    total_bytes_processed: 2_147_483_648,
                    total_duration: 4.2,
                    snapshot_id: format!("{:064x}", i),
                    ..Default::default()
                })),
                ..Default::default()
            }),
        };
        batch.push(op);
        if batch.len() == 1000 || i + 1 == count {
            oplog.add_batch(&mut batch).unwrap();
            batch.clear();
        }
    }
}

fn get_operations(bin: &Path, count: usize) {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    seed(&dir.path().join("data"), count);
    let seeded = t.elapsed();
    let config = serde_json::json!({
        "version": 6, "instance": "bench",
        "repos": [{"id": "r", "uri": dir.path().join("repo"), "password": PASSWORD, "guid": "a".repeat(64)}],
        "plans": [{"id": "plan-0", "repo": "r", "paths": ["/nonexistent"]}],
        "auth": {"disabled": true}
    });
    let server = start(bin, dir, Some(config));
    let mut client = Client::new(server.addr, None);
    println!(
        "| oplog seeded with {count} operations (100 plans) | {:.1} s |",
        seeded.as_secs_f64()
    );
    for (name, body, expect) in [
        ("{\"lastN\": 100}", r#"{"lastN":"100"}"#, 100),
        (
            "planId + lastN 100",
            r#"{"selector":{"planId":"plan-7"},"lastN":"100"}"#,
            (count / 100).min(100),
        ),
        (
            "planId (1% of the log)",
            r#"{"selector":{"planId":"plan-7"}}"#,
            count / 100,
        ),
        (
            "modnoGte near the end (polling)",
            &format!(r#"{{"selector":{{"modnoGte":"{}"}}}}"#, count - 10),
            11,
        ),
    ] {
        let mut times = Vec::new();
        for i in 0..220 {
            let t = Instant::now();
            let (status, resp) = client.post("GetOperations", body);
            let elapsed = t.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(status, 200);
            if i == 0 {
                let v: serde_json::Value = serde_json::from_slice(&resp).unwrap();
                let n = v["operations"].as_array().map(|a| a.len()).unwrap_or(0);
                assert!(n >= expect.min(count) - 1, "{name}: {n} operations");
            }
            if i >= 20 {
                times.push(elapsed);
            }
        }
        times.sort_by(f64::total_cmp);
        let p99 = times[(times.len() * 99) / 100 - 1];
        println!(
            "| GetOperations {name}, over {count} operations: median / p99 | {:.2} ms / {:.2} ms |",
            median(&mut times),
            p99
        );
    }
    println!(
        "| peak resident memory of footrest serving them | {:.2} MiB |",
        hwm_kib(server.child.id()) as f64 / 1024.0
    );
}

fn auth_throughput(bin: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "version": 6, "instance": "bench",
        "repos": [{"id": "r", "uri": dir.path().join("repo"), "password": PASSWORD, "guid": "a".repeat(64)}],
        "plans": [{"id": "p", "repo": "r", "paths": ["/nonexistent"]}],
        "auth": {"users": [{"name": "admin", "passwordBcrypt": CHANGEME_HASH}]}
    });
    let server = start(bin, dir, Some(config));
    let mut cached = Vec::new();
    for _ in 0..5 {
        let mut client = Client::new(server.addr, Some(("admin", "changeme")));
        let n = 2000;
        let t = Instant::now();
        for _ in 0..n {
            let (status, _) = client.post("GetOperations", r#"{"lastN":"1"}"#);
            assert_eq!(status, 200);
        }
        cached.push(n as f64 / t.elapsed().as_secs_f64());
    }
    let hash = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(CHANGEME_HASH)
            .unwrap(),
    )
    .unwrap();
    let mut bcrypt_rates = Vec::new();
    for _ in 0..5 {
        let n = 10;
        let t = Instant::now();
        for _ in 0..n {
            assert!(bcrypt::verify("changeme", &hash).unwrap());
        }
        bcrypt_rates.push(n as f64 / t.elapsed().as_secs_f64());
    }
    let cached = median(&mut cached);
    let bcrypt = median(&mut bcrypt_rates);
    println!(
        "| authenticated GetOperations per second, one keep-alive client, credential cache | {cached:.0} /s |"
    );
    println!(
        "| bcrypt checks per second (cost 10; the ceiling of bcrypt on every call) | {bcrypt:.1} /s |"
    );
    println!("| ratio | {:.0}x |", cached / bcrypt);
}
