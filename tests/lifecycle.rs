//! Start-up, shutdown and crashes: the starter config, config errors, subcommands,
//! SIGTERM during a backup, and kill -9 during a backup followed by a restart.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// A config whose backup takes many seconds: restic is held to 200 KiB/s.
fn slow_config(sandbox: &Sandbox) -> Value {
    let src = sandbox.random_source("big", 6 * 1024 * 1024);
    let mut config = sandbox.config(
        json!([{"id": "slow", "repo": "local", "paths": [src]}]),
        auth_off(),
    );
    config["repos"][0]["flags"] = json!(["--limit-upload 200"]);
    config
}

/// Starts a slow backup in a thread and waits until restic is running under footrest.
fn start_slow_backup(fr: &Footrest) -> (std::thread::JoinHandle<Option<HttpResponse>>, u32) {
    let addr = fr.addr;
    let call = std::thread::spawn(move || {
        std::panic::catch_unwind(|| {
            request(
                addr,
                "POST",
                "/v1.Backrest/Backup",
                &[("Content-Type".into(), "application/json".into())],
                br#"{"value":"slow"}"#,
            )
        })
        .ok()
    });
    fr.wait_for_op("the backup to run", |o| o["status"] == "STATUS_INPROGRESS");
    let mut restic = Vec::new();
    wait_until("restic to start", Duration::from_secs(30), || {
        restic = restic_children_of(fr.child.id());
        !restic.is_empty()
    });
    // Give restic time to take its lock and start writing.
    std::thread::sleep(Duration::from_secs(2));
    (call, restic[0])
}

#[test]
fn sigterm_during_a_backup_cancels_it_cleanly() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&slow_config(&sandbox));
    let mut fr = Footrest::start(&sandbox);
    let (call, restic_pid) = start_slow_backup(&fr);

    fr.signal(libc::SIGTERM);
    let r = call
        .join()
        .unwrap()
        .expect("the blocked Backup call gets an answer");
    r.assert_error(499, "canceled");
    let status = fr.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", fr.stderr());
    assert!(!alive(restic_pid), "restic outlived footrest");
    assert!(
        sandbox.locks().is_empty(),
        "a lock was left in the repository"
    );

    // The history says what happened.
    let fr = Footrest::start(&sandbox);
    let ops = fr.operations(json!({"planId": "slow"}));
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0]["status"], "STATUS_SYSTEM_CANCELLED");
    assert!(
        ops[0]["displayMessage"]
            .as_str()
            .unwrap()
            .contains("stopped")
    );
}

#[test]
fn a_second_stop_signal_exits_at_once() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&slow_config(&sandbox));
    let mut fr = Footrest::start(&sandbox);
    let (_call, restic_pid) = start_slow_backup(&fr);
    fr.signal(libc::SIGTERM);
    wait_until(
        "the first signal to be seen",
        Duration::from_secs(10),
        || fr.stderr().contains("stop signal received"),
    );
    fr.signal(libc::SIGTERM);
    let status = fr.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(1), "stderr:\n{}", fr.stderr());
    // restic does not outlive footrest.
    wait_until("restic to end", Duration::from_secs(30), || {
        !alive(restic_pid)
    });
}

#[test]
fn kill_9_during_a_backup_then_restart() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&slow_config(&sandbox));
    let mut fr = Footrest::start(&sandbox);
    let (call, restic_pid) = start_slow_backup(&fr);

    fr.signal(libc::SIGKILL);
    fr.wait_exit(Duration::from_secs(10));
    let _ = call.join();
    // restic got SIGINT when footrest died, and ends by itself, removing its lock.
    wait_until(
        "restic to end after footrest died",
        Duration::from_secs(30),
        || !alive(restic_pid),
    );
    drop(fr);

    // Restart without the upload limit so the next backup is quick.
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(sandbox.config_path()).unwrap()).unwrap();
    config["repos"][0]["flags"] = json!([]);
    sandbox.write_config(&config);
    let fr = Footrest::start(&sandbox);
    let ops = fr.operations(json!({"planId": "slow"}));
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert_eq!(ops[0]["status"], "STATUS_ERROR");
    assert!(
        ops[0]["displayMessage"]
            .as_str()
            .unwrap()
            .contains("footrest stopped"),
        "{}",
        ops[0]
    );
    assert!(ops[0].get("unixTimeEndMs").is_some());

    let r = fr.rpc("Backup", &json!({"value": "slow"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        sandbox.locks().is_empty(),
        "a lock was left in the repository"
    );
}

#[test]
fn no_config_writes_a_starter_config_that_backs_up() {
    let sandbox = Sandbox::new();
    let fr = Footrest::start(&sandbox);
    let path = sandbox.config_path();
    assert!(
        fr.stderr().contains(&path.display().to_string()),
        "says where it wrote the config"
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(config["auth"]["disabled"], true);
    let repo = &config["repos"][0];
    assert!(repo["password"].as_str().unwrap().len() >= 20);
    assert!(
        repo["uri"]
            .as_str()
            .unwrap()
            .starts_with(sandbox.data_dir().to_str().unwrap())
    );
    let plan = config["plans"][0]["id"].as_str().unwrap().to_string();
    let r = fr.rpc("Backup", &json!({ "value": plan }));
    assert_eq!(r.status, 200, "{}", r.text());
    // The starter config's repo password never reaches the log.
    assert!(!fr.stderr().contains(repo["password"].as_str().unwrap()));
}

#[test]
fn a_config_with_mistakes_stops_start_up_with_the_places_named() {
    let sandbox = Sandbox::new();
    let mut config = sandbox.config(
        json!([
            {"id": "ok", "repo": "local", "paths": ["/x"]},
            {"id": "photos", "repo": "nas2", "paths": ["/y"]}
        ]),
        json!({"users": []}),
    );
    config["repos"][0]["id"] = json!("_bad_");
    config["plans"][0]["repo"] = json!("_bad_");
    sandbox.write_config(&config);
    for args in [vec![], vec!["check-config"]] {
        let out = Command::new(BIN)
            .args(&args)
            .arg("--config")
            .arg(sandbox.config_path())
            .arg("--data-dir")
            .arg(sandbox.data_dir())
            .args(["--bind", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(r#"plans[1] "photos": repo "nas2" is not defined"#),
            "{err}"
        );
        assert!(err.contains("repos[0]"), "{err}");
        assert!(err.contains("auth"), "{err}");
    }
    // Nothing was started: no oplog was created.
    assert!(!sandbox.data_dir().join("oplog.sqlite").exists());

    // Malformed JSON names the line.
    std::fs::write(sandbox.config_path(), "{\n  \"repos\": [,]\n}").unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg("--config")
        .arg(sandbox.config_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_config_accepts_backrests_own_file() {
    let fixture = shared_dir().join("fixtures/backrest-config.json");
    let out = Command::new(BIN)
        .arg("check-config")
        .arg("--config")
        .arg(&fixture)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hash_password_prints_a_usable_value() {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let value = String::from_utf8(out.stdout).unwrap();
    let hash = footrest::api::auth::decode_hash(value.trim()).unwrap();
    assert!(bcrypt::verify("s3cret", &hash).unwrap());
}

#[test]
fn help_and_unknown_flags() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["check-config", "hash-password", "--config", "BACKREST_PORT"] {
        assert!(text.contains(word), "{word}");
    }
    let out = Command::new(BIN).arg("--nope").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--help"));
}
