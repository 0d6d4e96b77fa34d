//! The end-to-end harness: runs the real `footrest` binary in a temporary directory
//! with a real restic repository, and talks to it over real HTTP on loopback with a
//! small client that shows exactly what went over the wire.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_footrest");
/// The repo password every test repository uses.
pub const REPO_PASSWORD: &str = "test-repo-password";
/// base64 of the bcrypt hash of `changeme` (CONTRACT §2).
pub const CHANGEME_HASH: &str =
    "JDJhJDEwJC9iekxLWkN5Z056QUlidjhmZmwyMy45TmNXVE1PNnNVRTViLmtUclBpcHVnd1IxaGpzOHFh";

/// A temporary home for one test: config, data dir, repository and backup sources.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn config_path(&self) -> PathBuf {
        self.path("config.json")
    }
    pub fn data_dir(&self) -> PathBuf {
        self.path("data")
    }
    pub fn repo_path(&self) -> PathBuf {
        self.path("repo")
    }
    /// A source folder with a few small files.
    pub fn source(&self, name: &str, files: usize) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for i in 0..files {
            std::fs::write(dir.join(format!("file-{i}.txt")), format!("content {i}\n")).unwrap();
        }
        std::fs::write(dir.join("sub/nested.txt"), "nested\n").unwrap();
        dir
    }
    /// A source folder holding `bytes` of random data, for backups that take a while
    /// when the repo has `--limit-upload`.
    pub fn random_source(&self, name: &str, bytes: usize) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut data = vec![0u8; bytes];
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut data)
            .unwrap();
        std::fs::write(dir.join("random.bin"), data).unwrap();
        dir
    }
    pub fn write_config(&self, config: &Value) {
        std::fs::write(
            self.config_path(),
            serde_json::to_vec_pretty(config).unwrap(),
        )
        .unwrap();
    }
    /// A config with one local repo ("local", auto-initialised) and the given plans.
    pub fn config(&self, plans: Value, auth: Value) -> Value {
        json!({
            "version": 6,
            "instance": "test-host",
            "repos": [{
                "id": "local",
                "uri": self.repo_path().to_str().unwrap(),
                "password": REPO_PASSWORD,
                "autoInitialize": true
            }],
            "plans": plans,
            "auth": auth
        })
    }
    /// Runs restic against the sandbox's repository.
    pub fn restic(&self, args: &[&str]) -> std::process::Output {
        Command::new("restic")
            .args(args)
            .env("RESTIC_REPOSITORY", self.repo_path())
            .env("RESTIC_PASSWORD", REPO_PASSWORD)
            .stdin(Stdio::null())
            .output()
            .expect("run restic")
    }
    /// The lock files in the sandbox's repository.
    pub fn locks(&self) -> Vec<String> {
        let out = self.restic(&["list", "locks", "--no-lock"]);
        assert!(
            out.status.success(),
            "restic list locks: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }
}

pub fn auth_off() -> Value {
    json!({"disabled": true})
}

pub fn auth_users(users: &[(&str, &str)]) -> Value {
    json!({"users": users.iter().map(|(name, hash)| json!({"name": name, "passwordBcrypt": hash})).collect::<Vec<_>>()})
}

/// A running footrest.
pub struct Footrest {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
    pub credentials: Option<(String, String)>,
}

impl Footrest {
    /// Starts footrest on the sandbox's config and waits until it listens.
    pub fn start(sandbox: &Sandbox) -> Footrest {
        Footrest::start_with(sandbox, &[])
    }

    pub fn start_with(sandbox: &Sandbox, extra: &[&str]) -> Footrest {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(sandbox.config_path())
            .arg("--data-dir")
            .arg(sandbox.data_dir())
            .args(["--bind", "127.0.0.1:0", "--log-level", "debug"])
            .args(extra);
        Footrest::spawn(cmd)
    }

    pub fn spawn(mut cmd: Command) -> Footrest {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start footrest");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_string());
                }
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "footrest did not start listening; its stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Footrest {
            child,
            addr,
            stderr,
            credentials: None,
        }
    }

    pub fn with_credentials(mut self, user: &str, password: &str) -> Footrest {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// POSTs JSON to an RPC with the footrest's credentials.
    pub fn rpc(&self, method: &str, body: &Value) -> HttpResponse {
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        if let Some((u, p)) = &self.credentials {
            headers.push(("Authorization".into(), basic(u, p)));
        }
        let body = serde_json::to_vec(body).unwrap();
        self.request("POST", &format!("/v1.Backrest/{method}"), &headers, &body)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> HttpResponse {
        request(self.addr, method, path, headers, body)
    }

    /// Every operation, via GetOperations.
    pub fn operations(&self, selector: Value) -> Vec<Value> {
        let r = self.rpc("GetOperations", &json!({ "selector": selector }));
        assert_eq!(r.status, 200, "GetOperations: {}", r.text());
        r.json()["operations"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until an operation matching `pred` exists; returns it.
    pub fn wait_for_op(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(op) = self.operations(json!({})).into_iter().find(|o| pred(o)) {
                return op;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One operation, by id.
    pub fn op_by_id(&self, id: &str) -> Value {
        self.operations(json!({ "ids": [id] })).remove(0)
    }

    /// Waits until the operation has ended; returns it.
    pub fn wait_ended(&self, id: &str) -> Value {
        let mut op = Value::Null;
        wait_until(
            &format!("operation {id} to end"),
            Duration::from_secs(120),
            || {
                op = self.op_by_id(id);
                !matches!(
                    op["status"].as_str(),
                    Some("STATUS_PENDING" | "STATUS_INPROGRESS")
                )
            },
        );
        op
    }

    pub fn signal(&self, sig: i32) {
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill({sig})");
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "footrest did not exit; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Footrest {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// One HTTP exchange as it went over the wire.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }
    /// Asserts a Connect error with this status and code; returns the message.
    pub fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert!(
            self.header("content-type")
                .unwrap_or("")
                .starts_with("application/json"),
            "error content type: {:?}",
            self.header("content-type")
        );
        let v = self.json();
        assert_eq!(v["code"], code, "body: {}", self.text());
        v["message"].as_str().expect("message").to_string()
    }
}

/// Sends one request with `Connection: close` and reads the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> HttpResponse {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_response(&mut s)
}

pub fn read_response(s: &mut TcpStream) -> HttpResponse {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> HttpResponse {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(pos) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..pos]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[pos + 2..pos + 2 + size]);
        data = &data[pos + 4 + size..];
    }
}

/// The number of processes whose command line starts with `restic` and whose parent is
/// `pid` or that are still around from a test: used to prove no restic outlives footrest.
pub fn restic_children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
        let ppid: u32 = after
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let comm = stat
            .split('(')
            .nth(1)
            .and_then(|s| s.split(')').next())
            .unwrap_or("");
        if ppid == pid && comm == "restic" {
            found.push(p);
        }
    }
    found
}

/// Whether a process exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .map(|(_, r)| r.starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}
