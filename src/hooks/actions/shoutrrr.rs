//! shoutrrr URLs translated to plain HTTP calls, for the services people point Backrest
//! at most: ntfy, Gotify, Discord, Slack, Telegram and generic webhooks. The URL forms
//! and query options follow shoutrrr's documentation and sources (the library Backrest
//! links); options footrest cannot honour are ignored rather than refused, so a URL
//! that works in Backrest keeps working. It parses and builds [`Request`]s; it does not
//! send them, and its messages never quote a token (URLs are shown redacted).

use base64::Engine;
use serde_json::{Map, Value, json};

use super::http::{Method, Request};
use super::url::{Url, encode, parse_query, redact_url};
use super::{DISCORD_CONTENT_MAX, Endpoints, TELEGRAM_TEXT_MAX, truncate_chars};

/// The schemes footrest translates, as listed in errors.
pub(crate) const SUPPORTED: &str =
    "ntfy, gotify, discord, slack, telegram, generic (also generic+http, generic+https)";

/// A parsed shoutrrr URL.
#[derive(Clone, Debug)]
pub(crate) enum Service {
    Ntfy(Ntfy),
    Gotify(Gotify),
    Discord(Discord),
    Slack(Slack),
    Telegram(Telegram),
    Generic(Generic),
}

#[derive(Clone, Debug)]
pub(crate) struct Ntfy {
    url: String,
    /// `Authorization` value and the secret in it.
    auth: Option<(String, String)>,
    headers: Vec<(String, String)>,
    title: Option<String>,
    markdown: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Gotify {
    base: String,
    token: String,
    title: Option<String>,
    priority: i32,
    use_header: bool,
    extras: Option<Value>,
}

#[derive(Clone, Debug)]
pub(crate) struct Discord {
    webhook_id: String,
    token: String,
    thread_id: Option<String>,
    username: Option<String>,
    avatar: Option<String>,
    title: Option<String>,
    raw_json: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Slack {
    /// `hook`, `xoxb`, `xoxp`, ...
    kind: String,
    parts: [String; 3],
    channel: String,
    bot_name: Option<String>,
    icon: Option<String>,
    title: Option<String>,
    thread_ts: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct Telegram {
    token: String,
    chats: Vec<String>,
    parse_mode: Option<String>,
    preview: bool,
    notification: bool,
    title: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct Generic {
    /// `http(s)://host/path?kept-query`
    url: String,
    basic: Option<(String, String)>,
    method: Method,
    json: bool,
    content_type: String,
    title: Option<String>,
    title_key: String,
    message_key: String,
    headers: Vec<(String, String)>,
    extra: Vec<(String, String)>,
}

/// Parses a shoutrrr URL. The error names the (redacted) URL and what to fix.
pub(crate) fn parse(text: &str) -> Result<Service, String> {
    let shown = redact_url(text);
    let Some(url) = Url::parse(text) else {
        return Err(format!(
            "the shoutrrr URL {shown} is not a URL (expected scheme://...; supported: \
             {SUPPORTED})"
        ));
    };
    let fail = |why: &str| format!("the shoutrrr URL {shown}: {why}");
    match url.scheme.as_str() {
        "ntfy" => parse_ntfy(&url).map(Service::Ntfy).map_err(|w| fail(&w)),
        "gotify" => parse_gotify(&url)
            .map(Service::Gotify)
            .map_err(|w| fail(&w)),
        "discord" => parse_discord(&url)
            .map(Service::Discord)
            .map_err(|w| fail(&w)),
        "slack" => parse_slack(&url).map(Service::Slack).map_err(|w| fail(&w)),
        "telegram" => parse_telegram(&url)
            .map(Service::Telegram)
            .map_err(|w| fail(&w)),
        "generic" | "generic+http" | "generic+https" => parse_generic(&url)
            .map(Service::Generic)
            .map_err(|w| fail(&w)),
        other => Err(format!(
            "the shoutrrr URL {shown} uses the service \"{other}\", which footrest does \
             not support; supported: {SUPPORTED}"
        )),
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" | "on" => Ok(true),
        "no" | "n" | "false" | "0" | "off" => Ok(false),
        _ => Err(format!("option {key}={value} must be yes or no")),
    }
}

fn nonempty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn parse_ntfy(url: &Url) -> Result<Ntfy, String> {
    let host = if url.host.is_empty() {
        "ntfy.sh"
    } else {
        url.host.as_str()
    };
    let topic = url.path.trim_start_matches('/');
    if topic.is_empty() {
        return Err("the topic is missing (ntfy://[user:password@]host/topic)".into());
    }
    let mut scheme = "https".to_string();
    let mut token = None;
    let mut title = None;
    let mut markdown = false;
    let mut headers = Vec::new();
    for (key, value) in url.query_pairs() {
        let k = key.to_ascii_lowercase();
        let header = match k.as_str() {
            "title" => {
                title = nonempty(&value);
                None
            }
            "scheme" => {
                let s = value.to_ascii_lowercase();
                if s != "http" && s != "https" {
                    return Err(format!("option scheme={value} must be http or https"));
                }
                scheme = s;
                None
            }
            "disabletls" => {
                if parse_bool(&key, &value)? {
                    scheme = "http".into();
                }
                None
            }
            "token" => {
                token = nonempty(&value);
                None
            }
            "markdown" => {
                markdown = parse_bool(&key, &value)?;
                None
            }
            "cache" => (!parse_bool(&key, &value)?).then(|| ("Cache", "no".to_string())),
            "firebase" => (!parse_bool(&key, &value)?).then(|| ("Firebase", "no".to_string())),
            "priority" => Some(("Priority", value)),
            "tags" => Some(("Tags", value)),
            "delay" | "at" | "in" => Some(("Delay", value)),
            "actions" => Some(("Actions", value)),
            "click" => Some(("Click", value)),
            "attach" => Some(("Attach", value)),
            "filename" => Some(("Filename", value)),
            "email" => Some(("Email", value)),
            "icon" => Some(("X-Icon", value)),
            _ => None,
        };
        if let Some((name, v)) = header {
            if !v.is_empty() {
                headers.push((name.to_string(), v));
            }
        }
    }
    let auth = match token {
        Some(t) => Some((format!("Bearer {t}"), t)),
        None => {
            let user = url.user.clone().unwrap_or_default();
            let password = url.password.clone().unwrap_or_default();
            if user.is_empty() && password.is_empty() {
                None
            } else {
                Some((basic(&user, &password), password))
            }
        }
    };
    Ok(Ntfy {
        url: format!("{scheme}://{host}/{topic}"),
        auth,
        headers,
        title,
        markdown,
    })
}

fn parse_gotify(url: &Url) -> Result<Gotify, String> {
    if url.host.is_empty() {
        return Err("the host is missing (gotify://host[:port][/path]/token)".into());
    }
    let path = url.path.strip_suffix('/').unwrap_or(&url.path);
    let cut = path.rfind('/').map_or(0, |i| i + 1);
    let (prefix, token) = path.split_at(cut);
    let token = super::url::decode(token);
    if token.is_empty() {
        return Err("the application token is missing (gotify://host[:port][/path]/token)".into());
    }
    let prefix = prefix.trim_end_matches('/');
    let mut https = true;
    let mut title = None;
    let mut priority = 0;
    let mut use_header = false;
    let mut extras = None;
    for (key, value) in url.query_pairs() {
        match key.to_ascii_lowercase().as_str() {
            "disabletls" => https = !parse_bool(&key, &value)?,
            "title" => title = nonempty(&value),
            "priority" => {
                priority = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("option priority={value} must be a whole number"))?;
            }
            "useheader" => use_header = parse_bool(&key, &value)?,
            "extras" if !value.is_empty() => {
                let v: Value = serde_json::from_str(&value)
                    .ok()
                    .filter(Value::is_object)
                    .ok_or("option extras must be a JSON object")?;
                extras = Some(v);
            }
            _ => {}
        }
    }
    let scheme = if https { "https" } else { "http" };
    Ok(Gotify {
        base: format!("{scheme}://{}{prefix}", url.host),
        token,
        title,
        priority,
        use_header,
        extras,
    })
}

fn parse_discord(url: &Url) -> Result<Discord, String> {
    let token = url.user.clone().unwrap_or_default();
    if url.host.is_empty() {
        return Err("the webhook id is missing (discord://token@webhookid)".into());
    }
    if token.is_empty() {
        return Err("the webhook token is missing (discord://token@webhookid)".into());
    }
    let mut raw_json = match url.path.as_str() {
        "" | "/" => false,
        "/raw" => true,
        _ => return Err("the only path allowed after the webhook id is /raw".into()),
    };
    let mut d = Discord {
        webhook_id: url.host.clone(),
        token,
        thread_id: None,
        username: None,
        avatar: None,
        title: None,
        raw_json: false,
    };
    for (key, value) in url.query_pairs() {
        match key.to_ascii_lowercase().as_str() {
            "thread_id" => d.thread_id = nonempty(value.trim()),
            "username" => d.username = nonempty(&value),
            "avatar" | "avatarurl" => d.avatar = nonempty(&value),
            "title" => d.title = nonempty(&value),
            "json" => raw_json = raw_json || parse_bool(&key, &value)?,
            _ => {}
        }
    }
    d.raw_json = raw_json;
    Ok(d)
}

/// Splits a Slack token (`hook:A-B-C`, `xoxb:A-B-C`, `A/B/C`, ...) into its kind and
/// three parts.
fn parse_slack_token(raw: &str) -> Option<(String, [String; 3])> {
    let (kind, rest) = if raw.len() > 5
        && (raw.starts_with("xox") || raw.starts_with("hook"))
        && matches!(raw.as_bytes()[4], b'-' | b':')
    {
        (raw[..4].to_string(), &raw[5..])
    } else {
        ("hook".to_string(), raw.strip_prefix(':').unwrap_or(raw))
    };
    let sep = rest.chars().find(|c| !c.is_ascii_alphanumeric())?;
    if !matches!(sep, '-' | '/' | ',') {
        return None;
    }
    let parts: Vec<&str> = rest.split(sep).collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return None;
    }
    Some((
        kind,
        [
            parts[0].to_string(),
            parts[1].to_string(),
            parts[2].to_string(),
        ],
    ))
}

fn parse_slack(url: &Url) -> Result<Slack, String> {
    let (token, channel, mut bot_name) = if url.path.trim_matches('/').is_empty() {
        let user = url.user.clone().unwrap_or_default();
        let token = match &url.password {
            Some(p) => format!("{user}:{p}"),
            None => user,
        };
        (token, url.host.clone(), None)
    } else {
        // The legacy form: slack://[botname@]token-a/token-b/token-c
        let token = format!("{}{}", url.host, url.path.trim_end_matches('/'));
        (
            token,
            "webhook".to_string(),
            url.user.clone().filter(|u| !u.is_empty()),
        )
    };
    let Some((kind, parts)) = parse_slack_token(&token) else {
        return Err(
            "the token is not valid (slack://hook:A-B-C@webhook, slack://xoxb:A-B-C@channel \
             or slack://A/B/C)"
                .into(),
        );
    };
    if kind != "hook" && (channel.is_empty() || channel == "webhook") {
        return Err("a Slack API token needs a channel (slack://xoxb:A-B-C@channel)".into());
    }
    let mut s = Slack {
        kind,
        parts,
        channel,
        bot_name: None,
        icon: None,
        title: None,
        thread_ts: None,
    };
    for (key, value) in url.query_pairs() {
        match key.to_ascii_lowercase().as_str() {
            "botname" | "username" => bot_name = nonempty(&value),
            "icon" | "icon_emoji" | "icon_url" => s.icon = nonempty(&value),
            "title" => s.title = nonempty(&value),
            "thread_ts" => s.thread_ts = nonempty(&value),
            _ => {}
        }
    }
    s.bot_name = bot_name;
    Ok(s)
}

fn valid_telegram_token(token: &str) -> bool {
    let Some((id, key)) = token.split_once(':') else {
        return false;
    };
    !id.is_empty()
        && id.chars().all(|c| c.is_ascii_digit())
        && !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn parse_telegram(url: &Url) -> Result<Telegram, String> {
    let token = format!(
        "{}:{}",
        url.user.clone().unwrap_or_default(),
        url.password.clone().unwrap_or_default()
    );
    if !valid_telegram_token(&token) {
        return Err(
            "the bot token is missing or not valid (telegram://123456:ABC-token@telegram?chats=...)"
                .into(),
        );
    }
    let mut t = Telegram {
        token,
        chats: Vec::new(),
        parse_mode: None,
        preview: true,
        notification: true,
        title: None,
    };
    for (key, value) in url.query_pairs() {
        match key.to_ascii_lowercase().as_str() {
            "chats" | "channels" => {
                t.chats = value
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            "parsemode" => {
                t.parse_mode = match value.to_ascii_lowercase().as_str() {
                    "" | "none" => None,
                    "markdown" => Some("Markdown".into()),
                    "markdownv2" => Some("MarkdownV2".into()),
                    "html" => Some("HTML".into()),
                    _ => {
                        return Err(format!(
                            "option parsemode={value} must be None, Markdown, MarkdownV2 or HTML"
                        ));
                    }
                };
            }
            "preview" => t.preview = parse_bool(&key, &value)?,
            "notification" => t.notification = parse_bool(&key, &value)?,
            "title" => t.title = nonempty(&value),
            _ => {}
        }
    }
    if t.chats.is_empty() {
        return Err("no chat is given (add ?chats=@channel,12345)".into());
    }
    Ok(t)
}

/// `XApiKey` -> `X-Api-Key`, `authorization` -> `Authorization`, as shoutrrr's generic
/// service names `@header` options.
fn header_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len() * 2);
    let mut prev: Option<char> = None;
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            if prev.is_some_and(|p| p != '-') {
                out.push('-');
            }
            out.push(c);
        } else if prev.is_none() || prev == Some('-') {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
        prev = Some(c);
    }
    out
}

fn parse_generic(url: &Url) -> Result<Generic, String> {
    if url.host.is_empty() {
        return Err("the host is missing (generic://host[:port]/path)".into());
    }
    let mut https = url.scheme != "generic+http";
    let mut g = Generic {
        url: String::new(),
        basic: None,
        method: Method::Post,
        json: false,
        content_type: "application/json".into(),
        title: None,
        title_key: "title".into(),
        message_key: "message".into(),
        headers: Vec::new(),
        extra: Vec::new(),
    };
    let mut kept = Vec::new();
    for raw in url.query.as_deref().unwrap_or("").split('&') {
        if raw.is_empty() {
            continue;
        }
        let Some((key, value)) = parse_query(raw).into_iter().next() else {
            continue;
        };
        if let Some(name) = key.strip_prefix('@') {
            g.headers.push((header_name(name), value));
            continue;
        }
        if let Some(name) = key.strip_prefix('$') {
            g.extra.push((name.to_string(), value));
            continue;
        }
        match key.to_ascii_lowercase().as_str() {
            "contenttype" => g.content_type = value,
            "disabletls" => {
                if url.scheme == "generic" {
                    https = !parse_bool(&key, &value)?;
                }
            }
            "template" => match value.to_ascii_lowercase().as_str() {
                "" => g.json = false,
                "json" => g.json = true,
                _ => {
                    return Err(format!(
                        "template={value} is not supported (use template=json, or no template \
                         for the plain message)"
                    ));
                }
            },
            "title" => g.title = nonempty(&value),
            "titlekey" => g.title_key = value,
            "messagekey" => g.message_key = value,
            "method" => {
                g.method = Method::parse(&value).ok_or_else(|| {
                    format!("method={value} is not supported (GET, POST, PUT, PATCH or DELETE)")
                })?;
            }
            _ => kept.push(raw),
        }
    }
    let scheme = if https { "https" } else { "http" };
    g.url = format!("{scheme}://{}{}", url.host, url.path);
    if !kept.is_empty() {
        g.url.push('?');
        g.url.push_str(&kept.join("&"));
    }
    let user = url.user.clone().unwrap_or_default();
    let password = url.password.clone().unwrap_or_default();
    if !user.is_empty() || !password.is_empty() {
        g.basic = Some((basic(&user, &password), password));
    }
    Ok(g)
}

/// A header value as ntfy reads it: as is when ASCII, else as an RFC 2047 encoded word
/// (`=?UTF-8?B?...?=`, which ntfy decodes), since raw UTF-8 in a header is not safe
/// through every proxy.
fn mime_word(value: &str) -> String {
    if value.is_ascii() {
        return value.to_string();
    }
    let flat: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(flat)
    )
}

