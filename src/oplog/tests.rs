//! Unit tests of the operation log against real SQLite files in temporary directories:
//! id/modno/flow assignment, selector semantics, the JSON fast path, start-up repair,
//! subscribers, WAL reads during writes, index use, the scheduler's look-ups, clearing
//! and pruning the history, and logs of realistic size.

use std::sync::mpsc::TryRecvError;

use tempfile::TempDir;

use super::*;
use crate::proto::{
    BackupProgressEntry, BackupProgressSummary, GetOperationsResponse, Op, OperationBackup,
    OperationIndexSnapshot, OperationPrune, ResticSnapshot,
};

fn open() -> (TempDir, OpLog) {
    let dir = tempfile::tempdir().unwrap();
    let log = OpLog::open(&dir.path().join("oplog.sqlite")).unwrap();
    (dir, log)
}

fn backup(plan: &str, start_ms: i64) -> Operation {
    Operation {
        repo_id: "nas".into(),
        repo_guid: "guid-nas".into(),
        plan_id: plan.into(),
        instance_id: "pi4".into(),
        status: OperationStatus::Pending,
        unix_time_start_ms: start_ms,
        ..Operation::new(Op::Backup(OperationBackup::default()))
    }
}

fn ids(ops: &[Operation]) -> Vec<i64> {
    ops.iter().map(|op| op.id).collect()
}

fn select(log: &OpLog, sel: OpSelector) -> Vec<i64> {
    ids(&log.query(&sel, None).unwrap())
}

#[test]
fn oplog_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<OpLog>();
}

#[test]
fn ids_are_sequential_and_never_reused() {
    let (dir, log) = open();
    let mut added = Vec::new();
    for i in 0..3 {
        let mut op = backup("p", i);
        log.add(&mut op).unwrap();
        added.push(op.id);
    }
    assert_eq!(added, [1, 2, 3]);
    log.delete(&[3]).unwrap();
    let mut op = backup("p", 9);
    log.add(&mut op).unwrap();
    assert_eq!(op.id, 4);
    // Deleting the newest and reopening does not bring its id back either.
    log.delete(&[4]).unwrap();
    drop(log);
    let log = OpLog::open(&dir.path().join("oplog.sqlite")).unwrap();
    let mut op = backup("p", 10);
    log.add(&mut op).unwrap();
    assert_eq!(op.id, 5);
    assert_eq!(select(&log, OpSelector::default()), [1, 2, 5]);
}

#[test]
fn modno_grows_across_adds_and_updates() {
    let (_dir, log) = open();
    let mut a = backup("p", 1);
    let mut b = backup("p", 2);
    log.add(&mut a).unwrap();
    log.add(&mut b).unwrap();
    let mut seen = vec![a.modno, b.modno];
    a.status = OperationStatus::InProgress;
    log.update(&mut a).unwrap();
    seen.push(a.modno);
    log.update(&mut b).unwrap();
    seen.push(b.modno);
    let mut batch = vec![backup("q", 3), backup("q", 4)];
    log.add_batch(&mut batch).unwrap();
    seen.extend(batch.iter().map(|op| op.modno));
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    // The stored copies carry the same modnos as the values handed back.
    let stored = log.get(a.id).unwrap().unwrap();
    assert_eq!(stored, a);
    assert_eq!(stored.status, OperationStatus::InProgress);
}

#[test]
fn flow_id_defaults_to_the_id() {
    let (_dir, log) = open();
    let mut first = backup("p", 1);
    log.add(&mut first).unwrap();
    assert_eq!(first.flow_id, first.id);
    let mut follow_up = Operation {
        flow_id: first.id,
        ..Operation::new(Op::Prune(OperationPrune::default()))
    };
    log.add(&mut follow_up).unwrap();
    assert_eq!(follow_up.id, 2);
    assert_eq!(follow_up.flow_id, 1);
}

#[test]
fn add_refuses_an_operation_with_an_id_and_update_needs_one() {
    let (_dir, log) = open();
    let mut op = backup("p", 1);
    log.add(&mut op).unwrap();
    let err = log.add(&mut op.clone()).unwrap_err();
    assert_eq!(err, OpLogError::AlreadyAdded(1));
    let mut ghost = Operation {
        id: 42,
        ..backup("p", 1)
    };
    let err = log.update(&mut ghost).unwrap_err();
    assert_eq!(err, OpLogError::NotFound(42));
    assert_eq!(err.to_string(), "operation 42 is not in the operation log");
    assert_eq!(
        ghost.modno, 0,
        "a failed update leaves the operation as it was"
    );
    // The failed update took no modno.
    let mut next = backup("p", 2);
    log.add(&mut next).unwrap();
    assert_eq!(next.modno, op.modno + 1);
}

#[test]
fn update_rewrites_the_selector_columns() {
    let (_dir, log) = open();
    let mut op = backup("p", 1);
    log.add(&mut op).unwrap();
    op.plan_id = "q".into();
    op.snapshot_id = "s1".into();
    op.unix_time_start_ms = 50;
    log.update(&mut op).unwrap();
    let by = |sel| select(&log, sel);
    assert!(
        by(OpSelector {
            plan_id: Some("p".into()),
            ..Default::default()
        })
        .is_empty()
    );
    assert_eq!(
        by(OpSelector {
            plan_id: Some("q".into()),
            ..Default::default()
        }),
        [1]
    );
    assert_eq!(
        by(OpSelector {
            snapshot_id: Some("s1".into()),
            ..Default::default()
        }),
        [1]
    );
    // Unchanged columns still match.
    assert_eq!(
        by(OpSelector {
            repo_id: Some("nas".into()),
            ..Default::default()
        }),
        [1]
    );
}

/// Six operations over two repos, three plans and two flows.
fn sample(log: &OpLog) -> Vec<Operation> {
    let specs = [
        ("nas", "g1", "photos", "", 0),
        ("nas", "g1", "docs", "snap-a", 0),
        ("usb", "g2", "photos", "snap-b", 1),
        ("usb", "g2", "", "", 1),
        ("nas", "g1", "photos", "snap-c", 0),
        ("usb", "", "docs", "", 0),
    ];
    let mut out = Vec::new();
    for (i, (repo, guid, plan, snap, flow)) in specs.into_iter().enumerate() {
        let mut op = Operation {
            repo_id: repo.into(),
            repo_guid: guid.into(),
            plan_id: plan.into(),
            snapshot_id: snap.into(),
            instance_id: if i == 5 { "other".into() } else { "pi4".into() },
            flow_id: flow,
            unix_time_start_ms: 1000 + i as i64,
            ..Operation::new(Op::Backup(OperationBackup::default()))
        };
        log.add(&mut op).unwrap();
        out.push(op);
    }
    out
}

