//! What the benchmarks share: settings from the environment, medians, and the facts
//! about the machine that every report names.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use footrest::oplog::OpLog;
use footrest::proto::{
    BackupProgressEntry, BackupProgressSummary, Op, Operation, OperationBackup, OperationStatus,
};

/// A whole number from the environment, or the default.
pub fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median (sorts the slice); NaN for none.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

pub fn restic_version() -> String {
    Command::new("restic")
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub const PASSWORD: &str = "bench-password";
/// base64 of the bcrypt hash (cost 10) of `changeme`.
pub const CHANGEME_HASH: &str =
    "JDJhJDEwJC9iekxLWkN5Z056QUlidjhmZmwyMy45TmNXVE1PNnNVRTViLmtUclBpcHVnd1IxaGpzOHFh";

/// A running footrest (killed on drop), with the temp dir it lives in when it owns one.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts footrest in `dir` (config.json, data/), writing `config` first when given.
pub fn start(bin: &Path, dir: tempfile::TempDir, config: Option<serde_json::Value>) -> Server {
    let config_path = dir.path().join("config.json");
    if let Some(c) = config {
        std::fs::write(&config_path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }
    let mut server = start_at(bin, &config_path, &dir.path().join("data"));
    server.dir = Some(dir);
    server
}

/// Starts footrest on a config file and data dir that outlive it; waits for its address.
pub fn start_at(bin: &Path, config_path: &Path, data_dir: &Path) -> Server {
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(config_path)
        .arg("--data-dir")
        .arg(data_dir)
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
            // A benchmark that went wrong says why on the terminal.
            if line.contains("footrest error") || line.contains("footrest warn") {
                eprintln!("{line}");
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
        dir: None,
    }
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

pub fn hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A persistent keep-alive client.
pub struct Client {
    stream: TcpStream,
    auth: Option<String>,
}

impl Client {
    pub fn new(addr: SocketAddr, auth: Option<(&str, &str)>) -> Client {
        Client::from_stream(TcpStream::connect(addr).unwrap(), auth)
    }

    pub fn from_stream(stream: TcpStream, auth: Option<(&str, &str)>) -> Client {
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

    pub fn post(&mut self, method: &str, body: &str) -> (u16, Vec<u8>) {
        self.try_post(method, body)
            .unwrap_or_else(|| panic!("{method}: the connection failed"))
    }

    /// The status and body, or None when the connection failed or the answer was garbled.
    pub fn try_post(&mut self, method: &str, body: &str) -> Option<(u16, Vec<u8>)> {
        let mut req = format!(
            "POST /v1.Backrest/{method} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(a) = &self.auth {
            req.push_str(&format!("Authorization: {a}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.stream.write_all(req.as_bytes()).ok()?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            self.stream.read_exact(&mut byte).ok()?;
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let status = head.get(9..12)?.parse().ok()?;
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).ok()?;
        Some((status, body))
    }
}

pub fn make_tree(root: &Path, files: usize) {
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

pub fn seed(data: &Path, count: usize) {
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

/// Creates a local restic repository (`restic init`) and returns its id (`restic cat
/// config`).
pub fn init_repo(repo: &Path) -> String {
    let restic = |args: &[&str]| {
        let out = Command::new("restic")
            .args(args)
            .env("RESTIC_REPOSITORY", repo)
            .env("RESTIC_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "restic {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    restic(&["init", "-q"]);
    let config: serde_json::Value = serde_json::from_slice(&restic(&["cat", "config"])).unwrap();
    let id = config["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 64, "restic repository id {id:?}");
    id
}

/// Idle resident memory in MiB: the median of three fresh starts on the starter config,
/// each read 2 s after start-up.
pub fn idle_rss_mib(bin: &Path) -> f64 {
    let mut samples = Vec::new();
    for _ in 0..3 {
        let server = start(bin, tempfile::tempdir().unwrap(), None);
        std::thread::sleep(Duration::from_secs(2));
        samples.push(rss_kib(server.child.id()) as f64);
    }
    median(&mut samples) / 1024.0
}
