//! `GET /`: the status page, one hand-written HTML file (`status_page.html`, with its
//! style and script inline) compiled into the binary. It owns the page and the headers
//! it is served with: a Content-Security-Policy that lets only that one style and that
//! one script run (by their SHA-256, computed here from the embedded text) and lets
//! the script talk only to this origin. The page holds no data and no secret: it reads
//! everything through the JSON API with the browser's credentials (the Basic
//! credentials the browser asked for when `/` answered 401). Routing and the
//! credential check are `api`'s.

use std::sync::OnceLock;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::App;
use crate::api::server::{Body, Response};

/// The page as served.
pub const PAGE: &str = include_str!("status_page.html");

/// The text between `<tag>` and `</tag>` (the first such element), as the browser
/// hashes it for CSP.
fn inline<'a>(page: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = page.find(&open)? + open.len();
    let len = page[start..].find(&close)?;
    Some(&page[start..start + len])
}

/// A CSP source expression for an inline element: `'sha256-<base64>'`.
fn hash_source(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The Content-Security-Policy of the page: nothing is allowed but its own inline
/// style and script (by hash), requests to this origin, and the empty data: icon.
pub fn content_security_policy() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        // The page is part of the binary; a missing element is caught by the tests.
        let script = inline(PAGE, "script").map(hash_source).unwrap_or_default();
        let style = inline(PAGE, "style").map(hash_source).unwrap_or_default();
        format!(
            "default-src 'none'; script-src {script}; style-src {style}; \
             connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'"
        )
    })
}

/// The `GET /` response (the caller has checked the credentials).
pub fn serve(_app: &App) -> Response {
    Response {
        status: 200,
        headers: vec![
            (
                "Content-Type".to_string(),
                "text/html; charset=utf-8".to_string(),
            ),
            (
                "Content-Security-Policy".to_string(),
                content_security_policy().to_string(),
            ),
            ("X-Content-Type-Options".to_string(), "nosniff".to_string()),
            ("Referrer-Policy".to_string(), "no-referrer".to_string()),
            ("Cache-Control".to_string(), "no-store".to_string()),
        ],
        body: Body::Bytes(PAGE.as_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_small_and_self_contained() {
        assert!(PAGE.len() < 12 * 1024, "{} bytes", PAGE.len());
        // One style and one script, inline; nothing loaded from elsewhere.
        assert_eq!(PAGE.matches("<script").count(), 1);
        assert_eq!(PAGE.matches("<style").count(), 1);
        for outside in ["http://", "https://", "src=", "@import", "url("] {
            assert!(!PAGE.contains(outside), "the page refers to {outside}");
        }
        // Inline handlers and style attributes would be blocked by the CSP.
        for blocked in [" onclick=", " onload=", " style="] {
            assert!(!PAGE.contains(blocked), "{blocked}");
        }
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_script_and_style() {
        let csp = content_security_policy();
        let script = inline(PAGE, "script").unwrap();
        let style = inline(PAGE, "style").unwrap();
        assert!(script.contains("GetOperations"));
        assert!(style.contains("section.plan"));
        assert!(csp.contains(&format!("script-src {};", hash_source(script))));
        assert!(csp.contains(&format!("style-src {};", hash_source(style))));
        assert!(csp.starts_with("default-src 'none';"));
        assert!(!csp.contains("unsafe"));
        // A known vector: sha256 of "" is 47DEQpj8...
        assert_eq!(
            hash_source(""),
            "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
        );
    }
}
