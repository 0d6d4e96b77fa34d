//! Hooks end to end: the real binary fires the config's hooks against loopback
//! receivers (tiny_http servers inside the test) and real commands, with real restic.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// One request as a receiver saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// A loopback HTTP server that records every request and answers with `status`.
struct Receiver {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Receiver {
    fn start(status: u16) -> Receiver {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            for mut req in server.incoming_requests() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                sink.lock().unwrap().push(Seen {
                    method: req.method().to_string(),
                    url: req.url().to_string(),
                    headers: req
                        .headers()
                        .iter()
                        .map(|h| (h.field.to_string(), h.value.to_string()))
                        .collect(),
                    body,
                });
                let _ =
                    req.respond(tiny_http::Response::from_string("ok").with_status_code(status));
            }
        });
        Receiver { base, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn wait_for(&self, n: usize) -> Vec<Seen> {
        wait_until(
            &format!("{n} requests at the receiver"),
            Duration::from_secs(30),
            || self.seen().len() >= n,
        );
        self.seen()
    }
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn hook_ops(fr: &Footrest) -> Vec<Value> {
    fr.operations(json!({}))
        .into_iter()
        .filter(|o| o.get("operationRunHook").is_some())
        .collect()
}

fn log_of(sandbox: &Sandbox, op: &Value) -> String {
    let logref = op["logref"].as_str().unwrap();
    std::fs::read_to_string(sandbox.data_dir().join(format!("logs/{logref}.log"))).unwrap()
}

#[test]
fn every_notification_kind_reaches_its_receiver() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 2);
    let rx = Receiver::start(200);
    let b = &rx.base;
    let port = b.rsplit(':').next().unwrap();
    let end = json!(["CONDITION_SNAPSHOT_SUCCESS"]);
    let hooks = json!([
        {"conditions": end, "actionWebhook": {"webhookUrl": format!("{b}/hook"), "method": "POST",
            "template": "{\"plan\": \"{{ .Plan.Id }}\", \"snapshot\": \"{{ .SnapshotId }}\", \"added\": \"{{ .FormatSizeBytes .SnapshotStats.DataAdded }}\"}"}},
        {"conditions": end, "actionWebhook": {"webhookUrl": format!("{b}/get?x=1"), "method": "GET", "template": "ignored"}},
        {"conditions": ["CONDITION_SNAPSHOT_START", "CONDITION_SNAPSHOT_SUCCESS"], "actionHealthchecks": {"webhookUrl": format!("{b}/ping/abc"), "template": "{{ .EventName .Event }}"}},
        {"conditions": end, "actionDiscord": {"webhookUrl": format!("{b}/discord"), "template": "discord {{ .Plan.Id }}"}},
        {"conditions": end, "actionSlack": {"webhookUrl": format!("{b}/slack"), "template": "slack {{ .Plan.Id }}"}},
        {"conditions": end, "actionGotify": {"baseUrl": b, "token": "AbCdEf123456", "template": "gotify {{ .Plan.Id }}", "titleTemplate": "footrest {{ .Plan.Id }}", "priority": 8}},
        {"conditions": end, "actionShoutrrr": {"shoutrrrUrl": format!("ntfy://127.0.0.1:{port}/backups?scheme=http"), "template": "ntfy {{ .Plan.Id }}"}}
    ]);
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src], "hooks": hooks}]),
        auth_off(),
    ));
    let fr = Footrest::start(&sandbox);
    assert_eq!(fr.rpc("Backup", &json!({"value": "docs"})).status, 200);
    let seen = rx.wait_for(8);
    let by_path = |p: &str| {
        seen.iter()
            .find(|s| s.url.starts_with(p))
            .unwrap_or_else(|| panic!("nothing at {p}: {seen:#?}"))
            .clone()
    };

    let post = by_path("/hook");
    assert_eq!(post.method, "POST");
    let body: Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(body["plan"], "docs");
    assert_eq!(body["snapshot"].as_str().unwrap().len(), 64);
    assert!(body["added"].as_str().unwrap().ends_with('B'), "{body}");
    assert_eq!(post.header("content-type"), Some("application/json"));

    let get = by_path("/get");
    assert_eq!(
        (get.method.as_str(), get.url.as_str(), get.body.as_str()),
        ("GET", "/get?x=1", "")
    );

    let start = by_path("/ping/abc/start");
    assert_eq!(
        (start.method.as_str(), start.body.as_str()),
        ("POST", "snapshot start")
    );
    let success = seen
        .iter()
        .find(|s| s.url == "/ping/abc")
        .expect("success ping");
    assert_eq!(success.body, "snapshot success");

    let discord: Value = serde_json::from_str(&by_path("/discord").body).unwrap();
    assert_eq!(discord["content"], "discord docs");
    let slack: Value = serde_json::from_str(&by_path("/slack").body).unwrap();
    assert_eq!(slack["text"], "slack docs");
    let gotify = by_path("/message");
    assert_eq!(gotify.url, "/message?token=AbCdEf123456");
    let g: Value = serde_json::from_str(&gotify.body).unwrap();
    assert_eq!(
        (
            g["title"].as_str(),
            g["message"].as_str(),
            g["priority"].as_i64()
        ),
        (Some("footrest docs"), Some("gotify docs"), Some(8))
    );
    let ntfy = by_path("/backups");
    assert_eq!(
        (ntfy.method.as_str(), ntfy.body.as_str()),
        ("POST", "ntfy docs")
    );

    // Each hook run is an operation in the backup's flow, and secrets stay out of logs.
    let hooks = hook_ops(&fr);
    assert_eq!(hooks.len(), 8, "{hooks:#?}");
    let backup = fr
        .operations(json!({"planId": "docs"}))
        .into_iter()
        .find(|o| o.get("operationBackup").is_some())
        .unwrap();
    for h in &hooks {
        assert_eq!(h["flowId"], backup["id"]);
        assert_eq!(h["operationRunHook"]["parentOp"], backup["id"]);
        assert_eq!(h["status"], "STATUS_SUCCESS", "{h}");
        assert!(
            !log_of(&sandbox, h).contains("AbCdEf123456"),
            "a token in a log"
        );
    }
    assert!(!fr.stderr().contains("AbCdEf123456"));
    let names: Vec<&str> = hooks
        .iter()
        .map(|h| h["operationRunHook"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"plan/docs/hook/0"), "{names:?}");
}

