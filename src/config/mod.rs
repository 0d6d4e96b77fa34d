//! footrest's configuration: Backrest's `config.json` (format version 6), read as it is.
//!
//! This module owns the config's types, reading them (lenient proto3 JSON; unknown keys
//! kept so a load and save loses nothing), validating them with messages that name the
//! place (`plans[1] "photos": repo "nas2" is not defined`), writing the file atomically
//! (mode 0600), the starter config for a first start, masking secrets for display, and
//! the config in force with its reloading when the file changes. It is a leaf: it must
//! not run restic, look at backup paths on disk (a missing one may be an unmounted
//! disk), know about HTTP, or act on a reload (the caller restarts what depends on the
//! config); and no message it makes holds a secret.
//!
//! Entry points: [`load`] and [`parse`] read and validate, giving the config and its
//! warnings; [`Config::validate`], [`Config::save`], [`Config::starter`];
//! [`Config::redacted`], the config with its secrets masked, as GetConfig shows it.
//! [`store::ConfigStore`] holds the config in force: `get`, `set_repo_guid` (footrest's
//! one write to the file), `reload` and `file_stamp`. [`watch::ConfigWatcher`] says when
//! the file changed (inotify); without inotify, a caller polls `file_stamp` once a
//! minute instead. A reload thread is then: `wait(1 s)` (or the poll), and on a change
//! `reload`, logging its error and keeping the config in force when the file is invalid.
//!
//! Reading and writing are done by hand (`json.rs`) rather than by serde's derive, so
//! that a wrong type or an unknown enum name is reported with its place, every problem
//! is reported at once, and zero-valued keys the file had are written back; the structs
//! still implement `Serialize` and `Deserialize` through it.

pub mod cron;
mod file;
mod json;
mod redact;
pub mod store;
mod types;
mod validate;
pub mod watch;

pub(crate) use file::random_alphanumeric;
pub use json::ProtoEnum;
pub use redact::{is_secret_name, redact_uri};
pub use types::*;
pub use validate::{SUPPORTED_VERSION, is_valid_id};

use serde_json::Value;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why a config could not be read, accepted or written.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read or written (or the starter config could not be
    /// made: host name, random password, data directory).
    Io {
        path: PathBuf,
        /// What was being done, e.g. `read config`.
        action: &'static str,
        source: io::Error,
    },
    /// Not JSON, or a field of the wrong type, or an unknown enum name. One message
    /// per problem; syntax errors carry the line and column.
    Parse {
        path: Option<PathBuf>,
        errors: Vec<String>,
    },
    /// Well-formed but wrong: a bad id, a missing reference, a value out of range.
    /// One message per problem, each naming its place.
    Invalid {
        path: Option<PathBuf>,
        errors: Vec<String>,
    },
}

impl ConfigError {
    /// The problems found in the content (empty for an I/O failure).
    pub fn errors(&self) -> &[String] {
        match self {
            ConfigError::Io { .. } => &[],
            ConfigError::Parse { errors, .. } | ConfigError::Invalid { errors, .. } => errors,
        }
    }

    /// True when the file's content is at fault (parse or validation), as opposed to
    /// the disk: footrest then stops with exit status 2.
    pub fn is_content_error(&self) -> bool {
        !matches!(self, ConfigError::Io { .. })
    }

    fn at(self, file: &Path) -> ConfigError {
        match self {
            ConfigError::Parse { errors, .. } => ConfigError::Parse {
                path: Some(file.to_path_buf()),
                errors,
            },
            ConfigError::Invalid { errors, .. } => ConfigError::Invalid {
                path: Some(file.to_path_buf()),
                errors,
            },
            io @ ConfigError::Io { .. } => io,
        }
    }
}

