//! The schedule benchmark (run with `bench/schedule.sh`): what footrest costs while it
//! waits for scheduled work, and what one planning pass costs with many schedules.
//!
//! - Idle: the release binary with 20 planned backups that will not fire during the
//!   window, auth off and a repo whose guid is known (so restic never runs). CPU ticks
//!   (utime + stime of `/proc/<pid>/stat`) and every thread's voluntary context switches
//!   (its wake-ups) over `BENCH_IDLE_SECS`, set next to the target of at most one
//!   wake-up per minute per thread; resident memory at the end.
//! - Replanning: footrest's library in-process with 1,000 plans (cron schedules of
//!   several kinds and `maxFrequencyHours`), each with a history in the oplog. The
//!   first planning (1,000 pending operations created), the steady-state replan
//!   (nothing changed) and the replan after every schedule moved (1,000 pending
//!   operations moved), each timed on the calling thread with `replan_now`.
//!
//! Environment: `BENCH_IDLE_SECS` (idle window, default 600), `BENCH_PLANS` (plans to
//! replan, default 1000), `BENCH_REPLANS` (steady-state replans timed, default 20),
//! `BENCH_MOVES` (moved-schedule replans timed, default 5), `BENCH_HISTORY` (past
//! backups per plan in the oplog, default 20).

mod common;

use common::{cores, cpu_model, env_num, median, restic_version};

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use footrest::oplog::OpLog;
use footrest::orchestrator::clock::{Clock, SystemClock};
use footrest::proto::{
    BackupProgressEntry, BackupProgressSummary, Op, Operation, OperationBackup, OperationStatus,
};
use footrest::settings::{Args, Settings};
use serde_json::{Value, json};

const PASSWORD: &str = "bench-password";

fn main() {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/footrest");
    assert!(
        bin.exists(),
        "build the release binary first: cargo build --release"
    );
    let idle_secs = env_num("BENCH_IDLE_SECS", 600).max(1);
    let plans = env_num("BENCH_PLANS", 1000).max(5);
    let replans = env_num("BENCH_REPLANS", 20).max(1);
    let moves = env_num("BENCH_MOVES", 5).max(1);
    let history = env_num("BENCH_HISTORY", 20).max(1);
    footrest::logging::set_level(footrest::logging::Level::Warn);

    println!("# footrest schedule benchmark");
    println!();
    println!(
        "machine: {} cores, {}, Linux {}",
        cores(),
        cpu_model(),
        kernel()
    );
    println!("restic: {}", restic_version());
    println!();

    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let guid = common::init_repo(&repo);
    idle(&bin, &repo, &guid, idle_secs);
    println!();
    replan(&repo, &guid, plans, replans, moves, history);
}

/// An hour of the day 2 to 21 hours after `now_hour` (by `k`): a cron at that hour
/// cannot fire within the next hour, and its last occurrence was over two hours ago.
fn far_hour(now_hour: i8, k: usize) -> i64 {
    (i64::from(now_hour) + 2 + (k % 20) as i64) % 24
}

fn local_hour() -> i8 {
    jiff::ZonedDateTime::now().hour()
}

// ---------------------------------------------------------------------------------------
// Idle CPU and wake-ups of the release binary.

/// One request on its own connection (`Connection: close`), so no keep-alive
/// connection stays open in a request thread while footrest is measured.
fn post(addr: SocketAddr, method: &str, body: &str) -> Value {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let req = format!(
        "POST /v1.Backrest/{method} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).unwrap();
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&resp[..split]);
    assert!(head.starts_with("HTTP/1.1 200"), "{method}: {head}");
    serde_json::from_slice(&resp[split + 4..]).unwrap()
}

/// (pending scheduled backups, other operations) in footrest's oplog.
fn count_ops(addr: SocketAddr) -> (usize, usize) {
    let v = post(addr, "GetOperations", "{}");
    let ops = v["operations"].as_array().cloned().unwrap_or_default();
    let pending = ops
        .iter()
        .filter(|o| o["status"] == "STATUS_PENDING" && o.get("operationBackup").is_some())
        .count();
    (pending, ops.len() - pending)
}

