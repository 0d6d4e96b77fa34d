//! Backup and GetOperations end to end: the real binary, real HTTP, real restic.

mod common;

use common::*;
use serde_json::{Value, json};

fn one_plan(sandbox: &Sandbox, paths: Value) -> Value {
    sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": paths}]),
        auth_off(),
    )
}

fn backups(ops: &[Value]) -> Vec<&Value> {
    ops.iter()
        .filter(|o| o.get("operationBackup").is_some())
        .collect()
}

#[test]
fn backup_blocks_until_done_and_history_has_the_full_snapshot() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 5);
    sandbox.write_config(&one_plan(&sandbox, json!([src])));
    let fr = Footrest::start(&sandbox);

    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({}));

    // The call returned after the backup ended: the operation is finished already.
    let ops = fr.operations(json!({"planId": "docs"}));
    let b = backups(&ops);
    assert_eq!(b.len(), 1, "{ops:?}");
    let b = b[0];
    assert_eq!(b["status"], "STATUS_SUCCESS");
    assert!(b["id"].is_string() && b["modno"].is_string() && b["flowId"].is_string());
    assert_eq!(b["flowId"], b["id"]);
    assert_eq!(b["repoId"], "local");
    assert_eq!(b["instanceId"], "test-host");
    let snapshot_id = b["snapshotId"].as_str().unwrap();
    assert_eq!(snapshot_id.len(), 64, "full snapshot id");
    assert_eq!(b["repoGuid"].as_str().unwrap().len(), 64);
    let summary = &b["operationBackup"]["lastStatus"]["summary"];
    assert_eq!(summary["filesNew"], "6");
    assert_eq!(summary["totalFilesProcessed"], "6");
    assert_eq!(summary["snapshotId"], snapshot_id);
    assert!(summary["totalDuration"].is_number());
    assert!(b["unixTimeEndMs"].as_str().unwrap() >= b["unixTimeStartMs"].as_str().unwrap());
    assert!(b["logref"].as_str().is_some_and(|l| !l.is_empty()));

    // restic agrees: the snapshot exists, tagged with the plan and the instance.
    let out = sandbox.restic(&["snapshots", "--json"]);
    let snaps: Value = serde_json::from_slice(&out.stdout).unwrap();
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["id"], snapshot_id);
    let tags: Vec<&str> = snaps[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tags, ["plan:docs", "created-by:test-host"]);

    // The snapshot is indexed in the same flow.
    let flow = fr.wait_for_op("the index operation", |o| {
        o.get("operationIndexSnapshot").is_some()
    });
    assert_eq!(flow["flowId"], b["id"]);
    assert_eq!(flow["snapshotId"], snapshot_id);
    let snap = &flow["operationIndexSnapshot"]["snapshot"];
    assert_eq!(snap["id"], snapshot_id);
    assert_eq!(snap["paths"], json!([src.to_str().unwrap()]));
    assert_eq!(snap["tags"], json!(["plan:docs", "created-by:test-host"]));
    assert!(snap["unixTimeMs"].as_str().unwrap().parse::<i64>().unwrap() > 1_600_000_000_000);

    // The guid learned from the repository was written back into the config file.
    let saved: Value =
        serde_json::from_slice(&std::fs::read(sandbox.config_path()).unwrap()).unwrap();
    assert_eq!(saved["repos"][0]["guid"], b["repoGuid"]);
}

#[test]
fn second_backup_uses_the_last_snapshot_as_parent() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 3);
    sandbox.write_config(&one_plan(&sandbox, json!([src])));
    let fr = Footrest::start(&sandbox);
    assert_eq!(fr.rpc("Backup", &json!({"value": "docs"})).status, 200);
    std::fs::write(src.join("new.txt"), "new").unwrap();
    assert_eq!(fr.rpc("Backup", &json!({"value": "docs"})).status, 200);
    let ops = fr.operations(json!({"planId": "docs"}));
    let b = backups(&ops);
    assert_eq!(b.len(), 2);
    let summary = &b[1]["operationBackup"]["lastStatus"]["summary"];
    assert_eq!(summary["filesNew"], "1");
    assert_eq!(summary["filesUnmodified"], "4");
    // restic recorded the first snapshot as the second one's parent.
    let out = sandbox.restic(&["snapshots", "--json"]);
    let snaps: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snaps[1]["parent"], b[0]["snapshotId"]);
}

#[test]
fn failing_backup_answers_500_with_the_reason_and_records_an_error() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path("not-mounted");
    sandbox.write_config(&one_plan(&sandbox, json!([missing])));
    let fr = Footrest::start(&sandbox);
    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    let message = r.assert_error(500, "unknown");
    assert!(message.contains("do not exist"), "{message}");
    let ops = fr.operations(json!({"planId": "docs"}));
    let b = backups(&ops);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["status"], "STATUS_ERROR");
    assert_eq!(b[0]["displayMessage"], message);
    assert!(b[0].get("snapshotId").is_none());
    // The log holds restic's own words.
    let logref = b[0]["logref"].as_str().unwrap();
    let log = std::fs::read_to_string(
        sandbox
            .data_dir()
            .join("logs")
            .join(format!("{logref}.log")),
    )
    .unwrap();
    assert!(log.contains("does not exist"), "{log}");
}

#[test]
fn dry_run_writes_no_snapshot() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 2);
    sandbox.write_config(&one_plan(&sandbox, json!([src])));
    let fr = Footrest::start(&sandbox);
    let r = fr.rpc("Backup", &json!({"value": "docs", "dryRun": true}));
    assert_eq!(r.status, 200, "{}", r.text());
    let ops = fr.operations(json!({"planId": "docs"}));
    let b = backups(&ops);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["status"], "STATUS_SUCCESS");
    assert_eq!(b[0]["operationBackup"]["dryRun"], true);
    let out = sandbox.restic(&["snapshots", "--json"]);
    let snaps: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 0);
    // snake_case is accepted too.
    assert_eq!(
        fr.rpc("Backup", &json!({"value": "docs", "dry_run": true}))
            .status,
        200
    );
}

#[test]
fn backup_request_errors() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 1);
    sandbox.write_config(&one_plan(&sandbox, json!([src])));
    let fr = Footrest::start(&sandbox);
    let m = fr
        .rpc("Backup", &json!({"value": "nope"}))
        .assert_error(404, "not_found");
    assert!(m.contains("\"nope\""), "{m}");
    let m = fr
        .rpc("Backup", &json!({"value": ""}))
        .assert_error(400, "invalid_argument");
    assert!(m.contains("value"), "{m}");
    let m = fr
        .rpc("Backup", &json!({}))
        .assert_error(400, "invalid_argument");
    assert!(m.contains("value"), "{m}");
    let m = fr
        .rpc("Backup", &json!({"value": 5}))
        .assert_error(400, "invalid_argument");
    assert!(m.contains("value"), "{m}");
    // Nothing was queued by the bad requests.
    assert!(fr.operations(json!({})).is_empty());
}

#[test]
fn documented_curl_calls_pass_the_conformance_script() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 3);
    let config = sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src]}]),
        auth_users(&[("admin", CHANGEME_HASH)]),
    );
    sandbox.write_config(&config);
    let fr = Footrest::start(&sandbox);
    let script = shared_dir().join("conformance/documented-curl.sh");
    assert!(script.exists(), "{} is missing", script.display());
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(fr.url())
        .arg("admin:changeme")
        .arg("docs")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "conformance failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(" 0 failed"), "{text}");
}
