//! GetSummaryDashboard and RunCommand end to end: the real binary, real HTTP, real
//! restic. The dashboard is checked after a successful, a warning and a failed backup
//! against the operations themselves; RunCommand with a command that works, one that
//! fails, one whose output is over the cap, and the commands it refuses.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::{Value, json};

/// FAULT INJECTOR, not a fake: the real restic, run with CAP_DAC_OVERRIDE and
/// CAP_DAC_READ_SEARCH dropped from its bounding set (`setpriv`, util-linux), so that a
/// `chmod 000` file cannot be read even as root and restic exits 3 (WARNING), as it
/// does for an ordinary user. Returns the footrest flags that use it (none when the
/// tests do not run as root: then `chmod 000` is enough).
fn restic_without_dac_override(sandbox: &Sandbox) -> Vec<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Vec::new();
    }
    let restic = std::process::Command::new("sh")
        .args(["-c", "command -v restic"])
        .output()
        .expect("find restic");
    let restic = String::from_utf8(restic.stdout).unwrap().trim().to_string();
    assert!(!restic.is_empty(), "restic is on PATH");
    let wrapper = sandbox.path("restic-without-dac-override");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n# FAULT INJECTOR for tests/dashboard.rs: the real restic without \
             the capabilities that let root read unreadable files.\n\
             exec setpriv --bounding-set -dac_override,-dac_read_search {restic} \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    vec!["--restic".into(), wrapper.to_string_lossy().into_owned()]
}

