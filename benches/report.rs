//! The benchmark report (run by `bench/report.sh`, which writes its output into
//! BENCHMARKS.md): every figure of footrest next to its baseline, measured in one run on
//! one machine, with the command that measured it. Prints Markdown on stdout, progress
//! on stderr.
//!
//! - release binary size; start-up time (process start to the first `200`);
//! - idle resident memory, and peak resident memory under each load;
//! - a `Backup` call against plain `restic backup`: a 10,000-file tree and one big file,
//!   first backup and alternating incremental rounds, medians;
//! - GetOperations latency (median, p99) over oplogs of 1k, 100k and 1M operations,
//!   filled through the library (no restic involved);
//! - authenticated throughput (Basic auth, credential cache) under wrk, against Debian's
//!   nginx serving the same response bytes as a static file: this machine's ceiling.
//!
//! Environment (bench/report.sh sets these from QUICK=1 or leaves the defaults):
//! `REPORT_ROUNDS` (5), `REPORT_FILES` (10000), `REPORT_BIG_MIB` (1024), `REPORT_OPS`
//! (`1000,100000,1000000`), `REPORT_REQS` (requests per GetOperations query, 220),
//! `REPORT_WRK_SECONDS` (10), `REPORT_WRK_RUNS` (3), `REPORT_WRK_CONNS` (32),
//! `REPORT_STARTS` (10).

mod common;

use common::{
    CHANGEME_HASH, Client, PASSWORD, env_num, hwm_kib, make_tree, median, rss_kib, seed, start,
    start_at,
};

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

