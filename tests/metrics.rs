//! `GET /metrics` end to end: real backups, a real prune and check on a real restic
//! repository, then the whole exposition read by a small strict parser of the text
//! format 0.0.4 (every sample belongs to a family declared once with HELP and TYPE,
//! labels well formed, values floats) and its figures compared with the operations
//! GetOperations shows. Credentials are required like on the RPCs.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};

use common::*;
use serde_json::{Value, json};

/// One sample: its labels (sorted) and value.
type Labels = BTreeMap<String, String>;

#[derive(Debug, Default)]
struct Family {
    help: Option<String>,
    kind: Option<String>,
    samples: Vec<(Labels, f64)>,
}

/// A strict reader of the text format: panics, naming the line, on anything a
/// Prometheus server would reject or that the format says must not happen.
fn parse(text: &str) -> HashMap<String, Family> {
    assert!(
        text.ends_with('\n'),
        "the last line must end with a line feed"
    );
    let mut families: HashMap<String, Family> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut series = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = || format!("line {}: {line:?}", n + 1);
        assert!(!line.is_empty(), "{}: empty line", at());
        if let Some(rest) = line.strip_prefix("# ") {
            let (keyword, rest) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", at()));
            let (name, value) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", at()));
            assert!(valid_metric_name(name), "{}: metric name", at());
            if order.last().map(String::as_str) != Some(name) {
                assert!(
                    !order.iter().any(|o| o == name),
                    "{}: family {name} declared again after other families",
                    at()
                );
                order.push(name.to_string());
            }
            let family = families.entry(name.to_string()).or_default();
            assert!(
                family.samples.is_empty(),
                "{}: comment after the family's samples",
                at()
            );
            match keyword {
                "HELP" => {
                    assert!(family.help.is_none(), "{}: second HELP", at());
                    family.help = Some(unescape_help(value));
                }
                "TYPE" => {
                    assert!(family.kind.is_none(), "{}: second TYPE", at());
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&value),
                        "{}: type",
                        at()
                    );
                    family.kind = Some(value.to_string());
                }
                _ => panic!("{}: unknown comment keyword", at()),
            }
            continue;
        }
        assert!(!line.starts_with('#'), "{}: stray comment", at());
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("{}: no value", at()));
        let name = &line[..name_end];
        assert!(valid_metric_name(name), "{}: metric name", at());
        assert_eq!(
            order.last().map(String::as_str),
            Some(name),
            "{}: sample outside its family's block",
            at()
        );
        let family = families.get_mut(name).unwrap();
        assert!(
            family.help.is_some() && family.kind.as_deref() == Some("gauge"),
            "{}: sample before HELP and TYPE (footrest writes gauges only)",
            at()
        );
        let mut rest = &line[name_end..];
        let mut labels = Labels::new();
        if let Some(body) = rest.strip_prefix('{') {
            let (parsed, after) = parse_labels(body).unwrap_or_else(|e| panic!("{}: {e}", at()));
            labels = parsed;
            rest = after;
        }
        let value = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("{}: one space before the value", at()));
        assert!(
            !value.contains(' '),
            "{}: footrest writes no timestamps",
            at()
        );
        let v: f64 = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("{}: value is not a float", at())),
        };
        assert!(
            series.insert((name.to_string(), labels.clone())),
            "{}: duplicate series",
            at()
        );
        family.samples.push((labels, v));
    }
    for (name, family) in &families {
        assert!(
            family.help.is_some() && family.kind.is_some(),
            "{name}: HELP and TYPE"
        );
    }
    families
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// `name="value",...}` → the labels and what follows the `}`.
fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Labels::new();
    loop {
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').ok_or("label without =")?;
        let name = &s[..eq];
        if !valid_label_name(name) {
            return Err(format!("label name {name:?}"));
        }
        s = s[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (_, '\\') => match chars.next().ok_or("dangling backslash")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("unknown escape \\{c}")),
                },
                (_, '\n') => return Err("raw line feed in a label value".into()),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        s = &s[end + 1..];
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err("expected , or } after a label".into());
        }
    }
}