fn dashboard(fr: &Footrest) -> Value {
    let r = fr.rpc("GetSummaryDashboard", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn summary<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no summary {id} in {list}"))
}

fn int(v: &Value) -> i64 {
    v.as_str()
        .unwrap_or_else(|| panic!("{v} is not an int64 string"))
        .parse()
        .unwrap()
}

/// The one backup operation of a plan.
fn backup_of(fr: &Footrest, plan: &str) -> Value {
    let ops: Vec<Value> = fr
        .operations(json!({"planId": plan}))
        .into_iter()
        .filter(|o| o.get("operationBackup").is_some() && o["status"] != "STATUS_PENDING")
        .collect();
    assert_eq!(ops.len(), 1, "{ops:?}");
    ops[0].clone()
}

/// (bytes scanned, bytes added) of a backup's summary.
fn bytes_of(op: &Value) -> (i64, i64) {
    let s = &op["operationBackup"]["lastStatus"]["summary"];
    (int(&s["totalBytesProcessed"]), int(&s["dataAdded"]))
}

/// The chart entry of one backup: (flow, start, duration, status, bytes added).
fn chart_entry(op: &Value, added: i64) -> (Value, Value, Value, Value, Value) {
    let start = int(&op["unixTimeStartMs"]);
    let end = int(&op["unixTimeEndMs"]);
    (
        op["flowId"].clone(),
        op["unixTimeStartMs"].clone(),
        json!((end - start).to_string()),
        op["status"].clone(),
        json!(added.to_string()),
    )
}

fn chart(summary: &Value) -> Vec<(Value, Value, Value, Value, Value)> {
    let c = &summary["recentBackups"];
    let column = |name: &str| c[name].as_array().cloned().unwrap_or_default();
    let (flows, times, durations, statuses, added) = (
        column("flowId"),
        column("timestampMs"),
        column("durationMs"),
        column("status"),
        column("bytesAdded"),
    );
    for col in [&times, &durations, &statuses, &added] {
        assert_eq!(col.len(), flows.len(), "parallel arrays: {c}");
    }
    (0..flows.len())
        .map(|i| {
            (
                flows[i].clone(),
                times[i].clone(),
                durations[i].clone(),
                statuses[i].clone(),
                added[i].clone(),
            )
        })
        .collect()
}

#[test]
fn the_dashboard_after_a_success_a_warning_and_a_failure() {
    let sandbox = Sandbox::new();
    let good = sandbox.source("good", 4);
    let warn = sandbox.source("warn", 2);
    let locked = warn.join("locked.txt");
    std::fs::write(&locked, "not for restic\n").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let missing = sandbox.path("not-mounted");
    let mut config = sandbox.config(
        json!([
            {"id": "good", "repo": "local", "paths": [good]},
            {"id": "warn", "repo": "local", "paths": [warn]},
            {"id": "bad", "repo": "local", "paths": [missing]},
            // Once a year, on 1 January: planned, never due during the test.
            {"id": "yearly", "repo": "local", "paths": [good], "schedule": {"cron": "0 0 1 1 *"}},
            {"id": "idle", "repo": "local", "paths": [good]}
        ]),
        auth_off(),
    );
    config["repos"].as_array_mut().unwrap().push(json!({
        "id": "spare",
        "uri": sandbox.path("spare-repo").to_str().unwrap(),
        "password": REPO_PASSWORD
    }));
    sandbox.write_config(&config);
    let extra = restic_without_dac_override(&sandbox);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let fr = Footrest::start_with(&sandbox, &extra);

    // Before any backup: every repo and plan is there, with nothing but its id (and
    // the planned run of the scheduled plan once the scheduler has written it).
    let pending = fr.wait_for_op("the yearly plan's planned run", |o| {
        o["planId"] == "yearly" && o["status"] == "STATUS_PENDING"
    });
    let next = pending["unixTimeStartMs"].clone();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(int(&next) > now_ms, "planned in the future: {pending}");
    let d = dashboard(&fr);
    assert_eq!(
        summary(&d["planSummaries"], "good"),
        &json!({"id": "good", "recentBackups": {}})
    );

    let r = fr.rpc("Backup", &json!({"value": "good"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = fr.rpc("Backup", &json!({"value": "warn"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = fr.rpc("Backup", &json!({"value": "bad"}));
    r.assert_error(500, "unknown");

    let good_op = backup_of(&fr, "good");
    let warn_op = backup_of(&fr, "warn");
    let bad_op = backup_of(&fr, "bad");
    assert_eq!(good_op["status"], "STATUS_SUCCESS");
    assert_eq!(warn_op["status"], "STATUS_WARNING", "{warn_op}");
    assert_eq!(bad_op["status"], "STATUS_ERROR");
    let (good_scanned, good_added) = bytes_of(&good_op);
    let (warn_scanned, warn_added) = bytes_of(&warn_op);
    assert!(good_scanned > 0 && good_added > 0 && warn_scanned > 0);

    let d = dashboard(&fr);
    assert_eq!(d["configPath"], sandbox.config_path().to_str().unwrap());
    assert_eq!(d["dataPath"], sandbox.data_dir().to_str().unwrap());
    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&d["repoSummaries"]), ["local", "spare"]);
    assert_eq!(
        ids(&d["planSummaries"]),
        ["good", "warn", "bad", "yearly", "idle"]
    );

    let plans = &d["planSummaries"];
    let s = summary(plans, "good");
    assert_eq!(
        s,
        &json!({
            "id": "good",
            "backupsSuccessLast30days": "1",
            "bytesScannedLast30days": good_scanned.to_string(),
            "bytesAddedLast30days": good_added.to_string(),
            "bytesScannedAvg": good_scanned.to_string(),
            "bytesAddedAvg": good_added.to_string(),
            "recentBackups": s["recentBackups"].clone(),
        })
    );
    assert_eq!(chart(s), [chart_entry(&good_op, good_added)]);

    let s = summary(plans, "warn");
    assert_eq!(s["backupsWarningLast30days"], "1");
    assert_eq!(s.get("backupsSuccessLast30days"), None);
    assert_eq!(int(&s["bytesScannedLast30days"]), warn_scanned);
    assert_eq!(int(&s["bytesAddedAvg"]), warn_added);
    assert_eq!(chart(s), [chart_entry(&warn_op, warn_added)]);

    let s = summary(plans, "bad");
    assert_eq!(s["backupsFailed30days"], "1");
    for key in [
        "bytesScannedLast30days",
        "bytesAddedLast30days",
        "bytesScannedAvg",
    ] {
        assert_eq!(s.get(key), None, "{s}");
    }
    assert_eq!(chart(s), [chart_entry(&bad_op, 0)]);

    let s = summary(plans, "yearly");
    assert_eq!(
        s,
        &json!({"id": "yearly", "nextBackupTimeMs": next, "recentBackups": {}})
    );
    assert_eq!(
        summary(plans, "idle"),
        &json!({"id": "idle", "recentBackups": {}})
    );

    // The repo: all three, newest first; averages over the two that wrote a snapshot.
    let s = summary(&d["repoSummaries"], "local");
    assert_eq!(s["backupsSuccessLast30days"], "1");
    assert_eq!(s["backupsWarningLast30days"], "1");
    assert_eq!(s["backupsFailed30days"], "1");
    assert_eq!(
        int(&s["bytesScannedLast30days"]),
        good_scanned + warn_scanned
    );
    assert_eq!(int(&s["bytesAddedLast30days"]), good_added + warn_added);
    assert_eq!(
        int(&s["bytesScannedAvg"]),
        (good_scanned + warn_scanned) / 2
    );
    assert_eq!(int(&s["bytesAddedAvg"]), (good_added + warn_added) / 2);
    assert_eq!(s["nextBackupTimeMs"], next);
    assert_eq!(
        chart(s),
        [
            chart_entry(&bad_op, 0),
            chart_entry(&warn_op, warn_added),
            chart_entry(&good_op, good_added),
        ]
    );
    assert_eq!(
        summary(&d["repoSummaries"], "spare"),
        &json!({"id": "spare", "recentBackups": {}})
    );
}

#[test]
fn an_empty_config_still_has_both_lists() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&json!({
        "version": 6, "instance": "test-host", "repos": [], "plans": [], "auth": {"disabled": true}
    }));
    let fr = Footrest::start(&sandbox);
    let r = fr.rpc("GetSummaryDashboard", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({
            "repoSummaries": [],
            "planSummaries": [],
            "configPath": sandbox.config_path().to_str().unwrap(),
            "dataPath": sandbox.data_dir().to_str().unwrap(),
        })
    );
}

fn log_of(sandbox: &Sandbox, logref: &Value) -> Vec<u8> {
    let logref = logref.as_str().expect("an output logref");
    std::fs::read(
        sandbox
            .data_dir()
            .join("logs")
            .join(format!("{logref}.log")),
    )
    .unwrap()
}

/// Runs a command; returns its finished operation (the call answers once it has ended).
fn run_command(fr: &Footrest, command: &str) -> Value {
    let r = fr.rpc(
        "RunCommand",
        &json!({"repoId": "local", "command": command}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    let id = body["value"]
        .as_str()
        .expect("the operation id as a string");
    assert_eq!(body, json!({"value": id}));
    let ops = fr.operations(json!({"ids": [id]}));
    assert_eq!(ops.len(), 1);
    ops[0].clone()
}

#[test]
fn run_command_runs_restic_subcommands_and_refuses_the_rest() {
    let sandbox = Sandbox::new();
    let src = sandbox.random_source("src", 3 * 1024 * 1024);
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src]}]),
        auth_off(),
    ));
    let fr = Footrest::start(&sandbox);
    let r = fr.rpc("Backup", &json!({"value": "docs"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let snapshot = backup_of(&fr, "docs")["snapshotId"].clone();

    // Works: the log holds restic's JSON, exactly.
    let op = run_command(&fr, "snapshots --json");
    assert_eq!(op["status"], "STATUS_SUCCESS", "{op}");
    assert_eq!(op["planId"], "_system_");
    assert_eq!(op["repoId"], "local");
    let rc = &op["operationRunCommand"];
    assert_eq!(rc["command"], "snapshots --json");
    let log = log_of(&sandbox, &rc["outputLogref"]);
    assert_eq!(int(&rc["outputSizeBytes"]), log.len() as i64);
    let snaps: Value = serde_json::from_slice(&log).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    assert_eq!(snaps[0]["id"], snapshot);
    assert!(!String::from_utf8_lossy(&log).contains(REPO_PASSWORD));

    // Fails: still 200 with the id; the operation says why, the log has it all.
    let op = run_command(&fr, &format!("cat blob {}", "0".repeat(64)));
    assert_eq!(op["status"], "STATUS_ERROR", "{op}");
    let message = op["displayMessage"].as_str().unwrap();
    assert!(
        message.starts_with("restic cat exited with code 1: ")
            && message.contains("blob not found"),
        "{message}"
    );
    let log = log_of(&sandbox, &op["operationRunCommand"]["outputLogref"]);
    assert!(String::from_utf8_lossy(&log).contains("Fatal: blob not found"));

    // Over the cap: some 3 MB of output, counted whole, kept within 2 MB.
    let op = run_command(
        &fr,
        &format!("dump latest '{}'", src.join("random.bin").display()),
    );
    assert_eq!(op["status"], "STATUS_SUCCESS", "{op}");
    let rc = &op["operationRunCommand"];
    assert!(int(&rc["outputSizeBytes"]) > 2_000_000, "{rc}");
    let log = log_of(&sandbox, &rc["outputLogref"]);
    assert!(log.len() <= 2_000_000, "{} bytes kept", log.len());
    assert!(String::from_utf8_lossy(&log).contains("bytes of output left out here"));

    // Refused before anything runs: 400 naming the field, and no operation.
    let before = fr.operations(json!({})).len();
    let refused = [
        ("", "command: give a restic subcommand"),
        ("   ", "command: give a restic subcommand"),
        (
            "--no-lock snapshots",
            "command: the first word must be a restic subcommand",
        ),
        (
            "/bin/sh -c id",
            "command: the first word must be a restic subcommand",
        ),
        (
            "snapshots -r /tmp/other",
            "command: -r would point restic at another repository",
        ),
        (
            "snapshots --repo=/tmp/other",
            "command: --repo would point restic at another",
        ),
        (
            "snapshots --repository-file /etc/passwd",
            "command: --repository-file would",
        ),
        (
            "snapshots --password-file /tmp/pw",
            "command: --password-file would make restic",
        ),
        (
            "snapshots --password-command id",
            "command: --password-command would make",
        ),
        (
            "snapshots -o sftp.command=id",
            "command: -o sets backend options",
        ),
        ("mount /mnt", "command: restic mount never ends by itself"),
    ];
    for (command, start) in refused {
        let r = fr.rpc(
            "RunCommand",
            &json!({"repoId": "local", "command": command}),
        );
        let message = r.assert_error(400, "invalid_argument");
        assert!(message.starts_with(start), "{command:?}: {message}");
    }
    let r = fr.rpc("RunCommand", &json!({"command": "snapshots"}));
    assert!(
        r.assert_error(400, "invalid_argument")
            .starts_with("repoId: ")
    );
    let r = fr.rpc(
        "RunCommand",
        &json!({"repo_id": "nas", "command": "snapshots"}),
    );
    r.assert_error(404, "not_found");
    assert_eq!(fr.operations(json!({})).len(), before);
}
