//! Backrest's hook variables: what a hook template sees (`.Event`, `.Plan.Id`,
//! `.SnapshotStats.DataAdded`, ...) and the methods it may call (`.Summary`,
//! `.FormatSizeBytes n`, ...), under the Go names Backrest gives them, so a user's
//! existing templates keep working. [`schema`] is what templates are checked against
//! at config load; [`HookVars::to_value`] is what they render.
//!
//! It must never expose a secret: a repo's password and env are not variables, and its
//! URI is shown with any password masked. It does no I/O and sends nothing.

use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::template::{
    self, Method, Schema, Struct, StructType, Template, Type, Value, go_duration, json_float,
    rfc3339,
};
use crate::config::{Condition, Plan, ProtoEnum, Repo, redact_uri};
use crate::proto::BackupProgressSummary;

/// The template of a hook that gives none.
pub const DEFAULT_TEMPLATE: &str = "{{ .Summary }}";

/// The title of a notification whose hook gives no title template.
pub const DEFAULT_TITLE_TEMPLATE: &str = "footrest: {{ .EventName .Event }}\
    {{ with .Plan }} ({{ .Id }}){{ else }}{{ with .Repo }} ({{ .Id }}){{ end }}{{ end }}";

/// What `.Summary` renders: what ran, the result, the error, the snapshot and its
/// stats, the time and how long it took.
const SUMMARY: &str = r#"{{ .Task }}: {{ .EventName .Event }}
{{- with .Repo }}
Repo: {{ .Id }}{{ end }}
{{- with .Plan }}
Plan: {{ .Id }}{{ end }}
{{- if .Error }}
Error: {{ .Error }}{{ end }}
{{- if .SnapshotId }}
Snapshot: {{ .SnapshotId }}{{ end }}
{{- with .SnapshotStats }}
Data added: {{ $.FormatSizeBytes .DataAdded }}
Processed: {{ .TotalFilesProcessed }} files, {{ $.FormatSizeBytes .TotalBytesProcessed }}
Files: {{ .FilesNew }} new, {{ .FilesChanged }} changed, {{ .FilesUnmodified }} unmodified
Dirs: {{ .DirsNew }} new, {{ .DirsChanged }} changed, {{ .DirsUnmodified }} unmodified
{{- end }}
Time: {{ .FormatTime .CurTime }}{{ if .Duration }} (took {{ .FormatDuration .Duration }}){{ end }}"#;

/// The variables of one hook run.
#[derive(Debug, Clone)]
pub struct HookVars {
    /// The condition the hook fires on.
    pub event: Condition,
    /// What ran, e.g. `backup for plan "docs"`.
    pub task: String,
    pub repo: Option<RepoVars>,
    pub plan: Option<PlanVars>,
    pub snapshot_id: String,
    pub snapshot_stats: Option<BackupProgressSummary>,
    pub cur_time: Timestamp,
    /// How long the operation took (zero for a start event).
    pub duration: std::time::Duration,
    /// The operation's error, empty when it succeeded.
    pub error: String,
}

/// The public fields of a repo, as `.Repo` shows them; never its password or env.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepoVars {
    pub id: String,
    /// The URI with any password masked.
    pub uri: String,
    pub guid: String,
    pub auto_unlock: bool,
    pub flags: Vec<String>,
}

impl From<&Repo> for RepoVars {
    fn from(r: &Repo) -> RepoVars {
        RepoVars {
            id: r.id.clone(),
            uri: redact_uri(&r.uri),
            guid: r.guid.clone(),
            auto_unlock: r.auto_unlock,
            flags: r.flags.clone(),
        }
    }
}

/// The fields of a plan `.Plan` shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanVars {
    pub id: String,
    pub repo: String,
    pub paths: Vec<String>,
    pub excludes: Vec<String>,
}

impl From<&Plan> for PlanVars {
    fn from(p: &Plan) -> PlanVars {
        PlanVars {
            id: p.id.clone(),
            repo: p.repo.clone(),
            paths: p.paths.clone(),
            excludes: p.excludes.clone(),
        }
    }
}

const STATS_INTS: [&str; 11] = [
    "FilesNew",
    "FilesChanged",
    "FilesUnmodified",
    "DirsNew",
    "DirsChanged",
    "DirsUnmodified",
    "DataBlobs",
    "TreeBlobs",
    "DataAdded",
    "TotalFilesProcessed",
    "TotalBytesProcessed",
];

