//! The status page (`GET /`) in a real browser: Debian's headless Chromium, driven over
//! WebDriver by chromedriver (plain HTTP and JSON, spoken here with ureq), against the
//! real footrest with auth on and a real restic repository. The page is loaded with
//! the credentials in the URL, as a person would type them at the browser's prompt;
//! the test proves the page's own fetch() calls then carry them, backs a plan up with
//! the page's button, sees the operation finish on the page, and reads its log there.
//!
//! chromium and chromium-driver come from scripts/ensure-deps. If they are missing the
//! test fails and says so: it never skips.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// How long the browser gets for anything a person would wait for.
const WAIT: Duration = Duration::from_secs(120);
/// The key WebDriver uses for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one browser session; both end when this is dropped.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let mut driver = Command::new("chromedriver")
            // Port 0: the OS picks a free one and chromedriver says which.
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromedriver ({e}): run scripts/ensure-deps, which installs \
                     Debian's chromium and chromium-driver packages"
                )
            });
        assert!(
            std::path::Path::new("/usr/bin/chromium").exists(),
            "/usr/bin/chromium is missing: run scripts/ensure-deps"
        );
        let (tx, rx) = mpsc::channel();
        let out = driver.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line.split("started successfully on port ").nth(1) {
                    let _ = tx.send(port.trim_end_matches('.').trim().to_string());
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(port) => port,
            Err(_) => {
                let _ = driver.kill();
                panic!("chromedriver did not say which port it listens on");
            }
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(WAIT))
            .build()
            .into();
        let profile = tempfile::tempdir().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                // Known to work as root in a container: no sandbox, no GPU, and nothing
                // that would reach out to the network on its own.
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display())
                ]
            }
        }}});
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            agent,
            _profile: profile,
        };
        let v = browser.call("POST", "/session", Some(&caps));
        browser.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_string();
        browser
    }

    /// One WebDriver command; returns its `value`, panicking on a WebDriver error.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|v| panic!("WebDriver {method} {path}: {v}"))
    }

    /// One WebDriver command: its `value`, or the error value WebDriver answered.
    fn try_call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Value> {
        let url = format!("{}{path}", self.base);
        let response = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(&json!({})).to_string()),
        };
        let mut response = response.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}: {text}"));
        if status == 200 {
            Ok(v["value"].clone())
        } else {
            Err(v["value"].clone())
        }
    }

    fn session(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn goto(&self, url: &str) {
        self.session("POST", "/url", Some(&json!({ "url": url })));
    }

    /// Runs a script in the page and returns what it returns.
    fn js(&self, script: &str) -> Value {
        self.session(
            "POST",
            "/execute/sync",
            Some(&json!({"script": script, "args": []})),
        )
    }

    /// Polls a script until it returns something truthy (not null, false, "" or 0).
    fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.js(script);
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the page shows:\n{}",
                self.js("return document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element the CSS selector finds, as a user would (WebDriver's click).
    /// The page redraws its tables every two seconds; an element replaced between
    /// finding and clicking it is found again, as a person would click the new one.
    fn click(&self, css: &str) {
        for _ in 0..5 {
            let el = self.session(
                "POST",
                "/element",
                Some(&json!({"using": "css selector", "value": css})),
            );
            let id = el[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("no element {css}: {el}"));
            let path = format!("/session/{}/element/{id}/click", self.session);
            match self.try_call("POST", &path, Some(&json!({}))) {
                Ok(_) => return,
                Err(e) if e["error"] == "stale element reference" => continue,
                Err(e) => panic!("clicking {css}: {e}"),
            }
        }
        panic!("{css} was replaced five times while being clicked");
    }

    /// The browser's console messages so far.
    fn console(&self) -> Vec<Value> {
        self.session("POST", "/se/log", Some(&json!({"type": "browser"})))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Ends the browser; chromedriver then goes.
            let _ = self
                .agent
                .delete(format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn the_page_needs_credentials_and_tight_headers() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&sandbox.config(json!([]), auth_users(&[("admin", CHANGEME_HASH)])));
    let fr = Footrest::start(&sandbox);
    for path in ["/", "/index.html"] {
        let r = fr.request("GET", path, &[], b"");
        r.assert_error(401, "unauthenticated");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"footrest\"")
        );
        let auth = [("Authorization".to_string(), basic("admin", "changeme"))];
        let r = fr.request("GET", path, &auth, b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        let csp = r.header("content-security-policy").unwrap();
        assert!(csp.starts_with("default-src 'none';"), "{csp}");
        assert!(csp.contains("connect-src 'self'"), "{csp}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        // A few KiB, and no secret in it (the config's hash is not).
        assert!(r.body.len() < 12 * 1024, "{} bytes", r.body.len());
        assert!(!r.text().contains(CHANGEME_HASH));
        let r = fr.request("POST", path, &auth, b"");
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET"));
    }
}

#[test]
fn chromium_backs_up_a_plan_from_the_page_and_shows_its_log() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("docs", 3);
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src]}]),
        auth_users(&[("admin", CHANGEME_HASH)]),
    ));
    let fr = Footrest::start(&sandbox).with_credentials("admin", "changeme");
    let browser = Browser::start();

    // Credentials in the URL answer the 401 challenge of the top-level load; Chromium
    // keeps them for the origin and sends them with the page's fetch() calls.
    browser.goto(&format!("http://admin:changeme@{}/", fr.addr));
    let plan = r#"section[data-plan="docs"]"#;
    let last = browser.wait_for(
        "the plan to show",
        &format!(r#"const e = document.querySelector('{plan} .last'); return e && e.textContent"#),
    );
    assert_eq!(last, "Last backup: none yet");
    assert_eq!(
        browser.js("return document.getElementById('error').textContent"),
        ""
    );
    // The inline style ran under the Content-Security-Policy (its hash is allowed).
    assert_eq!(
        browser.js(&format!(
            "return getComputedStyle(document.querySelector('{plan}')).borderTopStyle"
        )),
        "solid"
    );

    browser.click(&format!("{plan} button.backup"));
    let last = browser.wait_for(
        "the backup to finish on the page",
        &format!(
            r#"const t = document.querySelector('{plan} .last').textContent;
               return t.includes('none yet') ? '' : t"#
        ),
    );
    assert!(
        last.as_str()
            .unwrap()
            .starts_with("Last backup: success at "),
        "{last}"
    );
    browser.wait_for(
        "the button's answer",
        &format!("return document.querySelector('{plan} .result').textContent === 'done'"),
    );
    // The page tells the truth: the oplog has that one backup, and it succeeded.
    let ops = fr.operations(json!({"planId": "docs"}));
    let backup = ops
        .iter()
        .find(|o| o.get("operationBackup").is_some())
        .unwrap();
    assert_eq!(backup["status"], "STATUS_SUCCESS");
    let id = backup["id"].as_str().unwrap();
    let row = format!(r#"{plan} tr[data-op="{id}"]"#);
    browser.wait_for(
        "the backup's row",
        &format!("const s = document.querySelector('{row} .status'); return s && s.textContent === 'success'"),
    );

    // Its log, streamed by GetLogs into the page: exactly the log file.
    browser.click(&format!("{row} button.showlog"));
    browser.wait_for(
        "the log to be read to its end",
        "return document.getElementById('log').dataset.done === '1'",
    );
    let shown = browser.js("return document.getElementById('log').textContent");
    let logref = backup["logref"].as_str().unwrap();
    let file = std::fs::read_to_string(
        sandbox
            .data_dir()
            .join("logs")
            .join(format!("{logref}.log")),
    )
    .unwrap();
    assert!(file.contains("summary"), "{file}");
    assert_eq!(shown.as_str().unwrap(), file);
    assert_eq!(
        browser.js("return document.getElementById('logtitle').textContent"),
        format!("Log of operation {id} (backup)")
    );

    // Every RPC the page made carried the credentials: none was refused.
    let stderr = fr.stderr();
    let rpc_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(" /v1.Backrest/"))
        .collect();
    for method in ["GetConfig", "GetOperations", "Backup", "GetLogs"] {
        assert!(
            rpc_lines
                .iter()
                .any(|l| l.ends_with(&format!("POST /v1.Backrest/{method} -> 200"))),
            "no successful {method} in:\n{stderr}"
        );
    }
    assert!(
        !rpc_lines.iter().any(|l| l.ends_with(" -> 401")),
        "a fetch() went without credentials:\n{stderr}"
    );
    // And nothing was blocked by the Content-Security-Policy.
    let console = browser.console();
    assert!(
        !console.iter().any(|m| m["message"]
            .as_str()
            .unwrap_or("")
            .contains("Content Security Policy")),
        "{console:?}"
    );
}