/// One thread's counters.
#[derive(Clone, Default)]
struct ThreadSample {
    comm: String,
    ticks: u64,
    cpu_ns: u64,
    voluntary: u64,
    involuntary: u64,
}

/// The process's counters and each thread's, by thread id.
struct Sample {
    ticks: u64,
    threads: BTreeMap<u32, ThreadSample>,
}

impl Sample {
    /// CPU time of all threads (the process's own `schedstat` is its main thread's).
    fn cpu_ns(&self) -> u64 {
        self.threads.values().map(|t| t.cpu_ns).sum()
    }
}

/// utime + stime (fields 14 and 15 of a `stat` file), in clock ticks.
fn stat_ticks(path: &Path) -> u64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> u64 { fields.get(n - 3).and_then(|v| v.parse().ok()).unwrap_or(0) };
    field(14) + field(15)
}

/// Time on the CPU in ns (first field of `schedstat`), finer than clock ticks.
fn schedstat_ns(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn status_field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| {
            v.trim_start_matches(':')
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn sample(pid: u32) -> Sample {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let mut threads = BTreeMap::new();
    for entry in std::fs::read_dir(proc.join("task")).unwrap().flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let task = entry.path();
        let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
        threads.insert(
            tid,
            ThreadSample {
                comm: std::fs::read_to_string(task.join("comm"))
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                ticks: stat_ticks(&task.join("stat")),
                cpu_ns: schedstat_ns(&task.join("schedstat")),
                voluntary: status_field(&status, "voluntary_ctxt_switches"),
                involuntary: status_field(&status, "nonvoluntary_ctxt_switches"),
            },
        );
    }
    Sample {
        ticks: stat_ticks(&proc.join("stat")),
        threads,
    }
}

fn kib(pid: u32, field: &str) -> u64 {
    status_field(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default(),
        field,
    )
}

/// Clock ticks per second, as `getconf CLK_TCK` prints it.
fn clock_ticks_per_sec() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .expect("getconf CLK_TCK")
}

