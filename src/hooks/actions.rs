//! Performs one hook action, safely and in bounded time, and reports precisely what
//! happened: a shell command ([`run_command`]), or one HTTP call to a webhook,
//! Healthchecks, Discord, Slack, Gotify, Telegram or a shoutrrr URL. Every HTTP call has
//! a connect and a total timeout ([`Timeouts`]), follows no redirect, and treats a
//! status of 300 or more as a failure; every command runs in its own process group
//! with a timeout that ends the whole group.
//!
//! It receives text that is already rendered (templates are elsewhere) and returns an
//! [`Outcome`] or an [`ActionError`]; what a failure means for the operation (ignore,
//! cancel, retry) is the caller's business. Neither its errors nor its log lines ever
//! contain a URL token, a password, a bot token or a Gotify token: URLs are shown as
//! [`redact_url`] shows them, and whatever a server answers is scrubbed of the secrets
//! of the request before it is quoted.
//!
//! Layout: `command` runs scripts, `http` sends one request, `roots` finds the CA
//! certificates HTTPS trusts, `shoutrrr` translates shoutrrr URLs into requests, `url`
//! parses, redacts and scrubs.

mod command;
mod http;
mod roots;
mod shoutrrr;
mod url;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io::Write;
use std::time::Duration;

use base64::Engine;
use serde_json::json;

use crate::config::WebhookMethod;
use crate::restic::StopHandle;
use http::{Method, Request};

pub use url::redact_url;

/// Discord refuses a message `content` longer than this.
pub const DISCORD_CONTENT_MAX: usize = 2000;
/// Telegram refuses a message text longer than this.
pub const TELEGRAM_TEXT_MAX: usize = 4096;
/// The time a hook command gets when the caller has no better idea.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// What a successful action adds to the hook's log: `POST https://host/*** -> 200`
/// (one line per request). A command's output goes to the log as it runs instead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub output: String,
}

/// Why an action failed. The text says what failed and never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionError {
    /// The action took longer than it may; `what` names it (`POST https://host/***`,
    /// `the hook command`). A command is stopped, with everything it started.
    Timeout { what: String, after: Duration },
    /// It ran and failed: a command's exit status with its last lines of output, an
    /// HTTP status with the start of the answer, a refused connection.
    Failed { message: String },
    /// It cannot be run as written: a bad URL, an unsupported shoutrrr service, a `#!`
    /// line with no interpreter. Retrying will not help; the config must change.
    Invalid { message: String },
    /// The stop handle was used (footrest shuts down, or the operation was cancelled)
    /// before the action finished; a command is stopped with everything it started.
    Stopped { what: String },
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionError::Timeout { what, after } => {
                write!(f, "{what} timed out after {}", human_duration(*after))
            }
            ActionError::Failed { message } | ActionError::Invalid { message } => {
                f.write_str(message)
            }
            ActionError::Stopped { what } => write!(
                f,
                "{what} was stopped before it finished (footrest is shutting down or the \
                 operation was cancelled)"
            ),
        }
    }
}

impl std::error::Error for ActionError {}

/// `1s`, `1.5s`, `10m`, `2m30s`, `250ms`.
pub(crate) fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms % 1000 != 0 && ms < 60_000 {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// Time limits of one HTTP action. Both are always in force; there is no "no limit".
///
/// | limit | default | covers |
/// |---|---|---|
/// | `connect` | 10 s | resolving the host name, then the TCP and TLS handshakes |
/// | `total` | 30 s | everything, from resolving to reading the answer |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            total: Duration::from_secs(30),
        }
    }
}

/// The fixed public hosts some services live on. Tests point them at loopback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// Discord webhooks: `<discord>/<webhook id>/<token>`.
    pub discord: String,
    /// Slack incoming webhooks: `<slack_hooks>/<a>/<b>/<c>`.
    pub slack_hooks: String,
    /// Slack's Web API: `<slack_api>/chat.postMessage`.
    pub slack_api: String,
    /// Telegram's Bot API: `<telegram>/bot<token>/sendMessage`.
    pub telegram: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            discord: "https://discord.com/api/webhooks".into(),
            slack_hooks: "https://hooks.slack.com/services".into(),
            slack_api: "https://slack.com/api".into(),
            telegram: TELEGRAM_API.into(),
        }
    }
}

/// Telegram's Bot API.
pub const TELEGRAM_API: &str = "https://api.telegram.org";

/// Which Healthchecks ping to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ping {
    /// `<url>/start`: the job began (Healthchecks then measures its duration).
    Start,
    /// `<url>`: the job succeeded.
    Success,
    /// `<url>/fail`: the job failed.
    Fail,
    /// `<url>/log`: a message for the event log that changes no state.
    Log,
}

