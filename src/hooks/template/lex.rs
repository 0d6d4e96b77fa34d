//! The lexer: splits a template into text and the tokens of its actions, applying
//! Go's trim markers (`{{- ` and ` -}}`) to the text and dropping comments.

use super::{Fail, fail};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Text(String),
    /// `{{`
    Open,
    /// `}}`
    Close,
    Ident(String),
    /// `.Name`
    Field(String),
    /// `.` alone
    Dot,
    /// `$` or `$name`, with the `$`
    Var(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub tok: Tok,
    /// Byte offset in the source.
    pub off: usize,
    /// Whether white space came just before it inside an action.
    pub spaced: bool,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

pub(super) fn lex(src: &str) -> Result<Vec<Token>, Fail> {
    let mut toks = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    loop {
        let open = src[pos..].find("{{").map_or(src.len(), |i| pos + i);
        let mut text = &src[pos..open];
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        if open == src.len() {
            push_text(&mut toks, text, pos);
            return Ok(toks);
        }
        let mut p = open + 2;
        if src[p..].starts_with('-') && src[p + 1..].starts_with(is_space) {
            text = text.trim_end_matches(is_space);
            p += 2;
        }
        push_text(&mut toks, text, pos);
        if src[p..].starts_with("/*") {
            let Some(end) = src[p + 2..].find("*/") else {
                return fail(open, "unclosed comment");
            };
            p += 2 + end + 2;
            match right_delim(src, p) {
                Some((len, trim)) => {
                    pos = p + len;
                    trim_next = trim;
                }
                None => return fail(p, "comment ends before closing delimiter"),
            }
            continue;
        }
        toks.push(Token {
            tok: Tok::Open,
            off: open,
            spaced: false,
        });
        (pos, trim_next) = lex_action(src, p, open, &mut toks)?;
    }
}

fn push_text(toks: &mut Vec<Token>, text: &str, off: usize) {
    if !text.is_empty() {
        toks.push(Token {
            tok: Tok::Text(text.to_string()),
            off,
            spaced: false,
        });
    }
}

/// At `p`, a closing `}}` (length 2) or ` -}}` (length 4, trims what follows).
fn right_delim(src: &str, p: usize) -> Option<(usize, bool)> {
    let rest = &src[p..];
    if rest.starts_with(is_space) && rest[1..].starts_with("-}}") {
        Some((4, true))
    } else if rest.starts_with("}}") {
        Some((2, false))
    } else {
        None
    }
}

/// Lexes one action's tokens from `p` up to and including its `}}`; returns the offset
/// after it and whether the next text is trimmed.
fn lex_action(
    src: &str,
    mut p: usize,
    open: usize,
    toks: &mut Vec<Token>,
) -> Result<(usize, bool), Fail> {
    let mut spaced = false;
    loop {
        if let Some((len, trim)) = right_delim(src, p) {
            toks.push(Token {
                tok: Tok::Close,
                off: p,
                spaced,
            });
            return Ok((p + len, trim));
        }
        let rest = &src[p..];
        let Some(c) = rest.chars().next() else {
            return fail(open, "unclosed action");
        };
        if is_space(c) {
            spaced = true;
            p += c.len_utf8();
            continue;
        }
        let next = rest[c.len_utf8()..].chars().next();
        let start = p;
        let tok = match c {
            '|' => Tok::Pipe,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '=' => Tok::Assign,
            ':' if next == Some('=') => {
                p += 1;
                Tok::Declare
            }
            '"' => {
                let (s, len) = lex_quoted(rest, start)?;
                p += len - 1;
                Tok::Str(s)
            }
            '`' => match rest[1..].find('`') {
                Some(end) => {
                    p += end + 1;
                    Tok::Str(rest[1..end + 1].to_string())
                }
                None => return fail(start, "unterminated raw quoted string"),
            },
            '\'' => {
                let (n, len) = lex_char(rest, start)?;
                p += len - 1;
                Tok::Int(n)
            }
            '$' => {
                let len = 1 + rest[1..].find(|c| !is_alnum(c)).unwrap_or(rest.len() - 1);
                p += len - 1;
                Tok::Var(rest[..len].to_string())
            }
            '.' if next.is_some_and(|n| n == '_' || n.is_alphabetic()) => {
                let len = 1 + rest[1..].find(|c| !is_alnum(c)).unwrap_or(rest.len() - 1);
                p += len - 1;
                Tok::Field(rest[1..len].to_string())
            }
            '.' if !next.is_some_and(|n| n.is_ascii_digit()) => Tok::Dot,
            '0'..='9' | '.' | '+' | '-'
                if c.is_ascii_digit() || next.is_some_and(|n| n.is_ascii_digit() || n == '.') =>
            {
                let (tok, len) = lex_number(rest, start)?;
                p += len - 1;
                tok
            }
            c if c == '_' || c.is_alphabetic() => {
                let len = rest.find(|c| !is_alnum(c)).unwrap_or(rest.len());
                p += len - c.len_utf8();
                match &rest[..len] {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    word => Tok::Ident(word.to_string()),
                }
            }
            _ => return fail(start, format!("unexpected {c:?} in action")),
        };
        p += c.len_utf8();
        toks.push(Token {
            tok,
            off: start,
            spaced,
        });
        spaced = false;
    }
}

fn lex_number(rest: &str, off: usize) -> Result<(Tok, usize), Fail> {
    let mut len = 0;
    let mut prev = ' ';
    for c in rest.chars() {
        let sign_ok = len == 0 || matches!(prev, 'e' | 'E' | 'p' | 'P') && !is_hex(rest);
        if !(is_alnum(c) || c == '.' || (matches!(c, '+' | '-') && sign_ok)) {
            break;
        }
        len += c.len_utf8();
        prev = c;
    }
    let text = &rest[..len];
    let bad = || Fail {
        off,
        msg: format!("bad number syntax: {text:?}"),
    };
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits: String = body.chars().filter(|&c| c != '_').collect();
    let lower = digits.to_ascii_lowercase();
    let radix = match lower.get(..2) {
        Some("0x") => Some((16, &digits[2..])),
        Some("0o") => Some((8, &digits[2..])),
        Some("0b") => Some((2, &digits[2..])),
        _ if lower.len() > 1
            && lower.starts_with('0')
            && lower.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some((8, &digits[1..]))
        }
        _ if lower.bytes().all(|b| b.is_ascii_digit()) => Some((10, &digits[..])),
        _ => None,
    };
    let tok = match radix {
        Some((radix, ds)) => {
            let n = i64::from_str_radix(ds, radix).map_err(|_| bad())?;
            Tok::Int(if neg { -n } else { n })
        }
        None if !lower.contains(['x', 'p', 'i']) => {
            let f: f64 = digits.parse().map_err(|_| bad())?;
            Tok::Float(if neg { -f } else { f })
        }
        None => return Err(bad()),
    };
    Ok((tok, len))
}

