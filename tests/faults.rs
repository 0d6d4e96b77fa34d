//! Faults footrest must survive without a restart, end to end with the real binary:
//! restic missing from PATH or too old (a clear message at start-up and on every call
//! that needs it, the history still served, and restic picked up once it is there), a
//! config file replaced by garbage while running (refused on SIGHUP, the old config
//! keeps running), and many open event streams (they take no request thread). The long
//! fault and load drills (kill -9, full disk, a vanishing repository, 300 idle
//! connections) are in `benches/drills.rs`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn one_plan(sandbox: &Sandbox) -> Value {
    let src = sandbox.source("src", 3);
    sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src]}]),
        auth_off(),
    )
}

/// footrest with `PATH` set to `path` only, and no restic named anywhere else.
fn start_with_path(sandbox: &Sandbox, path: &Path) -> Footrest {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(sandbox.config_path())
        .arg("--data-dir")
        .arg(sandbox.data_dir())
        .args(["--bind", "127.0.0.1:0", "--log-level", "debug"])
        .env("PATH", path)
        .env_remove("BACKREST_RESTIC_COMMAND");
    Footrest::spawn(cmd)
}

/// Asserts a Backup call fails with a message containing every one of `words`, and
/// that the failed operation is in the history with the same message.
fn backup_fails_saying(fr: &Footrest, words: &[&str]) {
    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    assert_ne!(r.status, 200, "{}", r.text());
    let message = r.json()["message"].as_str().unwrap_or_default().to_string();
    for w in words {
        assert!(message.contains(w), "{w:?} not in {message:?}");
    }
    let ops = fr.operations(json!({"planId": "docs"}));
    let last = ops.last().expect("the failed backup is in the history");
    assert_eq!(last["status"], "STATUS_ERROR", "{last}");
    let shown = last["displayMessage"].as_str().unwrap_or_default();
    for w in words {
        assert!(shown.contains(w), "{w:?} not in {shown:?}");
    }
}

#[test]
fn restic_missing_from_path_is_reported_on_every_call_until_it_is_installed() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&one_plan(&sandbox));
    let bin = sandbox.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fr = start_with_path(&sandbox, &bin);
    wait_until("the start-up message", Duration::from_secs(10), || {
        fr.stderr().contains("restic not found")
    });
    assert!(fr.stderr().contains("runs without it"), "{}", fr.stderr());

    // Every call that needs restic says what is wrong and what to do; reads go on.
    let want = [
        "restic not found",
        "PATH is",
        "install restic 0.14 or newer",
    ];
    backup_fails_saying(&fr, &want);
    backup_fails_saying(&fr, &want);
    assert_eq!(fr.rpc("GetConfig", &json!({})).status, 200);
    assert_eq!(fr.operations(json!({})).len(), 2);

    // restic installed: the next backup runs, with no restart.
    std::os::unix::fs::symlink("/usr/bin/restic", bin.join("restic")).unwrap();
    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    assert_eq!(r.status, 200, "{}\n{}", r.text(), fr.stderr());
    assert_eq!(sandbox.locks(), Vec::<String>::new());
}

#[test]
fn restic_too_old_is_reported_with_its_path_and_version() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&one_plan(&sandbox));
    let fake = sandbox.path("old-restic");
    std::fs::write(
        &fake,
        "#!/bin/sh\n\
         # Fault injector for footrest's tests: pretends to be a restic older than footrest\n\
         # supports. It answers `version` only; anything else fails loudly.\n\
         if [ \"$1\" = version ]; then\n\
         echo 'restic 0.9.6 compiled with go1.13.8 on linux/amd64'; exit 0; fi\n\
         echo 'the fake old restic must not be run for anything but version' >&2; exit 99\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let fr = Footrest::start_with(&sandbox, &["--restic", fake.to_str().unwrap()]);
    wait_until("the start-up message", Duration::from_secs(10), || {
        fr.stderr().contains("is version 0.9.6")
    });

    let path = fake.display().to_string();
    let want = [
        path.as_str(),
        "is version 0.9.6",
        "footrest needs 0.14.0 or newer",
    ];
    backup_fails_saying(&fr, &want);
    backup_fails_saying(&fr, &want);
    assert_eq!(fr.operations(json!({})).len(), 2);
    assert!(!fr.stderr().contains("must not be run"), "{}", fr.stderr());
}

#[test]
fn garbage_config_on_sighup_is_refused_and_the_old_one_keeps_running() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&one_plan(&sandbox));
    let fr = Footrest::start(&sandbox);
    assert_eq!(fr.rpc("Backup", &json!({"value": "docs"})).status, 200);

    std::fs::write(sandbox.config_path(), b"\x00\xffnot json {{{ at all").unwrap();
    fr.signal(libc::SIGHUP);
    wait_until("the refusal in the log", Duration::from_secs(20), || {
        fr.stderr().contains("config not reloaded")
    });
    let line = fr
        .stderr()
        .lines()
        .find(|l| l.contains("config not reloaded"))
        .unwrap()
        .to_string();
    assert!(
        line.contains(sandbox.config_path().to_str().unwrap()),
        "the refusal names the file: {line}"
    );

    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let plans = fr.rpc("GetConfig", &json!({})).json()["plans"].clone();
    assert_eq!(plans[0]["id"], "docs", "{plans}");
    let backups = fr
        .operations(json!({"planId": "docs"}))
        .into_iter()
        .filter(|o| o.get("operationBackup").is_some() && o["status"] == "STATUS_SUCCESS")
        .count();
    assert_eq!(backups, 2);
}

#[test]
fn fifty_open_event_streams_leave_the_request_threads_free() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&one_plan(&sandbox));
    // Two request threads only: streams must not hold them.
    let fr = Footrest::start_with(&sandbox, &["--threads", "2"]);
    let mut streams: Vec<BufReader<TcpStream>> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(fr.addr).unwrap();
            let body = [0u8, 0, 0, 0, 2, b'{', b'}'];
            let head = format!(
                "POST /v1.Backrest/GetOperationEvents HTTP/1.1\r\nHost: t\r\n\
                 Content-Type: application/connect+json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(&body).unwrap();
            let mut r = BufReader::new(s);
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with("HTTP/1.1 200"), "{line}");
            while line != "\r\n" {
                line.clear();
                r.read_line(&mut line).unwrap();
            }
            r
        })
        .collect();

    // Unary calls are answered while all fifty are open.
    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    assert_eq!(r.status, 200, "{}", r.text());
    for _ in 0..20 {
        assert_eq!(
            fr.rpc("GetOperations", &json!({"selector": {}})).status,
            200
        );
    }

    // Every stream is live: its first envelope (an event) has flags 0, not the end (2).
    for s in &mut streams {
        let mut size = String::new();
        s.read_line(&mut size).unwrap();
        let mut flags = [0u8; 1];
        s.read_exact(&mut flags).unwrap();
        assert_eq!(flags[0], 0, "a stream was refused");
    }
}