fn main() {
    // bench/report.sh hands over a copy of the release build: `cargo bench` itself
    // rewrites target/release/footrest with the bench profile's settings.
    let bin = std::env::var_os("FOOTREST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/footrest")
        });
    assert!(
        bin.exists(),
        "build the release binary first: cargo build --release"
    );
    let rounds = env_num("REPORT_ROUNDS", 5);
    let files = env_num("REPORT_FILES", 10_000);
    let big_mib = env_num("REPORT_BIG_MIB", 1024);
    let sizes: Vec<usize> = std::env::var("REPORT_OPS")
        .unwrap_or_else(|_| "1000,100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let reqs = env_num("REPORT_REQS", 220).max(25);
    let wrk_seconds = env_num("REPORT_WRK_SECONDS", 10);
    let wrk_runs = env_num("REPORT_WRK_RUNS", 3);
    let conns = env_num("REPORT_WRK_CONNS", 32);
    let starts = env_num("REPORT_STARTS", 10);

    println!("## Size, start-up, memory");
    println!();
    println!("| figure | value | how it was measured |");
    println!("|---|---|---|");
    let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
    println!(
        "| release binary size (the release profile: stripped, LTO, opt-level z) | {:.2} MiB ({size} bytes) | `cargo build --release; stat -c %s target/release/footrest` |",
        size as f64 / 1048576.0
    );
    startup(&bin, starts, None);
    println!(
        "| idle resident memory (VmRSS, starter config, 2 s after start; median of 3) | {:.2} MiB | `grep VmRSS /proc/PID/status` |",
        common::idle_rss_mib(&bin)
    );
    println!();

    println!("## Backup call vs plain restic");
    println!();
    println!(
        "Each round runs footrest's `Backup` call (HTTP, blocking until the backup operation \
         has ended, snapshot indexed) and then the same `restic backup --json` on its own \
         repository, alternately; the first (full) backup is shown apart from the \
         incremental rounds. Both repositories are local, made with the same restic. footrest \
         runs that same restic binary with the same arguments (plus `--parent` when it knows \
         the last snapshot, and `RESTIC_PROGRESS_FPS=1`), so a ratio below 1 is restic's \
         run-to-run spread and the order within a round (footrest's run goes first), not \
         footrest doing less work; what the ratio bounds is footrest's own overhead."
    );
    println!();
    println!(
        "| workload | footrest Backup | plain restic | ratio (footrest / restic) | how it was measured |"
    );
    println!("|---|---|---|---|---|");
    {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        eprintln!("report: making a tree of {files} files");
        make_tree(&tree, files);
        let t2 = tree.clone();
        backup_pair(
            &bin,
            &format!("{files} small files"),
            &tree,
            rounds,
            "10 files rewritten per round",
            &move |round| {
                for i in 0..10 {
                    let f = t2.join(format!("d000/f{:05}.txt", i));
                    std::fs::write(f, format!("round {round} file {i}\n")).unwrap();
                }
            },
        );
    }
    {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("big");
        std::fs::create_dir_all(&tree).unwrap();
        let file = tree.join("disk.img");
        eprintln!("report: writing a {big_mib} MiB file of random bytes");
        write_random(&file, big_mib as u64 * 1048576, 1);
        let f2 = file.clone();
        let len = big_mib as u64 * 1048576;
        backup_pair(
            &bin,
            &format!("one {big_mib} MiB file (random bytes)"),
            &tree,
            rounds,
            "1 MiB of it rewritten per round (the whole file is read again)",
            &move |round| {
                let off = (round as u64 * 7 * 1048576) % len.saturating_sub(1048576).max(1);
                rewrite_range(&f2, off, 1048576, round as u64 + 100);
            },
        );
    }
    println!();

    println!("## GetOperations latency");
    println!();
    println!(
        "The oplog is filled through the library (`OpLog::add_batch`, 100 plans, backup \
         operations with a summary), then footrest is started on it and one keep-alive \
         client sends the same request {reqs} times; the first 20 are warm-up."
    );
    println!();
    println!("| operations in the oplog | request | median | p99 | operations answered |");
    println!("|---|---|---|---|---|");
    let mut largest: Option<(tempfile::TempDir, usize)> = None;
    let mut hwm_rows = Vec::new();
    for &count in &sizes {
        let (dir, hwm) = get_operations(&bin, count, reqs);
        hwm_rows.push((count, hwm));
        largest = Some((dir, count));
    }
    println!();
    println!(
        "Command: `bench/report.sh` (benches/report.rs, `get_operations`); each request is `POST \
         /v1.Backrest/GetOperations` with the body shown, over one keep-alive HTTP/1.1 connection."
    );
    println!();

    println!("## Authenticated throughput vs nginx");
    println!();
    throughput(&bin, wrk_seconds, wrk_runs, conns);
    println!();

    println!("## Memory under load, start-up with a full oplog");
    println!();
    println!("| figure | value | how it was measured |");
    println!("|---|---|---|");
    for (count, hwm) in hwm_rows {
        println!(
            "| peak resident memory (VmHWM) serving GetOperations over {count} operations | {:.2} MiB | VmHWM of the footrest process after the latency runs above |",
            hwm as f64 / 1024.0
        );
    }
    if let Some((dir, count)) = largest {
        startup(&bin, starts, Some((dir.path(), count)));
    }
}