#[test]
fn each_selector_field_filters_alone() {
    let (_dir, log) = open();
    sample(&log);
    let s = |v: &str| Some(v.to_string());
    let cases: Vec<(OpSelector, Vec<i64>)> = vec![
        (OpSelector::default(), vec![1, 2, 3, 4, 5, 6]),
        (
            OpSelector {
                ids: Some(vec![5, 2, 99]),
                ..Default::default()
            },
            vec![2, 5],
        ),
        (
            OpSelector {
                ids: Some(vec![]),
                ..Default::default()
            },
            vec![1, 2, 3, 4, 5, 6],
        ),
        (
            OpSelector {
                instance_id: s("pi4"),
                ..Default::default()
            },
            vec![1, 2, 3, 4, 5],
        ),
        (
            OpSelector {
                instance_id: s(""),
                ..Default::default()
            },
            vec![],
        ),
        (
            OpSelector {
                original_instance_keyid: s(""),
                ..Default::default()
            },
            vec![1, 2, 3, 4, 5, 6],
        ),
        (
            OpSelector {
                original_instance_keyid: s("k1"),
                ..Default::default()
            },
            vec![],
        ),
        (
            OpSelector {
                repo_guid: s("g2"),
                ..Default::default()
            },
            vec![3, 4],
        ),
        (
            OpSelector {
                repo_guid: s(""),
                ..Default::default()
            },
            vec![6],
        ),
        (
            OpSelector {
                repo_id: s("usb"),
                ..Default::default()
            },
            vec![3, 4, 6],
        ),
        (
            OpSelector {
                plan_id: s("photos"),
                ..Default::default()
            },
            vec![1, 3, 5],
        ),
        (
            OpSelector {
                plan_id: s(""),
                ..Default::default()
            },
            vec![4],
        ),
        (
            OpSelector {
                snapshot_id: s("snap-b"),
                ..Default::default()
            },
            vec![3],
        ),
        (
            OpSelector {
                snapshot_id: s(""),
                ..Default::default()
            },
            vec![1, 4, 6],
        ),
        // Flow 1 was given explicitly to ops 3 and 4; op 1 got flow 1 by default.
        (
            OpSelector {
                flow_id: Some(1),
                ..Default::default()
            },
            vec![1, 3, 4],
        ),
        (
            OpSelector {
                flow_id: Some(0),
                ..Default::default()
            },
            vec![],
        ),
        (
            OpSelector {
                modno_gte: Some(4),
                ..Default::default()
            },
            vec![4, 5, 6],
        ),
        (
            OpSelector {
                modno_gte: Some(0),
                ..Default::default()
            },
            vec![1, 2, 3, 4, 5, 6],
        ),
    ];
    for (sel, want) in cases {
        assert_eq!(select(&log, sel.clone()), want, "{sel:?}");
    }
}

#[test]
fn selector_fields_combine_with_and() {
    let (_dir, log) = open();
    sample(&log);
    let s = |v: &str| Some(v.to_string());
    let cases: Vec<(OpSelector, Vec<i64>)> = vec![
        (
            OpSelector {
                repo_id: s("nas"),
                plan_id: s("photos"),
                ..Default::default()
            },
            vec![1, 5],
        ),
        (
            OpSelector {
                repo_id: s("nas"),
                plan_id: s("photos"),
                snapshot_id: s(""),
                ..Default::default()
            },
            vec![1],
        ),
        (
            OpSelector {
                instance_id: s("pi4"),
                plan_id: s("docs"),
                ..Default::default()
            },
            vec![2],
        ),
        (
            OpSelector {
                repo_guid: s("g2"),
                flow_id: Some(1),
                modno_gte: Some(4),
                ..Default::default()
            },
            vec![4],
        ),
        (
            OpSelector {
                plan_id: s("photos"),
                original_instance_keyid: s(""),
                ..Default::default()
            },
            vec![1, 3, 5],
        ),
        (
            OpSelector {
                plan_id: s("photos"),
                original_instance_keyid: s("x"),
                ..Default::default()
            },
            vec![],
        ),
    ];
    for (sel, want) in cases {
        assert_eq!(select(&log, sel.clone()), want, "{sel:?}");
    }
}

#[test]
fn ids_cannot_be_combined_with_other_fields() {
    let (_dir, log) = open();
    sample(&log);
    let sel = OpSelector {
        ids: Some(vec![1]),
        repo_id: Some("nas".into()),
        ..Default::default()
    };
    for result in [
        log.query(&sel, None).map(|_| ()),
        log.query_json(&sel, None).map(|_| ()),
    ] {
        match result {
            Err(OpLogError::InvalidSelector(message)) => {
                assert!(message.contains("repoId"), "{message}")
            }
            other => panic!("expected InvalidSelector, got {other:?}"),
        }
    }
}

#[test]
fn last_n_takes_the_latest_starts_with_ties_to_the_higher_id() {
    let (_dir, log) = open();
    let starts = [500, 100, 300, 300, 300, 200];
    let mut ops: Vec<Operation> = starts.iter().map(|s| backup("p", *s)).collect();
    log.add_batch(&mut ops).unwrap();
    let last = |n| ids(&log.query(&OpSelector::default(), n).unwrap());
    assert_eq!(last(Some(1)), [1]);
    // 500 (id 1), then the three at 300: ids 5 and 4 win over 3.
    assert_eq!(last(Some(3)), [1, 4, 5]);
    assert_eq!(last(Some(4)), [1, 3, 4, 5]);
    assert_eq!(last(Some(100)), [1, 2, 3, 4, 5, 6]);
    assert_eq!(last(Some(0)), [1, 2, 3, 4, 5, 6]);
    assert_eq!(last(Some(-1)), [1, 2, 3, 4, 5, 6]);
    assert_eq!(last(None), [1, 2, 3, 4, 5, 6]);
    // With a selector, lastN counts within the selection.
    let mut other = backup("q", 1000);
    log.add(&mut other).unwrap();
    let sel = OpSelector {
        plan_id: Some("p".into()),
        ..Default::default()
    };
    assert_eq!(ids(&log.query(&sel, Some(2)).unwrap()), [1, 5]);
}

#[test]
fn query_json_is_the_encoded_query() {
    let (_dir, log) = open();
    let sample = sample(&log);
    let cases = [
        (OpSelector::default(), None),
        (
            OpSelector {
                plan_id: Some("photos".into()),
                ..Default::default()
            },
            Some(2),
        ),
        (
            OpSelector {
                ids: Some(vec![6, 1]),
                ..Default::default()
            },
            None,
        ),
        (
            OpSelector {
                plan_id: Some("nothing".into()),
                ..Default::default()
            },
            None,
        ),
        (
            OpSelector {
                original_instance_keyid: Some("x".into()),
                ..Default::default()
            },
            None,
        ),
    ];
    for (sel, last_n) in cases {
        let operations = log.query(&sel, last_n).unwrap();
        let expected = serde_json::to_vec(&GetOperationsResponse { operations }).unwrap();
        let body = log.query_json(&sel, last_n).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }
    assert_eq!(
        log.query_json(
            &OpSelector {
                plan_id: Some("nothing".into()),
                ..Default::default()
            },
            None
        )
        .unwrap(),
        b"{}"
    );
    // And what was stored is what was added.
    assert_eq!(log.query(&OpSelector::default(), None).unwrap(), sample);
}