/// The names and types hook templates are checked against.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let strs = || Type::List(Box::new(Type::Str));
        let method = |name, params, ret, call| Method {
            name,
            params,
            ret,
            call,
        };
        let mut stats: Vec<(&'static str, Type)> =
            STATS_INTS.iter().map(|n| (*n, Type::Int)).collect();
        stats.push(("TotalDuration", Type::Float));
        stats.push(("SnapshotId", Type::Str));
        Schema::new(
            Type::Struct("HookVars"),
            vec![
                StructType {
                    name: "HookVars",
                    fields: vec![
                        ("Task", Type::Str),
                        ("Event", Type::Enum),
                        ("Repo", Type::Struct("Repo")),
                        ("Plan", Type::Struct("Plan")),
                        ("SnapshotId", Type::Str),
                        ("SnapshotStats", Type::Struct("BackupProgressEntry")),
                        ("CurTime", Type::Time),
                        ("Duration", Type::Duration),
                        ("Error", Type::Str),
                    ],
                    methods: vec![
                        method("Summary", 0, Type::Str, summary),
                        method("EventName", 1, Type::Str, event_name),
                        method("IsError", 1, Type::Bool, is_error),
                        method("FormatTime", 1, Type::Str, format_time),
                        method("FormatDuration", 1, Type::Str, format_duration),
                        method("FormatSizeBytes", 1, Type::Str, format_size_bytes),
                        method("ShellEscape", 1, Type::Str, shell_escape),
                        method("JsonMarshal", 1, Type::Str, json_marshal),
                    ],
                },
                StructType {
                    name: "Repo",
                    fields: vec![
                        ("Id", Type::Str),
                        ("Uri", Type::Str),
                        ("Guid", Type::Str),
                        ("AutoUnlock", Type::Bool),
                        ("Flags", strs()),
                    ],
                    methods: Vec::new(),
                },
                StructType {
                    name: "Plan",
                    fields: vec![
                        ("Id", Type::Str),
                        ("Repo", Type::Str),
                        ("Paths", strs()),
                        ("Excludes", strs()),
                    ],
                    methods: Vec::new(),
                },
                StructType {
                    name: "BackupProgressEntry",
                    fields: stats,
                    methods: Vec::new(),
                },
            ],
        )
    })
}

fn strs(list: &[String]) -> Value {
    Value::List(list.iter().map(|s| Value::Str(s.clone())).collect())
}

impl HookVars {
    /// The variables as a template sees them, times in the system's time zone.
    pub fn to_value(&self) -> Value {
        self.to_value_in(&TimeZone::system())
    }