/// Milliseconds from spawning footrest to its first `200` answer, median of `runs`;
/// on a fresh data dir, or on `existing` (a data dir holding an oplog of that size).
fn startup(bin: &Path, runs: usize, existing: Option<(&Path, usize)>) {
    let mut times = Vec::new();
    for _ in 0..runs {
        let fresh = tempfile::tempdir().unwrap();
        let (config, data) = match existing {
            Some((dir, _)) => (dir.join("config.json"), dir.join("data")),
            None => (fresh.path().join("config.json"), fresh.path().join("data")),
        };
        let port = free_port();
        let t = Instant::now();
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        loop {
            if let Ok(s) = TcpStream::connect(addr) {
                let mut c = Client::from_stream(s, None);
                if let Some((200, _)) = c.try_post("GetOperations", r#"{"lastN":"1"}"#) {
                    break;
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "footrest did not answer within 60 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        let _ = child.kill();
        let _ = child.wait();
    }
    let what = match existing {
        None => "fresh data dir, starter config".to_string(),
        Some((_, n)) => format!("data dir with {n} operations"),
    };
    println!(
        "| start-up to first 200 ({what}; median of {runs}) | {:.1} ms | spawn `footrest --bind 127.0.0.1:PORT`, then `POST /v1.Backrest/GetOperations` every 1 ms until `200` |",
        median(&mut times)
    );
}

/// An OS-chosen free port on loopback (released for the caller to bind).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// xorshift64*: incompressible bytes, fast enough to write a GiB in seconds.
fn fill_random(buf: &mut [u8], state: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        let v = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

fn write_random(path: &Path, len: u64, seed: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        fill_random(&mut buf[..n], &mut state);
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

fn rewrite_range(path: &Path, off: u64, len: usize, seed: u64) {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; len];
    fill_random(&mut buf, &mut state);
    f.write_all(&buf).unwrap();
    f.sync_all().unwrap();
}

fn backup_pair(
    bin: &Path,
    workload: &str,
    tree: &Path,
    rounds: usize,
    change: &str,
    mutate: &dyn Fn(usize),
) {
    eprintln!("report: backups of {workload}");
    let dir = tempfile::tempdir().unwrap();
    let plain_repo = dir.path().join("plain-repo");
    common::init_repo(&plain_repo);
    let sdir = tempfile::tempdir().unwrap();
    let fr_repo = sdir.path().join("repo");
    let guid = common::init_repo(&fr_repo);
    let config = serde_json::json!({
        "version": 6, "instance": "bench",
        "repos": [{"id": "r", "uri": fr_repo, "password": PASSWORD, "guid": guid}],
        "plans": [{"id": "p", "repo": "r", "paths": [tree]}],
        "auth": {"disabled": true}
    });
    let server = start(bin, sdir, Some(config));
    let mut client = Client::new(server.addr, None);
    let restic_args = [
        "backup",
        "--json",
        "-q",
        "--exclude-caches",
        "--tag",
        "plan:p",
        "--tag",
        "created-by:bench",
        tree.to_str().unwrap(),
    ];
    let mut first = (0.0, 0.0);
    let (mut fr_times, mut restic_times, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..=rounds {
        if round > 0 {
            mutate(round);
        }
        let t = Instant::now();
        let (status, body) = client.post("Backup", r#"{"value":"p"}"#);
        let fr = t.elapsed().as_secs_f64();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let t = Instant::now();
        let out = Command::new("restic")
            .args(restic_args)
            .env("RESTIC_REPOSITORY", &plain_repo)
            .env("RESTIC_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let plain = t.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if round == 0 {
            first = (fr, plain);
        } else {
            fr_times.push(fr);
            restic_times.push(plain);
            ratios.push(fr / plain);
        }
    }
    let how = format!(
        "`POST /v1.Backrest/Backup {{\"value\":\"p\"}}` vs `restic {} TREE`",
        restic_args[..8].join(" ")
    );
    println!(
        "| {workload}: first backup | {:.2} s | {:.2} s | {:.3} | {how} |",
        first.0,
        first.1,
        first.0 / first.1
    );
    println!(
        "| {workload}: incremental, {change}; median of {rounds} alternating rounds | {:.3} s | {:.3} s | {:.3} (median of the rounds' ratios) | same |",
        median(&mut fr_times),
        median(&mut restic_times),
        median(&mut ratios)
    );
    println!(
        "| {workload}: peak resident memory of footrest during these backups (restic excluded) | {:.2} MiB | | | VmHWM of the footrest process |",
        hwm_kib(server.child.id()) as f64 / 1024.0
    );
}

/// Latency of four GetOperations queries over an oplog of `count` operations. Gives the
/// data dir (for the start-up figure) and footrest's peak memory in KiB.
fn get_operations(bin: &Path, count: usize, reqs: usize) -> (tempfile::TempDir, u64) {
    let dir = tempfile::tempdir().unwrap();
    eprintln!("report: seeding {count} operations");
    let t = Instant::now();
    seed(&dir.path().join("data"), count);
    let seeded = t.elapsed().as_secs_f64();
    let config = serde_json::json!({
        "version": 6, "instance": "bench",
        "repos": [{"id": "r", "uri": dir.path().join("repo"), "password": PASSWORD, "guid": "a".repeat(64)}],
        "plans": [{"id": "plan-0", "repo": "r", "paths": ["/nonexistent"]}],
        "auth": {"disabled": true}
    });
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    let server = start_at(
        bin,
        &dir.path().join("config.json"),
        &dir.path().join("data"),
    );
    let mut client = Client::new(server.addr, None);
    let queries: [(&str, String); 4] = [
        ("`{\"lastN\":\"100\"}`", r#"{"lastN":"100"}"#.into()),
        (
            "`{\"selector\":{\"planId\":\"plan-7\"},\"lastN\":\"100\"}`",
            r#"{"selector":{"planId":"plan-7"},"lastN":"100"}"#.into(),
        ),
        (
            "`{\"selector\":{\"planId\":\"plan-7\"}}` (1% of the log)",
            r#"{"selector":{"planId":"plan-7"}}"#.into(),
        ),
        (
            "`{\"selector\":{\"modnoGte\":\"N-10\"}}` (polling for changes)",
            format!(
                r#"{{"selector":{{"modnoGte":"{}"}}}}"#,
                count.saturating_sub(10)
            ),
        ),
    ];
    for (name, body) in &queries {
        let mut times = Vec::new();
        let mut answered = 0;
        for i in 0..reqs {
            let t = Instant::now();
            let (status, resp) = client.post("GetOperations", body);
            let elapsed = t.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(status, 200);
            if i == 0 {
                let v: serde_json::Value = serde_json::from_slice(&resp).unwrap();
                answered = v["operations"].as_array().map(|a| a.len()).unwrap_or(0);
            }
            if i >= 20 {
                times.push(elapsed);
            }
        }
        times.sort_by(f64::total_cmp);
        let p99 = times[((times.len() * 99) / 100).saturating_sub(1)];
        println!(
            "| {count} (seeded in {seeded:.1} s) | {name} | {:.2} ms | {p99:.2} ms | {answered} |",
            median(&mut times)
        );
    }
    let hwm = hwm_kib(server.child.id());
    drop(server);
    (dir, hwm)
}

/// nginx with a config of its own in a temp dir, serving `body` as /ops.json.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: nginx's graceful stop; it takes its workers with it (SIGKILL would
        // leave them running).
        // SAFETY: kill(2) on our own child's pid, which it has not been reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGQUIT);
        }
        let _ = self.child.wait();
    }
}

fn start_nginx(body: &[u8]) -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("www")).unwrap();
    std::fs::write(d.join("www/ops.json"), body).unwrap();
    // Workers run as nobody when started as root: they must be able to read the file.
    for p in [d.to_path_buf(), d.join("www"), d.join("www/ops.json")] {
        let _ = Command::new("chmod").arg("a+rX").arg(&p).status();
    }
    let port = free_port();
    let conf = format!(
        "worker_processes auto;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         daemon off;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
           access_log off;\n\
           client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
           keepalive_requests 1000000;\n\
           server {{\n\
             listen 127.0.0.1:{port};\n\
             root {d}/www;\n\
             default_type application/json;\n\
             location / {{ }}\n\
           }}\n\
         }}\n",
        d = d.display()
    );
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .arg("-e")
        .arg(d.join("error.log"))
        .arg("-p")
        .arg(d)
        .arg("-c")
        .arg(d.join("nginx.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx is installed (bench/report.sh installs it)");
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(20), "nginx did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    Nginx {
        child,
        port,
        _dir: dir,
    }
}