#[test]
fn fail_interrupted_turns_running_operations_into_errors() {
    let (_dir, log) = open();
    let mut ops: Vec<Operation> = (0..4).map(|i| backup("p", i)).collect();
    ops[1].status = OperationStatus::InProgress;
    ops[2].status = OperationStatus::Success;
    ops[3].status = OperationStatus::InProgress;
    log.add_batch(&mut ops).unwrap();
    let events = log.subscribe();
    let failed = log
        .fail_interrupted("footrest stopped while this ran", 777)
        .unwrap();
    assert_eq!(ids(&failed), [2, 4]);
    for op in &failed {
        assert_eq!(op.status, OperationStatus::Error);
        assert_eq!(op.display_message, "footrest stopped while this ran");
        assert_eq!(op.unix_time_end_ms, 777);
        assert_eq!(log.get(op.id).unwrap().as_ref(), Some(op));
    }
    assert!(failed[0].modno > ops[3].modno && failed[1].modno > failed[0].modno);
    assert_eq!(
        events.try_recv().unwrap(),
        OpEvent::Updated(failed[0].clone())
    );
    assert_eq!(
        events.try_recv().unwrap(),
        OpEvent::Updated(failed[1].clone())
    );
    // The untouched ones are as they were; a second pass finds nothing.
    assert_eq!(log.get(1).unwrap().unwrap(), ops[0]);
    assert_eq!(log.get(3).unwrap().unwrap(), ops[2]);
    assert!(log.fail_interrupted("again", 778).unwrap().is_empty());
    assert_eq!(log.get(99).unwrap(), None);
}

#[test]
fn cancel_pending_ends_queued_operations_only() {
    let (_dir, log) = open();
    let mut ops: Vec<Operation> = (0..3).map(|i| backup("p", i)).collect();
    ops[0].status = OperationStatus::Pending;
    ops[1].status = OperationStatus::InProgress;
    ops[2].status = OperationStatus::Pending;
    log.add_batch(&mut ops).unwrap();
    let cancelled = log.cancel_pending("never started", 900).unwrap();
    assert_eq!(ids(&cancelled), [1, 3]);
    for op in &cancelled {
        assert_eq!(op.status, OperationStatus::SystemCancelled);
        assert_eq!(op.display_message, "never started");
        assert_eq!(op.unix_time_end_ms, 900);
        assert_eq!(log.get(op.id).unwrap().as_ref(), Some(op));
    }
    assert_eq!(log.get(2).unwrap().unwrap(), ops[1]);
    assert!(log.cancel_pending("again", 901).unwrap().is_empty());
}

#[test]
fn last_snapshot_is_the_newest_usable_backup_of_the_plan() {
    let (_dir, log) = open();
    assert_eq!(log.last_snapshot("nas", "photos").unwrap(), None);
    let finished = |plan: &str, repo: &str, start, status, snap: &str| {
        let mut op = Operation {
            repo_id: repo.into(),
            status,
            snapshot_id: snap.into(),
            ..backup(plan, start)
        };
        if let Op::Backup(b) = &mut op.op {
            b.last_status = Some(BackupProgressEntry::Summary(BackupProgressSummary {
                snapshot_id: snap.into(),
                ..Default::default()
            }));
        }
        op
    };
    let mut ops = vec![
        finished("photos", "nas", 100, OperationStatus::Success, "s-old"),
        finished("photos", "nas", 200, OperationStatus::Warning, "s-warn"),
        finished("photos", "nas", 300, OperationStatus::Error, "s-err"),
        finished("photos", "nas", 400, OperationStatus::Success, ""),
        finished("docs", "nas", 500, OperationStatus::Success, "s-docs"),
        finished("photos", "usb", 600, OperationStatus::Success, "s-usb"),
        // A non-backup operation carrying a snapshot id does not count.
        Operation {
            snapshot_id: "s-index".into(),
            status: OperationStatus::Success,
            unix_time_start_ms: 700,
            ..Operation::new(Op::IndexSnapshot(OperationIndexSnapshot::default()))
        },
    ];
    ops[6].plan_id = "photos".into();
    ops[6].repo_id = "nas".into();
    log.add_batch(&mut ops).unwrap();
    assert_eq!(
        log.last_snapshot("nas", "photos").unwrap().as_deref(),
        Some("s-warn")
    );
    assert_eq!(
        log.last_snapshot("usb", "photos").unwrap().as_deref(),
        Some("s-usb")
    );
    assert_eq!(
        log.last_snapshot("nas", "docs").unwrap().as_deref(),
        Some("s-docs")
    );
    assert_eq!(log.last_snapshot("usb", "docs").unwrap(), None);
    // Once its index operation says it was forgotten, s-warn is skipped.
    let mut index = Operation {
        repo_id: "nas".into(),
        plan_id: "photos".into(),
        snapshot_id: "s-warn".into(),
        status: OperationStatus::Success,
        ..Operation::new(Op::IndexSnapshot(OperationIndexSnapshot {
            snapshot: Some(ResticSnapshot {
                id: "s-warn".into(),
                ..Default::default()
            }),
            forgot: false,
        }))
    };
    log.add(&mut index).unwrap();
    assert_eq!(
        log.last_snapshot("nas", "photos").unwrap().as_deref(),
        Some("s-warn")
    );
    if let Op::IndexSnapshot(i) = &mut index.op {
        i.forgot = true;
    }
    log.update(&mut index).unwrap();
    assert_eq!(
        log.last_snapshot("nas", "photos").unwrap().as_deref(),
        Some("s-old")
    );
}