impl fmt::Display for ConfigError {
    /// An I/O failure is one line; content problems are one line each, prefixed with
    /// the file when known (`/etc/footrest/config.json: plans[1] "photos": ...`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, errors) = match self {
            ConfigError::Io {
                path,
                action,
                source,
            } => return write!(f, "cannot {action} {}: {source}", path.display()),
            ConfigError::Parse { path, errors } | ConfigError::Invalid { path, errors } => {
                (path, errors)
            }
        };
        for (i, error) in errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if let Some(path) = path {
                write!(f, "{}: ", path.display())?;
            }
            f.write_str(error)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Reads, parses and validates the config file at `path`. Gives the config and its
/// warnings (e.g. a missing `version`), which the caller should log.
pub fn load(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        action: "read config",
        source,
    })?;
    parse(&text).map_err(|e| e.at(path))
}

/// Parses and validates config text. Gives the config and its warnings.
pub fn parse(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let what = full.strip_suffix(&suffix).unwrap_or(&full);
        ConfigError::Parse {
            path: None,
            errors: vec![format!(
                "not valid JSON: line {} column {}: {what}",
                e.line(),
                e.column()
            )],
        }
    })?;
    let config = Config::from_value(value)?;
    let warnings = config.validate()?;
    Ok((config, warnings))
}

impl Config {
    /// Reads a config from JSON already parsed, without validating it.
    pub fn from_value(value: Value) -> Result<Config, ConfigError> {
        json::from_value::<Config>(value, &json::Loc::root())
            .map_err(|errors| ConfigError::Parse { path: None, errors })
    }

    /// Checks the whole config, collecting every problem. Gives the warnings when it
    /// is valid.
    pub fn validate(&self) -> Result<Vec<String>, ConfigError> {
        let findings = validate::check(self);
        if findings.errors.is_empty() {
            Ok(findings.warnings)
        } else {
            Err(ConfigError::Invalid {
                path: None,
                errors: findings.errors,
            })
        }
    }

    /// The file's text: pretty-printed with a 2-space indent and a final newline.
    pub fn to_json_pretty(&self) -> String {
        // Serializing plain structs, strings and JSON values into a String cannot fail;
        // an empty object is the harmless answer should it ever.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_string());
        text.push('\n');
        text
    }