/// A title from the URL wins over the caller's (as a shoutrrr URL's `title` option is
/// what a Backrest user set); then the caller's; else none.
fn pick_title(from_url: &Option<String>, given: &str) -> Option<String> {
    from_url.clone().or_else(|| nonempty(given))
}

fn with_title(title: Option<String>, text: &str) -> String {
    match title {
        Some(t) => format!("{t}\n{text}"),
        None => text.to_string(),
    }
}

impl Service {
    /// The requests that deliver `text` (one per Telegram chat, else one).
    pub(crate) fn requests(&self, title: &str, text: &str, ep: &Endpoints) -> Vec<Request> {
        match self {
            Service::Ntfy(n) => {
                let mut req = Request::new(Method::Post, n.url.clone());
                if let Some((value, secret)) = &n.auth {
                    req = req.secret_header("Authorization", value, secret);
                }
                if let Some(t) = pick_title(&n.title, title) {
                    req = req.header("Title", &mime_word(&t));
                }
                for (k, v) in &n.headers {
                    req = req.header(k, &mime_word(v));
                }
                let ct = if n.markdown {
                    "text/markdown"
                } else {
                    "text/plain; charset=utf-8"
                };
                vec![req.body(ct, text)]
            }
            Service::Gotify(g) => {
                let title = pick_title(&g.title, title)
                    .unwrap_or_else(|| "Shoutrrr notification".to_string());
                vec![gotify_request(
                    &g.base,
                    &g.token,
                    &title,
                    text,
                    g.priority,
                    g.use_header,
                    g.extras.as_ref(),
                )]
            }
            Service::Discord(d) => {
                let mut url = format!(
                    "{}/{}/{}",
                    ep.discord.trim_end_matches('/'),
                    encode(&d.webhook_id),
                    encode(&d.token)
                );
                if let Some(thread) = &d.thread_id {
                    url.push_str("?thread_id=");
                    url.push_str(&encode(thread));
                }
                let mut req = Request::new(Method::Post, url);
                req.scrubber.add_secret(&d.token);
                if d.raw_json {
                    return vec![req.body("application/json", text)];
                }
                let content = truncate_chars(
                    &with_title(pick_title(&d.title, title), text),
                    DISCORD_CONTENT_MAX,
                );
                let mut body = Map::new();
                body.insert("content".into(), Value::String(content));
                if let Some(u) = &d.username {
                    body.insert("username".into(), Value::String(u.clone()));
                }
                if let Some(a) = &d.avatar {
                    body.insert("avatar_url".into(), Value::String(a.clone()));
                }
                vec![req.json(&Value::Object(body))]
            }
            Service::Slack(s) => {
                let text = with_title(pick_title(&s.title, title), text);
                let mut body = Map::new();
                let [a, b, c] = &s.parts;
                let req = if s.kind == "hook" {
                    let url = format!("{}/{}/{}/{}", ep.slack_hooks.trim_end_matches('/'), a, b, c);
                    Request::new(Method::Post, url)
                } else {
                    let url = format!("{}/chat.postMessage", ep.slack_api.trim_end_matches('/'));
                    let bearer = format!("{}-{a}-{b}-{c}", s.kind);
                    body.insert("channel".into(), Value::String(s.channel.clone()));
                    let mut req = Request::new(Method::Post, url).secret_header(
                        "Authorization",
                        &format!("Bearer {bearer}"),
                        &bearer,
                    );
                    for part in [a, b, c] {
                        req.scrubber.add_secret(part);
                    }
                    req.expect_ok_json = true;
                    req
                };
                body.insert("text".into(), Value::String(text));
                if let Some(name) = &s.bot_name {
                    body.insert("username".into(), Value::String(name.clone()));
                }
                if let Some(icon) = &s.icon {
                    let key = if icon.starts_with("http://") || icon.starts_with("https://") {
                        "icon_url"
                    } else {
                        "icon_emoji"
                    };
                    body.insert(key.into(), Value::String(icon.clone()));
                }
                if let Some(ts) = &s.thread_ts {
                    body.insert("thread_ts".into(), Value::String(ts.clone()));
                }
                vec![req.json(&Value::Object(body))]
            }
            Service::Telegram(t) => {
                let text = with_title(pick_title(&t.title, title), text);
                t.chats
                    .iter()
                    .map(|chat| {
                        let mut body = Map::new();
                        body.insert("chat_id".into(), Value::String(chat.clone()));
                        body.insert(
                            "text".into(),
                            Value::String(truncate_chars(&text, TELEGRAM_TEXT_MAX)),
                        );
                        if let Some(mode) = &t.parse_mode {
                            body.insert("parse_mode".into(), Value::String(mode.clone()));
                        }
                        if !t.preview {
                            body.insert("disable_web_page_preview".into(), Value::Bool(true));
                        }
                        if !t.notification {
                            body.insert("disable_notification".into(), Value::Bool(true));
                        }
                        telegram_request(&ep.telegram, &t.token, &Value::Object(body))
                    })
                    .collect()
            }
            Service::Generic(g) => {
                let mut req = Request::new(g.method, g.url.clone());
                if let Some((value, secret)) = &g.basic {
                    req = req.secret_header("Authorization", value, secret);
                }
                let (ct, body) = if g.json {
                    let mut m = Map::new();
                    if let Some(t) = pick_title(&g.title, title) {
                        m.insert(g.title_key.clone(), Value::String(t));
                    }
                    m.insert(g.message_key.clone(), Value::String(text.to_string()));
                    for (k, v) in &g.extra {
                        m.insert(k.clone(), Value::String(v.clone()));
                    }
                    (g.content_type.clone(), Value::Object(m).to_string())
                } else {
                    ("text/plain".to_string(), text.to_string())
                };
                req = req.header("Accept", &ct);
                let mut req = if matches!(g.method, Method::Get | Method::Delete) {
                    req
                } else {
                    req.body(&ct, body)
                };
                for (k, v) in &g.headers {
                    // A header option replaces the default of the same name.
                    req.headers
                        .retain(|(name, _)| !name.eq_ignore_ascii_case(k));
                    req.scrubber.add_secret(v);
                    req = req.header(k, v);
                }
                vec![req]
            }
        }
    }
}

