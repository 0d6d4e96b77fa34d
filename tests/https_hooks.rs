//! HTTPS hooks end to end: the real binary calls a real TLS server on loopback
//! (`openssl s_server -www`, with a CA and a server certificate made by the openssl
//! command for this test), trusting the CA certificates that `SSL_CERT_FILE` names, and,
//! without it, the system's store, which does not know the test CA.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::{Value, json};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (scripts/ensure-deps installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA (`ca.pem`) and a server certificate for 127.0.0.1 signed by it.
fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=footrest test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

/// `openssl s_server -www` on a free loopback port: answers `GET /...` with 200 and a
/// status page, over TLS with the test server certificate. Killed on drop.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start(dir: &Path) -> TlsServer {
        let mut child = Command::new("openssl")
            .args(["s_server", "-accept", "127.0.0.1:0", "-www"])
            .args(["-cert", "srv.pem", "-key", "srv.key"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        // It prints `ACCEPT 127.0.0.1:PORT` once it listens.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("openssl s_server ended before listening")
                .unwrap();
            if let Some(port) = line.strip_prefix("ACCEPT 127.0.0.1:") {
                break port.trim().parse().unwrap();
            }
        };
        // Keep reading its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        TlsServer { child, port }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts footrest with a plan whose start hook GETs `url`, runs a backup and returns
/// the hook's operation and its log once it has ended.
fn run_hook(sandbox: &Sandbox, url: &str, cert_file: Option<&Path>) -> (Value, String) {
    let src = sandbox.source("src", 1);
    let hooks = json!([{"conditions": ["CONDITION_SNAPSHOT_START"],
        "actionWebhook": {"webhookUrl": url, "method": "GET", "template": "ignored"}}]);
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src], "hooks": hooks}]),
        auth_off(),
    ));
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(sandbox.config_path())
        .arg("--data-dir")
        .arg(sandbox.data_dir())
        .args(["--bind", "127.0.0.1:0"]);
    for var in [
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    if let Some(file) = cert_file {
        cmd.env("SSL_CERT_FILE", file);
    }
    let fr = Footrest::spawn(cmd);
    assert_eq!(fr.rpc("Backup", &json!({"value": "docs"})).status, 200);
    let hook = fr.wait_for_op("the hook operation", |o| {
        o.get("operationRunHook").is_some()
    });
    let hook = fr.wait_ended(hook["id"].as_str().unwrap());
    let logref = hook["logref"].as_str().unwrap();
    let log = std::fs::read_to_string(sandbox.data_dir().join(format!("logs/{logref}.log")))
        .unwrap_or_default();
    (hook, log)
}

#[test]
fn an_https_hook_trusts_the_ca_in_ssl_cert_file() {
    let sandbox = Sandbox::new();
    let tls = tempfile::tempdir().unwrap();
    make_certs(tls.path());
    let server = TlsServer::start(tls.path());
    let url = format!("https://127.0.0.1:{}/ping", server.port);

    let (hook, log) = run_hook(&sandbox, &url, Some(&tls.path().join("ca.pem")));
    assert_eq!(hook["status"], "STATUS_SUCCESS", "{hook}\n{log}");
    // The path is redacted in logs (it may hold a token).
    let shown = format!("GET https://127.0.0.1:{}/*** -> 200", server.port);
    assert!(log.contains(&shown), "{log}");
}

#[test]
fn an_https_hook_refuses_a_server_no_trusted_ca_signed() {
    let sandbox = Sandbox::new();
    let tls = tempfile::tempdir().unwrap();
    make_certs(tls.path());
    let server = TlsServer::start(tls.path());
    let url = format!("https://127.0.0.1:{}/ping", server.port);

    // The system's store (Debian's ca-certificates) does not hold the test CA.
    let (hook, log) = run_hook(&sandbox, &url, None);
    assert_eq!(hook["status"], "STATUS_ERROR", "{hook}\n{log}");
    let text = format!("{} {log}", hook["displayMessage"]);
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(
        text.contains("trusting the CA certificates in /etc/ssl/certs/ca-certificates.crt"),
        "{text}"
    );
}
