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
