//! GetOperations selectors over a real history (CONTRACT §3.2): every field alone and
//! combined, presence semantics, `lastN`, `ids`, `modnoGte`, both spellings.

mod common;

use common::*;
use serde_json::{Value, json};

fn ids(ops: &[Value]) -> Vec<i64> {
    ops.iter()
        .map(|o| o["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Two plans, three backups: six operations (each backup and its index operation).
fn history() -> (Sandbox, Footrest) {
    let sandbox = Sandbox::new();
    let a = sandbox.source("a", 2);
    let b = sandbox.source("b", 2);
    sandbox.write_config(&sandbox.config(
        json!([
            {"id": "plan-a", "repo": "local", "paths": [a]},
            {"id": "plan-b", "repo": "local", "paths": [b]}
        ]),
        auth_off(),
    ));
    let fr = Footrest::start(&sandbox);
    for (i, plan) in ["plan-a", "plan-b", "plan-a"].into_iter().enumerate() {
        let r = fr.rpc("Backup", &json!({ "value": plan }));
        assert_eq!(r.status, 200, "{}", r.text());
        // The index operation follows the answer; wait for it so ids are predictable.
        wait_until(
            "the index operation",
            std::time::Duration::from_secs(30),
            || fr.operations(json!({})).len() == 2 * (i + 1),
        );
    }
    (sandbox, fr)
}

#[test]
fn selectors() {
    let (_sandbox, fr) = history();
    let all = fr.operations(json!({}));
    assert_eq!(ids(&all), [1, 2, 3, 4, 5, 6], "sorted by id, sequential");
    // Bodies without a selector, and an empty body, select everything.
    let r = fr.rpc("GetOperations", &json!({}));
    assert_eq!(r.json()["operations"].as_array().unwrap().len(), 6);
    let r = fr.request(
        "POST",
        "/v1.Backrest/GetOperations",
        &[("Content-Type".into(), "application/json".into())],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["operations"].as_array().unwrap().len(), 6);

    let modnos: Vec<i64> = all
        .iter()
        .map(|o| o["modno"].as_str().unwrap().parse().unwrap())
        .collect();
    let first_backup = &all[0];
    let snapshot = first_backup["snapshotId"].as_str().unwrap();
    let guid = first_backup["repoGuid"].as_str().unwrap();

    let cases: Vec<(Value, Vec<i64>)> = vec![
        (json!({"planId": "plan-a"}), vec![1, 2, 5, 6]),
        (json!({"plan_id": "plan-b"}), vec![3, 4]),
        (json!({"planId": ""}), vec![]),
        (json!({"repoId": "local"}), vec![1, 2, 3, 4, 5, 6]),
        (json!({"repoId": "elsewhere"}), vec![]),
        (json!({"repoGuid": guid}), vec![1, 2, 3, 4, 5, 6]),
        (json!({"repo_guid": "0000"}), vec![]),
        (json!({"instanceId": "test-host"}), vec![1, 2, 3, 4, 5, 6]),
        (json!({"instanceId": ""}), vec![]),
        (json!({"originalInstanceKeyid": ""}), vec![1, 2, 3, 4, 5, 6]),
        (json!({"originalInstanceKeyid": "ed25519.other"}), vec![]),
        (json!({"snapshotId": snapshot}), vec![1, 2]),
        (json!({"flowId": "3"}), vec![3, 4]),
        (json!({"flow_id": 3}), vec![3, 4]),
        (json!({"ids": ["2", 4]}), vec![2, 4]),
        // proto3 JSON cannot tell an empty list from an absent one: no filter.
        (json!({"ids": []}), vec![1, 2, 3, 4, 5, 6]),
        (json!({"planId": "plan-a", "flowId": "3"}), vec![]),
        (json!({"planId": "plan-a", "flowId": "5"}), vec![5, 6]),
        (json!({"planId": null}), vec![1, 2, 3, 4, 5, 6]),
        (
            json!({"repoId": "local", "planId": "plan-b", "instanceId": "test-host"}),
            vec![3, 4],
        ),
        (json!({"modnoGte": modnos[5].to_string()}), vec![6]),
        (json!({"modno_gte": modnos[5]}), vec![6]),
        (json!({"unknownField": 1}), vec![1, 2, 3, 4, 5, 6]),
    ];
    for (selector, want) in cases {
        let r = fr.rpc("GetOperations", &json!({ "selector": selector }));
        assert_eq!(r.status, 200, "{selector}: {}", r.text());
        let got = r.json();
        if want.is_empty() {
            assert_eq!(got, json!({}), "{selector}: no match is an empty message");
        } else {
            assert_eq!(
                ids(got["operations"].as_array().unwrap()),
                want,
                "{selector}"
            );
        }
    }
    // modno only grows: every create and update took the next value.
    assert!(modnos.windows(2).all(|w| w[0] < w[1]), "{modnos:?}");
}

#[test]
fn last_n_and_errors() {
    let (_sandbox, fr) = history();
    for body in [
        json!({"lastN": "2"}),
        json!({"last_n": 2}),
        json!({"selector": {}, "lastN": 2}),
    ] {
        let r = fr.rpc("GetOperations", &body);
        assert_eq!(
            ids(r.json()["operations"].as_array().unwrap()),
            [5, 6],
            "{body}"
        );
    }
    let r = fr.rpc(
        "GetOperations",
        &json!({"selector": {"planId": "plan-b"}, "lastN": 1}),
    );
    assert_eq!(ids(r.json()["operations"].as_array().unwrap()), [4]);
    let r = fr.rpc("GetOperations", &json!({"lastN": 0}));
    assert_eq!(r.json()["operations"].as_array().unwrap().len(), 6);

    let m = fr
        .rpc(
            "GetOperations",
            &json!({"selector": {"ids": ["1"], "planId": "plan-a"}}),
        )
        .assert_error(400, "invalid_argument");
    assert!(m.contains("ids"), "{m}");
    let m = fr
        .rpc("GetOperations", &json!({"selector": {"flowId": "abc"}}))
        .assert_error(400, "invalid_argument");
    assert!(m.contains("flowId"), "{m}");
    let m = fr
        .rpc("GetOperations", &json!({"lastN": "x"}))
        .assert_error(400, "invalid_argument");
    assert!(m.contains("lastN"), "{m}");
    let m = fr
        .rpc("GetOperations", &json!({"selector": {"planId": 5}}))
        .assert_error(400, "invalid_argument");
    assert!(m.contains("planId"), "{m}");
    let r = fr.request(
        "POST",
        "/v1.Backrest/GetOperations",
        &[("Content-Type".into(), "application/json".into())],
        b"{\"selector\": ",
    );
    r.assert_error(400, "invalid_argument");
}