    /// Writes the config to `path` atomically (temp file in the same directory, fsync,
    /// rename, directory fsync), mode 0600, creating missing parent directories.
    /// Refuses to write a config that does not validate, so the file on disk is always
    /// one footrest can start with.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        self.validate().map_err(|e| e.at(path))?;
        file::write_atomic(path, self.to_json_pretty().as_bytes()).map_err(|source| {
            ConfigError::Io {
                path: path.to_path_buf(),
                action: "write config",
                source,
            }
        })
    }

    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    pub fn repo(&self, id: &str) -> Option<&Repo> {
        self.repos.iter().find(|r| r.id == id)
    }

    /// True when API calls must authenticate: an `auth` section that is not disabled.
    pub fn auth_enabled(&self) -> bool {
        self.auth.as_ref().is_some_and(|a| !a.disabled)
    }

    /// A starter config for a first start: `instance` is the host name (made a valid
    /// id); one repo `local` at `<data_dir>/repo` with a random 32-character password,
    /// initialised on first use; one plan `example` backing up `<data_dir>/example-data`
    /// (the caller creates that folder) with its schedule disabled; auth disabled.
    /// A relative `data_dir` is made absolute against the current directory.
    pub fn starter(data_dir: &Path) -> Result<Config, ConfigError> {
        let io_error = |action, source| ConfigError::Io {
            path: data_dir.to_path_buf(),
            action,
            source,
        };
        let data_dir = std::path::absolute(data_dir)
            .map_err(|e| io_error("make a starter config for data directory", e))?;
        let utf8 = |p: PathBuf| {
            p.to_str().map(str::to_string).ok_or_else(|| {
                io_error(
                    "make a starter config for data directory",
                    io::Error::new(io::ErrorKind::InvalidData, "the path is not valid UTF-8"),
                )
            })
        };
        let repo_uri = utf8(data_dir.join("repo"))?;
        let example = utf8(data_dir.join("example-data"))?;
        let password = file::random_alphanumeric(32).map_err(|source| ConfigError::Io {
            path: PathBuf::from("/dev/urandom"),
            action: "read random bytes for a repo password from",
            source,
        })?;
        let instance = file::sanitize_id(&file::host_name().unwrap_or_default());
        Ok(Config {
            modno: 0,
            version: Some(SUPPORTED_VERSION),
            instance,
            repos: vec![Repo {
                id: "local".to_string(),
                uri: repo_uri,
                password,
                auto_initialize: true,
                ..Repo::default()
            }],
            plans: vec![Plan {
                id: "example".to_string(),
                repo: "local".to_string(),
                paths: vec![example],
                schedule: Some(Schedule {
                    disabled: true,
                    ..Schedule::default()
                }),
                ..Plan::default()
            }],
            auth: Some(Auth {
                disabled: true,
                ..Auth::default()
            }),
            extra: serde_json::Map::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    const FIXTURE: &str = include_str!("../../tests/fixtures/backrest-config.json");

    fn fixture() -> Config {
        let (config, warnings) = parse(FIXTURE).unwrap_or_else(|e| panic!("{e}"));
        assert!(warnings.is_empty(), "{warnings:?}");
        config
    }

    #[test]
    fn fixture_loads_and_validates() {
        let c = fixture();
        assert_eq!(c.modno, 14);
        assert_eq!(c.version, Some(6));
        assert_eq!(c.instance, "nas01");
        assert!(c.auth_enabled());
        assert_eq!(c.auth.as_ref().unwrap().users[0].name, "admin");

        let offsite = c.repo("b2-offsite").unwrap();
        assert_eq!(offsite.flags, vec!["--limit-upload 2048"]);
        assert!(offsite.auto_unlock);
        let prune = offsite.prune_policy.as_ref().unwrap();
        assert_eq!(prune.max_unused_percent, Some(10.0));
        let prune_schedule = prune.schedule.as_ref().unwrap();
        assert_eq!(prune_schedule.max_frequency_days, Some(30));
        assert_eq!(prune_schedule.clock, Clock::LastRunTime);
        let check = offsite.check_policy.as_ref().unwrap();
        assert_eq!(check.read_data_subset_percent, Some(5.0));
        let prefix = offsite.command_prefix.as_ref().unwrap();
        assert_eq!(
            (prefix.io_nice, prefix.cpu_nice),
            (IoNice::Idle, CpuNice::Low)
        );
        assert_eq!(
            offsite.hooks[0].conditions,
            vec![Condition::PruneError, Condition::CheckError]
        );
        assert!(matches!(
            offsite.hooks[0].action(),
            Some(HookAction::Healthchecks(_))
        ));

        let usb = c.repo("usb-disk").unwrap();
        assert!(usb.auto_initialize && usb.guid.is_empty());
        let forget = usb.forget_policy.as_ref().unwrap();
        let buckets = forget
            .retention
            .as_ref()
            .unwrap()
            .policy_time_bucketed
            .as_ref()
            .unwrap();
        assert_eq!(
            (
                buckets.daily,
                buckets.weekly,
                buckets.monthly,
                buckets.yearly
            ),
            (7, 4, 12, 3)
        );
        assert_eq!(buckets.keep_last_n, 2);

        let docs = c.plan("documents").unwrap();
        assert_eq!(docs.backup_flags.len(), 2);
        assert_eq!(docs.hooks[0].on_error, OnError::Cancel);
        assert_eq!(docs.hooks[2].on_error, OnError::Retry10Minutes);
        let photos = c.plan("photos").unwrap();
        assert!(photos.schedule.as_ref().unwrap().disabled);
        assert_eq!(
            photos.retention.as_ref().unwrap().policy_keep_last_n,
            Some(30)
        );
        let HookAction::Gotify(gotify) = photos.hooks[1].action().unwrap() else {
            panic!("expected a gotify action");
        };
        assert_eq!(gotify.priority, 8);
        assert!(c.extra.contains_key("sync"));
        assert!(c.plan("nope").is_none() && c.repo("nope").is_none());
    }

    #[test]
    fn fixture_is_written_back_byte_for_byte() {
        assert_eq!(fixture().to_json_pretty(), FIXTURE);
    }

    #[test]
    fn load_save_load_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, FIXTURE).unwrap();
        let (first, _) = load(&path).unwrap();
        first.save(&path).unwrap();
        let (second, _) = load(&path).unwrap();
        assert_eq!(first, second);
        let before: Value = serde_json::from_str(FIXTURE).unwrap();
        let after: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(before, after);
    }

    /// Adds `"zzUnknown": {"n": <depth>}` to every object in the tree.
    fn sprinkle_unknown_keys(v: &mut Value, depth: u64) {
        match v {
            Value::Object(map) => {
                for child in map.values_mut() {
                    sprinkle_unknown_keys(child, depth + 1);
                }
                map.insert(
                    "zzUnknown".to_string(),
                    json!({"n": depth, "list": [1, "x"]}),
                );
            }
            Value::Array(items) => items
                .iter_mut()
                .for_each(|i| sprinkle_unknown_keys(i, depth + 1)),
            _ => {}
        }
    }

    #[test]
    fn unknown_keys_survive_at_every_level() {
        let mut input: Value = serde_json::from_str(FIXTURE).unwrap();
        sprinkle_unknown_keys(&mut input, 0);
        let text = serde_json::to_string(&input).unwrap();
        let (config, _) = parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let output: Value = serde_json::from_str(&config.to_json_pretty()).unwrap();
        assert_eq!(input, output);
        // Unknown keys are written after the known ones of their object.
        let repo = &output["repos"][0];
        assert_eq!(
            repo.as_object().unwrap().keys().next_back().unwrap(),
            "zzUnknown"
        );
    }

    /// Found by fuzzing (bench/fuzz.sh, target `config`): unknown keys around a known
    /// one came back in another order on each save, so a file under version control
    /// changed every time footrest wrote it.
    #[test]
    fn unknown_keys_keep_their_order_across_saves() {
        let text = r#"{"version":6,"instance":"x",
            "repos":[{"id":"r","uri":"/tmp/r","password":"p"}],
            "plans":[{"a1":1,"id":"p","a2":2,"repo":"r","a3":3,"paths":["/etc"],"a4":4}],
            "auth":{"disabled":true}}"#;
        let (config, _) = parse(text).unwrap_or_else(|e| panic!("{e}"));
        let written = config.to_json_pretty();
        let plan: Value = serde_json::from_str::<Value>(&written).unwrap()["plans"][0].clone();
        let unknown: Vec<&String> = plan
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with('a'))
            .collect();
        assert_eq!(unknown, ["a1", "a2", "a3", "a4"]);
        let (again, _) = parse(&written).unwrap();
        assert_eq!(
            again.to_json_pretty(),
            written,
            "a second save changes nothing"
        );
    }

    /// Backrest writes its file with protojson's EmitUnpopulated: every field, zero or
    /// not, and `null` for messages that are not set.
    const BACKREST_WRITTEN: &str = r#"{
  "modno": 2,
  "version": 6,
  "instance": "pi",
  "repos": [
    {
      "id": "nas",
      "uri": "sftp:backup@nas:/srv/restic",
      "guid": "5e1f0c1e5b7d2a4c6e8f0b1d3a5c7e9f2b4d6a8c0e1f3a5b7d9c2e4f6a8b0cc2",
      "password": "pw",
      "env": [],
      "flags": [],
      "prunePolicy": {
        "schedule": {
          "maxFrequencyDays": 30,
          "clock": "CLOCK_LAST_RUN_TIME"
        },
        "maxUnusedBytes": "0",
        "maxUnusedPercent": 10
      },
      "checkPolicy": {
        "schedule": {
          "maxFrequencyDays": 30,
          "clock": "CLOCK_LAST_RUN_TIME"
        },
        "structureOnly": true
      },
      "hooks": [],
      "autoUnlock": false,
      "autoInitialize": false,
      "commandPrefix": {
        "ioNice": "IO_DEFAULT",
        "cpuNice": "CPU_DEFAULT"
      },
      "forgetPolicy": null
    }
  ],
  "plans": [
    {
      "id": "home",
      "repo": "nas",
      "paths": [
        "/home"
      ],
      "excludes": [],
      "iexcludes": [],
      "schedule": {
        "cron": "0 * * * *",
        "clock": "CLOCK_DEFAULT"
      },
      "retention": {
        "policyTimeBucketed": {
          "hourly": 24,
          "daily": 30,
          "weekly": 0,
          "monthly": 12,
          "yearly": 0,
          "keepLastN": 0
        }
      },
      "hooks": [
        {
          "conditions": [
            "CONDITION_SNAPSHOT_ERROR"
          ],
          "onError": "ON_ERROR_IGNORE",
          "actionDiscord": {
            "webhookUrl": "https://discord.example.invalid/api/webhooks/1",
            "template": ""
          }
        }
      ],
      "backup_flags": [],
      "skipIfUnchanged": false
    }
  ],
  "auth": {
    "disabled": false,
    "users": [
      {
        "name": "admin",
        "passwordBcrypt": "JDJhJDEwJC9iekxLWkN5Z056QUlidjhmZmwyMy45TmNXVE1PNnNVRTViLmtUclBpcHVnd1IxaGpzOHFh"
      }
    ]
  },
  "sync": null
}
"#;

    #[test]
    fn a_file_as_backrest_writes_it_loads_and_is_written_back_unchanged() {
        let (mut config, warnings) = parse(BACKREST_WRITTEN).unwrap_or_else(|e| panic!("{e}"));
        assert!(warnings.is_empty());
        let repo = &config.repos[0];
        let prune = repo.prune_policy.as_ref().unwrap();
        // maxUnusedBytes has no presence in the protocol: "0" is "not set".
        assert_eq!(prune.max_unused_bytes, None);
        assert_eq!(prune.max_unused_percent, Some(10.0));
        assert!(repo.forget_policy.is_none() && !repo.auto_unlock);
        assert_eq!(config.to_json_pretty(), BACKREST_WRITTEN);

        // A changed field replaces the zero that was written, never doubles it.
        config.repos[0].auto_unlock = true;
        config.repos[0]
            .prune_policy
            .as_mut()
            .unwrap()
            .max_unused_percent = None;
        config.repos[0]
            .prune_policy
            .as_mut()
            .unwrap()
            .max_unused_bytes = Some(1 << 30);
        let text = config.to_json_pretty();
        assert_eq!(text.matches("\"autoUnlock\"").count(), 1);
        let out: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(out["repos"][0]["autoUnlock"], json!(true));
        assert_eq!(
            out["repos"][0]["prunePolicy"],
            json!({"schedule": {"maxFrequencyDays": 30, "clock": "CLOCK_LAST_RUN_TIME"},
                   "maxUnusedBytes": "1073741824"})
        );
    }

    #[test]
    fn snake_case_and_string_numbers_are_read_and_written_as_backrest_writes() {
        let text = r#"{
            "modno": "3", "version": "6", "instance": "pi",
            "repos": [{"id": "r", "uri": "/r", "auto_unlock": true,
                       "prune_policy": {"max_unused_bytes": "1000"},
                       "command_prefix": {"io_nice": 1, "cpu_nice": "CPU_HIGH"}}],
            "plans": [{"id": "p", "repo": "r", "paths": ["/a"], "skip_if_unchanged": true,
                       "schedule": {"max_frequency_hours": "6", "clock": 2},
                       "retention": {"policy_time_bucketed": {"keep_last_n": 1}}}]
        }"#;
        let (config, warnings) = parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert!(warnings.is_empty());
        let out: Value = serde_json::from_str(&config.to_json_pretty()).unwrap();
        assert_eq!(
            out,
            json!({
                "modno": 3, "version": 6, "instance": "pi",
                "repos": [{"id": "r", "uri": "/r", "autoUnlock": true,
                           "prunePolicy": {"maxUnusedBytes": "1000"},
                           "commandPrefix": {"ioNice": "IO_BEST_EFFORT_LOW", "cpuNice": "CPU_HIGH"}}],
                "plans": [{"id": "p", "repo": "r", "paths": ["/a"], "skipIfUnchanged": true,
                           "schedule": {"maxFrequencyHours": 6, "clock": "CLOCK_UTC"},
                           "retention": {"policyTimeBucketed": {"keepLastN": 1}}}]
            })
        );
    }

    #[test]
    fn missing_version_is_a_warning() {
        let (config, warnings) = parse(r#"{"instance": "pi"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.version, None);
        assert_eq!(
            warnings,
            vec!["config has no \"version\"; reading it as version 6"]
        );
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let e = parse("{\n  \"instance\": \"pi\",\n  \"repos\": [,]\n}").unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }));
        assert!(e.is_content_error());
        assert_eq!(
            e.to_string(),
            "not valid JSON: line 3 column 13: expected value"
        );
        let e = parse("{\"instance\": \"pi\"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "not valid JSON: line 1 column 17: EOF while parsing an object"
        );
    }

    #[test]
    fn type_and_enum_errors_name_the_field_and_are_all_reported() {
        let e = parse(
            r#"{"version": 6, "instance": "pi",
                "repos": [{"id": "nas", "uri": "/r", "autoUnlock": "yes",
                           "commandPrefix": {"ioNice": "IO_LOW"}}],
                "plans": [{"id": "p", "repo": "nas", "paths": "/a",
                           "schedule": {"clock": "CLOCK_MOON"},
                           "hooks": [{"conditions": ["CONDITION_SNAPSHOT_BEGIN"],
                                      "actionCommand": {"command": "true"}}]}],
                "auth": {"users": [{"name": "admin", "passwordBcrypt": 5}]}}"#,
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }));
        assert_eq!(
            e.errors(),
            [
                "repos[0] \"nas\": autoUnlock must be true or false, not a string",
                "repos[0] \"nas\": commandPrefix.ioNice has unknown value \"IO_LOW\"; \
                 expected one of IO_DEFAULT, IO_BEST_EFFORT_LOW, IO_BEST_EFFORT_HIGH, IO_IDLE",
                "plans[0] \"p\": paths must be a list, not a string",
                "plans[0] \"p\": schedule.clock has unknown value \"CLOCK_MOON\"; expected one \
                 of CLOCK_DEFAULT, CLOCK_LOCAL, CLOCK_UTC, CLOCK_LAST_RUN_TIME",
                "plans[0] \"p\": hooks[0].conditions[0] has unknown value \
                 \"CONDITION_SNAPSHOT_BEGIN\"; expected one of CONDITION_UNKNOWN, \
                 CONDITION_ANY_ERROR, CONDITION_SNAPSHOT_START, CONDITION_SNAPSHOT_END, \
                 CONDITION_SNAPSHOT_ERROR, CONDITION_SNAPSHOT_WARNING, \
                 CONDITION_SNAPSHOT_SUCCESS, CONDITION_SNAPSHOT_SKIPPED, \
                 CONDITION_PRUNE_START, CONDITION_PRUNE_ERROR, CONDITION_PRUNE_SUCCESS, \
                 CONDITION_CHECK_START, CONDITION_CHECK_ERROR, CONDITION_CHECK_SUCCESS, \
                 CONDITION_FORGET_START, CONDITION_FORGET_ERROR, CONDITION_FORGET_SUCCESS",
                "auth.users[0] \"admin\": passwordBcrypt must be a string, not a number",
            ]
        );
    }

    #[test]
    fn load_errors_name_the_file_one_problem_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(
            &path,
            r#"{"version": 6, "instance": "pi",
                "plans": [{"id": "a", "repo": "nas", "paths": ["/x"]},
                          {"id": "photos", "repo": "nas2", "paths": ["/y"]}]}"#,
        )
        .unwrap();
        let e = load(&path).unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { .. }));
        assert!(e.is_content_error());
        let p = path.display();
        assert_eq!(
            e.to_string(),
            format!(
                "{p}: plans[0] \"a\": repo \"nas\" is not defined\n\
                 {p}: plans[1] \"photos\": repo \"nas2\" is not defined"
            )
        );

        let missing = dir.path().join("nope.json");
        let e = load(&missing).unwrap_err();
        assert!(!e.is_content_error());
        assert!(e.errors().is_empty());
        assert!(
            e.to_string()
                .starts_with(&format!("cannot read config {}: ", missing.display())),
            "{e}"
        );
    }

    #[test]
    fn save_is_atomic_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let config = fixture();
        config.save(&path).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), FIXTURE);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["config.json"]);

        // When the final rename fails, the old content stays and no temp file is left.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("keep"), "x").unwrap();
        let e = config.save(&blocked).unwrap_err();
        assert!(!e.is_content_error());
        assert!(e.to_string().starts_with("cannot write config "), "{e}");
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["blocked", "config.json"]);
        assert_eq!(fs::read_to_string(&path).unwrap(), FIXTURE);
    }

    #[test]
    fn save_refuses_an_invalid_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let mut config = fixture();
        config.plans[0].repo = "gone".to_string();
        let e = config.save(&path).unwrap_err();
        assert_eq!(
            e.errors(),
            ["plans[0] \"documents\": repo \"gone\" is not defined"]
        );
        assert!(!path.exists());
    }

    #[test]
    fn starter_config_validates_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = Config::starter(&data).unwrap();
        assert!(is_valid_id(&config.instance), "{}", config.instance);
        assert_eq!(config.version, Some(6));
        assert!(!config.auth_enabled());
        let repo = config.repo("local").unwrap();
        assert_eq!(repo.uri, data.join("repo").to_str().unwrap());
        assert_eq!(repo.password.len(), 32);
        assert!(repo.password.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(repo.auto_initialize);
        let plan = config.plan("example").unwrap();
        assert_eq!(plan.repo, "local");
        assert_eq!(
            plan.paths,
            vec![data.join("example-data").to_str().unwrap().to_string()]
        );
        assert!(plan.schedule.as_ref().unwrap().disabled);
        assert_eq!(config.validate().unwrap(), Vec::<String>::new());

        let path = dir.path().join("conf/config.json");
        config.save(&path).unwrap();
        let (loaded, warnings) = load(&path).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(loaded, config);
        let other = Config::starter(&data).unwrap();
        assert_ne!(other.repos[0].password, repo.password);
    }

    #[test]
    fn starter_makes_a_relative_data_dir_absolute() {
        let config = Config::starter(Path::new("some/data")).unwrap();
        let uri = &config.repos[0].uri;
        assert!(
            uri.starts_with('/') && uri.ends_with("some/data/repo"),
            "{uri}"
        );
    }

    #[test]
    fn serde_deserialize_gives_the_same_reading() {
        let config: Config = serde_json::from_str(FIXTURE).unwrap();
        assert_eq!(config, fixture());
        let e =
            serde_json::from_str::<Config>(r#"{"repos": [{"id": "a", "uri": 1}]}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("repos[0] \"a\": uri must be a string, not a number"),
            "{e}"
        );
    }
}
