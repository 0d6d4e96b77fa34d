//! Unit tests of the operation log against real SQLite files in temporary directories:
//! id/modno/flow assignment, selector semantics, the JSON fast path, start-up repair,
//! subscribers, WAL reads during writes, index use, and a log of realistic size.

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
