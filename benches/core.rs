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

use common::{
    CHANGEME_HASH, Client, PASSWORD, cores, cpu_model, env_num, hwm_kib, make_tree, median,
    restic_version, seed, start,
};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use base64::Engine;

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
    println!(
        "| idle resident memory after start-up (starter config; median of 3) | {:.2} MiB |",
        common::idle_rss_mib(&bin)
    );
    backup_vs_restic(&bin, rounds, files);
    get_operations(&bin, ops);
    auth_throughput(&bin);
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