fn idle(bin: &Path, repo: &Path, guid: &str, secs: usize) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("file.txt"), "data\n").unwrap();
    let now_hour = local_hour();
    let plans: Vec<Value> = (0..20)
        .map(|i| {
            json!({
                "id": format!("plan-{i:02}"),
                "repo": "local",
                "paths": [src],
                "schedule": {"cron": format!("{} {} * * *", (i * 7) % 60, far_hour(now_hour, i))},
                "retention": {"policyKeepLastN": 10}
            })
        })
        .collect();
    let config = json!({
        "version": 6, "instance": "bench",
        "repos": [{"id": "local", "uri": repo, "password": PASSWORD, "guid": guid}],
        "plans": plans,
        "auth": {"disabled": true}
    });
    let config_path = dir.path().join("config.json");
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let server = common::start_at(bin, &config_path, &dir.path().join("data"));
    let pid = server.child.id();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (pending, _) = count_ops(server.addr);
        if pending == 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "footrest did not plan the 20 schedules: {pending} pending"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let the request thread that answered go back to waiting before the window opens.
    std::thread::sleep(Duration::from_secs(1));
    let before = sample(pid);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(secs as u64));
    let after = sample(pid);
    let window = t.elapsed().as_secs_f64();
    let rss = kib(pid, "VmRSS");
    let hwm = kib(pid, "VmHWM");
    // Asked after the second sample, so these requests are not counted.
    let (pending, others) = count_ops(server.addr);
    drop(server);

    let tck = clock_ticks_per_sec();
    let ticks = after.ticks.saturating_sub(before.ticks);
    let cpu_ms = after.cpu_ns().saturating_sub(before.cpu_ns()) as f64 / 1e6;
    let minutes = window / 60.0;
    // The target, one wake-up per minute, counted per started minute of the window: a
    // 60 s tick can fall 11 times into a 600 s window.
    let allowed = minutes.floor() as u64 + 1;
    let meets = |wakes: u64| wakes <= allowed;
    println!("## Idle with 20 scheduled plans ({window:.0} s window)");
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| CPU ticks used (utime+stime, /proc/<pid>/stat; {tck} ticks/s) | {ticks} ticks = {:.3} s |",
        ticks as f64 / tck as f64
    );
    println!(
        "| CPU percent (ticks / window) | {:.4} % |",
        ticks as f64 / tck as f64 / window * 100.0
    );
    println!(
        "| CPU time, all threads (/proc/<pid>/task/*/schedstat, ns resolution) | {cpu_ms:.2} ms = {:.5} % |",
        cpu_ms / 1000.0 / window * 100.0
    );
    let total_wakes: u64 = after
        .threads
        .iter()
        .map(|(tid, a)| {
            a.voluntary
                .saturating_sub(before.threads.get(tid).map_or(0, |b| b.voluntary))
        })
        .sum();
    println!(
        "| wake-ups, all threads (voluntary context switches) | {total_wakes} = {:.1} /min |",
        total_wakes as f64 / minutes
    );
    println!(
        "| threads | {} ({} above the target of one wake-up per minute, at most {allowed} in the window) |",
        after.threads.len(),
        after
            .threads
            .iter()
            .filter(|(tid, a)| {
                let b = before.threads.get(tid).map_or(0, |b| b.voluntary);
                !meets(a.voluntary.saturating_sub(b))
            })
            .count()
    );
    println!(
        "| resident memory at the end (VmRSS; peak VmHWM) | {:.2} MiB (peak {:.2} MiB) |",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!("| operations at the end | {pending} pending scheduled backups, {others} others |");
    println!();
    println!(
        "| thread (comm, tid) | wake-ups in window | wake-ups /min | target | involuntary switches | CPU ticks | CPU time |"
    );
    println!("|---|---|---|---|---|---|---|");
    let empty = ThreadSample::default();
    for (tid, a) in &after.threads {
        let (b, note) = match before.threads.get(tid) {
            Some(b) => (b, ""),
            None => (&empty, " (started in the window)"),
        };
        let wakes = a.voluntary.saturating_sub(b.voluntary);
        let rate = wakes as f64 / minutes;
        println!(
            "| {} ({tid}){note} | {wakes} | {rate:.2} | ≤ 1/min (≤ {allowed}): {} | {} | {} | {:.2} ms |",
            a.comm,
            if meets(wakes) { "met" } else { "**above**" },
            a.involuntary.saturating_sub(b.involuntary),
            a.ticks.saturating_sub(b.ticks),
            a.cpu_ns.saturating_sub(b.cpu_ns) as f64 / 1e6,
        );
    }
    for (tid, b) in &before.threads {
        if !after.threads.contains_key(tid) {
            println!(
                "| {} ({tid}) (ended in the window) | - | - | - | - | - | - |",
                b.comm
            );
        }
    }
    println!();
    println!(
        "Wake-ups are voluntary context switches (a thread blocking again after it woke). \
         The kernel cuts thread names to 15 characters: footrest-http-10 to -15 show as \
         footrest-http-1."
    );
    assert_eq!(
        pending, 20,
        "the 20 planned backups should still be pending"
    );
    assert_eq!(others, 0, "nothing should have run during the idle window");
}

// ---------------------------------------------------------------------------------------
// Replanning many schedules in-process.

