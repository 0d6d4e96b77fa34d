//! Repository upkeep with real restic: retention after backups, DoRepoTask's tasks,
//! locks (stale and live), Cancel, config reload, GetConfig, ClearHistory and
//! ListSnapshots.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn snapshot_ids(sandbox: &Sandbox) -> Vec<String> {
    let out = sandbox.restic(&["snapshots", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn retention_keeps_exactly_what_restic_keeps() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 2);
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src], "retention": {"policyKeepLastN": 2}}]),
        auth_off(),
    ));
    let fr = Footrest::start(&sandbox);
    let mut made = Vec::new();
    for i in 0..4 {
        std::fs::write(src.join("changing.txt"), format!("version {i}")).unwrap();
        let r = fr.rpc("Backup", &json!({"value": "docs"}));
        assert_eq!(r.status, 200, "{}", r.text());
        let ops = fr.operations(json!({"planId": "docs"}));
        let backup = ops
            .iter()
            .rev()
            .find(|o| o.get("operationBackup").is_some())
            .unwrap();
        made.push(backup["snapshotId"].as_str().unwrap().to_string());
        // The forget runs in the backup's flow once the call has its answer.
        let flow = backup["flowId"].as_str().unwrap().to_string();
        let forget = fr.wait_for_op("the retention forget", |o| {
            o["flowId"] == flow.as_str()
                && o.get("operationForget").is_some()
                && o["status"] == "STATUS_SUCCESS"
        });
        assert_eq!(
            forget["operationForget"]["policy"],
            json!({"policyKeepLastN": 2})
        );
    }
    // restic keeps the last two; footrest's history agrees.
    assert_eq!(snapshot_ids(&sandbox), made[2..].to_vec());
    let ops = fr.operations(json!({"planId": "docs"}));
    let removed: Vec<String> = ops
        .iter()
        .filter_map(|o| o.get("operationForget"))
        .flat_map(|f| f["forget"].as_array().cloned().unwrap_or_default())
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(removed, made[..2].to_vec());
    for op in ops
        .iter()
        .filter(|o| o.get("operationIndexSnapshot").is_some())
    {
        let id = op["snapshotId"].as_str().unwrap();
        let forgot = op["operationIndexSnapshot"]["forgot"] == true;
        assert_eq!(forgot, made[..2].contains(&id.to_string()), "{op}");
    }
    // ListSnapshots answers from the index: the two kept, oldest first.
    let r = fr.rpc(
        "ListSnapshots",
        &json!({"repoId": "local", "planId": "docs"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let listed: Vec<String> = r.json()["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, made[2..].to_vec());
}

#[test]
fn repo_tasks_prune_check_stats_forget_index_unlock() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 3);
    let mut config = sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src]}]),
        auth_off(),
    );
    config["repos"][0]["prunePolicy"] = json!({"maxUnusedPercent": 5});
    config["repos"][0]["checkPolicy"] = json!({"readDataSubsetPercent": 50});
    config["repos"][0]["forgetPolicy"] = json!({"retention": {"policyKeepLastN": 1}});
    sandbox.write_config(&config);
    let fr = Footrest::start(&sandbox);
    for _ in 0..2 {
        assert_eq!(fr.rpc("Backup", &json!({"value": "docs"})).status, 200);
    }
    let task = |name: &str| {
        let r = fr.rpc("DoRepoTask", &json!({"repoId": "local", "task": name}));
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        let id = r.json()["operationId"].as_str().unwrap().to_string();
        let op = fr.wait_ended(&id);
        assert_eq!(op["status"], "STATUS_SUCCESS", "{name}: {op}");
        assert_eq!(op["planId"], "_system_");
        op
    };
    let forget = task("TASK_FORGET");
    assert_eq!(
        forget["operationForget"]["forget"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(snapshot_ids(&sandbox).len(), 1);
    let prune = task("TASK_PRUNE");
    let logref = prune["operationPrune"]["outputLogref"].as_str().unwrap();
    let log =
        std::fs::read_to_string(sandbox.data_dir().join(format!("logs/{logref}.log"))).unwrap();
    assert!(
        log.contains("--max-unused") || log.contains("unused"),
        "{log}"
    );
    task("TASK_CHECK");
    let stats = task("TASK_STATS");
    assert_eq!(stats["operationStats"]["stats"]["snapshotCount"], "1");
    assert!(
        stats["operationStats"]["stats"]["totalSize"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    task("TASK_UNLOCK");
    // A snapshot made outside footrest shows up after indexing.
    let out = sandbox.restic(&["backup", "-q", src.to_str().unwrap()]);
    assert!(out.status.success());
    task("TASK_INDEX_SNAPSHOTS");
    let r = fr.rpc("ListSnapshots", &json!({"repoId": "local"}));
    assert_eq!(r.json()["snapshots"].as_array().unwrap().len(), 2);
    // Numbers work for the task too; errors name what is wrong.
    let r = fr.rpc("DoRepoTask", &json!({"repoId": "local", "task": 4}));
    assert_eq!(r.status, 200);
    let m = fr
        .rpc(
            "DoRepoTask",
            &json!({"repoId": "nope", "task": "TASK_PRUNE"}),
        )
        .assert_error(404, "not_found");
    assert!(m.contains("nope"), "{m}");
    let m = fr
        .rpc(
            "DoRepoTask",
            &json!({"repoId": "local", "task": "TASK_FLY"}),
        )
        .assert_error(400, "invalid_argument");
    assert!(m.contains("task"), "{m}");
}

/// Starts restic against the sandbox's repo and waits until it holds its lock.
fn slow_restic(sandbox: &Sandbox, args: &[&str]) -> std::process::Child {
    let child = Command::new("restic")
        .args(args)
        .env("RESTIC_REPOSITORY", sandbox.repo_path())
        .env("RESTIC_PASSWORD", REPO_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("restic to take its lock", Duration::from_secs(30), || {
        !sandbox.locks().is_empty()
    });
    child
}

#[test]
fn a_stale_lock_is_cleared_and_a_live_one_waited_for() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 2);
    let big = sandbox.random_source("big", 3 * 1024 * 1024);
    let mut config = sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src], "retention": {"policyKeepLastN": 5}}]),
        auth_off(),
    );
    config["repos"][0]["autoUnlock"] = json!(true);
    config["repos"][0]["forgetPolicy"] = json!({"retention": {"policyKeepLastN": 5}});
    sandbox.write_config(&config);
    let fr = Footrest::start(&sandbox);
    assert_eq!(fr.rpc("Backup", &json!({"value": "docs"})).status, 200);
    // The backup's retention forget takes a lock of its own; let it finish first.
    fr.wait_for_op("the retention forget to end", |o| {
        o.get("operationForget").is_some() && o["status"] == "STATUS_SUCCESS"
    });

    // A restic killed with -9 leaves a stale lock: autoUnlock clears it.
    let mut holder = slow_restic(
        &sandbox,
        &["backup", "--limit-upload", "50", big.to_str().unwrap()],
    );
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(!sandbox.locks().is_empty(), "a stale lock to clear");
    let r = fr.rpc("Forget", &json!({"repoId": "local", "planId": "docs"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let op = fr.wait_ended(r.json()["operationId"].as_str().unwrap());
    assert_eq!(op["status"], "STATUS_SUCCESS", "{op}");
    assert!(sandbox.locks().is_empty());

    // A live lock (a slow backup by another restic): the forget, which needs the
    // repository to itself, waits and says so, then succeeds once the lock is gone.
    let holder = slow_restic(
        &sandbox,
        &["backup", "--limit-upload", "50", big.to_str().unwrap()],
    );
    let r = fr.rpc(
        "DoRepoTask",
        &json!({"repoId": "local", "task": "TASK_FORGET"}),
    );
    let id = r.json()["operationId"].as_str().unwrap().to_string();
    let waiting = fr.wait_for_op("the forget to wait for the lock", |o| {
        o["id"] == id.as_str()
            && o["displayMessage"]
                .as_str()
                .unwrap_or("")
                .contains("waiting for the repository lock")
    });
    assert_eq!(waiting["status"], "STATUS_INPROGRESS");
    // The other restic is interrupted and removes its own lock.
    unsafe { libc::kill(holder.id() as i32, libc::SIGINT) };
    let _ = holder.wait_with_output();
    let op = fr.wait_ended(&id);
    assert_eq!(op["status"], "STATUS_SUCCESS", "{op}");
    assert_eq!(
        op.get("displayMessage"),
        None,
        "the waiting message is gone: {op}"
    );
}

#[test]
fn cancel_a_queued_and_a_running_backup() {
    let sandbox = Sandbox::new();
    let big = sandbox.random_source("big", 4 * 1024 * 1024);
    let mut config = sandbox.config(
        json!([{"id": "slow", "repo": "local", "paths": [big]}]),
        auth_off(),
    );
    config["repos"][0]["flags"] = json!(["--limit-upload 200"]);
    sandbox.write_config(&config);
    let fr = Footrest::start(&sandbox);
    let call = |fr: &Footrest| {
        let addr = fr.addr;
        std::thread::spawn(move || {
            request(
                addr,
                "POST",
                "/v1.Backrest/Backup",
                &[("Content-Type".into(), "application/json".into())],
                br#"{"value":"slow"}"#,
            )
        })
    };
    let first = call(&fr);
    let running = fr.wait_for_op("the first backup to run", |o| {
        o["status"] == "STATUS_INPROGRESS"
    });
    let second = call(&fr);
    let queued = fr.wait_for_op("the second backup to queue", |o| {
        o["status"] == "STATUS_PENDING"
    });

    // Cancel the queued one (Backrest's {"value"} form): its call gets 499 at once.
    let r = fr.rpc("Cancel", &json!({"value": queued["id"]}));
    assert_eq!(r.status, 200, "{}", r.text());
    second.join().unwrap().assert_error(499, "canceled");
    assert_eq!(
        fr.op_by_id(queued["id"].as_str().unwrap())["status"],
        "STATUS_USER_CANCELLED"
    );

    // Cancel the running one: restic is interrupted, no lock is left.
    std::thread::sleep(Duration::from_secs(1));
    let r = fr.rpc("Cancel", &json!({"operationId": running["id"]}));
    assert_eq!(r.status, 200, "{}", r.text());
    first.join().unwrap().assert_error(499, "canceled");
    let op = fr.op_by_id(running["id"].as_str().unwrap());
    assert_eq!(op["status"], "STATUS_USER_CANCELLED");
    assert!(sandbox.locks().is_empty(), "a lock was left");

    // Cancelling what has ended, or what does not exist, says so.
    let m = fr
        .rpc("Cancel", &json!({"operationId": running["id"]}))
        .assert_error(400, "failed_precondition");
    assert!(m.contains("already ended"), "{m}");
    fr.rpc("Cancel", &json!({"operationId": "999"}))
        .assert_error(404, "not_found");
    fr.rpc("Cancel", &json!({}))
        .assert_error(400, "invalid_argument");
}

#[test]
fn config_reload_valid_and_invalid() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 1);
    let config = sandbox.config(
        json!([{"id": "a", "repo": "local", "paths": [src]}]),
        auth_off(),
    );
    sandbox.write_config(&config);
    let fr = Footrest::start(&sandbox);
    assert_eq!(fr.rpc("Backup", &json!({"value": "b"})).status, 404);

    // A valid change, saved the way editors do (a new file renamed into place): the
    // watcher picks it up.
    let mut next = config.clone();
    next["plans"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "b", "repo": "local", "paths": [src]}));
    let tmp = sandbox.path("config.json.new");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&next).unwrap()).unwrap();
    std::fs::rename(&tmp, sandbox.config_path()).unwrap();
    wait_until("the new plan", Duration::from_secs(20), || {
        fr.rpc("GetConfig", &json!({})).json()["plans"]
            .as_array()
            .unwrap()
            .len()
            == 2
    });
    assert_eq!(fr.rpc("Backup", &json!({"value": "b"})).status, 200);

    // An invalid file is refused with the named error and the config in force stays,
    // also on SIGHUP.
    std::fs::write(sandbox.config_path(), r#"{"version": 6, "instance": "test-host", "repos": [], "plans": [{"id": "c", "repo": "gone", "paths": ["/x"]}]}"#).unwrap();
    fr.signal(libc::SIGHUP);
    wait_until("the refusal in the log", Duration::from_secs(20), || {
        fr.stderr().contains(r#"repo "gone" is not defined"#)
    });
    assert!(fr.stderr().contains("config not reloaded"));
    assert_eq!(fr.rpc("Backup", &json!({"value": "b"})).status, 200);
    // History is kept across reloads.
    assert!(fr.operations(json!({"planId": "b"})).len() >= 2);
}

#[test]
fn get_config_masks_secrets_and_clear_history_deletes_what_was_asked() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 1);
    let mut config = sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src]}, {"id": "broken", "repo": "local", "paths": [sandbox.path("missing")]}]),
        auth_users(&[("admin", CHANGEME_HASH)]),
    );
    config["repos"][0]["env"] = json!(["AWS_SECRET_ACCESS_KEY=very-secret-value"]);
    sandbox.write_config(&config);
    let fr = Footrest::start(&sandbox).with_credentials("admin", "changeme");
    let r = fr.rpc("GetConfig", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    for secret in [REPO_PASSWORD, CHANGEME_HASH, "very-secret-value"] {
        assert!(!text.contains(secret), "GetConfig shows a secret: {text}");
    }
    let v = r.json();
    assert_eq!(v["repos"][0]["password"], "********");
    assert_eq!(v["repos"][0]["env"][0], "AWS_SECRET_ACCESS_KEY=********");
    assert_eq!(v["auth"]["users"][0]["name"], "admin");
    assert_eq!(v["instance"], "test-host");

    assert_eq!(fr.rpc("Backup", &json!({"value": "docs"})).status, 200);
    assert_eq!(fr.rpc("Backup", &json!({"value": "broken"})).status, 500);
    let m = fr
        .rpc("ClearHistory", &json!({}))
        .assert_error(400, "invalid_argument");
    assert!(m.contains("selector"), "{m}");
    let r = fr.rpc(
        "ClearHistory",
        &json!({"selector": {"repoId": "local"}, "onlyFailed": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(fr.operations(json!({"planId": "broken"})).is_empty());
    assert!(!fr.operations(json!({"planId": "docs"})).is_empty());
}
