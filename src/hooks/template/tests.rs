//! Engine tests on a small schema of their own. Expected texts follow Go's documented
//! rules for text/template and fmt.

use super::*;

fn greet(_: &Value, args: &[Value]) -> Result<Value, String> {
    match &args[0] {
        Value::Str(s) => Ok(Value::Str(format!("hello {s}"))),
        v => Err(format!("wants a string, got {}", v.kind())),
    }
}

fn shout(recv: &Value, _: &[Value]) -> Result<Value, String> {
    match recv.field("Name") {
        Some(Value::Str(s)) => Ok(Value::Str(s.to_uppercase())),
        _ => Ok(Value::Nil),
    }
}

fn schema() -> Schema {
    let list = |t| Type::List(Box::new(t));
    Schema::new(
        Type::Struct("Root"),
        vec![
            StructType {
                name: "Root",
                fields: vec![
                    ("Name", Type::Str),
                    ("Count", Type::Int),
                    ("Ratio", Type::Float),
                    ("Ok", Type::Bool),
                    ("Items", list(Type::Str)),
                    ("Nums", list(Type::Int)),
                    ("Empties", list(Type::Str)),
                    ("NoList", list(Type::Str)),
                    ("Big", list(Type::Int)),
                    ("Long", Type::Str),
                    ("Sub", Type::Struct("Sub")),
                    ("Subs", list(Type::Struct("Sub"))),
                    ("None", Type::Struct("Sub")),
                    ("Empty", Type::Str),
                    ("When", Type::Time),
                    ("Took", Type::Duration),
                    ("Ev", Type::Enum),
                    ("Anything", Type::Any),
                ],
                methods: vec![
                    Method {
                        name: "Greet",
                        params: 1,
                        ret: Type::Str,
                        call: greet,
                    },
                    Method {
                        name: "Shout",
                        params: 0,
                        ret: Type::Str,
                        call: shout,
                    },
                ],
            },
            StructType {
                name: "Sub",
                fields: vec![("Id", Type::Str), ("N", Type::Int)],
                methods: Vec::new(),
            },
        ],
    )
}

fn sub(id: &str, n: i64) -> Value {
    Value::Struct(Struct {
        name: "Sub",
        fields: vec![("Id", Value::Str(id.into())), ("N", Value::Int(n))],
    })
}

fn strs(items: &[&str]) -> Value {
    Value::List(items.iter().map(|s| Value::Str(s.to_string())).collect())
}

fn data() -> Value {
    let ts: Timestamp = "2024-05-01T10:00:00.5Z".parse().unwrap();
    let tz = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
    Value::Struct(Struct {
        name: "Root",
        fields: vec![
            ("Name", Value::Str("n".into())),
            ("Count", Value::Int(3)),
            ("Ratio", Value::Float(4.2)),
            ("Ok", Value::Bool(true)),
            ("Items", strs(&["a", "b", "c"])),
            ("Nums", Value::List((1..=5).map(Value::Int).collect())),
            ("Empties", Value::List(Vec::new())),
            ("NoList", Value::Nil),
            ("Big", Value::List((0..1000).map(Value::Int).collect())),
            ("Long", Value::Str("x".repeat(2000))),
            ("Sub", sub("s1", 7)),
            ("Subs", Value::List(vec![sub("a", 1), sub("b", 2)])),
            ("None", Value::Nil),
            ("Empty", Value::Str(String::new())),
            ("When", Value::Time(ts, tz)),
            ("Took", Value::Duration(3_723_500_000_000)),
            ("Ev", Value::Enum("CONDITION_SNAPSHOT_END", 3)),
            ("Anything", sub("any", 9)),
        ],
    })
}

#[track_caller]
fn render(src: &str) -> String {
    match parse(src, &schema()) {
        Ok(t) => t.render(&data()).unwrap_or_else(|e| panic!("{src}: {e}")),
        Err(e) => panic!("{src}: {e}"),
    }
}

