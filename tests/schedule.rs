//! Schedules with real restic: a plan runs by itself, pending operations never pile up,
//! and an overdue schedule is caught up exactly once after a restart.
//!
//! The first test runs footrest's library in-process on a clock that runs 3600 times
//! faster (an hour passes in a second), so an hourly schedule fires within seconds; the
//! others run the real binary on the real clock.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use footrest::oplog::OpLog;
use footrest::orchestrator::clock::{Clock, FastClock};
use footrest::proto::{Op, OpSelector, Operation, OperationBackup, OperationStatus};
use footrest::settings::{Args, Settings};
use serde_json::json;

fn backups(ops: &[Operation]) -> Vec<&Operation> {
    ops.iter()
        .filter(|o| matches!(o.op, Op::Backup(_)))
        .collect()
}

#[test]
fn an_hourly_plan_runs_by_itself_on_a_fast_clock() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 3);
    sandbox.write_config(&sandbox.config(
        json!([{"id": "hourly", "repo": "local", "paths": [src], "schedule": {"maxFrequencyHours": 1}}]),
        auth_off(),
    ));
    let args = Args {
        config: Some(sandbox.config_path()),
        data_dir: Some(sandbox.data_dir()),
        ..Default::default()
    };
    let settings = Settings::resolve(args, &|_| None).unwrap();
    let clock = Arc::new(FastClock::new(3600));
    let app = footrest::App::start_with_clock(&settings, clock.clone() as Arc<dyn Clock>).unwrap();

    let deadline = Instant::now() + Duration::from_secs(90);
    let ops = loop {
        let ops = app.oplog.query(&OpSelector::default(), None).unwrap();
        let done = backups(&ops)
            .iter()
            .filter(|o| o.status == OperationStatus::Success)
            .count();
        // Never more than one pending run of the plan.
        let pending = backups(&ops)
            .iter()
            .filter(|o| o.status == OperationStatus::Pending)
            .count();
        assert!(pending <= 1, "pending runs piled up: {ops:#?}");
        if done >= 3 {
            break ops;
        }
        assert!(
            Instant::now() < deadline,
            "the plan did not run by itself: {ops:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    app.orchestrator.shutdown();
    let done: Vec<&Operation> = backups(&ops)
        .into_iter()
        .filter(|o| o.status == OperationStatus::Success)
        .collect();
    // Each run starts at least an hour (of this clock) after the one before.
    for pair in done.windows(2) {
        let gap = pair[1].unix_time_start_ms - pair[0].unix_time_start_ms;
        assert!(gap >= 3_600_000, "runs {} ms apart", gap);
    }
    let out = sandbox.restic(&["snapshots", "--json"]);
    let snaps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(snaps.as_array().unwrap().len() >= 3);
}

/// Writes a successful backup of `plan` that started `age_ms` ago into a fresh oplog.
fn seed_old_backup(sandbox: &Sandbox, plan: &str, age_ms: i64) {
    std::fs::create_dir_all(sandbox.data_dir()).unwrap();
    let oplog = OpLog::open(&sandbox.data_dir().join("oplog.sqlite")).unwrap();
    let now = footrest::orchestrator::clock::SystemClock.now_ms();
    let mut op = Operation::new(Op::Backup(OperationBackup::default()));
    op.repo_id = "local".into();
    op.plan_id = plan.into();
    op.instance_id = "test-host".into();
    op.status = OperationStatus::Success;
    op.unix_time_start_ms = now - age_ms;
    op.unix_time_end_ms = now - age_ms + 1000;
    oplog.add(&mut op).unwrap();
}

#[test]
fn an_overdue_schedule_is_caught_up_exactly_once() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 2);
    sandbox.write_config(&sandbox.config(
        json!([{"id": "daily", "repo": "local", "paths": [src], "schedule": {"maxFrequencyDays": 1}}]),
        auth_off(),
    ));
    // The last backup was three days ago: footrest was off (a power cut, say).
    seed_old_backup(&sandbox, "daily", 3 * 86_400_000);

    let fr = Footrest::start(&sandbox);
    let ran = fr.wait_for_op("the catch-up run", |o| {
        o.get("operationBackup").is_some() && o["status"] == "STATUS_SUCCESS" && o["id"] != "1"
    });
    // The next run is planned a day after the catch-up, as one pending operation.
    let pending = fr.wait_for_op("the next planned run", |o| o["status"] == "STATUS_PENDING");
    let started: i64 = ran["unixTimeStartMs"].as_str().unwrap().parse().unwrap();
    let planned: i64 = pending["unixTimeStartMs"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        planned - started,
        86_400_000,
        "planned a day after the catch-up"
    );
    drop(fr);

    // After a restart nothing is overdue: no second run, the same pending operation.
    let fr = Footrest::start(&sandbox);
    let _ = fr.rpc("GetOperations", &json!({})); // the scheduler has planned by now or soon
    wait_until(
        "planning after the restart",
        Duration::from_secs(10),
        || fr.stderr().contains("listening"),
    );
    std::thread::sleep(Duration::from_secs(2));
    let ops = fr.operations(json!({"planId": "daily"}));
    let runs: Vec<_> = ops
        .iter()
        .filter(|o| o.get("operationBackup").is_some() && o["status"] != "STATUS_PENDING")
        .collect();
    assert_eq!(runs.len(), 2, "the seeded run and one catch-up: {ops:#?}");
    let pending: Vec<_> = ops
        .iter()
        .filter(|o| o["status"] == "STATUS_PENDING")
        .collect();
    assert_eq!(pending.len(), 1, "{ops:#?}");
    assert_eq!(
        pending[0]["unixTimeStartMs"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap(),
        planned
    );
}

#[test]
fn a_cron_plan_shows_its_next_run_and_a_disabled_one_none() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 1);
    sandbox.write_config(&sandbox.config(
        json!([
            {"id": "nightly", "repo": "local", "paths": [src], "schedule": {"cron": "30 1 * * *"}},
            {"id": "manual", "repo": "local", "paths": [src], "schedule": {"disabled": true}}
        ]),
        auth_off(),
    ));
    let fr = Footrest::start(&sandbox);
    let pending = fr.wait_for_op("the nightly plan's next run", |o| {
        o["status"] == "STATUS_PENDING"
    });
    assert_eq!(pending["planId"], "nightly");
    assert!(pending.get("operationBackup").is_some());
    let planned: i64 = pending["unixTimeStartMs"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = footrest::orchestrator::clock::SystemClock.now_ms();
    assert!(
        planned > now && planned <= now + 86_400_000 + 3_600_000,
        "{planned} vs {now}"
    );
    // Cancelling the planned run skips it: the next one is planned a day later.
    let id = pending["id"].as_str().unwrap().to_string();
    let r = fr.rpc("Cancel", &json!({ "operationId": id }));
    assert_eq!(r.status, 200, "{}", r.text());
    let next = fr.wait_for_op("the run after the skipped one", |o| {
        o["status"] == "STATUS_PENDING" && o["id"].as_str() != Some(&id)
    });
    let next_at: i64 = next["unixTimeStartMs"].as_str().unwrap().parse().unwrap();
    assert!(next_at > planned, "{next_at} after {planned}");
    let ops = fr.operations(json!({"ids": [id]}));
    assert_eq!(ops[0]["status"], "STATUS_USER_CANCELLED");
    assert!(fr.operations(json!({"planId": "manual"})).is_empty());
}
