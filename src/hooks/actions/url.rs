//! The small URL toolkit the actions need: splitting a URL into its parts (any scheme,
//! so shoutrrr's `ntfy://` and `telegram://` URLs too), percent-decoding and -encoding,
//! query parsing, the redacted form shown in logs and errors, and the scrubber that
//! blanks secrets out of text a remote server sent back. It sends nothing.

use std::fmt::Write as _;

/// A URL split into its parts. `host` keeps the port (`host:8080`, `[::1]:80`); `user`
/// and `password` are percent-decoded; `path` and `query` are kept as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Url {
    pub scheme: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: String,
    pub path: String,
    pub query: Option<String>,
}

impl Url {
    /// Splits `text`; `None` when it has no `scheme://`, the scheme is not a valid
    /// URL scheme, or it contains whitespace or control characters.
    pub fn parse(text: &str) -> Option<Url> {
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let (scheme, rest) = text.split_once("://")?;
        let mut chars = scheme.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
            return None;
        }
        // Drop a fragment: it is never sent.
        let rest = rest.split('#').next().unwrap_or("");
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, host) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (Some(decode(u)), Some(decode(p))),
                None => (Some(decode(info)), None),
            },
        };
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (tail, None),
        };
        Some(Url {
            scheme: scheme.to_ascii_lowercase(),
            user,
            password,
            host: host.to_string(),
            path: path.to_string(),
            query,
        })
    }

    /// The query as decoded `(key, value)` pairs, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        parse_query(self.query.as_deref().unwrap_or(""))
    }

    /// The path's segments, percent-decoded, without empty ones.
    pub fn segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(decode)
            .collect()
    }

    /// `scheme://host/path?query` with no userinfo: what is handed to the HTTP client.
    pub fn without_userinfo(&self) -> String {
        let mut out = format!("{}://{}{}", self.scheme, self.host, self.path);
        if let Some(q) = &self.query {
            out.push('?');
            out.push_str(q);
        }
        out
    }

    /// Everything in this URL that may be a secret: userinfo, path segments and query
    /// values (see [`Scrubber`] for which are long enough to be blanked).
    pub fn secret_parts(&self) -> Vec<String> {
        let mut parts = Vec::new();
        parts.extend(self.user.iter().cloned());
        parts.extend(self.password.iter().cloned());
        parts.extend(self.path.split('/').map(str::to_string));
        parts.extend(self.segments());
        if let Some(q) = &self.query {
            parts.push(q.clone());
            for (k, v) in self.query_pairs() {
                parts.push(format!("{k}={v}"));
                parts.push(v);
            }
            for raw in q.split('&') {
                parts.extend(raw.split_once('=').map(|(_, v)| v.to_string()));
            }
        }
        parts
    }
}

/// What logs and errors show of a URL: `scheme://host[:port]`, then `/***` when the URL
/// has a path or a query. Userinfo, path and query (where services keep their tokens)
/// are never shown. A slack URL shows no host either (its legacy form keeps a token
/// there); a text that is not a URL shows as `(invalid URL)`.
pub fn redact_url(url: &str) -> String {
    let Some(u) = Url::parse(url) else {
        return "(invalid URL)".to_string();
    };
    if u.scheme == "slack" {
        return "slack://***".to_string();
    }
    let mut out = format!("{}://{}", u.scheme, u.host);
    let has_more = !u.path.trim_matches('/').is_empty() || u.query.is_some();
    if has_more {
        out.push_str("/***");
    }
    out
}

/// Percent-decodes `s` (invalid escapes are kept as written; the result is lossy UTF-8).
pub(crate) fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but RFC 3986's unreserved characters: safe for a path
/// segment or a query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Parses `a=1&b=x+y` into decoded pairs (`+` is a space, as in HTML forms and Go's
/// `url.Query`). A key without `=` has an empty value.
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(&k.replace('+', " ")), decode(&v.replace('+', " ")))
        })
        .collect()
}

/// Blanks secrets out of text that came back from a server or an HTTP library (a 404
/// page may echo the request path, tokens included).
///
/// Secrets named explicitly (tokens, passwords) are blanked from 3 characters on;
/// parts derived from a URL (path segments, query values) from 6 on, so that `api` or
/// `hooks` in a message stays readable while any real token goes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scrubber {
    secrets: Vec<String>,
}