#[test]
fn command_hooks_see_the_event_and_log_their_output() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 1);
    let hooks = json!([
        {"conditions": ["CONDITION_SNAPSHOT_END"], "actionCommand": {"command":
            "echo \"event=$FOOTREST_EVENT plan=$FOOTREST_PLAN_ID snap=$FOOTREST_SNAPSHOT_ID status=$FOOTREST_STATUS\"\necho 'templated {{ .Plan.Id }} {{ .EventName .Event }}'"}},
        {"conditions": ["CONDITION_SNAPSHOT_START"], "actionCommand": {"command": "#!/usr/bin/env python3\nprint('python sees', __import__('os').environ['FOOTREST_REPO_ID'])"}}
    ]);
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src], "hooks": hooks}]),
        auth_off(),
    ));
    let fr = Footrest::start(&sandbox);
    assert_eq!(fr.rpc("Backup", &json!({"value": "docs"})).status, 200);
    let hooks = hook_ops(&fr);
    assert_eq!(hooks.len(), 2);
    let start = hooks
        .iter()
        .find(|h| h["operationRunHook"]["condition"] == "CONDITION_SNAPSHOT_START")
        .unwrap();
    assert_eq!(log_of(&sandbox, start).trim(), "python sees local");
    let end = hooks
        .iter()
        .find(|h| h["operationRunHook"]["condition"] == "CONDITION_SNAPSHOT_END")
        .unwrap();
    let log = log_of(&sandbox, end);
    let snap = fr.operations(json!({"planId": "docs"}))[0]["snapshotId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        log.contains(&format!(
            "event=CONDITION_SNAPSHOT_END plan=docs snap={snap} status=STATUS_SUCCESS"
        )),
        "{log}"
    );
    assert!(log.contains("templated docs snapshot end"), "{log}");
}

