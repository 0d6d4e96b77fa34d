//! CONTRACT §1 and §2 against the real binary: every error status, authentication, and
//! the hostile clients the server must survive.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn json_headers() -> Vec<(String, String)> {
    vec![("Content-Type".into(), "application/json".into())]
}

/// A server with auth on (user `admin`, password `changeme`) and no backups needed.
fn server(extra: &[&str]) -> (Sandbox, Footrest) {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 1);
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src]}]),
        auth_users(&[("admin", CHANGEME_HASH)]),
    ));
    let fr = Footrest::start_with(&sandbox, extra).with_credentials("admin", "changeme");
    (sandbox, fr)
}

fn hash(password: &str) -> String {
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

#[test]
fn transport_errors_are_exactly_as_written() {
    let (_sandbox, fr) = server(&[]);
    let auth = vec![("Authorization".to_string(), basic("admin", "changeme"))];

    // 405 with Allow: POST.
    let r = fr.request("GET", "/v1.Backrest/GetOperations", &auth, b"");
    r.assert_error(405, "unimplemented");
    assert_eq!(r.header("allow"), Some("POST"));

    // 415: no content type, curl's form default, binary protobuf.
    for ct in [
        None,
        Some("application/x-www-form-urlencoded"),
        Some("application/proto"),
    ] {
        let mut h = auth.clone();
        if let Some(ct) = ct {
            h.push(("Content-Type".into(), ct.into()));
        }
        let r = fr.request("POST", "/v1.Backrest/GetOperations", &h, b"{}");
        r.assert_error(415, "unimplemented");
        assert_eq!(
            r.header("accept-post"),
            Some("application/json, application/connect+json")
        );
    }

    // A charset suffix and the Connect version header are fine.
    let mut h = auth.clone();
    h.push((
        "Content-Type".into(),
        "application/json; charset=utf-8".into(),
    ));
    h.push(("Connect-Protocol-Version".into(), "1".into()));
    assert_eq!(
        fr.request("POST", "/v1.Backrest/GetOperations", &h, b"{}")
            .status,
        200
    );

    // 404 for an unknown method, naming it.
    let mut h = auth.clone();
    h.extend(json_headers());
    let m = fr
        .request("POST", "/v1.Backrest/NoSuchThing", &h, b"{}")
        .assert_error(404, "not_found");
    assert_eq!(m, "no such method: NoSuchThing");

    // 400 for malformed JSON.
    fr.request("POST", "/v1.Backrest/GetOperations", &h, b"{not json")
        .assert_error(400, "invalid_argument");

    // 413 for a body over the limit, sent in full.
    let big = vec![b' '; 2 * 1024 * 1024];
    let m = fr
        .request("POST", "/v1.Backrest/GetOperations", &h, &big)
        .assert_error(413, "resource_exhausted");
    assert!(m.contains("1048576"), "{m}");
}

#[test]
fn authentication() {
    let (_sandbox, fr) = server(&[]);
    let call = |authz: Option<String>| {
        let mut h = json_headers();
        if let Some(a) = authz {
            h.push(("Authorization".into(), a));
        }
        fr.request("POST", "/v1.Backrest/GetOperations", &h, b"{}")
    };
    assert_eq!(call(Some(basic("admin", "changeme"))).status, 200);
    for bad in [
        None,
        Some(basic("admin", "wrong")),
        Some(basic("nobody", "changeme")),
        Some("Basic ???".into()),
        Some(basic("ADMIN", "changeme")),
    ] {
        let r = call(bad.clone());
        let m = r.assert_error(401, "unauthenticated");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"footrest\""),
            "{bad:?}"
        );
        assert!(!m.contains("nobody"), "{m}");
    }
    // Cached credentials keep working, and a wrong password is still refused after.
    for _ in 0..3 {
        assert_eq!(call(Some(basic("admin", "changeme"))).status, 200);
    }
    assert_eq!(call(Some(basic("admin", "changeme2"))).status, 401);
    // The open service needs no credentials, and unknown methods there are 404.
    let r = fr.request("POST", "/v1.Authentication/Nope", &json_headers(), b"{}");
    r.assert_error(404, "not_found");
}

