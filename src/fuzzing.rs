//! Entry points for the fuzz targets (`fuzz/`, run by `bench/fuzz.sh`) and the property
//! tests: each takes arbitrary bytes, pushes them through one of footrest's parsers the
//! way the server does, and checks what must hold whatever the input (no panic, bounded
//! output, decode/encode round trips). They return nothing and report a broken property
//! by panicking, which is what a fuzzer catches. This module only calls the parsers; it
//! must not hold parsing logic of its own, open files, spawn processes or read the clock.
//! Hidden from the docs: it is a test surface, not an API.

use jiff::tz::TimeZone;

use crate::config::{self, Clock, Condition, Plan, Repo, Schedule};
use crate::hooks::template::{self, MAX_OUTPUT};
use crate::hooks::vars::{self, HookVars, PlanVars, RepoVars};
use crate::proto::{self, BackupProgressSummary};
use crate::restic::output;

/// Request bodies as the RPC handlers decode them: every request type of the operation
/// and repo RPCs, the selector's SQL, and a round trip of what decoded.
pub fn request_json(data: &[u8]) {
    if let Ok(req) = proto::decode::<proto::GetOperationsRequest>(data) {
        if let Some(sel) = &req.selector {
            let _ = crate::oplog::selector::build(sel, req.last_n);
        }
        // What decoded encodes to a body that decodes to the same request.
        let text = serde_json::to_vec(&req).expect("a decoded request serializes");
        let again: proto::GetOperationsRequest =
            proto::decode(&text).expect("an encoded request decodes");
        assert_eq!(
            again,
            req,
            "round trip of {}",
            String::from_utf8_lossy(&text)
        );
    }
    if let Ok(sel) = proto::decode::<proto::OpSelector>(data) {
        let _ = crate::oplog::selector::filter(&sel);
    }
    let _ = proto::decode::<proto::DoRepoTaskRequest>(data);
    let _ = proto::decode::<proto::ForgetRequest>(data);
    let _ = proto::decode::<proto::ListSnapshotsRequest>(data);
    let _ = proto::decode::<proto::CancelRequest>(data);
    let _ = proto::decode::<proto::ClearHistoryRequest>(data);
    // The shapes of the small requests decoded in api/rpc (Backup's `{value, dryRun}`).
    let _ = proto::decode::<serde_json::Map<String, serde_json::Value>>(data);
    let _ = proto::decode::<Option<String>>(data);
}

/// restic's output, each parser fed the whole input and each line of it, as the
/// runner feeds stdout and stderr.
pub fn restic_output(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = output::parse_version(&text);
    let _ = output::parse_snapshots(&text);
    let _ = output::parse_forget(&text);
    let _ = output::parse_stats(&text);
    let _ = output::parse_repo_config(&text);
    let _ = output::parse_lock_holder(&text);
    let mut diag = output::Diagnostics::default();
    let mut ls = output::LsCollector::new("/src", 16);
    let mut root = output::LsCollector::new("/", 16);
    for line in text.lines() {
        let _ = output::parse_backup_line(line);
        let _ = output::parse_restore_line(line);
        let _ = output::parse_rfc3339_ms(line);
        diag.observe_stderr(line);
        ls.observe(line);
        root.observe(line);
    }
    let _ = output::classify_failure(Some(1), &diag).to_string();
    let _ = output::classify_failure(None, &diag).to_string();
    assert!(ls.into_sorted_children().len() <= 16, "ls cap kept");
    assert!(root.into_sorted_children().len() <= 16, "ls cap kept");
}

/// A cron expression (after the first byte, which picks the clock and the times): parse,
/// compile, and the next run time from several points, in UTC and a zone with DST.
pub fn cron_schedule(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let expr = String::from_utf8_lossy(rest);
    let parsed = config::cron::parse(&expr);
    let schedule = Schedule {
        cron: Some(expr.to_string()),
        clock: match pick % 4 {
            0 => Clock::Default,
            1 => Clock::Local,
            2 => Clock::Utc,
            _ => Clock::LastRunTime,
        },
        ..Schedule::default()
    };
    let compiled = crate::orchestrator::schedule::compile(&schedule);
    // The two parsers agree: config validation accepts exactly what the scheduler runs.
    assert_eq!(
        parsed.is_ok(),
        compiled.is_ok(),
        "cron {expr:?}: config says {parsed:?}, schedule says {:?}",
        compiled.as_ref().err()
    );
    let Ok(compiled) = compiled else {
        return;
    };
    let berlin = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").expect("a valid POSIX zone");
    // Around a spring-forward day, a fall-back day, a leap day, and the far ends.
    let nows: [i64; 5] = [
        1_711_846_800_000,
        1_729_990_800_000,
        1_709_164_800_000 + i64::from(pick) * 3_600_000,
        0,
        253_402_300_000_000 - 86_400_000,
    ];
    for now in nows {
        for last in [None, Some(now - 86_400_000), Some(now + 1), Some(i64::MIN)] {
            for tz in [&TimeZone::UTC, &berlin] {
                if let Some(next) = compiled.next_run(last, now, tz)
                    && last.is_none()
                {
                    assert!(
                        next > now,
                        "cron {expr:?}: never run, next {next} <= now {now}"
                    );
                }
            }
        }
    }
}