/// `POST <base>/message?token=<token>` (or the token in `X-Gotify-Key`), JSON
/// `{"title", "message", "priority"}`.
pub(crate) fn gotify_request(
    base: &str,
    token: &str,
    title: &str,
    message: &str,
    priority: i32,
    use_header: bool,
    extras: Option<&Value>,
) -> Request {
    let base = base.trim_matches('/');
    let mut body = json!({ "title": title, "message": message, "priority": priority });
    if let (Some(extras), Some(obj)) = (extras, body.as_object_mut()) {
        obj.insert("extras".into(), extras.clone());
    }
    let mut req = if use_header {
        Request::new(Method::Post, format!("{base}/message")).secret_header(
            "X-Gotify-Key",
            token,
            token,
        )
    } else {
        Request::new(
            Method::Post,
            format!("{base}/message?token={}", encode(token)),
        )
    };
    req.scrubber.add_secret(token);
    req.json(&body)
}

/// `POST <api_base>/bot<token>/sendMessage` with `body`.
pub(crate) fn telegram_request(api_base: &str, token: &str, body: &Value) -> Request {
    let url = format!("{}/bot{token}/sendMessage", api_base.trim_end_matches('/'));
    let mut req = Request::new(Method::Post, url);
    req.scrubber.add_secret(token);
    if let Some((_, key)) = token.split_once(':') {
        req.scrubber.add_secret(key);
    }
    req.json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep() -> Endpoints {
        Endpoints {
            discord: "http://d.test/api/webhooks".into(),
            slack_hooks: "http://s.test/services".into(),
            slack_api: "http://s.test/api".into(),
            telegram: "http://t.test".into(),
        }
    }

    fn one(url: &str) -> Request {
        let svc = parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        let mut reqs = svc.requests("T", "hello", &ep());
        assert_eq!(reqs.len(), 1);
        reqs.remove(0)
    }

    fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body_json(req: &Request) -> Value {
        serde_json::from_slice(&req.body).unwrap()
    }

    #[test]
    fn ntfy_forms() {
        let r = one("ntfy://ntfy.sh/alerts");
        assert_eq!(r.url, "https://ntfy.sh/alerts");
        assert_eq!(header(&r, "Title"), Some("T"));
        assert_eq!(header(&r, "Authorization"), None);
        assert_eq!(r.body, b"hello");

        let r = one("ntfy://u:p@host:81/t?scheme=http&title=Mine&priority=high&tags=a,b&cache=no");
        assert_eq!(r.url, "http://host:81/t");
        assert_eq!(header(&r, "Title"), Some("Mine"));
        assert_eq!(header(&r, "Priority"), Some("high"));
        assert_eq!(header(&r, "Tags"), Some("a,b"));
        assert_eq!(header(&r, "Cache"), Some("no"));
        assert_eq!(header(&r, "Authorization"), Some("Basic dTpw"));

        assert_eq!(one("ntfy://h/t?disabletls=yes").url, "http://h/t");
        let r = one("ntfy://h/t?title=Sauvegarde%20r%C3%A9ussie");
        assert_eq!(
            header(&r, "Title"),
            Some("=?UTF-8?B?U2F1dmVnYXJkZSByw6l1c3NpZQ==?=")
        );
        let r = one("ntfy://:tk_abc@h/t?token=tk_xyz");
        assert_eq!(header(&r, "Authorization"), Some("Bearer tk_xyz"));

        assert!(
            parse("ntfy://host")
                .unwrap_err()
                .contains("topic is missing")
        );
        assert!(parse("ntfy://host/t?scheme=ftp").is_err());
    }

    #[test]
    fn gotify_forms() {
        let r = one("gotify://g.example:8443/path/to/AbCdEf.123/?priority=4&disabletls=yes");
        assert_eq!(
            r.url,
            "http://g.example:8443/path/to/message?token=AbCdEf.123"
        );
        assert_eq!(
            body_json(&r),
            json!({"title": "T", "message": "hello", "priority": 4})
        );
        let r = one("gotify://g/Tok?useheader=yes&title=Mine");
        assert_eq!(r.url, "https://g/message");
        assert_eq!(header(&r, "X-Gotify-Key"), Some("Tok"));
        assert_eq!(body_json(&r)["title"], "Mine");
        assert!(parse("gotify://g/").is_err());
        assert!(parse("gotify://g/t?priority=high").is_err());
    }

    #[test]
    fn discord_forms() {
        let r = one("discord://TOKEN@12345?thread_id=9&username=bot");
        assert_eq!(r.url, "http://d.test/api/webhooks/12345/TOKEN?thread_id=9");
        assert_eq!(
            body_json(&r),
            json!({"content": "T\nhello", "username": "bot"})
        );
        let r = one("discord://TOKEN@12345/raw");
        assert_eq!(r.body, b"hello");
        assert!(parse("discord://12345").is_err());
        assert!(parse("discord://t@12345/other").is_err());
    }

    #[test]
    fn slack_forms() {
        let a = "T00000000";
        let b = "B00000000";
        let c = "XXXXXXXXXXXXXXXXXXXXXXXX";
        for url in [
            format!("slack://hook:{a}-{b}-{c}@webhook"),
            format!("slack://{a}/{b}/{c}"),
            format!("slack://mybot@{a}/{b}/{c}"),
        ] {
            let r = one(&url);
            assert_eq!(
                r.url,
                format!("http://s.test/services/{a}/{b}/{c}"),
                "{url}"
            );
            assert_eq!(body_json(&r)["text"], "T\nhello");
            assert!(!r.expect_ok_json);
        }
        assert_eq!(
            body_json(&one(&format!("slack://mybot@{a}/{b}/{c}")))["username"],
            "mybot"
        );
        let r = one(&format!("slack://xoxb:{a}-{b}-{c}@C0123?icon=:ghost:"));
        assert_eq!(r.url, "http://s.test/api/chat.postMessage");
        assert_eq!(
            header(&r, "Authorization"),
            Some(format!("Bearer xoxb-{a}-{b}-{c}").as_str())
        );
        assert_eq!(body_json(&r)["channel"], "C0123");
        assert_eq!(body_json(&r)["icon_emoji"], ":ghost:");
        assert!(r.expect_ok_json);
        assert!(parse("slack://hook:a-b@webhook").is_err());
        assert!(parse("slack://a-b/c").is_err());
        assert!(parse(&format!("slack://xoxb:{a}-{b}-{c}@webhook")).is_err());
    }

    #[test]
    fn telegram_forms() {
        let svc = parse("telegram://123456:AA-bb_CC@telegram?chats=@chan1,42&preview=no").unwrap();
        let reqs = svc.requests("", "hello", &ep());
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].url, "http://t.test/bot123456:AA-bb_CC/sendMessage");
        assert_eq!(
            body_json(&reqs[0]),
            json!({"chat_id": "@chan1", "text": "hello", "disable_web_page_preview": true})
        );
        assert_eq!(body_json(&reqs[1])["chat_id"], "42");
        assert!(parse("telegram://123456:AA@telegram").is_err());
        assert!(parse("telegram://abc:AA@telegram?chats=1").is_err());
        assert!(parse("telegram://telegram?chats=1").is_err());
    }

    #[test]
    fn generic_forms() {
        let r = one("generic://example.com/hook?x=1");
        assert_eq!(r.url, "https://example.com/hook?x=1");
        assert_eq!(header(&r, "Content-Type"), Some("text/plain"));
        assert_eq!(r.body, b"hello");

        let r =
            one("generic+http://u:pw@h:8/p?template=json&$source=nas&@XApiKey=k&messagekey=msg");
        assert_eq!(r.url, "http://h:8/p");
        assert_eq!(header(&r, "X-Api-Key"), Some("k"));
        assert_eq!(header(&r, "Content-Type"), Some("application/json"));
        assert_eq!(header(&r, "Authorization"), Some("Basic dTpwdw=="));
        assert_eq!(
            body_json(&r),
            json!({"title": "T", "msg": "hello", "source": "nas"})
        );
        assert_eq!(one("generic://h/p?disabletls=yes").url, "http://h/p");
        assert_eq!(one("generic+https://h/p").url, "https://h/p");
        let r = one("generic://h/p?method=GET");
        assert_eq!(r.method, Method::Get);
        assert!(r.body.is_empty());
        assert!(parse("generic://h/p?template=custom").is_err());
        assert!(parse("generic://h/p?method=BREW").is_err());
        assert_eq!(header_name("authorization"), "Authorization");
        assert_eq!(header_name("XApiKey"), "X-Api-Key");
    }

    #[test]
    fn unknown_scheme_names_the_supported_ones_and_no_secret() {
        let e = parse("pushover://shoutrrr:SECRETTOKEN@userkey/?devices=a").unwrap_err();
        assert!(e.contains("\"pushover\""), "{e}");
        assert!(e.contains("ntfy, gotify"), "{e}");
        assert!(!e.contains("SECRETTOKEN"), "{e}");
        let e = parse("garbage").unwrap_err();
        assert!(e.contains("not a URL"), "{e}");
    }
}