const EXPLICIT_MIN: usize = 3;
const DERIVED_MIN: usize = 6;

impl Scrubber {
    pub fn add_secret(&mut self, s: &str) {
        if s.len() >= EXPLICIT_MIN {
            self.push(s);
        }
    }

    pub fn add_url(&mut self, url: &str) {
        match Url::parse(url) {
            Some(u) => {
                self.push(url);
                for part in u.secret_parts() {
                    if part.len() >= DERIVED_MIN {
                        self.push(&part);
                    }
                }
                // A password is explicit whatever its length.
                if let Some(p) = &u.password {
                    self.add_secret(p);
                }
                if let Some(user) = &u.user {
                    self.add_secret(user);
                }
            }
            None => self.add_secret(url),
        }
    }

    fn push(&mut self, s: &str) {
        if !self.secrets.iter().any(|x| x == s) {
            self.secrets.push(s.to_string());
            // Longest first, so a secret containing another is blanked whole.
            self.secrets.sort_by_key(|x| std::cmp::Reverse(x.len()));
        }
    }

    pub fn clean(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
            // Servers often echo a path percent-encoded.
            let enc = encode(s);
            if enc != *s && out.contains(enc.as_str()) {
                out = out.replace(enc.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_parts() {
        let u = Url::parse("ntfy://me:p%40ss@host:8080/topic/x?title=Hi+there&a=%26").unwrap();
        assert_eq!(u.scheme, "ntfy");
        assert_eq!(u.user.as_deref(), Some("me"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(u.host, "host:8080");
        assert_eq!(u.path, "/topic/x");
        assert_eq!(u.segments(), ["topic", "x"]);
        assert_eq!(
            u.query_pairs(),
            [
                ("title".to_string(), "Hi there".to_string()),
                ("a".to_string(), "&".to_string())
            ]
        );
        assert_eq!(
            u.without_userinfo(),
            "ntfy://host:8080/topic/x?title=Hi+there&a=%26"
        );

        let t = Url::parse("telegram://123:AAbb@telegram?chats=@chan,42").unwrap();
        assert_eq!(t.user.as_deref(), Some("123"));
        assert_eq!(t.password.as_deref(), Some("AAbb"));
        assert_eq!(t.host, "telegram");
        assert_eq!(t.query_pairs()[0].1, "@chan,42");

        let v6 = Url::parse("http://[::1]:9/x#frag").unwrap();
        assert_eq!(v6.host, "[::1]:9");
        assert_eq!(v6.path, "/x");
        assert_eq!(v6.query, None);

        for bad in [
            "",
            "no-scheme",
            "://host",
            "1http://h",
            "http://h/a b",
            "ht tp://h",
        ] {
            assert_eq!(Url::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn decode_and_encode() {
        assert_eq!(decode("a%20b%zz%4"), "a b%zz%4");
        assert_eq!(decode("%"), "%");
        assert_eq!(encode("a b/c:d~"), "a%20b%2Fc%3Ad~");
    }

    #[test]
    fn redaction_hides_userinfo_path_and_query() {
        for (url, want) in [
            ("https://hc-ping.com/uuid-secret", "https://hc-ping.com/***"),
            ("https://u:pw@example.com:8443/", "https://example.com:8443"),
            ("http://host?token=abc", "http://host/***"),
            ("http://host", "http://host"),
            ("discord://tok@12345", "discord://12345"),
            ("slack://tokenA/tokenB/tokenC", "slack://***"),
            ("ntfy://:tk@ntfy.sh/topic", "ntfy://ntfy.sh/***"),
            ("not a url", "(invalid URL)"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn scrubber_blanks_tokens_but_keeps_words() {
        let mut s = Scrubber::default();
        s.add_url("https://me:pw1@host/api/hooks/S3CRET-TOKEN-123?key=qu%2Bery-secret");
        s.add_secret("bot-token-xyz");
        s.add_secret("ab");
        let text = "404 /api/hooks/S3CRET-TOKEN-123 not found; key qu+ery-secret \
                    qu%2Bery-secret bot-token-xyz pw1 ab";
        assert_eq!(
            s.clean(text),
            "404 /api/hooks/*** not found; key *** *** *** *** ab"
        );
    }
}