#[track_caller]
fn parse_err(src: &str) -> String {
    match parse(src, &schema()) {
        Ok(_) => panic!("{src}: parsed"),
        Err(e) => e.to_string(),
    }
}

#[track_caller]
fn render_err(src: &str) -> String {
    let t = parse(src, &schema()).unwrap_or_else(|e| panic!("{src}: {e}"));
    match t.render(&data()) {
        Ok(s) => panic!("{src}: rendered {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn text_and_fields() {
    assert_eq!(render("plain text"), "plain text");
    assert_eq!(render(""), "");
    assert_eq!(render("{{ .Name }}-{{.Count}}"), "n-3");
    assert_eq!(render("{{ .Sub.Id }} {{ .Sub.N }}"), "s1 7");
    assert_eq!(render("{{ .Sub }}"), "{s1 7}");
    assert_eq!(render("{{ .Items }} {{ .Nums }}"), "[a b c] [1 2 3 4 5]");
    assert_eq!(render("{{ .Ok }} {{ .Ev }}"), "true CONDITION_SNAPSHOT_END");
    // A nil struct prints as <no value>, and so do its fields.
    assert_eq!(
        render("{{ .None }}|{{ .None.Id }}"),
        "<no value>|<no value>"
    );
    // `.` itself and `$` are the data.
    assert_eq!(render("{{ with .Sub }}{{ . }}{{ end }}"), "{s1 7}");
    assert_eq!(render("{{ $.Name }}"), "n");
}

#[test]
fn methods_with_arguments() {
    assert_eq!(render("{{ .Greet .Name }}"), "hello n");
    assert_eq!(render("{{ .Greet \"you\" }}"), "hello you");
    assert_eq!(render("{{ .Shout }}"), "N");
    assert_eq!(render("{{ \"x\" | .Greet }}"), "hello x");
    assert_eq!(render("{{ $.Greet (printf \"%d\" .Count) }}"), "hello 3");
    assert_eq!(
        render("{{ with .Sub }}{{ $.Greet .Id }}{{ end }}"),
        "hello s1"
    );
}

#[test]
fn literals() {
    assert_eq!(render(r#"{{ "a\tb\"\u00e9\x41\101" }}"#), "a\tb\"éAA");
    assert_eq!(render("{{ `raw\\n {{` }}"), "raw\\n {{");
    assert_eq!(
        render("{{ 42 }} {{ -3 }} {{ 0x1F }} {{ 017 }} {{ 1_000 }}"),
        "42 -3 31 15 1000"
    );
    assert_eq!(
        render("{{ 1.5 }} {{ 1e3 }} {{ .5 }} {{ 1e6 }}"),
        "1.5 1000 0.5 1e+06"
    );
    assert_eq!(render("{{ true }} {{ false }} {{ 'a' }}"), "true false 97");
}

#[test]
fn trim_markers_follow_go() {
    assert_eq!(render("a  {{- .Name -}}  b"), "anb");
    assert_eq!(render("a\n\t {{- .Name }}\n"), "an\n");
    assert_eq!(render("{{ .Name -}}\n\n  x"), "nx");
    // Newlines count as the space after/before the dash too.
    assert_eq!(render("a\n{{-\n.Name\n-}}\nb"), "anb");
    // Only white space is trimmed.
    assert_eq!(render("a.{{- .Name -}}.b"), "a.n.b");
    // Without a space after it, the dash is a minus sign.
    assert_eq!(render("a {{-3}}"), "a -3");
    assert_eq!(render("a {{ 3 }} b"), "a 3 b");
    // Trimming reaches across lines to the next non-space.
    assert_eq!(render("x\n\n{{- if .Ok }}\n  y\n{{- end }}\n"), "x\n  y\n");
}

#[test]
fn comments() {
    assert_eq!(render("a {{/* c */}} b"), "a  b");
    assert_eq!(render("a {{- /* c\nmore */ -}} b"), "ab");
    assert_eq!(
        parse_err("x {{/* open"),
        "line 1, column 3: unclosed comment"
    );
    assert_eq!(
        parse_err("{{/* c */ .Name }}"),
        "line 1, column 10: comment ends before closing delimiter"
    );
}

#[test]
fn backrest_style_multiline_if_else() {
    let t = "{{ if .Empty -}}\nFailed: {{ .Empty }}\n{{ else -}}\nOK: {{ .Name }}\n{{ end }}";
    assert_eq!(render(t), "OK: n\n");
    let t = "{{ if .Name -}}\nFailed: {{ .Name }}\n{{ else -}}\nOK\n{{ end }}";
    assert_eq!(render(t), "Failed: n\n");
    let t = "Paths:\n{{ range .Items -}}\n - {{ . }}\n{{ end }}";
    // ` -}}` trims the indentation of the next line too, as in Go.
    assert_eq!(render(t), "Paths:\n- a\n- b\n- c\n");
}

#[test]
fn if_else_if_and_truth() {
    let t = "{{ if eq .Count 1 }}one{{ else if eq .Count 3 }}three{{ else }}other{{ end }}";
    assert_eq!(render(t), "three");
    let t = "{{ if .Empty }}a{{ else if .None }}b{{ else }}c{{ end }}";
    assert_eq!(render(t), "c");
    let truth = |x: &str| render(&format!("{{{{ if {x} }}}}T{{{{ else }}}}F{{{{ end }}}}"));
    for falsy in [
        "false", "0", "0.0", "\"\"", ".Empty", ".Empties", ".None", ".NoList",
    ] {
        assert_eq!(truth(falsy), "F", "{falsy}");
    }
    for truthy in [
        "true", "1", "-0.5", "\"x\"", ".Items", ".Sub", ".Took", ".When", ".Ev",
    ] {
        assert_eq!(truth(truthy), "T", "{truthy}");
    }
}

#[test]
fn with_rebinds_dot() {
    assert_eq!(
        render("{{ with .Sub }}{{ .Id }}/{{ $.Name }}{{ end }}"),
        "s1/n"
    );
    assert_eq!(render("{{ with .Empty }}x{{ else }}none{{ end }}"), "none");
    assert_eq!(
        render("{{ with .None }}{{ .Id }}{{ else }}{{ .Name }}{{ end }}"),
        "n"
    );
    assert_eq!(render("{{ with $s := .Sub }}{{ $s.Id }}{{ end }}"), "s1");
    assert_eq!(
        parse_err("{{ with .Sub }}{{ .Name }}{{ end }}"),
        "line 1, column 19: unknown field .Name"
    );
}

#[test]
fn range_over_lists() {
    assert_eq!(render("{{ range .Items }}[{{ . }}]{{ end }}"), "[a][b][c]");
    assert_eq!(
        render("{{ range $i, $e := .Items }}{{ $i }}={{ $e }} {{ end }}"),
        "0=a 1=b 2=c "
    );
    assert_eq!(render("{{ range $e := .Items }}{{ $e }}{{ end }}"), "abc");
    assert_eq!(
        render("{{ range .Empties }}x{{ else }}empty{{ end }}"),
        "empty"
    );
    assert_eq!(render("{{ range .NoList }}x{{ else }}nil{{ end }}"), "nil");
    assert_eq!(render("{{ range .Items }}{{ $.Name }}{{ end }}"), "nnn");
    assert_eq!(
        render("{{ range .Subs }}{{ .Id }}{{ .N }}{{ end }}"),
        "a1b2"
    );
    let t = "{{ range .Nums }}{{ if eq . 2 }}{{ continue }}{{ end }}\
             {{ if eq . 4 }}{{ break }}{{ end }}{{ . }}{{ end }}";
    assert_eq!(render(t), "13");
    assert_eq!(
        parse_err("{{ range .Subs }}{{ .Idd }}{{ end }}"),
        "line 1, column 21: unknown field .Idd"
    );
    assert_eq!(
        parse_err("{{ range .Name }}{{ end }}"),
        "line 1, column 10: can't range over a string"
    );
    assert_eq!(
        render_err("{{ range .Anything }}{{ end }}"),
        "line 1, column 10: can't range over a struct"
    );
}

#[test]
fn variables_and_scope() {
    assert_eq!(render("{{ $x := 5 }}{{ $x }}"), "5");
    assert_eq!(
        render("{{ $x := 1 }}{{ if .Ok }}{{ $x = 2 }}{{ end }}{{ $x }}"),
        "2"
    );
    assert_eq!(render("{{ $s := .Sub }}{{ $s.Id }}"), "s1");
    assert_eq!(render("{{ if $n := .Name }}{{ $n }}{{ end }}"), "n");
    assert_eq!(
        parse_err("{{ if .Ok }}{{ $y := 1 }}{{ end }}{{ $y }}"),
        "line 1, column 38: undefined variable $y"
    );
    assert_eq!(
        parse_err("{{ $z = 1 }}"),
        "line 1, column 4: undefined variable $z"
    );
    assert_eq!(
        parse_err("{{ $s := .Sub }}{{ $s.Nope }}"),
        "line 1, column 20: unknown field $s.Nope"
    );
}

#[test]
fn pipelines_and_parentheses() {
    assert_eq!(render("{{ .Name | printf \"%s!\" }}"), "n!");
    assert_eq!(render("{{ .Items | len }}"), "3");
    assert_eq!(render("{{ printf \"%d\" (len .Items) }}"), "3");
    assert_eq!(render("{{ (index .Subs 1).Id }}"), "b");
    assert_eq!(render("{{ .Count | eq 3 }}"), "true");
    assert_eq!(render("{{ \"a\" | printf \"%s%s\" \"b\" }}"), "ba");
}

#[test]
fn builtin_functions() {
    assert_eq!(render("{{ len .Items }} {{ len \"héllo\" }}"), "3 6");
    assert_eq!(render("{{ index .Items 1 }} {{ index \"abc\" 1 }}"), "b 98");
    assert_eq!(render("{{ not .Ok }} {{ not 0 }}"), "false true");
    assert_eq!(
        render("{{ and 1 0 2 }} {{ and 1 2 }} {{ or 0 \"\" \"x\" }}"),
        "0 2 x"
    );
    assert_eq!(render("[{{ or 0 \"\" }}]"), "[]");
    // and/or stop at the first deciding argument.
    assert_eq!(
        render("{{ or 1 (index .Items 10) }} {{ and 0 (index .Items 10) }}"),
        "1 0"
    );
    assert_eq!(
        render("{{ eq .Count 3 }} {{ eq .Name \"x\" \"y\" \"n\" }} {{ ne 1 2 }}"),
        "true true true"
    );
    assert_eq!(
        render("{{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1.5 2 }}"),
        "true true true false"
    );
    assert_eq!(
        render("{{ eq 1 1.0 }} {{ eq .Ev 3 }} {{ eq .Ev \"CONDITION_SNAPSHOT_END\" }}"),
        "true true true"
    );
    assert_eq!(
        render("{{ eq .None nil }} {{ eq .Name nil }}"),
        "true false"
    );
    assert_eq!(render("{{ gt .Took 1000 }}"), "true");
    assert_eq!(render("{{ print 1 2 \"a\" 3 \"b\" \"c\" }}"), "1 2a3bc");
    assert_eq!(render("{{ println 1 \"a\" }}"), "1 a\n");
    assert_eq!(render("{{ print nil }}"), "<nil>");
    assert_eq!(
        render(r#"{{ html "<a href='x'>&\"" }}"#),
        "&lt;a href=&#39;x&#39;&gt;&amp;&#34;"
    );
    assert_eq!(
        render(r#"{{ js "it's <b>\"x\"=y\\" }}"#),
        r#"it\'s \u003Cb\u003E\"x\"\u003Dy\\"#
    );
    assert_eq!(
        render("{{ urlquery \"a b&c=d/é\" }}"),
        "a+b%26c%3Dd%2F%C3%A9"
    );
    assert_eq!(render("{{ html 1 \"<\" }}"), "1&lt;");
}

#[test]
fn printf_verbs() {
    assert_eq!(render("{{ printf \"%.2f\" 3.14159 }}"), "3.14");
    assert_eq!(
        render(
            r#"{{ printf "%5.1f|%-6d|%05d|%x|%X|%q|%v|%s|%%" 2.26 42 -42 255 "hi" "a\"b" .Items .Name }}"#
        ),
        r#"  2.3|42    |-0042|ff|6869|"a\"b"|[a b c]|n|%"#
    );
    assert_eq!(
        render("{{ printf \"%d %s\" \"x\" }}"),
        "%!d(string=x) %!s(MISSING)"
    );
    assert_eq!(render("{{ printf \"%d\" 1 2 }}"), "1%!(EXTRA int=2)");
    assert_eq!(
        render("{{ printf \"%z|%f\" 1 5 }}"),
        "%!z(int=1)|%!f(int=5)"
    );
    assert_eq!(
        render("{{ printf \"%e|%g|%.3g|%g\" 1234.5678 1e21 1234.0 0.5 }}"),
        "1.234568e+03|1e+21|1.23e+03|0.5"
    );
    assert_eq!(
        render("{{ printf \"%+d|%t|%c|%o|%#x|%8.3f\" 5 true 65 8 255 3.14159 }}"),
        "+5|true|A|10|0xff|   3.142"
    );
    assert_eq!(
        render("{{ printf \"%5s|%-5s|%.2s|%05s\" \"ab\" \"ab\" \"abc\" \"ab\" }}"),
        "   ab|ab   |ab|000ab"
    );
    assert_eq!(
        render("{{ printf \"%v|%s|%d\" .Took .Took .Took }}"),
        "1h2m3.5s|1h2m3.5s|3723500000000"
    );
    assert_eq!(
        render("{{ printf \"%v|%d|%q\" .Ev .Ev .Ev }}"),
        "CONDITION_SNAPSHOT_END|3|\"CONDITION_SNAPSHOT_END\""
    );
    assert_eq!(
        render("{{ printf \"%d|%v\" .Nums nil }}"),
        "[1 2 3 4 5]|<nil>"
    );
    assert_eq!(render("{{ printf \"%\" }}"), "%!(NOVERB)");
    // Go stops at a width it considers too large.
    assert_eq!(
        render("{{ printf \"%2000000d\" 1 }}"),
        "%!(NOVERB)%!(EXTRA int=1)"
    );
}

#[test]
fn floats_print_like_go() {
    let cases = [
        (4.2, "4.2"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (100.0, "100"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-0.5, "-0.5"),
        (0.0, "0"),
        (1.0 / 3.0, "0.3333333333333333"),
        (1e21, "1e+21"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (f64::NAN, "NaN"),
    ];
    for (f, want) in cases {
        assert_eq!(go_float(f), want, "{f}");
    }
    let json = [
        (1.0, "1"),
        (0.5, "0.5"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (123456789.0, "123456789"),
        (-2.5, "-2.5"),
    ];
    for (f, want) in json {
        assert_eq!(json_float(f).as_deref(), Some(want), "{f}");
    }
    assert_eq!(json_float(f64::NAN), None);
    assert_eq!(render("{{ .Ratio }}"), "4.2");
}

#[test]
fn durations_print_like_go() {
    let cases = [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (250_000_000, "250ms"),
        (1_500_000_000, "1.5s"),
        (61_000_000_000, "1m1s"),
        (3_600_000_000_000, "1h0m0s"),
        (3_723_500_000_000, "1h2m3.5s"),
        (-2_000_000_000, "-2s"),
        (90_061_000_000_001, "25h1m1.000000001s"),
    ];
    for (d, want) in cases {
        assert_eq!(go_duration(d), want, "{d}");
    }
    assert_eq!(render("{{ .Took }}"), "1h2m3.5s");
}

#[test]
fn times_print_like_go() {
    assert_eq!(render("{{ .When }}"), "2024-05-01 12:00:00.5 +0200 CEST");
    let ts: Timestamp = "2024-01-02T03:04:05Z".parse().unwrap();
    assert_eq!(go_time(ts, &TimeZone::UTC), "2024-01-02 03:04:05 +0000 UTC");
    let cet = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
    assert_eq!(go_time(ts, &cet), "2024-01-02 04:04:05 +0100 CET");
    assert_eq!(rfc3339(ts, &cet, false), "2024-01-02T04:04:05+01:00");
    assert_eq!(rfc3339(ts, &TimeZone::UTC, false), "2024-01-02T03:04:05Z");
    let ts: Timestamp = "2024-01-02T03:04:05.120Z".parse().unwrap();
    assert_eq!(rfc3339(ts, &TimeZone::UTC, true), "2024-01-02T03:04:05.12Z");
}

#[test]
fn quoting_like_strconv() {
    assert_eq!(quote("a\"b\\c\n\x01é"), r#""a\"b\\c\n\x01é""#);
}

#[test]
fn syntax_errors_name_the_place() {
    let cases = [
        ("{{ .Name", "line 1, column 1: unclosed action"),
        ("ab\ncd {{ .Name ", "line 2, column 4: unclosed action"),
        ("{{ .Name }", "line 1, column 10: unexpected '}' in action"),
        (
            "x{{ if .Ok }}y",
            "line 1, column 2: missing {{ end }} for {{ if }}",
        ),
        (
            "{{ range .Items }}{{ else }}",
            "line 1, column 1: missing {{ end }} for {{ range }}",
        ),
        ("{{ end }}", "line 1, column 1: unexpected {{ end }}"),
        ("a{{ else }}", "line 1, column 2: unexpected {{ else }}"),
        (
            "{{ if 1 }}a{{ else }}b{{ else }}c{{ end }}",
            "line 1, column 23: unexpected {{ else }} after {{ else }}",
        ),
        (
            "{{ with 1 }}{{ else if 2 }}{{ end }}",
            "line 1, column 13: {{ else if }} inside {{ with }}",
        ),
        ("{{ }}", "line 1, column 4: missing value for command"),
        (
            "{{ \"abc }}",
            "line 1, column 4: unterminated quoted string",
        ),
        (
            "{{ `abc }}",
            "line 1, column 4: unterminated raw quoted string",
        ),
        (
            r#"{{ "a\q" }}"#,
            "line 1, column 6: invalid escape \\q in string",
        ),
        ("{{ 0x }}", "line 1, column 4: bad number syntax: \"0x\""),
        (
            "{{ 3abc }}",
            "line 1, column 4: bad number syntax: \"3abc\"",
        ),
        ("{{ (1 }}", "line 1, column 4: unclosed left parenthesis"),
        (
            "{{ .Name ) }}",
            "line 1, column 10: unexpected \")\" in command",
        ),
        (
            "{{ .Name # }}",
            "line 1, column 10: unexpected '#' in action",
        ),
        (
            "{{ template \"x\" }}",
            "line 1, column 1: {{ template }} is not supported",
        ),
        (
            "{{ define \"x\" }}{{ end }}",
            "line 1, column 1: {{ define }} is not supported",
        ),
        (
            "{{ break }}",
            "line 1, column 1: {{ break }} outside {{ range }}",
        ),
        ("{{ nil }}", "line 1, column 4: nil is not a command"),
        (
            "{{ 1 | 2 }}",
            "line 1, column 8: can't give arguments to a non-function",
        ),
        (
            "{{ .Name 1 }}",
            "line 1, column 4: .Name is a field, it takes no arguments",
        ),
        (
            "{{ print if }}",
            "line 1, column 10: unexpected \"if\" in command",
        ),
        (
            "{{ $x, $y := .Items }}",
            "line 1, column 4: too many declarations",
        ),
    ];
    for (src, want) in cases {
        assert_eq!(parse_err(src), want, "{src}");
    }
}

#[test]
fn unknown_names_are_parse_errors() {
    let cases = [
        ("hello {{ .Nme }}", "line 1, column 10: unknown field .Nme"),
        (
            "a\nb {{ .Sub.Idd }}",
            "line 2, column 6: unknown field .Sub.Idd",
        ),
        ("{{ foo 1 }}", "line 1, column 4: unknown function foo"),
        ("{{ $x }}", "line 1, column 4: undefined variable $x"),
        (
            "{{ .Greet }}",
            "line 1, column 4: wrong number of arguments for .Greet: want 1, got 0",
        ),
        (
            "{{ .Shout 1 }}",
            "line 1, column 4: wrong number of arguments for .Shout: want 0, got 1",
        ),
        (
            "{{ .Name.Foo }}",
            "line 1, column 4: can't use .Name.Foo: .Name is a string",
        ),
        (
            "{{ len }}",
            "line 1, column 4: wrong number of arguments for len: want 1, got 0",
        ),
        (
            "{{ lt 1 2 3 }}",
            "line 1, column 4: wrong number of arguments for lt: want 2, got 3",
        ),
        (
            "{{ eq 1 }}",
            "line 1, column 4: wrong number of arguments for eq: want at least 2, got 1",
        ),
        ("{{ $.Nope }}", "line 1, column 4: unknown field $.Nope"),
        (
            "{{ (.Sub).Nope }}",
            "line 1, column 4: unknown field (...).Nope",
        ),
        (
            "{{ index .Subs 0 | printf \"%v\" }}{{ (index .Subs 0).X }}",
            "line 1, column 37: unknown field (...).X",
        ),
    ];
    for (src, want) in cases {
        assert_eq!(parse_err(src), want, "{src}");
    }
    // A value of type Any is checked when the template runs.
    assert_eq!(
        render_err("x\n{{ .Anything.Nope }}"),
        "line 2, column 4: Sub has no field or method Nope"
    );
    assert_eq!(render("{{ .Anything.Id }}"), "any");
}

#[test]
fn runtime_errors_name_the_place() {
    assert_eq!(
        render_err("{{ index .Items 5 }}"),
        "line 1, column 4: error calling index: index out of range: 5"
    );
    assert_eq!(
        render_err("{{ eq .Name 1 }}"),
        "line 1, column 4: error calling eq: incompatible types for comparison: a string and an int"
    );
    assert_eq!(
        render_err("{{ .Greet 1 }}"),
        "line 1, column 4: Greet: wants a string, got an int"
    );
    assert_eq!(
        render_err("{{ len nil }}"),
        "line 1, column 4: error calling len: len of nil"
    );
    assert_eq!(
        render_err("{{ len .Sub }}"),
        "line 1, column 4: error calling len: len of a struct"
    );
    // A value of type Any is only known when the template runs.
    assert_eq!(
        render_err("{{ .Anything.Id 1 }}"),
        "line 1, column 4: Id is a field, it takes no arguments"
    );
}

#[test]
fn runaway_templates_are_stopped() {
    assert_eq!(
        render_err("{{ range .Big }}{{ range $.Big }}{{ end }}{{ end }}"),
        "line 1, column 26: more than 100000 range iterations"
    );
    assert_eq!(
        render_err("{{ range .Big }}{{ $.Long }}{{ end }}"),
        "line 1, column 20: the output is longer than 1 MiB"
    );
    assert_eq!(
        render_err("{{ $s := \"ab\" }}{{ range .Big }}{{ $s = print $s $s }}{{ end }}"),
        "line 1, column 41: the result of print is longer than 1 MiB"
    );
    let deep = format!("{}{}", "{{ if 1 }}".repeat(60), "{{ end }}".repeat(60));
    assert_eq!(
        parse_err(&deep),
        "line 1, column 501: control structures are nested too deeply"
    );
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(60), ")".repeat(60));
    assert_eq!(
        parse_err(&parens),
        "line 1, column 54: parentheses are nested too deeply"
    );
    // Just under the caps is fine.
    assert_eq!(
        render("{{ range .Big }}{{ range $.Nums }}{{ end }}{{ end }}ok"),
        "ok"
    );
}
