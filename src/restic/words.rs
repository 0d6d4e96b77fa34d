//! Two pure helpers for turning config strings into restic arguments and environment:
//! shell-like word splitting (no shell is ever run) and `$VAR` / `${VAR}` expansion.
//! They know nothing about restic or the config; config validation calls them too, so a
//! bad entry is reported when the config is loaded, not when a backup runs.

/// Splits `s` into words the way a POSIX shell would, without running one:
/// `--exclude-larger-than 4G` is two words, `"a b"` and `'a b'` are one, `\ ` escapes.
/// Unlike a shell, `#` never starts a comment (`--exclude #recycle` keeps `#recycle`,
/// the name of Synology's recycle bin). No globbing, no variables, no command
/// substitution. Errors on an unbalanced quote or a trailing backslash; the message
/// does not repeat `s`, which may hold a secret.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    shlex::split(&escape_comment_starts(s))
        .ok_or_else(|| "unbalanced quote or trailing backslash".to_string())
}

/// shlex treats an unquoted `#` at the start of a word as a comment; a backslash in
/// front of it turns it into an ordinary character. Quoted `#` and `#` inside a word
/// are already literal and are left alone.
fn escape_comment_starts(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut in_single = false;
    let mut in_double = false;
    let mut escaped = false;
    let mut at_word_start = true;
    for ch in s.chars() {
        if escaped {
            escaped = false;
            out.push(ch);
            at_word_start = false;
            continue;
        }
        if in_single {
            in_single = ch != '\'';
            out.push(ch);
            continue;
        }
        if in_double {
            match ch {
                '\\' => escaped = true,
                '"' => in_double = false,
                _ => {}
            }
            out.push(ch);
            continue;
        }
        match ch {
            '\\' => escaped = true,
            '\'' => in_single = true,
            '"' => in_double = true,
            '#' if at_word_start => out.push('\\'),
            _ => {}
        }
        out.push(ch);
        at_word_start = matches!(ch, ' ' | '\t' | '\n');
    }
    out
}

/// Expands `${VAR}` and `$VAR` (a name is `[A-Za-z_][A-Za-z0-9_]*`) using `lookup`;
/// an unset variable expands to the empty string, as in a shell. A `$` that starts
/// neither form, and a `${` without its `}`, are kept as they are.
pub fn expand_env(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) if is_name(&braced[..end]) => {
                    out.push_str(&lookup(&braced[..end]).unwrap_or_default());
                    rest = &braced[end + 1..];
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
            continue;
        }
        let name_len = name_prefix_len(after);
        if name_len == 0 {
            out.push('$');
            rest = after;
        } else {
            out.push_str(&lookup(&after[..name_len]).unwrap_or_default());
            rest = &after[name_len..];
        }
    }
    out.push_str(rest);
    out
}

fn name_prefix_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    if bytes
        .first()
        .is_none_or(|b| !(b.is_ascii_alphabetic() || *b == b'_'))
    {
        return 0;
    }
    bytes
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .unwrap_or(bytes.len())
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && name_prefix_len(s) == s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        split_words(s).unwrap()
    }

    #[test]
    fn splits_on_whitespace_and_groups_quotes() {
        assert_eq!(
            words("--exclude-larger-than 4G"),
            ["--exclude-larger-than", "4G"]
        );
        assert_eq!(
            words(r#"--exclude "My Documents" -o 'a b'"#),
            ["--exclude", "My Documents", "-o", "a b"]
        );
        assert_eq!(words(r"a\ b  c"), ["a b", "c"]);
        assert_eq!(words("--one-file-system"), ["--one-file-system"]);
        assert!(words("   ").is_empty());
    }

    #[test]
    fn no_shell_features() {
        assert_eq!(words("$HOME *.tmp"), ["$HOME", "*.tmp"]);
        assert_eq!(words("a;b |c"), ["a;b", "|c"]);
    }

    #[test]
    fn hash_is_never_a_comment() {
        assert_eq!(words("--exclude #recycle"), ["--exclude", "#recycle"]);
        assert_eq!(words("#a b#c '#d' \"#e\""), ["#a", "b#c", "#d", "#e"]);
        assert_eq!(words(r"\#x"), ["#x"]);
    }

    #[test]
    fn unbalanced_quotes_are_errors_that_hide_the_input() {
        for bad in [r#"--exclude "unclosed"#, "it's", r"trailing\"] {
            let err = split_words(bad).unwrap_err();
            assert_eq!(err, "unbalanced quote or trailing backslash");
        }
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/pi".into()),
            "B2_KEY" => Some("k3y".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_both_forms() {
        assert_eq!(expand_env("${HOME}/.pw", &env), "/home/pi/.pw");
        assert_eq!(expand_env("$HOME/.pw", &env), "/home/pi/.pw");
        assert_eq!(expand_env("KEY=$B2_KEY!", &env), "KEY=k3y!");
        assert_eq!(expand_env("${HOME}${B2_KEY}", &env), "/home/pik3y");
        assert_eq!(expand_env("x${EMPTY}y", &env), "xy");
    }

    #[test]
    fn unset_variables_become_empty() {
        assert_eq!(expand_env("a${NOPE}b", &env), "ab");
        assert_eq!(expand_env("a$NOPE/b", &env), "a/b");
    }

    #[test]
    fn lone_dollars_are_kept() {
        assert_eq!(expand_env("cost $5", &env), "cost $5");
        assert_eq!(expand_env("end$", &env), "end$");
        assert_eq!(expand_env("${unclosed", &env), "${unclosed");
        assert_eq!(expand_env("${bad-name}", &env), "${bad-name}");
        assert_eq!(expand_env("$$HOME", &env), "$/home/pi");
        assert_eq!(expand_env("no vars", &env), "no vars");
    }

    #[test]
    fn names_stop_at_the_first_non_name_character() {
        assert_eq!(expand_env("$HOME.bak", &env), "/home/pi.bak");
        assert_eq!(expand_env("$HOMEX", &env), "");
        assert_eq!(expand_env("é$HOME", &env), "é/home/pi");
    }
}
