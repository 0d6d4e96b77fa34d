//! Go's printing rules: how `fmt` prints values (`%v`, `print`, `printf`), floats
//! (strconv's shortest `g`), `time.Time` and `time.Duration`, `strconv.Quote`, and the
//! `html`, `js` and `urlquery` escapers.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::Value;

/// A value as `fmt.Print` shows it (`%v`); `nil` is how a nil value at the top shows
/// (`<no value>` in an action, `<nil>` inside `print`).
pub(super) fn display(v: &Value, nil: &str) -> String {
    match v {
        Value::Nil => nil.to_string(),
        Value::Str(s) => s.clone(),
        other => verb_v(other),
    }
}

fn verb_v(v: &Value) -> String {
    match v {
        Value::Nil => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => go_float(*f),
        Value::Str(s) => s.clone(),
        Value::List(l) => format!("[{}]", join(l.iter().map(verb_v))),
        Value::Struct(s) => format!("{{{}}}", join(s.fields.iter().map(|(_, v)| verb_v(v)))),
        Value::Enum(name, _) => (*name).to_string(),
        Value::Time(ts, tz) => go_time(*ts, tz),
        Value::Duration(d) => go_duration(*d),
    }
}

fn join(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join(" ")
}

/// `fmt.Sprint`: a space between operands when neither is a string.
pub(super) fn sprint(vals: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in vals.iter().enumerate() {
        let is_str = |v: &Value| matches!(v, Value::Str(_));
        if i > 0 && !is_str(v) && !is_str(&vals[i - 1]) {
            out.push(' ');
        }
        out.push_str(&display(v, "<nil>"));
    }
    out
}

/// `fmt.Sprintln`: spaces between all operands and a newline.
pub(super) fn sprintln(vals: &[Value]) -> String {
    let mut out = join(vals.iter().map(|v| display(v, "<nil>")));
    out.push('\n');
    out
}

/// Flags, width and precision of one `printf` verb.
#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: usize,
    prec: Option<usize>,
}

/// Go's `fmt` refuses widths and precisions past this (and stops formatting).
const TOO_LARGE: usize = 1_000_000;

/// `fmt.Sprintf` for the verbs `v s d q f F e E g G x X o b c t` and `%%`, with flags
/// `-+# 0`, width and precision; bad verbs, missing and extra arguments print as Go
/// prints them (`%!d(string=hi)`, `%!d(MISSING)`, `%!(EXTRA int=1)`).
pub(super) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next_arg = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        let number = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let mut n: usize = 0;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = n.saturating_mul(10).saturating_add(d as usize);
                chars.next();
            }
            n
        };
        spec.width = number(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(number(&mut chars));
        }
        if spec.width > TOO_LARGE || spec.prec.unwrap_or(0) > TOO_LARGE {
            // Go gives up on the rest of the format here.
            out.push_str("%!(NOVERB)");
            break;
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(next_arg) {
            Some(a) => out.push_str(&format_arg(a, verb, &spec)),
            None => out.push_str(&format!("%!{verb}(MISSING)")),
        }
        next_arg += 1;
    }
    if next_arg < args.len() {
        let extra: Vec<String> = args[next_arg..]
            .iter()
            .map(|a| format!("{}={}", type_name(a), verb_v(a)))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "<nil>",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::Str(_) => "string",
        Value::List(_) => "[]interface {}",
        Value::Struct(s) => s.name,
        Value::Enum(..) => "int32",
        Value::Time(..) => "time.Time",
        Value::Duration(_) => "time.Duration",
    }
}