    /// The variables as a template sees them, times shown in `tz`.
    pub fn to_value_in(&self, tz: &TimeZone) -> Value {
        let repo = self.repo.as_ref().map_or(Value::Nil, |r| {
            Value::Struct(Struct {
                name: "Repo",
                fields: vec![
                    ("Id", Value::Str(r.id.clone())),
                    ("Uri", Value::Str(r.uri.clone())),
                    ("Guid", Value::Str(r.guid.clone())),
                    ("AutoUnlock", Value::Bool(r.auto_unlock)),
                    ("Flags", strs(&r.flags)),
                ],
            })
        });
        let plan = self.plan.as_ref().map_or(Value::Nil, |p| {
            Value::Struct(Struct {
                name: "Plan",
                fields: vec![
                    ("Id", Value::Str(p.id.clone())),
                    ("Repo", Value::Str(p.repo.clone())),
                    ("Paths", strs(&p.paths)),
                    ("Excludes", strs(&p.excludes)),
                ],
            })
        });
        let stats = self.snapshot_stats.as_ref().map_or(Value::Nil, |s| {
            let ints = [
                s.files_new,
                s.files_changed,
                s.files_unmodified,
                s.dirs_new,
                s.dirs_changed,
                s.dirs_unmodified,
                s.data_blobs,
                s.tree_blobs,
                s.data_added,
                s.total_files_processed,
                s.total_bytes_processed,
            ];
            let mut fields: Vec<(&'static str, Value)> = STATS_INTS
                .iter()
                .zip(ints)
                .map(|(n, i)| (*n, Value::Int(i)))
                .collect();
            fields.push(("TotalDuration", Value::Float(s.total_duration)));
            fields.push(("SnapshotId", Value::Str(s.snapshot_id.clone())));
            Value::Struct(Struct {
                name: "BackupProgressEntry",
                fields,
            })
        });
        let nanos = i64::try_from(self.duration.as_nanos()).unwrap_or(i64::MAX);
        Value::Struct(Struct {
            name: "HookVars",
            fields: vec![
                ("Task", Value::Str(self.task.clone())),
                (
                    "Event",
                    Value::Enum(self.event.name(), i64::from(self.event.number())),
                ),
                ("Repo", repo),
                ("Plan", plan),
                ("SnapshotId", Value::Str(self.snapshot_id.clone())),
                ("SnapshotStats", stats),
                ("CurTime", Value::Time(self.cur_time, tz.clone())),
                ("Duration", Value::Duration(nanos)),
                ("Error", Value::Str(self.error.clone())),
            ],
        })
    }
}

fn one(args: &[Value]) -> &Value {
    args.first().unwrap_or(&Value::Nil)
}

fn summary(vars: &Value, _: &[Value]) -> Result<Value, String> {
    static TEMPLATE: OnceLock<Result<Template, String>> = OnceLock::new();
    let t = TEMPLATE.get_or_init(|| template::parse(SUMMARY, schema()).map_err(|e| e.to_string()));
    let t = t
        .as_ref()
        .map_err(|e| format!("the summary template is broken: {e}"))?;
    t.render(vars).map(Value::Str).map_err(|e| e.to_string())
}

/// The condition a value names: an enum or its number.
fn condition(v: &Value) -> Result<Option<Condition>, String> {
    match v {
        Value::Enum(_, n) | Value::Int(n) => Ok(Condition::from_number(*n)),
        v => Err(format!("wants a condition, got {}", v.kind())),
    }
}

fn event_name(_: &Value, args: &[Value]) -> Result<Value, String> {
    use Condition as C;
    let name = match condition(one(args))? {
        Some(C::AnyError) => "error",
        Some(C::SnapshotStart) => "snapshot start",
        Some(C::SnapshotEnd) => "snapshot end",
        Some(C::SnapshotError) => "snapshot error",
        Some(C::SnapshotWarning) => "snapshot warning",
        Some(C::SnapshotSuccess) => "snapshot success",
        Some(C::SnapshotSkipped) => "snapshot skipped",
        Some(C::PruneStart) => "prune start",
        Some(C::PruneError) => "prune error",
        Some(C::PruneSuccess) => "prune success",
        Some(C::CheckStart) => "check start",
        Some(C::CheckError) => "check error",
        Some(C::CheckSuccess) => "check success",
        Some(C::ForgetStart) => "forget start",
        Some(C::ForgetError) => "forget error",
        Some(C::ForgetSuccess) => "forget success",
        Some(C::Unknown) | None => "unknown",
    };
    Ok(Value::Str(name.to_string()))
}

fn is_error(_: &Value, args: &[Value]) -> Result<Value, String> {
    use Condition as C;
    let c = condition(one(args))?;
    Ok(Value::Bool(matches!(
        c,
        Some(C::AnyError | C::SnapshotError | C::PruneError | C::CheckError | C::ForgetError)
    )))
}

/// RFC 3339 in the time's own zone (local for `.CurTime`), to the second.
fn format_time(_: &Value, args: &[Value]) -> Result<Value, String> {
    match one(args) {
        Value::Time(ts, tz) => Ok(Value::Str(rfc3339(*ts, tz, false))),
        v => Err(format!("wants a time, got {}", v.kind())),
    }
}

/// Go's `Duration.String` after truncating to the millisecond (`1m2.345s`); a float
/// counts seconds (`.SnapshotStats.TotalDuration`).
fn format_duration(_: &Value, args: &[Value]) -> Result<Value, String> {
    let nanos = match one(args) {
        Value::Duration(n) | Value::Int(n) => *n,
        Value::Float(secs) => (secs * 1e9) as i64,
        v => return Err(format!("wants a duration, got {}", v.kind())),
    };
    Ok(Value::Str(go_duration(nanos - nanos % 1_000_000)))
}

/// Binary units with one decimal where useful: `512 B`, `1.5 KiB`, `5 MiB`.
fn format_size_bytes(_: &Value, args: &[Value]) -> Result<Value, String> {
    let n = match one(args) {
        Value::Int(n) => *n as f64,
        Value::Float(f) => *f,
        Value::Nil => 0.0,
        v => return Err(format!("wants a number of bytes, got {}", v.kind())),
    };
    Ok(Value::Str(size_bytes(n)))
}

fn size_bytes(n: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let sign = if n < 0.0 { "-" } else { "" };
    let mut v = n.abs();
    if v < 1024.0 {
        return format!("{sign}{} B", v.round());
    }
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    let mut tenths = (v * 10.0).round() / 10.0;
    if tenths >= 1024.0 && unit < UNITS.len() - 1 {
        tenths = (tenths / 1024.0 * 10.0).round() / 10.0;
        unit += 1;
    }
    let shown = if tenths.fract() == 0.0 {
        format!("{tenths:.0}")
    } else {
        format!("{tenths:.1}")
    };
    format!("{sign}{shown} {}", UNITS[unit])
}

/// A word for a POSIX shell: as is when it holds only safe characters, else in single
/// quotes with each `'` written `'\''`.
fn shell_escape(_: &Value, args: &[Value]) -> Result<Value, String> {
    let s = match one(args) {
        Value::Str(s) => s.clone(),
        v => template::print_value(v),
    };
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    let word = if s.is_empty() {
        "''".to_string()
    } else if s.chars().all(safe) {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    };
    Ok(Value::Str(word))
}

/// JSON as Go's `encoding/json` writes the value: the variables under their Go names,
/// `.Repo` and `.Plan` under their proto names without empty fields,
/// `.SnapshotStats` under restic's names; times in RFC 3339, durations in
/// nanoseconds, conditions as numbers. A value JSON cannot hold (NaN) gives "".
fn json_marshal(_: &Value, args: &[Value]) -> Result<Value, String> {
    let mut out = String::new();
    Ok(Value::Str(match json(one(args), &mut out) {
        Some(()) => out,
        None => String::new(),
    }))
}

fn json(v: &Value, out: &mut String) -> Option<()> {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) | Value::Enum(_, n) | Value::Duration(n) => out.push_str(&n.to_string()),
        Value::Float(f) => out.push_str(&json_float(*f)?),
        Value::Str(s) => json_str(s, out),
        Value::Time(ts, tz) => json_str(&rfc3339(*ts, tz, true), out),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json(item, out)?;
            }
            out.push(']');
        }
        Value::Struct(s) => {
            let proto = matches!(s.name, "Repo" | "Plan");
            out.push('{');
            let mut first = true;
            for (name, v) in &s.fields {
                if proto && !v.truth() {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                let key = if s.name == "HookVars" {
                    name.to_string()
                } else {
                    snake(name)
                };
                json_str(&key, out);
                out.push(':');
                json(v, out)?;
            }
            out.push('}');
        }
    }
    Some(())
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if c < ' ' || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNAP: &str = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b";

    fn cet() -> TimeZone {
        TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap()
    }

    fn sample() -> HookVars {
        HookVars {
            event: Condition::SnapshotSuccess,
            task: "backup for plan \"docs\"".into(),
            repo: Some(RepoVars::from(&Repo {
                id: "nas".into(),
                uri: "rest:https://me:hunter2@nas.local/restic".into(),
                password: "topsecret".into(),
                env: vec!["AWS_SECRET_ACCESS_KEY=abc".into()],
                ..Repo::default()
            })),
            plan: Some(PlanVars::from(&Plan {
                id: "docs".into(),
                repo: "nas".into(),
                paths: vec!["/home/me/docs".into()],
                excludes: vec!["*.tmp".into()],
                ..Plan::default()
            })),
            snapshot_id: SNAP.into(),
            snapshot_stats: Some(BackupProgressSummary {
                files_new: 10,
                files_changed: 2,
                files_unmodified: 1222,
                dirs_new: 1,
                dirs_changed: 3,
                dirs_unmodified: 100,
                data_blobs: 12,
                tree_blobs: 4,
                data_added: 5 * 1024 * 1024,
                total_files_processed: 1234,
                total_bytes_processed: 3 << 29,
                total_duration: 62.5,
                snapshot_id: SNAP.into(),
            }),
            cur_time: "2024-05-01T10:00:00Z".parse().unwrap(),
            duration: std::time::Duration::from_millis(62_500),
            error: String::new(),
        }
    }

    fn failed() -> HookVars {
        HookVars {
            event: Condition::SnapshotError,
            snapshot_id: String::new(),
            snapshot_stats: None,
            error: "restic backup: exit status 1: Fatal: unable to open repository".into(),
            duration: std::time::Duration::from_millis(1_234),
            ..sample()
        }
    }

    #[track_caller]
    fn render(src: &str, vars: &HookVars) -> String {
        let t = template::parse(src, schema()).unwrap_or_else(|e| panic!("{src}: {e}"));
        t.render(&vars.to_value_in(&cet()))
            .unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[track_caller]
    fn parse_err(src: &str) -> String {
        template::parse(src, schema()).unwrap_err().to_string()
    }

    #[test]
    fn defaults_and_summary_are_valid_templates() {
        for src in [DEFAULT_TEMPLATE, DEFAULT_TITLE_TEMPLATE, SUMMARY] {
            template::parse(src, schema()).unwrap_or_else(|e| panic!("{src}: {e}"));
        }
        assert_eq!(
            render(DEFAULT_TITLE_TEMPLATE, &sample()),
            "footrest: snapshot success (docs)"
        );
        let prune = HookVars {
            event: Condition::PruneSuccess,
            plan: None,
            ..sample()
        };
        assert_eq!(
            render(DEFAULT_TITLE_TEMPLATE, &prune),
            "footrest: prune success (nas)"
        );
    }

    #[test]
    fn summary_of_a_backup() {
        let want = format!(
            "backup for plan \"docs\": snapshot success\n\
             Repo: nas\n\
             Plan: docs\n\
             Snapshot: {SNAP}\n\
             Data added: 5 MiB\n\
             Processed: 1234 files, 1.5 GiB\n\
             Files: 10 new, 2 changed, 1222 unmodified\n\
             Dirs: 1 new, 3 changed, 100 unmodified\n\
             Time: 2024-05-01T12:00:00+02:00 (took 1m2.5s)"
        );
        assert_eq!(render(DEFAULT_TEMPLATE, &sample()), want);
    }

    #[test]
    fn summary_of_an_error_and_of_a_start() {
        assert_eq!(
            render("{{ .Summary }}", &failed()),
            "backup for plan \"docs\": snapshot error\n\
             Repo: nas\n\
             Plan: docs\n\
             Error: restic backup: exit status 1: Fatal: unable to open repository\n\
             Time: 2024-05-01T12:00:00+02:00 (took 1.234s)"
        );
        let start = HookVars {
            event: Condition::PruneStart,
            task: "prune for repo \"nas\"".into(),
            plan: None,
            snapshot_id: String::new(),
            snapshot_stats: None,
            duration: std::time::Duration::ZERO,
            ..sample()
        };
        assert_eq!(
            render("{{ .Summary }}", &start),
            "prune for repo \"nas\": prune start\n\
             Repo: nas\n\
             Time: 2024-05-01T12:00:00+02:00"
        );
    }

    #[test]
    fn fixture_templates() {
        let ok = sample();
        let bad = failed();
        let line = "{{ .Plan.Id }}: {{ .EventName .Event }}{{ if .Error }} - {{ .Error }}{{ end }}";
        assert_eq!(render(line, &ok), "docs: snapshot success");
        assert_eq!(
            render(line, &bad),
            "docs: snapshot error - restic backup: exit status 1: Fatal: unable to open repository"
        );
        let json = r#"{"plan": "{{ .Plan.Id }}", "snapshot": "{{ .SnapshotId }}", "added": "{{ .FormatSizeBytes .SnapshotStats.DataAdded }}"}"#;
        assert_eq!(
            render(json, &ok),
            format!(r#"{{"plan": "docs", "snapshot": "{SNAP}", "added": "5 MiB"}}"#)
        );
        // Without stats the size is 0 B, not an error.
        assert_eq!(
            render(json, &bad),
            r#"{"plan": "docs", "snapshot": "", "added": "0 B"}"#
        );
        assert_eq!(render("footrest {{ .Plan.Id }}", &ok), "footrest docs");
    }

    #[test]
    fn backrest_documented_examples() {
        // The shape of Backrest's own notification templates and docs examples.
        let t = "{{ if .Error -}}\nBackup of {{ .Plan.Id }} failed: {{ .Error }}\n\
                 {{ else -}}\nBackup of {{ .Plan.Id }} done, added \
                 {{ .FormatSizeBytes .SnapshotStats.DataAdded }}\n{{ end }}";
        assert_eq!(render(t, &sample()), "Backup of docs done, added 5 MiB\n");
        assert_eq!(
            render(t, &failed()),
            "Backup of docs failed: restic backup: exit status 1: Fatal: unable to open repository\n"
        );
        let t = "Task: \"{{ .Task }}\" at {{ .FormatTime .CurTime }}\nPaths:\n\
                 {{ range .Plan.Paths -}}\n - {{ . }}\n{{ end }}";
        assert_eq!(
            render(t, &sample()),
            "Task: \"backup for plan \"docs\"\" at 2024-05-01T12:00:00+02:00\nPaths:\n- /home/me/docs\n"
        );
        let t = "{{ if .IsError .Event }}ALERT {{ end }}{{ .EventName .Event }} \
                 after {{ .FormatDuration .Duration }}";
        assert_eq!(render(t, &failed()), "ALERT snapshot error after 1.234s");
        let cmd = "echo {{ .ShellEscape .Error }} >> /var/log/backups";
        assert_eq!(
            render(cmd, &failed()),
            "echo 'restic backup: exit status 1: Fatal: unable to open repository' >> /var/log/backups"
        );
    }

    #[test]
    fn fields_print_like_go() {
        let v = sample();
        assert_eq!(render("{{ .Event }}", &v), "CONDITION_SNAPSHOT_SUCCESS");
        assert_eq!(
            render("{{ .CurTime }}", &v),
            "2024-05-01 12:00:00 +0200 CEST"
        );
        assert_eq!(render("{{ .Duration }}", &v), "1m2.5s");
        assert_eq!(render("{{ .SnapshotStats.TotalDuration }}", &v), "62.5");
        assert_eq!(
            render("{{ .Plan.Paths }} {{ .Plan.Excludes }}", &v),
            "[/home/me/docs] [*.tmp]"
        );
        assert_eq!(
            render("{{ .Repo.Flags }} {{ .Repo.AutoUnlock }}", &v),
            "[] false"
        );
        let none = HookVars {
            repo: None,
            plan: None,
            ..failed()
        };
        assert_eq!(
            render("[{{ .Plan.Id }}]{{ with .Repo }}x{{ end }}", &none),
            "[<no value>]"
        );
    }

    #[test]
    fn secrets_are_not_variables() {
        let out = render("{{ .Repo.Uri }} {{ .JsonMarshal . }}", &sample());
        assert!(
            out.starts_with("rest:https://me:********@nas.local/restic "),
            "{out}"
        );
        for secret in ["hunter2", "topsecret", "AWS_SECRET", "abc"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert_eq!(
            parse_err("{{ .Repo.Password }}"),
            "line 1, column 4: unknown field .Repo.Password"
        );
        assert_eq!(
            parse_err("x {{ .Repo.Env }}"),
            "line 1, column 6: unknown field .Repo.Env"
        );
        assert_eq!(
            parse_err("{{ .Plan.Idd }}\n{{ .Foo }}"),
            "line 1, column 4: unknown field .Plan.Idd"
        );
        assert_eq!(
            parse_err("{{ .EventName }}"),
            "line 1, column 4: wrong number of arguments for .EventName: want 1, got 0"
        );
    }

    #[test]
    fn event_names_and_errors() {
        let cases = [
            (Condition::Unknown, "unknown", false),
            (Condition::AnyError, "error", true),
            (Condition::SnapshotStart, "snapshot start", false),
            (Condition::SnapshotEnd, "snapshot end", false),
            (Condition::SnapshotError, "snapshot error", true),
            (Condition::SnapshotWarning, "snapshot warning", false),
            (Condition::SnapshotSuccess, "snapshot success", false),
            (Condition::SnapshotSkipped, "snapshot skipped", false),
            (Condition::PruneStart, "prune start", false),
            (Condition::PruneError, "prune error", true),
            (Condition::PruneSuccess, "prune success", false),
            (Condition::CheckStart, "check start", false),
            (Condition::CheckError, "check error", true),
            (Condition::CheckSuccess, "check success", false),
            (Condition::ForgetStart, "forget start", false),
            (Condition::ForgetError, "forget error", true),
            (Condition::ForgetSuccess, "forget success", false),
        ];
        for (event, name, error) in cases {
            let v = HookVars { event, ..sample() };
            assert_eq!(
                render("{{ .EventName .Event }}/{{ .IsError .Event }}", &v),
                format!("{name}/{error}")
            );
        }
        assert_eq!(
            render("{{ .EventName 999 }} {{ .EventName 101 }}", &sample()),
            "unknown prune error"
        );
    }

    #[test]
    fn formatting_methods() {
        let v = sample();
        assert_eq!(
            render("{{ .FormatTime .CurTime }}", &v),
            "2024-05-01T12:00:00+02:00"
        );
        assert_eq!(
            render(
                "{{ .FormatDuration .Duration }} {{ .FormatDuration .SnapshotStats.TotalDuration }}",
                &v
            ),
            "1m2.5s 1m2.5s"
        );
        let quick = HookVars {
            duration: std::time::Duration::from_nanos(1_234_567_891),
            ..sample()
        };
        assert_eq!(render("{{ .FormatDuration .Duration }}", &quick), "1.234s");
        for (n, want) in [
            (0i64, "0 B"),
            (512, "512 B"),
            (1023, "1023 B"),
            (1024, "1 KiB"),
            (1536, "1.5 KiB"),
            (5 << 20, "5 MiB"),
            (3 << 29, "1.5 GiB"),
            (1_048_575, "1 MiB"),
            (1_100_000_000_000, "1 TiB"),
            (-2048, "-2 KiB"),
        ] {
            assert_eq!(
                render(&format!("{{{{ .FormatSizeBytes {n} }}}}"), &v),
                want,
                "{n}"
            );
        }
        assert_eq!(
            template::parse("{{ .FormatTime .Error }}", schema())
                .unwrap()
                .render(&failed().to_value_in(&cet()))
                .unwrap_err()
                .to_string(),
            "line 1, column 4: FormatTime: wants a time, got a string"
        );
    }

    #[test]
    fn shell_escape() {
        let cases = [
            ("docs", "docs"),
            ("/srv/a-b_c.d:e@f%g+h=i,j", "/srv/a-b_c.d:e@f%g+h=i,j"),
            ("", "''"),
            ("a b", "'a b'"),
            ("it's here", r"'it'\''s here'"),
            ("$HOME; rm -rf /", "'$HOME; rm -rf /'"),
        ];
        for (s, want) in cases {
            let v = HookVars {
                error: s.into(),
                ..sample()
            };
            assert_eq!(render("{{ .ShellEscape .Error }}", &v), want, "{s}");
        }
    }

    #[test]
    fn json_marshal_like_go() {
        let v = HookVars {
            error: "<b>\"x\"\n".into(),
            ..sample()
        };
        let j = |src: &str| render(&format!("{{{{ .JsonMarshal {src} }}}}"), &v);
        assert_eq!(
            j(".Plan"),
            r#"{"id":"docs","repo":"nas","paths":["/home/me/docs"],"excludes":["*.tmp"]}"#
        );
        assert_eq!(
            j(".Repo"),
            r#"{"id":"nas","uri":"rest:https://me:********@nas.local/restic"}"#
        );
        assert_eq!(j(".Error"), r#""\u003cb\u003e\"x\"\n""#);
        assert_eq!(j(".CurTime"), r#""2024-05-01T12:00:00+02:00""#);
        assert_eq!(j(".Duration"), "62500000000");
        assert_eq!(j(".Event"), "6");
        assert_eq!(j(".Plan.Paths"), r#"["/home/me/docs"]"#);
        assert_eq!(
            j(".SnapshotStats"),
            format!(
                r#"{{"files_new":10,"files_changed":2,"files_unmodified":1222,"dirs_new":1,"dirs_changed":3,"dirs_unmodified":100,"data_blobs":12,"tree_blobs":4,"data_added":5242880,"total_files_processed":1234,"total_bytes_processed":1610612736,"total_duration":62.5,"snapshot_id":"{SNAP}"}}"#
            )
        );
        let all = j(".");
        assert!(
            all.starts_with(r#"{"Task":"backup for plan \"docs\"","Event":6,"Repo":{"id":"nas","#),
            "{all}"
        );
        assert!(
            all.ends_with(r#""CurTime":"2024-05-01T12:00:00+02:00","Duration":62500000000,"Error":"\u003cb\u003e\"x\"\n"}"#),
            "{all}"
        );
        let none = HookVars {
            plan: None,
            snapshot_stats: None,
            ..sample()
        };
        assert_eq!(
            render(
                "{{ .JsonMarshal .Plan }} {{ .JsonMarshal .SnapshotStats }}",
                &none
            ),
            "null null"
        );
    }
}
