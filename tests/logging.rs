//! footrest's log as journald receives it: one line per event on stderr, each
//! `footrest LEVEL: ...`; the level from `FOOTREST_LOG` or `--log-level` (the flag wins);
//! request lines only at debug, one per request; no credential in any line.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::json;

fn command(sandbox: &Sandbox) -> Command {
    sandbox.write_config(&sandbox.config(json!([]), auth_off()));
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(sandbox.config_path())
        .arg("--data-dir")
        .arg(sandbox.data_dir())
        .args(["--bind", "127.0.0.1:0"])
        .env_remove("FOOTREST_LOG");
    cmd
}

/// Every line is `footrest LEVEL: message`, with a level the filter lets through.
fn assert_lines(log: &str, allowed: &[&str]) {
    assert!(!log.is_empty());
    for line in log.lines() {
        let level = line
            .strip_prefix("footrest ")
            .and_then(|l| l.split_once(": "))
            .map(|(level, _)| level)
            .unwrap_or_else(|| panic!("not a log line: {line:?}"));
        assert!(
            allowed.contains(&level),
            "{level} line: {line}\nlog:\n{log}"
        );
    }
}

#[test]
fn footrest_log_sets_the_level_and_debug_shows_one_line_per_request() {
    let sandbox = Sandbox::new();
    let mut cmd = command(&sandbox);
    cmd.env("FOOTREST_LOG", "debug");
    let mut fr = Footrest::spawn(cmd);
    assert_eq!(fr.rpc("GetOperations", &json!({})).status, 200);
    // A download link's token is its credential: never in the log, even at debug.
    let token = "c2VjcmV0LXRva2VuLWZvci10aGUtdGVzdA";
    let r = fr.request("GET", &format!("/download/{token}/a/b.txt"), &[], b"");
    assert_eq!(r.status, 401);
    fr.signal(libc::SIGTERM);
    assert_eq!(fr.wait_exit(Duration::from_secs(60)).code(), Some(0));

    let log = fr.stderr();
    assert_lines(&log, &["error", "warn", "info", "debug"]);
    let requests: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("/v1.Backrest/GetOperations"))
        .collect();
    assert_eq!(requests.len(), 1, "one line per request:\n{log}");
    assert!(
        requests[0].starts_with("footrest debug: "),
        "{}",
        requests[0]
    );
    assert!(requests[0].contains("200"), "{}", requests[0]);
    assert!(!log.contains(token), "a download token in the log:\n{log}");
    assert!(log.contains("/download/<token>/a/b.txt"), "{log}");
}

#[test]
fn the_flag_beats_the_variable_and_info_is_the_default() {
    // --log-level warn: no info line, so readiness comes from the notify socket.
    let sandbox = Sandbox::new();
    let notify = sandbox.path("notify");
    let sock = UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let log_path = sandbox.path("stderr.txt");
    let mut child = command(&sandbox)
        .args(["--log-level", "warn"])
        .env("FOOTREST_LOG", "debug")
        .env("NOTIFY_SOCKET", &notify)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("READY within a minute");
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    let addr = ready
        .split("listening on http://")
        .nth(1)
        .and_then(|a| a.split_whitespace().next())
        .unwrap_or_else(|| panic!("{ready}"))
        .parse()
        .unwrap();
    let h = vec![("Content-Type".to_string(), "application/json".to_string())];
    let r = request(addr, "POST", "/v1.Backrest/GetOperations", &h, b"{}");
    assert_eq!(r.status, 200);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let log = std::fs::read_to_string(&log_path).unwrap();
    // Auth is off in this config: that warning is the one line.
    assert_lines(&log, &["warn", "error"]);
    assert!(log.contains("authentication is disabled"), "{log}");

    // No level anywhere: info, without request lines.
    let sandbox = Sandbox::new();
    let mut fr = Footrest::spawn(command(&sandbox));
    assert_eq!(fr.rpc("GetOperations", &json!({})).status, 200);
    fr.signal(libc::SIGTERM);
    assert_eq!(fr.wait_exit(Duration::from_secs(60)).code(), Some(0));
    let log = fr.stderr();
    assert_lines(&log, &["error", "warn", "info"]);
    assert!(log.contains("footrest info: listening on"), "{log}");
}

#[test]
fn an_unknown_level_stops_start_up_with_status_2() {
    let sandbox = Sandbox::new();
    let out = command(&sandbox)
        .env("FOOTREST_LOG", "loud")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"loud\"") && err.contains("debug"), "{err}");
}