fn format_arg(v: &Value, verb: char, spec: &Spec) -> String {
    let bad = || match v {
        Value::Nil => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", type_name(v), verb_v(v)),
    };
    let s = match (v, verb) {
        (Value::List(l), _) => {
            return format!("[{}]", join(l.iter().map(|v| format_arg(v, verb, spec))));
        }
        (Value::Struct(s), _) => {
            let fields = s.fields.iter().map(|(_, v)| format_arg(v, verb, spec));
            return format!("{{{}}}", join(fields));
        }
        (Value::Nil, 'v') => "<nil>".to_string(),
        (Value::Bool(b), 'v' | 't') => b.to_string(),
        (Value::Int(i) | Value::Enum(_, i) | Value::Duration(i), 'd' | 'x' | 'X' | 'o' | 'b') => {
            return int(*i, verb, spec);
        }
        (Value::Int(i), 'v') => return int(*i, 'd', spec),
        (Value::Int(i), 'c' | 'q') => {
            let c = u32::try_from(*i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            if verb == 'c' {
                c.to_string()
            } else {
                quote_with(&c.to_string(), '\'')
            }
        }
        (Value::Float(f), 'v') => return float(*f, 'g', spec),
        (Value::Float(f), 'e' | 'E' | 'f' | 'F' | 'g' | 'G') => return float(*f, verb, spec),
        (Value::Str(s), 'x' | 'X') => {
            let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            if verb == 'X' { hex.to_uppercase() } else { hex }
        }
        (
            Value::Str(_) | Value::Enum(..) | Value::Time(..) | Value::Duration(_),
            's' | 'v' | 'q',
        ) => {
            let mut s = display(v, "");
            if let Some(p) = spec.prec {
                s = s.chars().take(p).collect();
            }
            if verb == 'q' { quote(&s) } else { s }
        }
        _ => return bad(),
    };
    pad(s, spec, false)
}

/// Pads to the width: left-aligned with `-`, with zeros after any sign with `0`.
fn pad(s: String, spec: &Spec, numeric: bool) -> String {
    let len = s.chars().count();
    if len >= spec.width {
        return s;
    }
    let fill = spec.width - len;
    if spec.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if spec.zero {
        let sign = if numeric && s.starts_with(['-', '+', ' ']) {
            1
        } else {
            0
        };
        format!("{}{}{}", &s[..sign], "0".repeat(fill), &s[sign..])
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn sign(neg: bool, spec: &Spec) -> &'static str {
    match (neg, spec.plus, spec.space) {
        (true, ..) => "-",
        (false, true, _) => "+",
        (false, false, true) => " ",
        _ => "",
    }
}

fn int(i: i64, verb: char, spec: &Spec) -> String {
    let u = i.unsigned_abs();
    let (mut digits, prefix) = match verb {
        'x' => (format!("{u:x}"), "0x"),
        'X' => (format!("{u:X}"), "0X"),
        'o' => (format!("{u:o}"), "0"),
        'b' => (format!("{u:b}"), "0b"),
        _ => (u.to_string(), ""),
    };
    if let Some(p) = spec.prec {
        if p == 0 && u == 0 {
            digits.clear();
        } else if digits.len() < p {
            digits = format!("{}{digits}", "0".repeat(p - digits.len()));
        }
    }
    let prefix = if spec.sharp { prefix } else { "" };
    let s = format!("{}{prefix}{digits}", sign(i < 0, spec));
    let zero_ok = spec.prec.is_none();
    pad(
        s,
        &Spec {
            zero: spec.zero && zero_ok,
            ..*spec
        },
        true,
    )
}

fn float(f: f64, verb: char, spec: &Spec) -> String {
    if !f.is_finite() {
        let s = if f.is_nan() {
            format!(
                "{}NaN",
                if spec.plus {
                    "+"
                } else if spec.space {
                    " "
                } else {
                    ""
                }
            )
        } else {
            format!(
                "{}Inf",
                if f < 0.0 {
                    "-"
                } else if spec.plus {
                    "+"
                } else if spec.space {
                    " "
                } else {
                    "+"
                }
            )
        };
        return pad(
            s,
            &Spec {
                zero: false,
                ..*spec
            },
            true,
        );
    }
    let abs = f.abs();
    let body = match (verb, spec.prec) {
        ('f' | 'F', p) => format!("{abs:.*}", p.unwrap_or(6)),
        ('e' | 'E', p) => {
            let (digits, exp) = digits_rounded(abs, p.unwrap_or(6) + 1);
            sci(&pad_digits(&digits, p.unwrap_or(6) + 1), exp)
        }
        (_, None) => {
            let (digits, exp) = shortest(abs);
            g_layout(&digits, exp, 6)
        }
        (_, Some(p)) => {
            let p = p.max(1);
            let (digits, exp) = digits_rounded(abs, p);
            let digits = digits.trim_end_matches('0');
            let digits = if digits.is_empty() { "0" } else { digits };
            let dp = exp + 1;
            let nd = digits.len() as i32;
            let mut eprec = p as i32;
            if eprec > nd && nd >= dp {
                eprec = nd;
            }
            g_layout(digits, exp, eprec)
        }
    };
    let body = if verb.is_ascii_uppercase() {
        body.to_uppercase()
    } else {
        body
    };
    let neg = f.is_sign_negative();
    pad(format!("{}{body}", sign(neg, spec)), spec, true)
}

/// Lays out significant `digits` (first digit at 10^exp) as strconv's `%g` does: in
/// `e` notation when `exp < -4 || exp >= eprec`, else positionally.
fn g_layout(digits: &str, exp: i32, eprec: i32) -> String {
    if exp < -4 || exp >= eprec {
        return sci(digits, exp);
    }
    positional(digits, exp)
}

/// `d.ddde+XX` from significant digits.
fn sci(digits: &str, exp: i32) -> String {
    let (first, rest) = digits.split_at(1);
    let dot = if rest.is_empty() { "" } else { "." };
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{first}{dot}{rest}e{sign}{:02}", exp.abs())
}

/// Digits written positionally, with exactly the digits given.
fn positional(digits: &str, exp: i32) -> String {
    if exp < 0 {
        return format!("0.{}{digits}", "0".repeat((-exp - 1) as usize));
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        format!("{digits}{}", "0".repeat(int_len - digits.len()))
    } else {
        format!("{}.{}", &digits[..int_len], &digits[int_len..])
    }
}

fn pad_digits(digits: &str, n: usize) -> String {
    format!("{digits}{}", "0".repeat(n.saturating_sub(digits.len())))
}

/// The shortest digits that read back as `abs` (≥ 0), and the exponent of the first.
fn shortest(abs: f64) -> (String, i32) {
    split_sci(&format!("{abs:e}"))
}

/// `abs` rounded to `n` significant digits (trailing zeros kept).
fn digits_rounded(abs: f64, n: usize) -> (String, i32) {
    split_sci(&format!("{abs:.*e}", n.saturating_sub(1)))
}

fn split_sci(s: &str) -> (String, i32) {
    let (mantissa, exp) = s.split_once('e').unwrap_or((s, "0"));
    (mantissa.replace('.', ""), exp.parse().unwrap_or(0))
}

/// A float as Go's `%v` prints it: strconv's shortest `g` (`4.2`, `1e+06`, `1e-05`).
pub fn go_float(f: f64) -> String {
    float(f, 'g', &Spec::default())
}

/// A float as Go's `encoding/json` writes it (`1`, `0.5`, `1e+21`, `1e-7`); `None` for
/// NaN and infinities, which JSON cannot hold.
pub fn json_float(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let abs = f.abs();
    let (digits, exp) = shortest(abs);
    let body = if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = sci(&digits, exp);
        match s.split_once("e-0") {
            Some((m, e)) => format!("{m}e-{e}"),
            None => s,
        }
    } else {
        positional(&digits, exp)
    };
    Some(format!("{}{body}", if f < 0.0 { "-" } else { "" }))
}

/// A duration in nanoseconds as Go's `time.Duration.String` prints it (`1h2m3.5s`,
/// `250ms`, `0s`).
pub fn go_duration(nanos: i64) -> String {
    let u = nanos.unsigned_abs();
    let sign = if nanos < 0 { "-" } else { "" };
    if u == 0 {
        return "0s".to_string();
    }
    if u < 1_000_000_000 {
        let (unit, prec) = match u {
            0..1_000 => ("ns", 0),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        let scale = 10u64.pow(prec);
        return format!("{sign}{}{}{unit}", u / scale, fraction(u % scale, prec));
    }
    let secs = u / 1_000_000_000;
    let s = format!("{}{}s", secs % 60, fraction(u % 1_000_000_000, 9));
    let (mins, hours) = (secs / 60 % 60, secs / 3600);
    match (hours, secs / 60) {
        (0, 0) => format!("{sign}{s}"),
        (0, _) => format!("{sign}{mins}m{s}"),
        _ => format!("{sign}{hours}h{mins}m{s}"),
    }
}

/// `.ddd` of `frac / 10^prec` without trailing zeros; empty when zero.
fn fraction(frac: u64, prec: u32) -> String {
    if frac == 0 {
        return String::new();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!(".{}", digits.trim_end_matches('0'))
}

/// An instant as Go's `time.Time.String` prints it:
/// `2006-01-02 15:04:05.999999999 -0700 MST`.
pub fn go_time(ts: Timestamp, tz: &TimeZone) -> String {
    let dt = tz.to_datetime(ts);
    let info = tz.to_offset_info(ts);
    let secs = info.offset().seconds();
    let abbr = info.abbreviation();
    let (h, m) = (secs.abs() / 3600, secs.abs() / 60 % 60);
    let offset = format!("{}{h:02}{m:02}", if secs < 0 { '-' } else { '+' });
    let zone = if abbr.is_empty() {
        offset.clone()
    } else {
        abbr.to_string()
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{} {offset} {zone}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        fraction(dt.subsec_nanosecond() as u64, 9),
    )
}

/// An instant in RFC 3339 as Go's layout `2006-01-02T15:04:05Z07:00` writes it, with
/// the fraction of a second (trailing zeros dropped) when `nanos` is set (Go's
/// `RFC3339Nano`).
pub fn rfc3339(ts: Timestamp, tz: &TimeZone, nanos: bool) -> String {
    let dt = tz.to_datetime(ts);
    let secs = tz.to_offset(ts).seconds();
    let offset = if secs == 0 {
        "Z".to_string()
    } else {
        let (h, m) = (secs.abs() / 3600, secs.abs() / 60 % 60);
        format!("{}{h:02}:{m:02}", if secs < 0 { '-' } else { '+' })
    };
    let frac = if nanos {
        fraction(dt.subsec_nanosecond() as u64, 9)
    } else {
        String::new()
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{frac}{offset}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
    )
}

/// A string in double quotes with Go's escapes (`strconv.Quote`).
pub fn quote(s: &str) -> String {
    quote_with(s, '"')
}

fn quote_with(s: &str, q: char) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x80 && (c < ' ' || c == '\x7f') => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => match c as u32 {
                n @ 0..0x10000 => out.push_str(&format!("\\u{n:04x}")),
                n => out.push_str(&format!("\\U{n:08x}")),
            },
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// Go's `html` function (`template.HTMLEscapeString`).
pub(super) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `js` function (`template.JSEscapeString`).
pub(super) fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if c < ' ' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if (c as u32) >= 0x80 && c.is_control() => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `urlquery` function (`url.QueryEscape`).
pub(super) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