/// Runs a hook's script and streams its output into `log`.
///
/// `/bin/sh -c script`; a script whose first line is `#!interpreter [args]` is written
/// to a private temporary file (mode 0700, in a 0700 directory removed afterwards) and
/// run as `interpreter [args] file`. stdin is /dev/null; the environment is footrest's
/// plus `env`; stdout and stderr are interleaved into `log` line by line (each line cut
/// at 64 KiB, the whole output at 1 MiB, then a note). The script runs in its own
/// process group: after `timeout`, or when `stop` is used, the group gets SIGTERM and,
/// 5 s later, SIGKILL. Exit status 0 is success; any other is
/// [`ActionError::Failed`] quoting the last lines of output.
pub fn run_command(
    script: &str,
    env: &[(String, String)],
    timeout: Duration,
    log: &mut dyn Write,
    stop: &StopHandle,
) -> Result<(), ActionError> {
    command::run(script, env, timeout, log, stop)
}

/// Calls a webhook: `GET url` (no body) or `POST url` with `body` and `content_type`
/// (no `Content-Type` header when it is empty). [`WebhookMethod::Unknown`] is POST, as
/// in Backrest. Credentials in the URL (`https://user:pass@host/...`) are sent as Basic
/// authentication, as Go's client does.
pub fn webhook(
    url: &str,
    method: WebhookMethod,
    body: &str,
    content_type: &str,
    t: &Timeouts,
) -> Result<Outcome, ActionError> {
    let parsed = http_url(url, "webhook")?;
    let method = match method {
        WebhookMethod::Get => Method::Get,
        WebhookMethod::Post | WebhookMethod::Unknown => Method::Post,
    };
    let mut req = Request::new(method, parsed.without_userinfo());
    req.scrubber.add_url(url);
    if parsed.user.is_some() || parsed.password.is_some() {
        let user = parsed.user.clone().unwrap_or_default();
        let password = parsed.password.clone().unwrap_or_default();
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        req = req.secret_header("Authorization", &value, &password);
    }
    if method == Method::Post {
        req = req.body(content_type, body);
    }
    http::send(&req, t)
}

/// Pings Healthchecks: POST `body` (text/plain) to `url` (Success), `url/start`,
/// `url/fail` or `url/log`. A trailing slash on `url` is dropped first; a query
/// (`?create=1`) stays at the end.
pub fn healthchecks(
    url: &str,
    ping: Ping,
    body: &str,
    t: &Timeouts,
) -> Result<Outcome, ActionError> {
    http_url(url, "Healthchecks")?;
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut target = base.trim_end_matches('/').to_string();
    target.push_str(match ping {
        Ping::Start => "/start",
        Ping::Success => "",
        Ping::Fail => "/fail",
        Ping::Log => "/log",
    });
    if let Some(q) = query {
        target.push('?');
        target.push_str(q);
    }
    let mut req = Request::new(Method::Post, target).body("text/plain", body);
    req.scrubber.add_url(url);
    http::send(&req, t)
}

/// Posts `{"content": text}` to a Discord webhook URL; a text over 2000 characters is
/// cut, ending in an ellipsis.
pub fn discord(url: &str, text: &str, t: &Timeouts) -> Result<Outcome, ActionError> {
    http_url(url, "Discord webhook")?;
    let content = truncate_chars(text, DISCORD_CONTENT_MAX);
    let req = Request::new(Method::Post, url.to_string()).json(&json!({ "content": content }));
    http::send(&req, t)
}

/// Posts `{"text": text}` to a Slack incoming-webhook URL.
pub fn slack(url: &str, text: &str, t: &Timeouts) -> Result<Outcome, ActionError> {
    http_url(url, "Slack webhook")?;
    let req = Request::new(Method::Post, url.to_string()).json(&json!({ "text": text }));
    http::send(&req, t)
}

/// Posts a message to Gotify: `POST <base_url>/message?token=<token>` with JSON
/// `{"title", "message", "priority"}`.
pub fn gotify(
    base_url: &str,
    token: &str,
    title: &str,
    message: &str,
    priority: i32,
    t: &Timeouts,
) -> Result<Outcome, ActionError> {
    http_url(base_url, "Gotify base")?;
    if token.is_empty() {
        return Err(ActionError::Invalid {
            message: format!(
                "the Gotify hook for {} has no application token",
                redact_url(base_url)
            ),
        });
    }
    let req = shoutrrr::gotify_request(base_url, token, title, message, priority, false, None);
    http::send(&req, t)
}