/// Plan `i`'s schedule; `shift` moves every one (a new cron minute, a new period).
fn schedule(i: usize, now_hour: i8, shift: usize) -> Value {
    let m = (i * 7 + shift) % 60;
    let h = far_hour(now_hour, i);
    let h2 = far_hour(now_hour, i + 7);
    match i % 5 {
        0 => json!({"cron": format!("{m} {h} * * *")}),
        1 => json!({"cron": format!("{m} {h} * * {}", i % 7)}),
        2 => json!({"cron": format!("{m} {h} {} * *", 1 + i % 28)}),
        3 => json!({"cron": format!("{}-59/20 {h},{h2} * * 1-5", m % 20)}),
        _ => json!({"maxFrequencyHours": 1 + (i + shift) % 48}),
    }
}

const KINDS: &str = "daily cron, weekly cron, monthly cron, weekday cron with a list and a step, maxFrequencyHours (1 to 48 h); a fifth of the plans each";

fn plans_config(
    repo: &Path,
    guid: &str,
    src: &Path,
    ids: &[String],
    now_hour: i8,
    shift: usize,
) -> Value {
    let plans: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({
                "id": id,
                "repo": "local",
                "paths": [src],
                "schedule": schedule(i, now_hour, shift),
                "retention": {"policyKeepLastN": 10}
            })
        })
        .collect();
    json!({
        "version": 6, "instance": "bench",
        "repos": [{"id": "local", "uri": repo, "password": PASSWORD, "guid": guid}],
        "plans": plans,
        "auth": {"disabled": true}
    })
}

/// Past successful backups of every plan, the latest ten minutes ago (after every cron's
/// last occurrence, so no catch-up run is due; within every maxFrequencyHours period).
fn seed_history(data: &Path, guid: &str, ids: &[String], per_plan: usize) {
    std::fs::create_dir_all(data).unwrap();
    let oplog = OpLog::open(&data.join("oplog.sqlite")).unwrap();
    let now = SystemClock.now_ms();
    let mut batch = Vec::with_capacity(1000);
    let mut n = 0usize;
    for k in (0..per_plan).rev() {
        for id in ids {
            let start = now - 600_000 - k as i64 * 86_400_000;
            let snapshot = format!("{n:064x}");
            n += 1;
            batch.push(Operation {
                id: 0,
                modno: 0,
                flow_id: 0,
                display_message: String::new(),
                repo_id: "local".into(),
                repo_guid: guid.into(),
                plan_id: id.clone(),
                instance_id: "bench".into(),
                snapshot_id: snapshot.clone(),
                status: OperationStatus::Success,
                unix_time_start_ms: start,
                unix_time_end_ms: start + 5_000,
                logref: String::new(),
                op: Op::Backup(OperationBackup {
                    last_status: Some(BackupProgressEntry::Summary(BackupProgressSummary {
                        files_new: 3,
                        total_files_processed: 1000,
                        total_bytes_processed: 1 << 30,
                        snapshot_id: snapshot,
                        ..Default::default()
                    })),
                    ..Default::default()
                }),
            });
            if batch.len() == 1000 {
                oplog.add_batch(&mut batch).unwrap();
                batch.clear();
            }
        }
    }
    if !batch.is_empty() {
        oplog.add_batch(&mut batch).unwrap();
    }
}