/// Requests per second of one wrk run, and whether every answer was a 2xx.
fn wrk(url: &str, script: &Path, seconds: usize, conns: usize) -> (f64, String) {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{conns}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("wrk is installed (bench/report.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !text.contains("Non-2xx"),
        "wrk saw failed answers from {url}:\n{text}"
    );
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN);
    let p50 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("50%"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    (rps, p50)
}

fn throughput(bin: &Path, seconds: usize, runs: usize, conns: usize) {
    eprintln!("report: throughput, wrk against footrest and nginx");
    let dir = tempfile::tempdir().unwrap();
    seed(&dir.path().join("data"), 1000);
    let config = serde_json::json!({
        "version": 6, "instance": "bench",
        "repos": [{"id": "r", "uri": dir.path().join("repo"), "password": PASSWORD, "guid": "a".repeat(64)}],
        "plans": [{"id": "plan-0", "repo": "r", "paths": ["/nonexistent"]}],
        "auth": {"users": [{"name": "admin", "passwordBcrypt": CHANGEME_HASH}]}
    });
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    let server = start_at(
        bin,
        &dir.path().join("config.json"),
        &dir.path().join("data"),
    );
    let body = r#"{"lastN":"1"}"#;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:changeme")
    );
    let mut client = Client::new(server.addr, Some(("admin", "changeme")));
    let (status, answer) = client.post("GetOperations", body);
    assert_eq!(status, 200);
    let nginx = start_nginx(&answer);
    let scripts = tempfile::tempdir().unwrap();
    let fr_script = scripts.path().join("footrest.lua");
    std::fs::write(
        &fr_script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = '{body}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = \"{auth}\"\n"
        ),
    )
    .unwrap();
    let ng_script = scripts.path().join("nginx.lua");
    std::fs::write(
        &ng_script,
        format!("wrk.method = \"GET\"\nwrk.headers[\"Authorization\"] = \"{auth}\"\n"),
    )
    .unwrap();
    let fr_url = format!("http://{}/v1.Backrest/GetOperations", server.addr);
    let ng_url = format!("http://127.0.0.1:{}/ops.json", nginx.port);
    let (mut fr, mut ng, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut fr_p50, mut ng_p50) = (Vec::new(), Vec::new());
    // One short warm-up each, then alternating runs.
    wrk(&fr_url, &fr_script, 1, conns);
    wrk(&ng_url, &ng_script, 1, conns);
    for _ in 0..runs.max(1) {
        let (n, np) = wrk(&ng_url, &ng_script, seconds, conns);
        let (f, fp) = wrk(&fr_url, &fr_script, seconds, conns);
        ng.push(n);
        fr.push(f);
        ratios.push(f / n);
        ng_p50.push(np);
        fr_p50.push(fp);
    }
    let hwm = hwm_kib(server.child.id());
    let rss = rss_kib(server.child.id());
    println!(
        "wrk from Debian's packages loads both servers in turn on loopback with the same \
         settings: `wrk -t2 -c{conns} -d{seconds}s --latency -s SCRIPT URL`, {runs} \
         alternating runs after a 1 s warm-up each. footrest answers an authenticated \
         (Basic, credential cache) `POST /v1.Backrest/GetOperations {body}` over an oplog \
         of 1000 operations; nginx (Debian's, `worker_processes auto`, its own config in a \
         temp dir, a port the OS picked) serves the same {} response bytes as a static \
         file (`GET /ops.json`, the same Authorization header, which it ignores). No \
         request failed (wrk reported no non-2xx answer).",
        answer.len()
    );
    println!();
    println!("| figure | footrest | nginx (ceiling) | ratio (footrest / nginx) |");
    println!("|---|---|---|---|");
    println!(
        "| requests per second, median of {runs} runs | {:.0} /s | {:.0} /s | {:.3} (median of the runs' ratios) |",
        median(&mut fr),
        median(&mut ng),
        median(&mut ratios)
    );
    println!(
        "| median latency per run (wrk's 50%) | {} | {} | |",
        fr_p50.join(", "),
        ng_p50.join(", ")
    );
    println!(
        "| footrest resident memory after the load: VmRSS / VmHWM | {:.2} MiB / {:.2} MiB | | |",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    drop(nginx);
    drop(server);
}