/// Sends `text` to a Telegram chat through Telegram's Bot API, as Backrest does
/// (`parse_mode` HTML; a text over 4096 characters is cut).
pub fn telegram(
    bot_token: &str,
    chat_id: &str,
    text: &str,
    t: &Timeouts,
) -> Result<Outcome, ActionError> {
    telegram_via(TELEGRAM_API, bot_token, chat_id, text, t)
}

/// [`telegram`] against another Bot API base URL (a local Bot API server, or a test).
pub fn telegram_via(
    api_base: &str,
    bot_token: &str,
    chat_id: &str,
    text: &str,
    t: &Timeouts,
) -> Result<Outcome, ActionError> {
    if bot_token.is_empty() || chat_id.is_empty() {
        return Err(ActionError::Invalid {
            message: "the Telegram hook needs both a bot token and a chat id".into(),
        });
    }
    let body = json!({
        "chat_id": chat_id,
        "text": truncate_chars(text, TELEGRAM_TEXT_MAX),
        "parse_mode": "HTML",
    });
    let req = shoutrrr::telegram_request(api_base, bot_token, &body);
    http::send(&req, t)
}

/// Sends `text` through a shoutrrr URL, translated to plain HTTP:
///
/// | URL | request |
/// |---|---|
/// | `ntfy://[user:pass@]host[:port]/topic[?...]` | `POST https://host/topic`, body = text, header `Title`; `?scheme=http` or `?disabletls=yes` for http; `?token=` (Bearer) or user:pass (Basic); `priority`, `tags`, `click`, `icon`, ... as ntfy headers |
/// | `gotify://host[:port][/path]/token[?...]` | `POST https://host/path/message?token=...`; `?disabletls=yes`, `priority`, `title`, `useheader`, `extras` |
/// | `discord://token@webhookid[/raw][?...]` | `POST https://discord.com/api/webhooks/<id>/<token>` `{"content"}`; `/raw` sends the text as the JSON body; `thread_id`, `username`, `avatar` |
/// | `slack://hook:A-B-C@webhook`, `slack://[bot@]A/B/C` | `POST https://hooks.slack.com/services/A/B/C` `{"text"}`; `botname`, `icon`, `thread_ts` |
/// | `slack://xoxb:A-B-C@channel` | `POST https://slack.com/api/chat.postMessage` with the bot token; the answer must say `"ok": true` |
/// | `telegram://id:key@telegram?chats=@chan,123` | `sendMessage` to each chat; `parsemode`, `preview`, `notification` |
/// | `generic://host/path`, `generic+https://...`, `generic+http://...` | `POST` the text (plain), or with `?template=json` `{"title", "message"}` (`titlekey`, `messagekey`, `$extra=`), `@Header=` headers, `method`, `contenttype`; `generic://` is https unless `?disabletls=yes` |
///
/// A `title` option in the URL wins over `title`; an empty title is left out (Gotify
/// then uses shoutrrr's default title). Any other scheme is [`ActionError::Invalid`].
pub fn shoutrrr(url: &str, title: &str, text: &str, t: &Timeouts) -> Result<Outcome, ActionError> {
    shoutrrr_via(url, title, text, t, &Endpoints::default())
}

/// [`shoutrrr`] with the fixed public hosts replaced (for tests).
pub fn shoutrrr_via(
    url: &str,
    title: &str,
    text: &str,
    t: &Timeouts,
    endpoints: &Endpoints,
) -> Result<Outcome, ActionError> {
    let service = shoutrrr::parse(url).map_err(|message| ActionError::Invalid { message })?;
    let mut lines = Vec::new();
    for mut req in service.requests(title, text, endpoints) {
        req.scrubber.add_url(url);
        lines.push(http::send(&req, t)?.output);
    }
    Ok(Outcome {
        output: lines.join("\n"),
    })
}

/// Checks a shoutrrr URL when the config is loaded, with the parser [`shoutrrr`] uses.
/// The error names the (redacted) URL and what to fix.
pub fn validate_shoutrrr_url(url: &str) -> Result<(), String> {
    shoutrrr::parse(url).map(|_| ())
}

/// Parses an `http(s)://` URL for an action, or says which one is wrong.
fn http_url(url: &str, what: &str) -> Result<url::Url, ActionError> {
    match url::Url::parse(url) {
        Some(u) if (u.scheme == "http" || u.scheme == "https") && !u.host.is_empty() => Ok(u),
        _ => Err(ActionError::Invalid {
            message: format!(
                "the {what} URL {} is not an http:// or https:// URL",
                redact_url(url)
            ),
        }),
    }
}

/// `text` cut to at most `max` characters, the last of them an ellipsis when cut.
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