/// A hook template: parsed against the hook variables' schema and, when it parses,
/// rendered with a full set of variables and with a failed run's; output bounded.
pub fn template(data: &[u8]) {
    let src = String::from_utf8_lossy(data);
    let Ok(t) = template::parse(&src, vars::schema()) else {
        return;
    };
    let vars = sample_vars();
    let failed = HookVars {
        event: Condition::SnapshotError,
        snapshot_id: String::new(),
        snapshot_stats: None,
        plan: None,
        error: "restic backup: exit status 1: Fatal: unable to open repository".into(),
        ..vars.clone()
    };
    for v in [&vars, &failed] {
        if let Ok(out) = t.render(&v.to_value_in(&TimeZone::UTC)) {
            assert!(out.len() <= MAX_OUTPUT, "output of {} bytes", out.len());
        }
    }
}

/// A config file: parse and validate as start-up and reload do; a config that loads
/// writes back to text that loads to the same config.
pub fn config_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((cfg, _warnings)) = config::parse(text) else {
        return;
    };
    let written = cfg.to_json_pretty();
    let (again, _) = config::parse(&written)
        .unwrap_or_else(|e| panic!("a loaded config writes back unloadable: {e}\n{written}"));
    assert_eq!(again.to_json_pretty(), written, "write-back is stable");
    let _ = config::redact_uri(text);
}

/// The variables of a successful backup of plan "docs" to repo "nas".
fn sample_vars() -> HookVars {
    HookVars {
        event: Condition::SnapshotSuccess,
        task: "backup for plan \"docs\"".into(),
        repo: Some(RepoVars::from(&Repo {
            id: "nas".into(),
            uri: "rest:https://me:hunter2@nas.local/restic".into(),
            password: "topsecret".into(),
            flags: vec!["--limit-upload 100".into()],
            ..Repo::default()
        })),
        plan: Some(PlanVars::from(&Plan {
            id: "docs".into(),
            repo: "nas".into(),
            paths: vec!["/home/me/docs".into(), "/etc".into()],
            excludes: vec!["*.tmp".into()],
            ..Plan::default()
        })),
        snapshot_id: "5f1f2e7b".repeat(8),
        snapshot_stats: Some(BackupProgressSummary {
            files_new: 10,
            files_changed: 2,
            files_unmodified: 1222,
            data_added: 5 << 20,
            total_files_processed: 1234,
            total_bytes_processed: 3 << 29,
            total_duration: 62.5,
            snapshot_id: "5f1f2e7b".repeat(8),
            ..Default::default()
        }),
        cur_time: jiff::Timestamp::from_second(1_714_557_600).unwrap_or_default(),
        duration: std::time::Duration::from_millis(62_500),
        error: String::new(),
    }
}

#[cfg(test)]
mod tests {
    //! Every entry point over the committed seed corpora (`fuzz/seeds/`), the restic
    //! fixtures and the Backrest config fixture, whole and cut short at many places (a
    //! cut-off line is what a killed restic leaves), and the crashes fuzzing found.

    use std::path::{Path, PathBuf};

    fn files(dir: &Path) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        assert!(!out.is_empty(), "{} is empty", dir.display());
        out.sort();
        out
    }

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// Runs `target` on each input and on about 64 prefixes of it.
    fn each_with_prefixes(inputs: &[Vec<u8>], target: fn(&[u8])) {
        for input in inputs {
            let step = (input.len() / 64).max(1);
            for end in (0..input.len()).step_by(step).chain([input.len()]) {
                target(&input[..end]);
            }
        }
    }

    #[test]
    fn request_bodies_from_the_seeds() {
        each_with_prefixes(
            &files(&root().join("fuzz/seeds/request_json")),
            super::request_json,
        );
    }

    #[test]
    fn restic_fixtures_and_their_cut_off_forms() {
        each_with_prefixes(
            &files(&root().join("tests/fixtures/restic")),
            super::restic_output,
        );
    }

    #[test]
    fn cron_expressions_from_the_seeds() {
        each_with_prefixes(
            &files(&root().join("fuzz/seeds/cron_schedule")),
            super::cron_schedule,
        );
    }

    #[test]
    fn templates_from_the_seeds() {
        each_with_prefixes(&files(&root().join("fuzz/seeds/template")), super::template);
    }

    #[test]
    fn configs_from_the_seeds_and_the_backrest_fixture() {
        let mut inputs = files(&root().join("fuzz/seeds/config"));
        inputs.push(std::fs::read(root().join("tests/fixtures/backrest-config.json")).unwrap());
        for seed in &inputs {
            let text = std::str::from_utf8(seed).unwrap();
            assert!(crate::config::parse(text).is_ok(), "seed loads: {text}");
        }
        each_with_prefixes(&inputs, super::config_text);
    }
}