/// HELP text escapes: `\\` and `\n` only.
fn unescape_help(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                other => panic!("bad escape in HELP {s:?}: {other:?}"),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn value(fams: &HashMap<String, Family>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    fams.get(name)
        .unwrap_or_else(|| panic!("no family {name}"))
        .samples
        .iter()
        .find(|(l, _)| *l == want)
        .map(|(_, v)| *v)
}

fn int(v: &Value) -> i64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_i64())
        .unwrap_or(0)
}

fn secs(ms: &Value) -> f64 {
    int(ms) as f64 / 1000.0
}

fn get_metrics(fr: &Footrest, auth: Option<&str>) -> HttpResponse {
    let headers: Vec<(String, String)> = auth
        .map(|a| vec![("Authorization".to_string(), a.to_string())])
        .unwrap_or_default();
    fr.request("GET", "/metrics", &headers, b"")
}

/// The newest operation of a kind in a plan (GetOperations sorts by id).
fn newest<'a>(ops: &'a [Value], plan: &str, kind: &str) -> &'a Value {
    ops.iter()
        .rev()
        .find(|o| o["planId"] == plan && o.get(kind).is_some())
        .unwrap_or_else(|| panic!("no {kind} of {plan}"))
}

#[test]
fn metrics_report_the_backups_that_were_made() {
    let sandbox = Sandbox::new();
    let docs = sandbox.source("docs", 3);
    let photos = sandbox.source("photos", 5);
    let missing = sandbox.path("not-mounted");
    sandbox.write_config(&sandbox.config(
        json!([
            // Once a year on 1 January: planned, never due during the test.
            {"id": "docs", "repo": "local", "paths": [docs], "schedule": {"cron": "0 0 1 1 *"}},
            {"id": "photos", "repo": "local", "paths": [photos]},
            {"id": "gone", "repo": "local", "paths": [missing]},
            {"id": "never", "repo": "local", "paths": [docs]}
        ]),
        auth_users(&[("admin", CHANGEME_HASH)]),
    ));
    let fr = Footrest::start(&sandbox).with_credentials("admin", "changeme");

    // Without credentials, or with wrong ones: 401, and the browser is asked for them.
    let r = get_metrics(&fr, None);
    r.assert_error(401, "unauthenticated");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"footrest\"")
    );
    get_metrics(&fr, Some(&basic("admin", "wrong"))).assert_error(401, "unauthenticated");
    // Only GET.
    let r = fr.request(
        "POST",
        "/metrics",
        &[("Authorization".into(), basic("admin", "changeme"))],
        b"",
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));

    for plan in ["docs", "photos", "docs"] {
        let r = fr.rpc("Backup", &json!({"value": plan}));
        assert_eq!(r.status, 200, "{plan}: {}", r.text());
    }
    fr.rpc("Backup", &json!({"value": "gone"}))
        .assert_error(500, "unknown");
    for task in ["TASK_PRUNE", "TASK_CHECK"] {
        let r = fr.rpc("DoRepoTask", &json!({"repoId": "local", "task": task}));
        assert_eq!(r.status, 200, "{task}: {}", r.text());
        let id = r.json()["operationId"].as_str().unwrap().to_string();
        let op = fr.wait_ended(&id);
        assert_eq!(op["status"], "STATUS_SUCCESS", "{op}");
    }
    // Quiet: every follow-up has run; only the planned run of "docs" is pending.
    let mut ops = Vec::new();
    wait_until(
        "the follow-ups to finish",
        std::time::Duration::from_secs(60),
        || {
            ops = fr.operations(json!({}));
            ops.iter().all(|o| o["status"] != "STATUS_INPROGRESS")
                && ops
                    .iter()
                    .filter(|o| o["status"] == "STATUS_PENDING")
                    .count()
                    == 1
        },
    );

    let r = get_metrics(&fr, Some(&basic("admin", "changeme")));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    let m = parse(&text);
    // A Bearer token from Login works too.
    let token = fr.request(
        "POST",
        "/v1.Authentication/Login",
        &[("Content-Type".into(), "application/json".into())],
        br#"{"username":"admin","password":"changeme"}"#,
    );
    let token = token.json()["token"].as_str().unwrap().to_string();
    let r = get_metrics(&fr, Some(&format!("Bearer {token}")));
    assert_eq!(r.status, 200, "{}", r.text());

    for name in m.keys() {
        assert!(name.starts_with("footrest_"), "{name}");
    }

    // The last docs backup: its end, duration and summary.
    let last = newest(&ops, "docs", "operationBackup");
    assert_eq!(last["status"], "STATUS_SUCCESS");
    let summary = &last["operationBackup"]["lastStatus"]["summary"];
    let docs_l = [("plan", "docs"), ("repo", "local")];
    assert_eq!(
        value(
            &m,
            "footrest_plan_last_backup_end_timestamp_seconds",
            &docs_l
        ),
        Some(secs(&last["unixTimeEndMs"]))
    );
    assert_eq!(
        value(&m, "footrest_plan_last_success_timestamp_seconds", &docs_l),
        Some(secs(&last["unixTimeEndMs"]))
    );
    assert_eq!(
        value(&m, "footrest_plan_last_backup_success", &docs_l),
        Some(1.0)
    );
    let duration_ms = int(&last["unixTimeEndMs"]) - int(&last["unixTimeStartMs"]);
    assert_eq!(
        value(&m, "footrest_plan_last_backup_duration_seconds", &docs_l),
        Some(duration_ms as f64 / 1000.0)
    );
    assert_eq!(
        value(&m, "footrest_plan_last_backup_added_bytes", &docs_l),
        Some(int(&summary["dataAdded"]) as f64)
    );
    // 3 files and sub/nested.txt; the second backup of docs found them unmodified.
    assert_eq!(int(&summary["filesUnmodified"]), 4, "{summary}");
    assert_eq!(
        value(&m, "footrest_plan_last_backup_processed_files", &docs_l),
        Some(4.0)
    );
    assert_eq!(
        value(&m, "footrest_plan_last_backup_processed_bytes", &docs_l),
        Some(int(&summary["totalBytesProcessed"]) as f64)
    );
    // The planned run of docs.
    let pending = ops
        .iter()
        .find(|o| o["status"] == "STATUS_PENDING")
        .unwrap();
    assert_eq!(pending["planId"], "docs");
    assert_eq!(
        value(&m, "footrest_plan_next_backup_timestamp_seconds", &docs_l),
        Some(secs(&pending["unixTimeStartMs"]))
    );

    // photos: 5 new files and the nested one; no schedule, so no next run.
    let photos_l = [("plan", "photos"), ("repo", "local")];
    assert_eq!(
        value(&m, "footrest_plan_last_backup_processed_files", &photos_l),
        Some(6.0)
    );
    let photos_op = newest(&ops, "photos", "operationBackup");
    assert_eq!(
        value(&m, "footrest_plan_last_backup_added_bytes", &photos_l),
        Some(int(&photos_op["operationBackup"]["lastStatus"]["summary"]["dataAdded"]) as f64)
    );
    assert!(value(&m, "footrest_plan_last_backup_added_bytes", &photos_l).unwrap() > 0.0);
    assert_eq!(
        value(&m, "footrest_plan_next_backup_timestamp_seconds", &photos_l),
        None
    );

    // gone: its backup failed; no success ever.
    let gone_l = [("plan", "gone"), ("repo", "local")];
    assert_eq!(
        value(&m, "footrest_plan_last_backup_success", &gone_l),
        Some(0.0)
    );
    for (status, want) in [("success", 0.0), ("warning", 0.0), ("error", 1.0)] {
        assert_eq!(
            value(
                &m,
                "footrest_plan_last_backup_status",
                &[("plan", "gone"), ("repo", "local"), ("status", status)]
            ),
            Some(want)
        );
    }
    assert_eq!(
        value(&m, "footrest_plan_last_success_timestamp_seconds", &gone_l),
        None
    );

    // never: in the config, no backup yet.
    let never_l = [("plan", "never"), ("repo", "local")];
    assert_eq!(value(&m, "footrest_plan_info", &never_l), Some(1.0));
    assert_eq!(
        value(&m, "footrest_plan_last_backup_success", &never_l),
        None
    );

    // The repo: as many snapshots as restic has; the prune and check just run.
    let out = sandbox.restic(&["snapshots", "--json"]);
    let snaps: Value = serde_json::from_slice(&out.stdout).unwrap();
    let repo_l = [("repo", "local")];
    assert_eq!(
        value(&m, "footrest_repo_snapshots", &repo_l),
        Some(snaps.as_array().unwrap().len() as f64)
    );
    assert_eq!(snaps.as_array().unwrap().len(), 3);
    for (kind, name) in [("operationPrune", "prune"), ("operationCheck", "check")] {
        let op = newest(&ops, "_system_", kind);
        assert_eq!(
            value(
                &m,
                &format!("footrest_repo_last_{name}_end_timestamp_seconds"),
                &repo_l
            ),
            Some(secs(&op["unixTimeEndMs"]))
        );
        assert_eq!(
            value(&m, &format!("footrest_repo_last_{name}_success"), &repo_l),
            Some(1.0)
        );
    }

    // Operations by status, as GetOperations counts them.
    for (status, name) in [
        ("STATUS_PENDING", "pending"),
        ("STATUS_INPROGRESS", "in_progress"),
        ("STATUS_SUCCESS", "success"),
        ("STATUS_WARNING", "warning"),
        ("STATUS_ERROR", "error"),
        ("STATUS_USER_CANCELLED", "user_cancelled"),
        ("STATUS_SYSTEM_CANCELLED", "system_cancelled"),
    ] {
        let count = ops.iter().filter(|o| o["status"] == status).count();
        assert_eq!(
            value(&m, "footrest_operations", &[("status", name)]),
            Some(count as f64),
            "{status}"
        );
    }
    assert_eq!(value(&m, "footrest_queue_depth", &[]), Some(0.0));
    let rss = value(&m, "footrest_process_resident_memory_bytes", &[]).unwrap();
    assert!(rss > 1e6 && rss < 1e9, "{rss}");
    assert_eq!(
        value(
            &m,
            "footrest_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
}

#[test]
fn metrics_are_open_when_auth_is_disabled() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&sandbox.config(json!([]), auth_off()));
    let fr = Footrest::start(&sandbox);
    let r = get_metrics(&fr, None);
    assert_eq!(r.status, 200, "{}", r.text());
    let m = parse(&r.text());
    assert!(m["footrest_plan_info"].samples.is_empty());
    assert_eq!(
        value(&m, "footrest_repo_snapshots", &[("repo", "local")]),
        Some(0.0)
    );
}