/// Pending operations by id, with their planned start.
fn pending(app: &footrest::App) -> BTreeMap<i64, i64> {
    app.oplog
        .with_status(OperationStatus::Pending)
        .unwrap()
        .into_iter()
        .map(|o| (o.id, o.unix_time_start_ms))
        .collect()
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec(v).unwrap()).unwrap();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn replan(repo: &Path, guid: &str, n: usize, replans: usize, moves: usize, history: usize) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let data = dir.path().join("data");
    let config_path = dir.path().join("config.json");
    let now_hour = local_hour();
    let ids: Vec<String> = (0..n).map(|i| format!("plan-{i:04}")).collect();

    let t = Instant::now();
    seed_history(&data, guid, &ids, history);
    let seeded = t.elapsed();

    // Start with one plan, and wait until the scheduler thread has planned it: from then
    // on it sleeps (a minute at most between ticks, its next run hours away), and the
    // planning of the big config is done and timed on this thread.
    let warmup = vec!["warmup".to_string()];
    write_json(
        &config_path,
        &plans_config(repo, guid, &src, &warmup, now_hour, 0),
    );
    let settings = Settings::resolve(
        Args {
            config: Some(config_path.clone()),
            data_dir: Some(data.clone()),
            ..Default::default()
        },
        &|_| None,
    )
    .unwrap();
    let app = footrest::App::start_with_clock(&settings, Arc::new(SystemClock)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while pending(&app).len() != 1 {
        assert!(
            Instant::now() < deadline,
            "the scheduler did not plan the warm-up plan"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // First planning: 1,000 pending operations created (the warm-up one removed).
    write_json(
        &config_path,
        &plans_config(repo, guid, &src, &ids, now_hour, 0),
    );
    let t = Instant::now();
    app.config.reload().unwrap();
    let first_reload = t.elapsed();
    let t = Instant::now();
    let scheduled = app.orchestrator.replan_now();
    let first = t.elapsed();
    assert_eq!(scheduled, n, "every plan should be scheduled");
    let planned = pending(&app);
    assert_eq!(planned.len(), n, "one pending operation per plan");
    assert_eq!(app.orchestrator.queue_depth(), 0, "nothing should be due");

    // Steady state: nothing changed, nothing to write.
    let mut steady = Vec::new();
    for _ in 0..replans {
        let t = Instant::now();
        let scheduled = app.orchestrator.replan_now();
        steady.push(ms(t.elapsed()));
        assert_eq!(scheduled, n);
    }
    assert_eq!(
        pending(&app),
        planned,
        "a replan with nothing changed should change nothing"
    );

    // Every schedule moved: each pending operation gets its new time.
    let mut moved = Vec::new();
    let mut reloads = vec![ms(first_reload)];
    for round in 1..=moves {
        write_json(
            &config_path,
            &plans_config(repo, guid, &src, &ids, now_hour, round),
        );
        let before = pending(&app);
        let t = Instant::now();
        app.config.reload().unwrap();
        reloads.push(ms(t.elapsed()));
        let t = Instant::now();
        let scheduled = app.orchestrator.replan_now();
        moved.push(ms(t.elapsed()));
        assert_eq!(scheduled, n);
        let after = pending(&app);
        let changed = after
            .iter()
            .filter(|(id, at)| before.get(id) != Some(at))
            .count();
        assert_eq!(after.len(), n, "still one pending operation per plan");
        assert_eq!(changed, n, "every pending operation should have moved");
    }
    assert_eq!(app.orchestrator.queue_depth(), 0, "nothing should be due");
    let t = Instant::now();
    app.orchestrator.shutdown();
    let shutdown = t.elapsed();

    let mut sorted = steady.clone();
    sorted.sort_by(f64::total_cmp);
    let p95 = sorted[((sorted.len() * 95).div_ceil(100)).max(1) - 1];
    println!("## Replanning {n} schedules (in-process, one planning pass on the calling thread)");
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!("| schedules | {n} plans on one repo: {KINDS} |");
    println!(
        "| oplog | {} past backups ({history} per plan), seeded in {:.1} s |",
        n * history,
        seeded.as_secs_f64()
    );
    println!(
        "| first planning: {n} pending operations created | {:.1} ms |",
        ms(first)
    );
    println!(
        "| steady-state replan (nothing changed), median / p95 of {replans} | {:.2} ms / {:.2} ms |",
        median(&mut steady),
        p95
    );
    println!(
        "| replan after every schedule moved ({n} pending operations moved), median of {moves} | {:.1} ms |",
        median(&mut moved)
    );
    println!(
        "| config reload of {n} plans (read, parse, validate), median of {} | {:.1} ms |",
        reloads.len(),
        median(&mut reloads)
    );
    println!("| orchestrator shutdown | {:.1} ms |", ms(shutdown));
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}