/// A config whose plan has one failing start hook with the given onError, and a
/// second hook that records whether it ran.
fn on_error_config(sandbox: &Sandbox, on_error: &str, marker: &std::path::Path) -> Value {
    let src = sandbox.source("src", 1);
    sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src], "hooks": [
            {"conditions": ["CONDITION_SNAPSHOT_START"], "onError": on_error, "actionCommand": {"command": "echo failing; exit 3"}},
            {"conditions": ["CONDITION_SNAPSHOT_START"], "actionCommand": {"command": format!("touch {}", marker.display())}}
        ]}]),
        auth_off(),
    )
}

#[test]
fn on_error_ignore_cancel_and_fatal() {
    for (on_error, status, code, backup_status, later_runs) in [
        ("ON_ERROR_IGNORE", 200, None, "STATUS_SUCCESS", true),
        (
            "ON_ERROR_CANCEL",
            499,
            Some("canceled"),
            "STATUS_USER_CANCELLED",
            false,
        ),
        (
            "ON_ERROR_FATAL",
            500,
            Some("unknown"),
            "STATUS_ERROR",
            false,
        ),
    ] {
        let sandbox = Sandbox::new();
        let marker = sandbox.path("second-hook-ran");
        sandbox.write_config(&on_error_config(&sandbox, on_error, &marker));
        let fr = Footrest::start(&sandbox);
        let r = fr.rpc("Backup", &json!({"value": "docs"}));
        match code {
            None => assert_eq!(r.status, status, "{on_error}: {}", r.text()),
            Some(code) => {
                let m = r.assert_error(status, code);
                assert!(m.contains("plan/docs/hook/0"), "{on_error}: {m}");
                assert!(m.contains("status 3"), "{on_error}: {m}");
            }
        }
        let backup = fr
            .operations(json!({"planId": "docs"}))
            .into_iter()
            .find(|o| o.get("operationBackup").is_some())
            .unwrap();
        assert_eq!(backup["status"], backup_status, "{on_error}");
        assert_eq!(
            marker.exists(),
            later_runs,
            "{on_error}: later hooks run only when the failure is ignored"
        );
        let failed = hook_ops(&fr)
            .into_iter()
            .find(|h| h["operationRunHook"]["name"] == "plan/docs/hook/0")
            .unwrap();
        assert_eq!(failed["status"], "STATUS_ERROR");
        assert!(log_of(&sandbox, &failed).contains("failing"));
        if on_error != "ON_ERROR_IGNORE" {
            let snaps = sandbox.restic(&["snapshots", "--json"]);
            assert_eq!(
                String::from_utf8_lossy(&snaps.stdout).trim(),
                "[]",
                "{on_error}: no backup ran"
            );
        }
    }
}

#[test]
fn a_hanging_hook_is_cut_off_by_its_timeout() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 1);
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src], "hooks": [
            {"conditions": ["CONDITION_SNAPSHOT_END"], "actionCommand": {"command": "sleep 300 & sleep 300", "timeoutSeconds": 1}}
        ]}]),
        auth_off(),
    ));
    let fr = Footrest::start(&sandbox);
    let started = std::time::Instant::now();
    assert_eq!(
        fr.rpc("Backup", &json!({"value": "docs"})).status,
        200,
        "ignored by default"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    let hook = hook_ops(&fr).remove(0);
    assert_eq!(hook["status"], "STATUS_ERROR");
    assert!(
        hook["displayMessage"]
            .as_str()
            .unwrap()
            .contains("timed out")
            || hook["displayMessage"].as_str().unwrap().contains("1s"),
        "{hook}"
    );
}