#[test]
fn passwords_with_colons_and_non_ascii() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 1);
    let colon = hash("pa:ss:word");
    let unicode = hash("pässwörd-密码");
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src]}]),
        auth_users(&[("colon", &colon), ("ünïcode", &unicode)]),
    ));
    let fr = Footrest::start(&sandbox);
    let ok = |user: &str, pw: &str| {
        let mut h = json_headers();
        h.push(("Authorization".into(), basic(user, pw)));
        fr.request("POST", "/v1.Backrest/GetOperations", &h, b"{}")
            .status
    };
    assert_eq!(ok("colon", "pa:ss:word"), 200);
    assert_eq!(ok("colon", "pa:ss"), 401);
    assert_eq!(ok("ünïcode", "pässwörd-密码"), 200);
    assert_eq!(ok("ünïcode", "passwort"), 401);
    // No secret reaches the log.
    let log = fr.stderr();
    for secret in ["pa:ss:word", "pässwörd", &colon, &unicode] {
        assert!(!log.contains(secret), "the log shows a secret");
    }
}

#[test]
fn huge_content_length_gets_413_and_costs_nothing() {
    let (_sandbox, fr) = server(&[]);
    let pid = fr.child.id();
    let mut s = TcpStream::connect(fr.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"POST /v1.Backrest/GetOperations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100000000000\r\n\r\n{}\n",
    )
    .unwrap();
    let r = read_response(&mut s);
    r.assert_error(413, "resource_exhausted");
    assert!(alive(pid), "footrest must survive");
    assert!(
        vm_rss_kib(pid) < 64 * 1024,
        "no allocation of the declared length"
    );
    assert_eq!(fr.rpc("GetOperations", &json!({})).status, 200);
}

#[test]
fn a_client_that_goes_silent_is_cut_off() {
    let (_sandbox, fr) = server(&["--read-timeout", "1"]);
    let mut s = TcpStream::connect(fr.addr).unwrap();
    s.write_all(b"POST /v1.Backrest/GetOperations HTTP/1.1\r\nHost: x\r\nContent-Le")
        .unwrap();
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf); // EOF or reset once footrest gives up
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(15), "cut off after {waited:?}");
    // Meanwhile and afterwards, other clients are served.
    assert_eq!(fr.rpc("GetOperations", &json!({})).status, 200);
}

#[test]
fn five_hundred_connections_do_not_grow_threads() {
    let (_sandbox, fr) = server(&["--threads", "8"]);
    let pid = fr.child.id();
    let before = threads(pid);
    let mut conns: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(fr.addr).unwrap())
        .collect();
    // Half of them send a request at once.
    let req = format!(
        "POST /v1.Backrest/GetOperations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Authorization: {}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        basic("admin", "changeme")
    );
    for c in conns.iter_mut().step_by(2) {
        c.write_all(req.as_bytes()).unwrap();
    }
    let peak = threads(pid);
    let mut answered = 0;
    for c in conns.iter_mut().step_by(2) {
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let r = read_response(c);
        match r.status {
            200 => answered += 1,
            503 => {
                r.assert_error(503, "unavailable");
            }
            other => panic!("unexpected status {other}: {}", r.text()),
        }
        assert!(
            threads(pid) <= before + 2,
            "threads grew to {}",
            threads(pid)
        );
    }
    assert!(answered > 0);
    assert!(peak <= before + 2, "threads {before} -> {peak}");
    drop(conns);
    assert_eq!(fr.rpc("GetOperations", &json!({})).status, 200);
}

#[test]
fn a_one_megabyte_header_gets_431() {
    let (_sandbox, fr) = server(&[]);
    let pid = fr.child.id();
    let rss_before = vm_rss_kib(pid);
    let line = format!("X-Big: {}\r\n", "a".repeat(1024 * 1024));
    for _ in 0..10 {
        let mut s = TcpStream::connect(fr.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"POST /v1.Backrest/GetOperations HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        // footrest may close before reading it all; that is fine.
        let _ = s.write_all(line.as_bytes());
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let r = parse_response(&raw);
        r.assert_error(431, "resource_exhausted");
    }
    let growth = vm_rss_kib(pid).saturating_sub(rss_before);
    assert!(growth < 4 * 1024, "resident memory grew by {growth} KiB");
    assert_eq!(fr.rpc("GetOperations", &json!({})).status, 200);
}
