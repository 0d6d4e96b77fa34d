//! footrest under systemd's notify protocol, as systemd runs it: the test binds the Unix
//! datagram socket systemd would (a path in a temp dir, or an abstract name), starts the
//! real binary with `NOTIFY_SOCKET` and `WATCHDOG_USEC` set, and reads what arrives:
//! `READY=1` when the port answers, repeated `WATCHDOG=1`, `STOPPING=1` on SIGTERM.

mod common;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;

/// footrest on the sandbox's config (one with no plans, unless the test wrote one).
fn command(sandbox: &Sandbox) -> Command {
    if !sandbox.config_path().exists() {
        sandbox.write_config(&sandbox.config(json!([]), auth_off()));
    }
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(sandbox.config_path())
        .arg("--data-dir")
        .arg(sandbox.data_dir())
        .args(["--bind", "127.0.0.1:0"])
        .env_remove("WATCHDOG_PID")
        .env_remove("FOOTREST_LOG");
    cmd
}

/// The next notification (a datagram of `KEY=value` lines), within a minute.
fn next(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a notification within a minute");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

fn lines(message: &str) -> Vec<&str> {
    message.lines().collect()
}

#[test]
fn ready_watchdog_and_stopping_reach_a_socket_path() {
    let sandbox = Sandbox::new();
    let path = sandbox.path("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut cmd = command(&sandbox);
    // 200 ms: a keep-alive every 100 ms.
    cmd.env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "200000");
    let mut fr = Footrest::spawn(cmd);

    // The first word is READY=1, and by then the port answers.
    let ready = next(&sock);
    assert_eq!(lines(&ready)[0], "READY=1", "{ready}");
    assert!(
        ready.contains(&format!("STATUS=listening on http://{}", fr.addr)),
        "{ready}"
    );
    assert_eq!(fr.rpc("GetOperations", &json!({})).status, 200);

    // The watchdog keeps coming.
    for _ in 0..3 {
        assert_eq!(next(&sock), "WATCHDOG=1");
    }

    // SIGTERM: STOPPING=1 (keep-alives may still come in between), then a clean exit.
    fr.signal(libc::SIGTERM);
    loop {
        let m = next(&sock);
        if m == "WATCHDOG=1" {
            continue;
        }
        assert_eq!(lines(&m)[0], "STOPPING=1", "{m}");
        break;
    }
    let status = fr.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", fr.stderr());
    // Nothing about the socket went wrong on footrest's side.
    assert!(!fr.stderr().contains("NOTIFY_SOCKET"), "{}", fr.stderr());
}

#[test]
fn abstract_socket_and_a_watchdog_meant_for_another_process() {
    let sandbox = Sandbox::new();
    let name = format!(
        "footrest-test-{}-{}",
        std::process::id(),
        sandbox.dir.path().file_name().unwrap().to_string_lossy()
    );
    let sock = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut cmd = command(&sandbox);
    // WATCHDOG_PID names another process (pid 1): footrest must not send keep-alives.
    cmd.env("NOTIFY_SOCKET", format!("@{name}"))
        .env("WATCHDOG_USEC", "20000")
        .env("WATCHDOG_PID", "1");
    let mut fr = Footrest::spawn(cmd);

    let ready = next(&sock);
    assert_eq!(lines(&ready)[0], "READY=1", "{ready}");
    for _ in 0..5 {
        assert_eq!(fr.rpc("GetOperations", &json!({})).status, 200);
    }
    fr.signal(libc::SIGTERM);
    let stopping = next(&sock);
    assert_eq!(lines(&stopping)[0], "STOPPING=1", "{stopping}");
    let status = fr.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", fr.stderr());
    // The process is gone: whatever it sent is in the socket's queue. No keep-alive.
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    if let Ok(n) = sock.recv(&mut buf) {
        panic!(
            "unexpected notification: {}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
}

#[test]
fn systemd_variables_do_not_reach_hook_commands() {
    // A hook command prints its environment into its operation's log; systemd's
    // variables must not be there.
    let sandbox = Sandbox::new();
    let path = sandbox.path("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let env_file = sandbox.path("hook-env.txt");
    let source = sandbox.source("src", 1);
    let config = sandbox.config(
        json!([{
            "id": "p",
            "repo": "local",
            "paths": [source.to_str().unwrap()],
            "schedule": {"disabled": true},
            "hooks": [{
                "conditions": ["CONDITION_SNAPSHOT_START"],
                "actionCommand": {"command": format!("env > '{}'", env_file.display())}
            }]
        }]),
        auth_off(),
    );
    sandbox.write_config(&config);
    let mut cmd = command(&sandbox);
    cmd.env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "60000000");
    let fr = Footrest::spawn(cmd);
    assert_eq!(lines(&next(&sock))[0], "READY=1");
    let r = fr.rpc("Backup", &json!({"value": "p"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(env.contains("FOOTREST_PLAN_ID=p"), "{env}");
    for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
        assert!(!env.contains(var), "{var} leaked to a hook: {env}");
    }
}