#[test]
fn a_failing_backup_fires_error_and_any_error_hooks_once_each() {
    let sandbox = Sandbox::new();
    let rx = Receiver::start(200);
    let b = &rx.base;
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [sandbox.path("missing")], "hooks": [
            {"conditions": ["CONDITION_SNAPSHOT_ERROR"], "actionWebhook": {"webhookUrl": format!("{b}/error"), "template": "{{ .Error }}"}},
            {"conditions": ["CONDITION_ANY_ERROR"], "actionWebhook": {"webhookUrl": format!("{b}/any"), "template": "{{ .EventName .Event }}"}},
            {"conditions": ["CONDITION_SNAPSHOT_ERROR", "CONDITION_ANY_ERROR"], "actionWebhook": {"webhookUrl": format!("{b}/both"), "template": "x"}},
            {"conditions": ["CONDITION_SNAPSHOT_SUCCESS"], "actionWebhook": {"webhookUrl": format!("{b}/success"), "template": "x"}}
        ]}]),
        auth_off(),
    ));
    let fr = Footrest::start(&sandbox);
    assert_eq!(fr.rpc("Backup", &json!({"value": "docs"})).status, 500);
    let seen = rx.wait_for(3);
    std::thread::sleep(Duration::from_millis(500));
    let seen_now = rx.seen();
    assert_eq!(seen_now.len(), 3, "{seen_now:#?}");
    let count = |p: &str| seen.iter().filter(|s| s.url == p).count();
    assert_eq!(
        (
            count("/error"),
            count("/any"),
            count("/both"),
            count("/success")
        ),
        (1, 1, 1, 0)
    );
    let error = seen.iter().find(|s| s.url == "/error").unwrap();
    assert!(error.body.contains("do not exist"), "{}", error.body);
    assert_eq!(seen.iter().find(|s| s.url == "/any").unwrap().body, "error");
}

#[test]
fn a_template_with_a_syntax_error_is_refused_at_load() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 1);
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src], "hooks": [
            {"conditions": ["CONDITION_SNAPSHOT_END"], "actionWebhook": {"webhookUrl": "http://127.0.0.1:9/x", "template": "ok\n{{ .Plan.Id }} {{ .Nope }}"}}
        ]}]),
        auth_off(),
    ));
    let out = std::process::Command::new(BIN)
        .arg("check-config")
        .arg("--config")
        .arg(sandbox.config_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"plans[0] "docs": hooks[0] actionWebhook.template: line 2, column "#),
        "{err}"
    );
    assert!(err.contains(".Nope"), "{err}");
}

#[test]
fn a_snapshot_end_hook_chains_a_second_plan() {
    // Backrest's documented recipe for running plans one after the other.
    let sandbox = Sandbox::new();
    let first = sandbox.source("first", 1);
    let second = sandbox.source("second", 1);
    let port_file = sandbox.path("port");
    let chain = format!(
        "curl -X POST \"http://$(cat {})/v1.Backrest/Backup\" --data '{{\"value\": \"second\"}}' -H 'Content-Type: application/json' -u admin:changeme -m 1 || exit 0",
        port_file.display()
    );
    sandbox.write_config(&sandbox.config(
        json!([
            {"id": "first", "repo": "local", "paths": [first], "hooks": [
                {"conditions": ["CONDITION_SNAPSHOT_END"], "actionCommand": {"command": chain}}
            ]},
            {"id": "second", "repo": "local", "paths": [second]}
        ]),
        auth_users(&[("admin", CHANGEME_HASH)]),
    ));
    let fr = Footrest::start(&sandbox).with_credentials("admin", "changeme");
    std::fs::write(&port_file, fr.addr.to_string()).unwrap();
    assert_eq!(fr.rpc("Backup", &json!({"value": "first"})).status, 200);
    let second_run = fr.wait_for_op("the chained backup", |o| {
        o["planId"] == "second"
            && o.get("operationBackup").is_some()
            && o["status"] == "STATUS_SUCCESS"
    });
    assert_eq!(second_run["snapshotId"].as_str().unwrap().len(), 64);
}