#[test]
fn the_strict_parser_rejects_what_prometheus_would() {
    let ok = "# HELP a_b x \\\\ y\n# TYPE a_b gauge\na_b{p=\"q\\\"\\\\\\n\"} 1.5\na_b 2\n";
    let m = parse(ok);
    assert_eq!(m["a_b"].samples[0].0["p"], "q\"\\\n");
    assert_eq!(m["a_b"].help.as_deref(), Some("x \\ y"));
    for bad in [
        "a_b 1\n",                                                             // no HELP/TYPE
        "# HELP a_b x\n# TYPE a_b gauge\na_b 1",                               // no final \n
        "# HELP a_b x\n# HELP a_b y\n# TYPE a_b gauge\n",                      // HELP twice
        "# HELP a_b x\n# TYPE a_b gauge\na_b{p=\"q} 1\n",                      // unterminated
        "# HELP a_b x\n# TYPE a_b gauge\na_b{p=\"\\q\"} 1\n",                  // bad escape
        "# HELP a_b x\n# TYPE a_b gauge\na_b one\n",                           // not a float
        "# HELP a_b x\n# TYPE a_b gauge\na_b 1\na_b 2\n",                      // duplicate series
        "# HELP a_b x\n# TYPE a_b gauge\n# HELP c x\n# TYPE c gauge\na_b 1\n", // outside block
    ] {
        let caught = std::panic::catch_unwind(|| parse(bad));
        assert!(caught.is_err(), "accepted {bad:?}");
    }
}