fn is_hex(s: &str) -> bool {
    let s = s.trim_start_matches(['+', '-']);
    s.starts_with("0x") || s.starts_with("0X")
}

/// A double-quoted string at the start of `rest`: its value and its length in bytes.
fn lex_quoted(rest: &str, off: usize) -> Result<(String, usize), Fail> {
    let mut out = String::new();
    let mut chars = rest.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => break,
            '\\' => out.push(unescape(&mut chars, '"', off + i)?),
            c => out.push(c),
        }
    }
    fail(off, "unterminated quoted string")
}

/// A character constant (`'a'`, `'\n'`) at the start of `rest`: its code and length.
fn lex_char(rest: &str, off: usize) -> Result<(i64, usize), Fail> {
    let mut chars = rest.char_indices().skip(1);
    let c = match chars.next() {
        Some((i, '\\')) => unescape(&mut chars, '\'', off + i)?,
        Some((_, c)) if c != '\'' && c != '\n' => c,
        _ => return fail(off, "bad character constant"),
    };
    match chars.next() {
        Some((i, '\'')) => Ok((i64::from(u32::from(c)), i + 1)),
        _ => fail(off, "bad character constant"),
    }
}

/// One escape after a backslash, as Go writes them.
fn unescape(
    chars: &mut impl Iterator<Item = (usize, char)>,
    quote: char,
    off: usize,
) -> Result<char, Fail> {
    let Some((_, c)) = chars.next() else {
        return fail(off, "unterminated quoted string");
    };
    let simple = match c {
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'f' => Some('\x0c'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\x0b'),
        '\\' => Some('\\'),
        c if c == quote => Some(c),
        _ => None,
    };
    if let Some(s) = simple {
        return Ok(s);
    }
    let (radix, n) = match c {
        'x' => (16, 2),
        'u' => (16, 4),
        'U' => (16, 8),
        '0'..='7' => (8, 2),
        _ => return fail(off, format!("invalid escape \\{c} in string")),
    };
    let mut code = if radix == 8 {
        c.to_digit(8).unwrap_or(0)
    } else {
        0
    };
    for _ in 0..n {
        match chars.next().and_then(|(_, d)| d.to_digit(radix)) {
            Some(d) => code = code * radix + d,
            None => return fail(off, format!("invalid escape \\{c} in string")),
        }
    }
    char::from_u32(code).ok_or_else(|| Fail {
        off,
        msg: format!("invalid escape \\{c} in string"),
    })
}