#[test]
fn a_retrying_hook_is_run_again_and_the_backup_waits_for_it() {
    use footrest::orchestrator::clock::{Clock, FastClock};
    use footrest::proto::{Op, OpSelector, OperationStatus};
    use footrest::settings::{Args, Settings};

    // In-process on a clock 600 times faster: the one-minute pause takes 0.1 s.
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 1);
    let counter = sandbox.path("attempts");
    let script = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; echo attempt $n; [ $n -ge 2 ]",
        c = counter.display()
    );
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src], "hooks": [
            {"conditions": ["CONDITION_SNAPSHOT_START"], "onError": "ON_ERROR_RETRY_1MINUTE", "actionCommand": {"command": script}}
        ]}]),
        auth_off(),
    ));
    let args = Args {
        config: Some(sandbox.config_path()),
        data_dir: Some(sandbox.data_dir()),
        ..Default::default()
    };
    let settings = Settings::resolve(args, &|_| None).unwrap();
    let clock = Arc::new(FastClock::new(600));
    let app = footrest::App::start_with_clock(&settings, clock as Arc<dyn Clock>).unwrap();
    let (_, done) = app.orchestrator.queue_backup("docs", false).unwrap();
    let backup = done.wait();
    assert_eq!(backup.status, OperationStatus::Success, "{backup:?}");
    let ops = app.oplog.query(&OpSelector::default(), None).unwrap();
    let hooks: Vec<_> = ops
        .iter()
        .filter(|o| matches!(o.op, Op::RunHook(_)))
        .collect();
    assert_eq!(hooks.len(), 2, "{hooks:#?}");
    assert_eq!(hooks[0].status, OperationStatus::Error);
    assert_eq!(hooks[1].status, OperationStatus::Success);
    let pause = hooks[1].unix_time_start_ms - hooks[0].unix_time_end_ms;
    assert!(
        pause >= 59_000,
        "waited {pause} ms of the clock before retrying"
    );
    app.orchestrator.shutdown();
}

#[test]
fn an_unchanged_backup_with_skip_if_unchanged_fires_snapshot_skipped() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 2);
    let rx = Receiver::start(200);
    let b = &rx.base;
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src], "skipIfUnchanged": true, "hooks": [
            {"conditions": ["CONDITION_SNAPSHOT_SKIPPED"], "actionWebhook": {"webhookUrl": format!("{b}/skipped"), "template": "{{ .EventName .Event }}"}},
            {"conditions": ["CONDITION_SNAPSHOT_SUCCESS"], "actionWebhook": {"webhookUrl": format!("{b}/success"), "template": "x"}}
        ]}]),
        auth_off(),
    ));
    let fr = Footrest::start(&sandbox);
    assert_eq!(fr.rpc("Backup", &json!({"value": "docs"})).status, 200);
    assert_eq!(fr.rpc("Backup", &json!({"value": "docs"})).status, 200);
    let seen = rx.wait_for(2);
    let urls: Vec<&str> = seen.iter().map(|s| s.url.as_str()).collect();
    assert_eq!(urls, ["/success", "/skipped"]);
    assert_eq!(seen[1].body, "snapshot skipped");
    let out = sandbox.restic(&["snapshots", "--json"]);
    let snaps: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        snaps.as_array().unwrap().len(),
        1,
        "the unchanged snapshot was not kept"
    );
    let backups: Vec<Value> = fr
        .operations(json!({"planId": "docs"}))
        .into_iter()
        .filter(|o| o.get("operationBackup").is_some())
        .collect();
    assert_eq!(backups[1]["status"], "STATUS_SUCCESS");
    assert!(backups[1].get("snapshotId").is_none());
    assert!(
        backups[1]["displayMessage"]
            .as_str()
            .unwrap()
            .contains("skipIfUnchanged")
    );
}