#[test]
fn reopening_keeps_the_data_and_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oplog.sqlite");
    let log = OpLog::open(&path).unwrap();
    let mut ops = vec![backup("p", 1), backup("q", 2)];
    log.add_batch(&mut ops).unwrap();
    drop(log);
    for _ in 0..2 {
        let log = OpLog::open(&path).unwrap();
        assert_eq!(log.query(&OpSelector::default(), None).unwrap(), ops);
        drop(log);
    }
    let conn = Connection::open(&path).unwrap();
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, [schema::MIGRATIONS.len() as i64]);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // The modno counter survived too.
    drop(conn);
    let log = OpLog::open(&path).unwrap();
    let mut op = backup("p", 3);
    log.add(&mut op).unwrap();
    assert_eq!(op.modno, ops[1].modno + 1);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oplog.sqlite");
    drop(OpLog::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    let err = OpLog::open(&path).err().unwrap();
    assert!(
        matches!(err, OpLogError::NewerSchema { found: 99, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer footrest"), "{err}");
}

#[test]
fn open_errors_say_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let err = OpLog::open(&dir.path().join("missing/oplog.sqlite"))
        .err()
        .unwrap();
    assert!(matches!(err, OpLogError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains("check that its directory exists"),
        "{err}"
    );
    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
    let err = OpLog::open(&junk).err().unwrap();
    assert!(matches!(err, OpLogError::Corrupt { .. }), "{err:?}");
}

#[test]
fn a_full_disk_is_reported_as_such_and_changes_nothing() {
    let (_dir, log) = open();
    let mut first = backup("p", 1);
    log.add(&mut first).unwrap();
    // Cap the database at its current size: the next growth fails with SQLITE_FULL.
    {
        let conn = lock(&log.writer);
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        conn.execute_batch(&format!("PRAGMA max_page_count = {pages}"))
            .unwrap();
    }
    let mut big = Operation {
        display_message: "x".repeat(200_000),
        ..backup("p", 2)
    };
    let err = log.add(&mut big).unwrap_err();
    assert!(matches!(err, OpLogError::DiskFull { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("the disk holding the operation log is full ("),
        "{err}"
    );
    assert_eq!((big.id, big.modno, big.flow_id), (0, 0, 0));
    assert_eq!(select(&log, OpSelector::default()), [1]);
}

#[test]
fn subscribers_get_events_in_order() {
    let (_dir, log) = open();
    let events = log.subscribe();
    let mut op = backup("p", 1);
    log.add(&mut op).unwrap();
    op.status = OperationStatus::Success;
    log.update(&mut op).unwrap();
    log.delete(&[op.id, 42]).unwrap();
    log.delete(&[42]).unwrap();
    let mut created = op.clone();
    created.status = OperationStatus::Pending;
    created.modno = 1;
    assert_eq!(events.try_recv().unwrap(), OpEvent::Created(created));
    assert_eq!(events.try_recv().unwrap(), OpEvent::Updated(op.clone()));
    assert_eq!(events.try_recv().unwrap(), OpEvent::Deleted(vec![op.id]));
    // Deleting nothing announces nothing; failed writes announce nothing.
    assert!(log.update(&mut op).is_err());
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn a_full_subscriber_is_dropped_without_blocking_the_writer() {
    let (_dir, log) = open();
    let slow = log.subscribe();
    let gone = log.subscribe();
    drop(gone);
    let mut ops: Vec<Operation> = (0..SUBSCRIBER_BUFFER as i64 + 10)
        .map(|i| backup("p", i))
        .collect();
    // Would hang here if the writer waited for the slow subscriber.
    log.add_batch(&mut ops).unwrap();
    assert!(
        lock(&log.subscribers).is_empty(),
        "both subscribers are gone"
    );
    let received: Vec<OpEvent> = slow.try_iter().collect();
    assert_eq!(received.len(), SUBSCRIBER_BUFFER);
    assert_eq!(received[0], OpEvent::Created(ops[0].clone()));
    assert_eq!(slow.try_recv(), Err(TryRecvError::Disconnected));
    // A live subscriber that keeps up stays.
    let live = log.subscribe();
    let mut op = backup("p", 1);
    log.add(&mut op).unwrap();
    assert_eq!(live.try_recv().unwrap(), OpEvent::Created(op));
    assert_eq!(lock(&log.subscribers).len(), 1);
}

#[test]
fn readers_are_not_blocked_by_a_long_write() {
    let (dir, log) = open();
    let mut op = backup("p", 1);
    log.add(&mut op).unwrap();
    // Another connection holds a write transaction open with uncommitted changes.
    let other = Connection::open(dir.path().join("oplog.sqlite")).unwrap();
    other
        .execute_batch("BEGIN IMMEDIATE; DELETE FROM operations;")
        .unwrap();
    // Reads answer at once, from the last committed state.
    assert_eq!(select(&log, OpSelector::default()), [1]);
    assert_eq!(log.get(1).unwrap(), Some(op.clone()));
    let body = log.query_json(&OpSelector::default(), Some(1)).unwrap();
    assert!(
        body.starts_with(br#"{"operations":[{"id":"1","#),
        "{body:?}"
    );
    assert_eq!(log.last_snapshot("nas", "p").unwrap(), None);
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(select(&log, OpSelector::default()), [1]);
}

#[test]
fn the_reader_pool_stays_small() {
    let (_dir, log) = open();
    // Nested reads take more than one connection at once.
    log.with_reader(|_| {
        log.with_reader(|_| {
            log.with_reader(|_| {
                log.with_reader(|_| log.with_reader(|_| log.with_reader(|_| Ok(()))))
            })
        })
    })
    .unwrap();
    assert_eq!(lock(&log.readers).len(), MAX_IDLE_READERS);
}

#[test]
fn selector_queries_use_indexes() {
    let (_dir, log) = open();
    let s = |v: &str| Some(v.to_string());
    let cases: Vec<(OpSelector, Option<i64>, &str)> = vec![
        (
            OpSelector {
                ids: Some(vec![1, 2]),
                ..Default::default()
            },
            None,
            "PRIMARY KEY",
        ),
        (
            OpSelector {
                repo_id: s("r"),
                ..Default::default()
            },
            None,
            "operations_by_repo",
        ),
        (
            OpSelector {
                repo_guid: s("g"),
                ..Default::default()
            },
            None,
            "operations_by_repo_guid",
        ),
        (
            OpSelector {
                plan_id: s("p"),
                ..Default::default()
            },
            None,
            "operations_by_plan",
        ),
        (
            OpSelector {
                plan_id: s("p"),
                ..Default::default()
            },
            Some(10),
            "operations_by_plan",
        ),
        (
            OpSelector {
                snapshot_id: s("s"),
                ..Default::default()
            },
            None,
            "operations_by_snapshot",
        ),
        (
            OpSelector {
                flow_id: Some(3),
                ..Default::default()
            },
            None,
            "operations_by_flow",
        ),
        (
            OpSelector {
                modno_gte: Some(3),
                ..Default::default()
            },
            None,
            "operations_by_modno",
        ),
        (OpSelector::default(), Some(10), "operations_by_start"),
    ];
    for (sel, last_n, index) in cases {
        let query = selector::build(&sel, last_n).unwrap().unwrap();
        let plan = explain(&log, &query.sql, query.params);
        assert!(plan.contains(index), "{sel:?} {last_n:?}: {plan}");
        // A bare table scan is what the indexes are there to avoid; walking an index in
        // order under a LIMIT ("SCAN operations USING INDEX ...") is fine.
        assert!(
            !plan.split(" | ").any(|step| step == "SCAN operations"),
            "{sel:?} {last_n:?}: {plan}"
        );
        if last_n.is_some() {
            // The inner lastN query walks the index in order: the only sort is the
            // final one by id over the N rows picked.
            assert_eq!(plan.matches("TEMP B-TREE").count(), 1, "{plan}");
        }
    }
    let plan = explain(
        &log,
        "SELECT id FROM operations WHERE status = 2 ORDER BY id",
        vec![],
    );
    assert!(plan.contains("operations_in_progress"), "{plan}");
}

fn explain(log: &OpLog, sql: &str, params: Vec<Value>) -> String {
    log.with_reader(|conn| {
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = st
            .query_map(rusqlite::params_from_iter(params), |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        Ok(rows.join(" | "))
    })
    .unwrap()
}

/// Not a benchmark: checks that a log of realistic size answers correctly.
#[test]
fn five_thousand_operations() {
    let (_dir, log) = open();
    let plans = ["photos", "docs", "music", "mail", "code"];
    let mut ops: Vec<Operation> = (0..5000)
        .map(|i| {
            let mut op = backup(
                plans[i % plans.len()],
                1_700_000_000_000 + (i as i64) * 1000,
            );
            op.status = OperationStatus::Success;
            op
        })
        .collect();
    log.add_batch(&mut ops).unwrap();
    assert_eq!(ops.last().unwrap().id, 5000);
    let last = log.query(&OpSelector::default(), Some(50)).unwrap();
    assert_eq!(ids(&last), (4951..=5000).collect::<Vec<_>>());
    let sel = OpSelector {
        plan_id: Some("docs".into()),
        ..Default::default()
    };
    let docs = log.query(&sel, Some(3)).unwrap();
    assert_eq!(ids(&docs), [4987, 4992, 4997]);
    assert!(docs.iter().all(|op| op.plan_id == "docs"));
    let all_docs = log.query(&sel, None).unwrap();
    assert_eq!(all_docs.len(), 1000);
    let body = log.query_json(&sel, None).unwrap();
    let parsed: GetOperationsResponse = crate::proto::decode(&body).unwrap();
    assert_eq!(parsed.operations, all_docs);
    let polled = log
        .query(
            &OpSelector {
                modno_gte: Some(4990),
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(polled.len(), 11);
}

// ---------------------------------------------------------------------------------
// The scheduler's look-ups, ClearHistory and history upkeep.

const DAY: i64 = 24 * 60 * 60 * 1000;
const HOUR: i64 = 60 * 60 * 1000;
const NOW: i64 = 1_770_000_000_000;

/// An operation of `kind` (a oneof member name) with every member field at its default.
fn op_of(kind: &str, repo: &str, plan: &str, start_ms: i64, status: OperationStatus) -> Operation {
    let op = match kind {
        "operationBackup" => Op::Backup(Default::default()),
        "operationIndexSnapshot" => Op::IndexSnapshot(Default::default()),
        "operationForget" => Op::Forget(Default::default()),
        "operationPrune" => Op::Prune(Default::default()),
        "operationCheck" => Op::Check(Default::default()),
        "operationStats" => Op::Stats(Default::default()),
        "operationRestore" => Op::Restore(Default::default()),
        "operationRunHook" => Op::RunHook(Default::default()),
        "operationRunCommand" => Op::RunCommand(Default::default()),
        other => panic!("unknown kind {other}"),
    };
    Operation {
        repo_id: repo.into(),
        repo_guid: format!("guid-{repo}"),
        plan_id: plan.into(),
        instance_id: "pi4".into(),
        status,
        unix_time_start_ms: start_ms,
        unix_time_end_ms: if status.is_finished() {
            start_ms + 1000
        } else {
            0
        },
        ..Operation::new(op)
    }
}

/// A finished (SUCCESS) operation of plan `plan` in repo "nas".
fn done(kind: &str, plan: &str, start_ms: i64) -> Operation {
    op_of(kind, "nas", plan, start_ms, OperationStatus::Success)
}

/// The index operation of snapshot `snap` in repo "nas".
fn index_op(plan: &str, snap: &str, start_ms: i64, forgot: bool) -> Operation {
    Operation {
        snapshot_id: snap.into(),
        ..done("operationIndexSnapshot", plan, start_ms)
    }
    .with_index(snap, forgot)
}

trait WithIndex {
    fn with_index(self, snap: &str, forgot: bool) -> Self;
}

impl WithIndex for Operation {
    fn with_index(mut self, snap: &str, forgot: bool) -> Operation {
        self.op = Op::IndexSnapshot(OperationIndexSnapshot {
            snapshot: Some(ResticSnapshot {
                id: snap.into(),
                ..Default::default()
            }),
            forgot,
        });
        self
    }
}

/// Adds `ops` as one flow (the first one's id) and returns their ids.
fn add_flow(log: &OpLog, ops: Vec<Operation>) -> Vec<i64> {
    let mut out = Vec::new();
    let mut flow = 0;
    for mut op in ops {
        op.flow_id = flow;
        log.add(&mut op).unwrap();
        flow = op.flow_id;
        out.push(op.id);
    }
    out
}

fn add_one(log: &OpLog, op: Operation) -> i64 {
    add_flow(log, vec![op])[0]
}

fn all_ids(log: &OpLog) -> Vec<i64> {
    select(log, OpSelector::default())
}

fn forgot(op: &Operation) -> bool {
    matches!(&op.op, Op::IndexSnapshot(i) if i.forgot)
}

#[test]
fn last_run_ignores_pending_and_picks_the_newest_start() {
    let (_dir, log) = open();
    let b = "operationBackup";
    assert_eq!(log.last_run("nas", "photos", b).unwrap(), None);
    let ok = OperationStatus::Success;
    let ops = [
        op_of(b, "nas", "photos", 100, ok),
        op_of(b, "nas", "photos", 300, OperationStatus::Error),
        // Added later, started earlier: start time decides, not id.
        op_of(b, "nas", "photos", 200, ok),
        // Planned in the future, not started: ignored.
        op_of(b, "nas", "photos", 900, OperationStatus::Pending),
        // Cancelled by footrest itself (it stopped): not a run.
        op_of(b, "nas", "photos", 950, OperationStatus::SystemCancelled),
        // Another repo, another plan, another kind.
        op_of(b, "usb", "photos", 800, ok),
        op_of(b, "nas", "docs", 800, ok),
        op_of("operationForget", "nas", "photos", 800, ok),
    ];
    let ids: Vec<i64> = ops.into_iter().map(|op| add_one(&log, op)).collect();
    let last = log.last_run("nas", "photos", b).unwrap().unwrap();
    assert_eq!(last.id, ids[1]);
    assert_eq!(last, log.get(ids[1]).unwrap().unwrap());
    // A tie on start time goes to the higher id; a running one counts as started.
    let tie = add_one(
        &log,
        op_of(b, "nas", "photos", 300, OperationStatus::InProgress),
    );
    assert_eq!(log.last_run("nas", "photos", b).unwrap().unwrap().id, tie);
    assert_eq!(
        log.last_run("usb", "photos", b).unwrap().unwrap().id,
        ids[5]
    );
    assert_eq!(log.last_run("nas", "docs", b).unwrap().unwrap().id, ids[6]);
    // A run a user cancelled counts: that run was skipped on purpose.
    let skipped = add_one(
        &log,
        op_of(b, "nas", "photos", 400, OperationStatus::UserCancelled),
    );
    assert_eq!(
        log.last_run("nas", "photos", b).unwrap().unwrap().id,
        skipped
    );
    assert_eq!(log.last_run("usb", "docs", b).unwrap(), None);
    // Repo-level tasks: plan _system_, one last run per repo.
    let p = "operationPrune";
    let nas = add_one(&log, op_of(p, "nas", "_system_", 50, ok));
    let usb = add_one(&log, op_of(p, "usb", "_system_", 40, ok));
    add_one(
        &log,
        op_of(p, "usb", "_system_", 60, OperationStatus::Pending),
    );
    assert_eq!(log.last_run("nas", "_system_", p).unwrap().unwrap().id, nas);
    assert_eq!(log.last_run("usb", "_system_", p).unwrap().unwrap().id, usb);
    assert_eq!(
        log.last_run("nas", "_system_", "operationCheck").unwrap(),
        None
    );
}

#[test]
fn with_status_lists_one_status_in_id_order() {
    let (_dir, log) = open();
    use OperationStatus::*;
    let statuses = [Pending, Success, InProgress, Pending, Error, Pending];
    let mut ops: Vec<Operation> = statuses
        .iter()
        .enumerate()
        .map(|(i, s)| op_of("operationBackup", "nas", "p", 100 - i as i64, *s))
        .collect();
    log.add_batch(&mut ops).unwrap();
    assert_eq!(
        log.with_status(Pending).unwrap(),
        [ops[0].clone(), ops[3].clone(), ops[5].clone()]
    );
    assert_eq!(ids(&log.with_status(InProgress).unwrap()), [3]);
    assert_eq!(ids(&log.with_status(Error).unwrap()), [5]);
    assert!(log.with_status(UserCancelled).unwrap().is_empty());
}

#[test]
fn mark_forgotten_touches_only_index_operations_of_that_repo() {
    let (_dir, log) = open();
    let in_repo = |op: Operation, repo: &str| Operation {
        repo_id: repo.into(),
        ..op
    };
    let s1 = add_one(&log, index_op("p", "s1", 1, false));
    let s2 = add_one(&log, index_op("p", "s2", 2, false));
    let other_repo = add_one(&log, in_repo(index_op("p", "s1", 3, false), "usb"));
    let backup_of_s1 = add_one(
        &log,
        Operation {
            snapshot_id: "s1".into(),
            ..done("operationBackup", "p", 0)
        },
    );
    let already = add_one(&log, index_op("p", "s3", 4, true));
    let before = log.query(&OpSelector::default(), None).unwrap();
    let events = log.subscribe();

    let wanted = ["s1", "s3", "not-there"].map(String::from);
    let marked = log.mark_forgotten("nas", &wanted).unwrap();
    assert_eq!(ids(&marked), [s1]);
    assert!(forgot(&marked[0]));
    let top = before.iter().map(|op| op.modno).max().unwrap();
    assert_eq!(marked[0].modno, top + 1);
    assert_eq!(log.get(s1).unwrap().unwrap(), marked[0]);
    assert_eq!(
        events.try_recv().unwrap(),
        OpEvent::Updated(marked[0].clone())
    );
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
    // Everything else is as it was: s2, the same snapshot id in another repo, the
    // backup carrying the snapshot id, the one already forgotten.
    for id in [s2, other_repo, backup_of_s1, already] {
        let was = before.iter().find(|op| op.id == id).unwrap();
        assert_eq!(&log.get(id).unwrap().unwrap(), was);
    }
    // Marking again changes nothing; no ids, nothing to do.
    assert!(log.mark_forgotten("nas", &wanted).unwrap().is_empty());
    assert!(log.mark_forgotten("nas", &[]).unwrap().is_empty());
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
    // And last_snapshot now skips s1.
    assert_eq!(log.last_snapshot("nas", "p").unwrap(), None);
}

#[test]
fn clear_deletes_matching_finished_operations_only() {
    let (_dir, log) = open();
    use OperationStatus::*;
    let specs = [
        ("p", Success),
        ("p", Error),
        ("p", Pending),
        ("p", InProgress),
        ("p", UserCancelled),
        ("q", Error),
        ("q", Warning),
        ("p", Error),
    ];
    let mut ops: Vec<Operation> = specs
        .iter()
        .enumerate()
        .map(|(i, (plan, s))| op_of("operationBackup", "nas", plan, i as i64, *s))
        .collect();
    log.add_batch(&mut ops).unwrap();
    let events = log.subscribe();
    let plan = |p: &str| OpSelector {
        plan_id: Some(p.into()),
        ..Default::default()
    };

    // Only the failed ones of plan p, handed back as they were stored.
    let cleared = log.clear(&plan("p"), true).unwrap();
    assert_eq!(cleared, [ops[1].clone(), ops[7].clone()]);
    assert_eq!(events.try_recv().unwrap(), OpEvent::Deleted(vec![2, 8]));
    assert_eq!(all_ids(&log), [1, 3, 4, 5, 6, 7]);

    // Unfinished operations stay even when named by id.
    let by_ids = OpSelector {
        ids: Some(vec![3, 4, 5]),
        ..Default::default()
    };
    assert_eq!(ids(&log.clear(&by_ids, false).unwrap()), [5]);
    assert_eq!(events.try_recv().unwrap(), OpEvent::Deleted(vec![5]));

    // Nothing matched: nothing deleted, nothing announced.
    assert!(log.clear(&plan("nothing"), false).unwrap().is_empty());
    let foreign = OpSelector {
        original_instance_keyid: Some("k".into()),
        ..Default::default()
    };
    assert!(log.clear(&foreign, false).unwrap().is_empty());
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));

    // ids cannot be combined with other fields, as in query.
    let bad = OpSelector {
        ids: Some(vec![1]),
        plan_id: Some("p".into()),
        ..Default::default()
    };
    assert!(matches!(
        log.clear(&bad, false),
        Err(OpLogError::InvalidSelector(_))
    ));

    // The empty selector: every finished operation.
    assert_eq!(
        ids(&log.clear(&OpSelector::default(), false).unwrap()),
        [1, 6, 7]
    );
    assert_eq!(events.try_recv().unwrap(), OpEvent::Deleted(vec![1, 6, 7]));
    assert_eq!(all_ids(&log), [3, 4]);
}

/// Small limits that make the cases easy to read: backups and hooks 2 and 30 days.
fn small_limits() -> HistoryLimits {
    HistoryLimits {
        rules: vec![HistoryRule {
            kinds: vec!["operationBackup", "operationRunHook"],
            max_count: 2,
            max_age_days: Some(30),
        }],
    }
}

#[test]
fn prune_history_keeps_the_flow_of_a_live_snapshot() {
    let (_dir, log) = open();
    let b = "operationBackup";
    let h = "operationRunHook";
    // A snapshot 60 days old, still in the repo, beyond both the count and the age.
    let live = add_flow(
        &log,
        vec![
            done(b, "p", NOW - 60 * DAY),
            done(h, "p", NOW - 60 * DAY + 1),
            index_op("p", "s-old", NOW - 60 * DAY + 2, false),
        ],
    );
    // A failed backup as old, in a flow of its own: goes.
    let failed = add_one(
        &log,
        op_of(b, "nas", "p", NOW - 59 * DAY, OperationStatus::Error),
    );
    // Three recent backups with hooks: the oldest pair is beyond the count of 2.
    let mut recent = Vec::new();
    for day in [3, 2, 1] {
        recent.push(add_flow(
            &log,
            vec![
                done(b, "p", NOW - day * DAY),
                done(h, "p", NOW - day * DAY + 1),
            ],
        ));
    }
    // The newest snapshot's index operation, so that s-old's is not the newest.
    add_one(&log, index_op("p", "s-new", NOW - DAY + 2, false));
    let events = log.subscribe();
    let deleted = log.prune_history(NOW, &small_limits()).unwrap();
    let mut want = vec![failed, recent[0][0], recent[0][1]];
    want.sort_unstable();
    assert_eq!(ids(&deleted), want);
    assert_eq!(events.try_recv().unwrap(), OpEvent::Deleted(want.clone()));
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
    let left = all_ids(&log);
    for id in live.iter().chain(&recent[1]).chain(&recent[2]) {
        assert!(left.contains(id), "{id} was deleted");
    }
    // A second pass finds nothing more to do.
    assert!(log.prune_history(NOW, &small_limits()).unwrap().is_empty());
    assert_eq!(events.try_recv(), Err(TryRecvError::Empty));
    // Once the snapshot is forgotten, its flow (60 days old) goes.
    log.mark_forgotten("nas", &["s-old".to_string()]).unwrap();
    let deleted = log.prune_history(NOW, &small_limits()).unwrap();
    assert_eq!(ids(&deleted), live);
}

#[test]
fn prune_history_deletes_the_flows_of_forgotten_snapshots() {
    let (_dir, log) = open();
    let b = "operationBackup";
    let h = "operationRunHook";
    let f = "operationForget";
    // Forgotten, and its backup and hook are beyond the limits: the whole flow goes.
    let beyond = add_flow(
        &log,
        vec![
            done(b, "p", NOW - 40 * DAY),
            done(h, "p", NOW - 40 * DAY + 1),
            index_op("p", "s1", NOW - 40 * DAY + 2, true),
        ],
    );
    // Forgotten, but its backup is recent and within the count: kept until it is not.
    let within = add_flow(
        &log,
        vec![
            done(b, "p", NOW - 5 * DAY),
            index_op("p", "s2", NOW - 5 * DAY + 1, true),
        ],
    );
    // Forgotten, and its index operation started more than 30 days ago: its forget
    // operation has no age limit and is within its count, but the flow goes as a whole.
    let old = add_flow(
        &log,
        vec![
            index_op("p", "s3", NOW - 31 * DAY, true),
            done(f, "p", NOW - 31 * DAY + 1),
        ],
    );
    // A forgotten index operation alone in its flow (its backup was cleared): goes.
    let alone = add_one(&log, index_op("p", "s4", NOW - 2 * DAY, true));
    // The newest snapshot, live; and a newest backup so that the ones above are not
    // the newest of their kind.
    let newest = add_flow(
        &log,
        vec![
            done(b, "p", NOW - DAY),
            done(h, "p", NOW - DAY + 1),
            index_op("p", "s5", NOW - DAY + 2, false),
        ],
    );
    let newest_forget = add_one(&log, done(f, "p", NOW - DAY));
    let mut limits = small_limits();
    limits.rules.push(HistoryRule {
        kinds: vec![f],
        max_count: 30,
        max_age_days: None,
    });
    let deleted = log.prune_history(NOW, &limits).unwrap();
    let mut want: Vec<i64> = beyond.iter().chain(&old).copied().collect();
    want.push(alone);
    want.sort_unstable();
    assert_eq!(ids(&deleted), want);
    let left = all_ids(&log);
    let mut kept: Vec<i64> = within.iter().chain(&newest).copied().collect();
    kept.push(newest_forget);
    kept.sort_unstable();
    assert_eq!(left, kept);

    // Two newer backups push the forgotten snapshot's backup beyond the count of 2:
    // then its index operation goes with it.
    add_one(&log, done(b, "p", NOW - DAY / 2));
    add_one(&log, done(b, "p", NOW - DAY / 4));
    let deleted = log.prune_history(NOW, &limits).unwrap();
    assert_eq!(ids(&deleted), within);
    assert!(forgot(&deleted[1]));
}

#[test]
fn prune_history_always_keeps_the_newest_of_each_kind() {
    let (_dir, log) = open();
    let b = "operationBackup";
    // Every backup of plan p is older than 30 days: the newest stays anyway.
    let old: Vec<i64> = (0..3)
        .map(|i| add_one(&log, done(b, "p", NOW - (90 - i) * DAY)))
        .collect();
    // A count of 0 keeps only the newest too.
    let none = HistoryLimits {
        rules: vec![HistoryRule {
            kinds: vec!["operationCheck"],
            max_count: 0,
            max_age_days: None,
        }],
    };
    let checks: Vec<i64> = (0..3)
        .map(|i| add_one(&log, done("operationCheck", "_system_", NOW - i * DAY)))
        .collect();
    let deleted = log.prune_history(NOW, &small_limits()).unwrap();
    assert_eq!(ids(&deleted), old[..2]);
    let deleted = log.prune_history(NOW, &none).unwrap();
    assert_eq!(ids(&deleted), [checks[1], checks[2]]);
    assert_eq!(all_ids(&log), [old[2], checks[0]]);
    // A newest forgotten index operation, alone in its flow, stays as well.
    let (_dir, log) = open();
    let index = add_one(&log, index_op("p", "s1", NOW - 90 * DAY, true));
    assert!(log.prune_history(NOW, &small_limits()).unwrap().is_empty());
    assert_eq!(all_ids(&log), [index]);
}

#[test]
fn prune_history_counts_per_plan_and_repo() {
    let (_dir, log) = open();
    let b = "operationBackup";
    let a: Vec<i64> = (1..=4)
        .map(|i| add_one(&log, done(b, "A", NOW - i * HOUR)))
        .collect();
    let b_plan: Vec<i64> = (1..=2)
        .map(|i| add_one(&log, done(b, "B", NOW - i * HOUR)))
        .collect();
    // _system_ is a plan like the others, counted per repo.
    let p = "operationPrune";
    let limits = HistoryLimits {
        rules: vec![
            HistoryRule {
                kinds: vec![b],
                max_count: 2,
                max_age_days: None,
            },
            HistoryRule {
                kinds: vec![p],
                max_count: 1,
                max_age_days: None,
            },
        ],
    };
    let nas: Vec<i64> = (1..=2)
        .map(|i| {
            add_one(
                &log,
                op_of(
                    p,
                    "nas",
                    "_system_",
                    NOW - i * HOUR,
                    OperationStatus::Success,
                ),
            )
        })
        .collect();
    let usb = add_one(
        &log,
        op_of(
            p,
            "usb",
            "_system_",
            NOW - 3 * HOUR,
            OperationStatus::Success,
        ),
    );
    let deleted = log.prune_history(NOW, &limits).unwrap();
    assert_eq!(ids(&deleted), [a[2], a[3], nas[1]]);
    let left = all_ids(&log);
    for id in [a[0], a[1], b_plan[0], b_plan[1], nas[0], usb] {
        assert!(left.contains(&id), "{id} was deleted");
    }
}

#[test]
fn prune_history_leaves_unfinished_operations_alone() {
    let (_dir, log) = open();
    let b = "operationBackup";
    use OperationStatus::*;
    let stuck = add_one(&log, op_of(b, "nas", "p", NOW - 90 * DAY, InProgress));
    let queued = add_one(&log, op_of(b, "nas", "p", NOW - 80 * DAY, Pending));
    let finished: Vec<i64> = (1..=3)
        .map(|i| add_one(&log, op_of(b, "nas", "p", NOW - (4 - i) * HOUR, Success)))
        .collect();
    let planned = add_one(&log, op_of(b, "nas", "p", NOW + DAY, Pending));
    // Unfinished operations neither go nor count: the two newest finished stay.
    let deleted = log.prune_history(NOW, &small_limits()).unwrap();
    assert_eq!(ids(&deleted), [finished[0]]);
    assert_eq!(
        all_ids(&log),
        [stuck, queued, finished[1], finished[2], planned]
    );
}

#[test]
fn default_history_limits_are_footrests() {
    let limits = HistoryLimits::default();
    let find = |kind: &str| {
        limits
            .rules
            .iter()
            .find(|r| r.kinds.contains(&kind))
            .map(|r| (r.max_count, r.max_age_days))
    };
    assert_eq!(find("operationBackup"), Some((100, Some(30))));
    assert_eq!(find("operationRunHook"), Some((100, Some(30))));
    assert_eq!(find("operationForget"), Some((30, None)));
    assert_eq!(find("operationPrune"), Some((12, None)));
    assert_eq!(find("operationCheck"), Some((12, None)));
    assert_eq!(find("operationStats"), Some((100, None)));
    assert_eq!(find("operationRestore"), Some((50, Some(30))));
    assert_eq!(find("operationRunCommand"), Some((50, Some(30))));
    assert_eq!(find("operationIndexSnapshot"), None);
    // And prune_history applies them: 13 prunes of a repo keep 12.
    let (_dir, log) = open();
    let prunes: Vec<i64> = (0..13)
        .map(|i| add_one(&log, done("operationPrune", "_system_", NOW - i * DAY)))
        .collect();
    let deleted = log.prune_history(NOW, &limits).unwrap();
    assert_eq!(ids(&deleted), [prunes[12]]);
}

#[test]
fn a_version_1_log_gains_the_upkeep_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oplog.sqlite");
    let log = OpLog::open(&path).unwrap();
    let mut ops = vec![index_op("p", "s1", 1, false), index_op("p", "s2", 2, true)];
    log.add_batch(&mut ops).unwrap();
    drop(log);
    // Back to the schema of the first release, with its data.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP INDEX operations_by_kind; DROP INDEX operations_pending;
             DROP INDEX operations_live_snapshots; DROP INDEX operations_status_counts;
             DROP INDEX operations_live_snapshots_by_repo;
             UPDATE schema_version SET version = 1;",
        )
        .unwrap();
    let log = OpLog::open(&path).unwrap();
    assert_eq!(log.query(&OpSelector::default(), None).unwrap(), ops);
    // The partial index holds the live snapshot's flow only.
    let live: Vec<i64> = log
        .with_reader(|conn| {
            Ok(conn
                .prepare(
                    "SELECT flow_id FROM operations INDEXED BY operations_live_snapshots
                     WHERE kind = 'operationIndexSnapshot'
                       AND json_extract(json, '$.operationIndexSnapshot.forgot') IS NOT 1",
                )
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap())
        })
        .unwrap();
    assert_eq!(live, [ops[0].flow_id]);
}

#[test]
fn history_limits_become_one_entry_per_kind() {
    let limits = HistoryLimits {
        rules: vec![
            HistoryRule {
                kinds: vec!["operationBackup", "operationIndexSnapshot"],
                max_count: 5,
                max_age_days: Some(2),
            },
            // A kind named twice: the first rule applies.
            HistoryRule {
                kinds: vec!["operationBackup", "operationStats"],
                max_count: 7,
                max_age_days: None,
            },
        ],
    };
    assert_eq!(
        limits.to_param(NOW),
        Value::Text(format!(
            r#"[["operationBackup",5,{}],["operationStats",7,null]]"#,
            NOW - 2 * DAY
        ))
    );
}

#[test]
fn scheduler_and_upkeep_queries_use_indexes() {
    let (_dir, log) = open();
    let plan = |sql: &str, params: Vec<Value>| explain(&log, sql, params);
    let text = |v: &str| Value::Text(v.into());
    let last_run = plan(
        LAST_RUN_SQL,
        vec![text("p"), text("r"), text("operationBackup")],
    );
    assert!(last_run.contains("operations_by_kind"), "{last_run}");
    assert!(!last_run.contains("TEMP B-TREE"), "{last_run}");
    let pending = plan(
        "SELECT id, json FROM operations WHERE status = 1 ORDER BY id",
        vec![],
    );
    assert!(pending.contains("operations_pending"), "{pending}");
    let index_ops = plan(
        INDEX_OPS_OF_SNAPSHOTS_SQL,
        vec![text(r#"["s1"]"#), text("nas")],
    );
    assert!(index_ops.contains("operations_by_snapshot"), "{index_ops}");
    let prune = plan(history::PRUNE_SELECT, vec![text("[]"), Value::Integer(NOW)]);
    // The ranking walks the covering index in the window's order: no row reads, no sort.
    assert!(
        prune.contains("SCAN operations USING COVERING INDEX operations_by_kind"),
        "{prune}"
    );
    assert!(prune.contains("operations_live_snapshots"), "{prune}");
    assert!(
        !prune.split(" | ").any(|step| step == "SCAN operations"),
        "{prune}"
    );
}

/// Not a benchmark: 20,000 operations over 5 plans, and the upkeep deletes exactly what
/// the limits say.
#[test]
fn prune_history_on_twenty_thousand_operations() {
    let (_dir, log) = open();
    let plans = ["photos", "docs", "music", "mail", "code"];
    let b = "operationBackup";
    let mut ops = Vec::new();
    for plan in plans {
        // Per plan: 1000 snapshot flows 4 hours apart (backup, hook, index; the newest
        // 100 snapshots still exist) and 1000 failed backups in between: 4000 operations.
        for i in 0..1000_i64 {
            let t = NOW - (1000 - i) * 4 * HOUR;
            ops.push(op_of(b, "nas", plan, t - 2 * HOUR, OperationStatus::Error));
            // Ids in a new log are 1, 2, 3...: the backup's id is its position + 1.
            let flow = ops.len() as i64 + 1;
            let flow_ops = [
                done(b, plan, t),
                done("operationRunHook", plan, t + 1),
                index_op(plan, &format!("{plan}-{i}"), t + 2, i < 900),
            ];
            ops.extend(flow_ops.into_iter().map(|op| Operation {
                flow_id: flow,
                ..op
            }));
        }
    }
    log.add_batch(&mut ops).unwrap();
    assert!(
        ops.iter()
            .filter(|op| op.status == OperationStatus::Success && matches!(op.op, Op::Backup(_)))
            .all(|op| op.flow_id == op.id)
    );
    let live: Vec<i64> = ops
        .iter()
        .filter(|op| matches!(&op.op, Op::IndexSnapshot(i) if !i.forgot))
        .flat_map(|op| [op.flow_id, op.flow_id + 1, op.id])
        .collect();
    assert_eq!(live.len(), 5 * 300);
    assert_eq!(all_ids(&log).len(), 20_000);
    let deleted = log.prune_history(NOW, &HistoryLimits::default()).unwrap();
    // Per plan: the 100 newest backups are 50 live flows' and 50 failed ones; the
    // other 950 failed backups go, and so do the 900 forgotten flows (backup, hook and
    // index), all beyond the count: 950 + 3 * 900 = 3650.
    assert_eq!(deleted.len(), 5 * 3650);
    let left = log.query(&OpSelector::default(), None).unwrap();
    assert_eq!(left.len(), 5 * 350);
    assert!(left.iter().all(|op| !forgot(op)));
    let left_ids: Vec<i64> = ids(&left);
    assert!(live.iter().all(|id| left_ids.binary_search(id).is_ok()));
    assert_eq!(
        left.iter()
            .filter(|op| op.status == OperationStatus::Error)
            .count(),
        5 * 50
    );
}
