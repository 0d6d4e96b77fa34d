//! Secrets masked for display: [`Config::redacted`] (the config as the GetConfig RPC
//! shows it) and [`redact_uri`] (a repo URI or URL with its password hidden).
//!
//! Every secret becomes `********`; an empty secret stays empty, so a client can tell
//! "not set" from "set". Masked: users' `passwordBcrypt`, repo `password`, the value of
//! each repo `env` entry (`KEY=********`), a password in a repo URI (URL userinfo, and
//! secret parameters of an rclone connection string), hook secrets (gotify `token`,
//! telegram `botToken`, the whole webhook, discord, slack, healthchecks and shoutrrr
//! URLs, which carry their tokens in the path), and, in the keys kept verbatim
//! (`extra`, e.g. `sync`), the value of every key whose name says it is a secret (see
//! [`is_secret_name`]) and a password in any URL. Hook commands and restic flags are
//! shown as written: they are the user's scripts, not fields meant for secrets.
//!
//! It must not change anything else, and a redacted config is for showing only: it
//! must never be saved or put in force.

use super::types::{
    Auth, CheckPolicy, CommandAction, CommandPrefix, Config, ForgetPolicy, GotifyAction, Hook,
    Plan, PrunePolicy, Repo, RetentionPolicy, Schedule, ShoutrrrAction, TelegramAction,
    TimeBucketed, UrlTemplateAction, User, WebhookAction,
};
use serde_json::{Map, Value};

/// Shown in place of a secret.
pub(crate) const HIDDEN: &str = "********";

/// `********` for a secret that is set, `""` for one that is not.
pub(crate) fn hidden(s: &str) -> &'static str {
    if s.is_empty() { "" } else { HIDDEN }
}

impl Config {
    /// This config with every secret replaced by `********` (empty ones stay empty),
    /// everything else unchanged: what GetConfig answers. For showing only; never save
    /// it or put it in force (the masks would become the passwords).
    pub fn redacted(&self) -> Config {
        let mut config = self.clone();
        config.redact();
        config
    }
}

/// Masks the secrets of a config struct in place, its `extra` included.
trait Redact {
    fn redact(&mut self);
}

impl<T: Redact> Redact for Option<T> {
    fn redact(&mut self) {
        if let Some(t) = self {
            t.redact();
        }
    }
}

impl<T: Redact> Redact for Vec<T> {
    fn redact(&mut self) {
        self.iter_mut().for_each(Redact::redact);
    }
}

/// Replaces a secret that is set.
fn mask(s: &mut String) {
    if !s.is_empty() {
        *s = HIDDEN.to_string();
    }
}

/// Implements [`Redact`] for structs whose only secrets can be in nested structs and
/// in `extra`.
macro_rules! redact_fields {
    ($($t:ty { $($field:ident),* }),+ $(,)?) => {$(
        impl Redact for $t {
            fn redact(&mut self) {
                $(self.$field.redact();)*
                redact_extra(&mut self.extra);
            }
        }
    )+};
}

redact_fields!(
    Plan {
        schedule,
        retention,
        hooks
    },
    Schedule {},
    PrunePolicy { schedule },
    CheckPolicy { schedule },
    ForgetPolicy {
        schedule,
        retention
    },
    RetentionPolicy {
        policy_time_bucketed
    },
    TimeBucketed {},
    CommandPrefix {},
    Hook {
        action_command,
        action_webhook,
        action_discord,
        action_gotify,
        action_slack,
        action_shoutrrr,
        action_healthchecks,
        action_telegram
    },
    CommandAction {},
    Auth { users },
);

impl Redact for Config {
    fn redact(&mut self) {
        self.repos.redact();
        self.plans.redact();
        self.auth.redact();
        redact_extra(&mut self.extra);
    }
}

impl Redact for Repo {
    fn redact(&mut self) {
        self.uri = redact_uri(&self.uri);
        mask(&mut self.password);
        for entry in &mut self.env {
            match entry.split_once('=') {
                Some((name, value)) if !value.is_empty() => *entry = format!("{name}={HIDDEN}"),
                Some(_) => {}
                // Not KEY=VALUE (invalid): there is no telling what part is secret.
                None => mask(entry),
            }
        }
        self.prune_policy.redact();
        self.check_policy.redact();
        self.hooks.redact();
        self.command_prefix.redact();
        self.forget_policy.redact();
        redact_extra(&mut self.extra);
    }
}

impl Redact for User {
    fn redact(&mut self) {
        mask(&mut self.password_bcrypt);
        redact_extra(&mut self.extra);
    }
}

impl Redact for WebhookAction {
    fn redact(&mut self) {
        mask(&mut self.webhook_url);
        redact_extra(&mut self.extra);
    }
}

impl Redact for UrlTemplateAction {
    fn redact(&mut self) {
        mask(&mut self.webhook_url);
        redact_extra(&mut self.extra);
    }
}

impl Redact for GotifyAction {
    fn redact(&mut self) {
        self.base_url = redact_uri(&self.base_url);
        mask(&mut self.token);
        redact_extra(&mut self.extra);
    }
}

impl Redact for ShoutrrrAction {
    fn redact(&mut self) {
        mask(&mut self.shoutrrr_url);
        redact_extra(&mut self.extra);
    }
}

impl Redact for TelegramAction {
    fn redact(&mut self) {
        mask(&mut self.bot_token);
        redact_extra(&mut self.extra);
    }
}

/// Keys kept verbatim: a key named like a secret has its value masked; any other
/// value is searched for such keys and for passwords in URLs.
fn redact_extra(extra: &mut Map<String, Value>) {
    for (key, value) in extra.iter_mut() {
        if is_secret_name(key) {
            mask_all(value);
        } else {
            redact_value(value);
        }
    }
}

fn redact_value(value: &mut Value) {
    match value {
        Value::Object(map) => redact_extra(map),
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        Value::String(s) if s.contains("://") || s.starts_with("rclone:") => {
            *s = redact_uri(s);
        }
        _ => {}
    }
}

/// Masks every non-empty string in `value`, however deep. Numbers, booleans and
/// `null` are left as they are (a mask would change their type).
fn mask_all(value: &mut Value) {
    match value {
        Value::String(s) => mask(s),
        Value::Object(map) => map.values_mut().for_each(mask_all),
        Value::Array(items) => items.iter_mut().for_each(mask_all),
        _ => {}
    }
}

/// Words that make a key name a secret wherever they appear in it.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwords",
    "passwd",
    "passphrase",
    "pass",
    "pwd",
    "pw",
    "secret",
    "secrets",
    "token",
    "tokens",
    "priv",
    "private",
    "privkey",
    "privatekey",
    "apikey",
    "secretkey",
    "credential",
    "credentials",
    "authorization",
    "bcrypt",
    "sas",
];

/// Words that, right after `key`, make it a reference to a key rather than the key:
/// `keyId`, `accessKeyId`, `keyFile`.
const KEY_REFERENCE_WORDS: &[&str] = &["id", "ids", "file", "path", "name", "type"];

/// True when a key's name says its value is a secret. The name is split into words
/// (camelCase, snake_case, kebab-case, and letters apart from digits, so `ed25519priv`
/// is `ed 25519 priv`), and it is a secret when a word is one of `SECRET_WORDS`
/// (`password`, `token`, `secret`, `priv`, ...), or when it has the word `key` not
/// preceded by `pub`/`public` and not followed by a word that makes it a reference
/// (`apiKey`, `accountKey`, `keyPem` are secrets; `keyId`, `accessKeyId`, `publicKey`,
/// `keyFile` are not). Whole words only: `passthrough`, `monkey`, `keyring` are not.
/// In doubt it masks: a rare public key named like a secret is hidden.
pub fn is_secret_name(name: &str) -> bool {
    let words = split_words(name);
    words.iter().enumerate().any(|(i, word)| {
        if SECRET_WORDS.contains(&word.as_str()) {
            return true;
        }
        if word != "key" {
            return false;
        }
        let public = i > 0 && matches!(words[i - 1].as_str(), "pub" | "public");
        let reference = words
            .get(i + 1)
            .is_some_and(|next| KEY_REFERENCE_WORDS.contains(&next.as_str()));
        !public && !reference
    })
}

/// `ed25519PrivKey_x-y` → `ed`, `25519`, `priv`, `key`, `x`, `y` (lower case).
fn split_words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if let Some(&prev) = i.checked_sub(1).and_then(|p| chars.get(p)) {
            let next = chars.get(i + 1).copied();
            let boundary = (prev.is_lowercase() && c.is_uppercase())
                || (prev.is_alphabetic() != c.is_alphabetic() && prev.is_alphanumeric())
                // The last capital of an acronym starts the next word: `URLPath`.
                || (prev.is_uppercase()
                    && c.is_uppercase()
                    && next.is_some_and(char::is_lowercase));
            if boundary && !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
        }
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// A repo URI, or any text holding URLs, with passwords replaced by `********`:
/// - the password of every URL's userinfo (`rest:https://me:pw@host/r` →
///   `rest:https://me:********@host/r`; the same in `s3:https://...`,
///   `sftp://me:pw@host//srv`, or a URL inside an rclone connection string);
/// - in an `rclone:` URI, the value of every connection-string parameter named like a
///   secret (`rclone::sftp,host=h,pass=XYZ:path` → `...,pass=********:path`).
///
/// A user name alone (`sftp:me@host:/srv`) and an empty password are kept; other
/// URIs are returned unchanged.
pub fn redact_uri(uri: &str) -> String {
    let masked = redact_url_passwords(uri);
    match masked.strip_prefix("rclone:") {
        Some(remote) => format!("rclone:{}", redact_rclone_params(remote)),
        None => masked,
    }
}

fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        // The last `@`: a password written with an unescaped `@` is still hidden whole.
        let password = authority.rfind('@').and_then(|at| {
            let colon = authority[..at].find(':')?;
            (colon + 1 < at).then_some((colon, at))
        });
        match password {
            Some((colon, at)) => {
                out.push_str(&authority[..=colon]);
                out.push_str(HIDDEN);
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Masks `name=value` parameters named like secrets in an rclone remote
/// (`remote,pass=x:path`, `:sftp,key_pem='...':path`). A value ends at an unquoted
/// `,` or `:`, as rclone reads it; a quoted one (`"..."` or `'...'`, the quote doubled
/// inside) at its closing quote.
fn redact_rclone_params(remote: &str) -> String {
    let mut out = String::with_capacity(remote.len());
    let mut rest = remote;
    while let Some(comma) = rest.find(',') {
        out.push_str(&rest[..=comma]);
        rest = &rest[comma + 1..];
        let Some(eq) = rest.find('=') else { break };
        let name = &rest[..eq];
        if name.contains([',', ':']) || !is_secret_name(name) {
            continue;
        }
        let value_len = rclone_value_len(&rest[eq + 1..]);
        out.push_str(&rest[..=eq]);
        if value_len > 0 {
            out.push_str(HIDDEN);
        }
        rest = &rest[eq + 1 + value_len..];
    }
    out.push_str(rest);
    out
}

/// The length in bytes of the parameter value at the start of `s`.
fn rclone_value_len(s: &str) -> usize {
    let Some(quote) = s.chars().next().filter(|c| matches!(c, '"' | '\'')) else {
        return s.find([',', ':']).unwrap_or(s.len());
    };
    let mut i = 1;
    while let Some(offset) = s[i..].find(quote) {
        let at = i + offset;
        if s[at + 1..].starts_with(quote) {
            i = at + 2;
        } else {
            return at + 1;
        }
    }
    // No closing quote: everything that follows may be the secret.
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIXTURE: &str = include_str!("../../tests/fixtures/backrest-config.json");

    /// The places of the fixture's secrets (JSON pointers) and what each must become.
    const FIXTURE_SECRETS: &[(&str, &str)] = &[
        ("/repos/0/password", HIDDEN),
        ("/repos/0/env/0", "RESTIC_COMPRESSION=********"),
        ("/repos/0/env/1", "RESTIC_PACK_SIZE=********"),
        ("/repos/0/hooks/0/actionHealthchecks/webhookUrl", HIDDEN),
        ("/repos/1/password", HIDDEN),
        ("/plans/0/hooks/2/actionShoutrrr/shoutrrrUrl", HIDDEN),
        ("/plans/1/hooks/0/actionWebhook/webhookUrl", HIDDEN),
        ("/plans/1/hooks/1/actionGotify/token", HIDDEN),
        ("/auth/users/0/passwordBcrypt", HIDDEN),
        ("/sync/identity/ed25519priv", HIDDEN),
    ];

    fn fixture() -> Config {
        let (config, _) = super::super::parse(FIXTURE).unwrap_or_else(|e| panic!("{e}"));
        config
    }

    #[test]
    fn fixture_secrets_are_masked_and_nothing_else_changes() {
        let original: Value = serde_json::from_str(FIXTURE).unwrap();
        let redacted = fixture().redacted();
        let text = serde_json::to_string_pretty(&redacted).unwrap();

        let mut expected = original.clone();
        for (pointer, mask) in FIXTURE_SECRETS {
            let secret = original.pointer(pointer).unwrap().as_str().unwrap();
            // An env entry's name is public; its value, and the entry whole, are not.
            let needles = match secret.split_once('=') {
                Some((_, value)) if pointer.contains("/env/") => {
                    vec![secret.to_string(), format!("={value}\"")]
                }
                _ => vec![secret.to_string()],
            };
            for needle in needles {
                assert!(!text.contains(&needle), "{needle:?} leaked:\n{text}");
            }
            *expected.pointer_mut(pointer).unwrap() = Value::from(*mask);
        }
        assert_eq!(serde_json::to_value(&redacted).unwrap(), expected);
        // The config itself is untouched.
        assert_eq!(fixture().to_json_pretty(), FIXTURE);
    }

    #[test]
    fn empty_secrets_stay_empty() {
        let config: Config = serde_json::from_value(json!({
            "repos": [{"id": "r", "uri": "rest:https://me:@host/r", "password": "",
                       "env": ["EMPTY=", "SET=x"],
                       "hooks": [{"actionGotify": {"baseUrl": "https://g", "token": ""}},
                                 {"actionTelegram": {"botToken": "", "chatId": "42"}}]}],
            "auth": {"users": [{"name": "a", "passwordBcrypt": ""}]},
            "sync": {"identity": {"ed25519priv": ""}}
        }))
        .unwrap();
        let out = serde_json::to_value(config.redacted()).unwrap();
        assert_eq!(
            out,
            json!({
                "repos": [{"id": "r", "uri": "rest:https://me:@host/r", "password": "",
                           "env": ["EMPTY=", "SET=********"],
                           "hooks": [{"actionGotify": {"baseUrl": "https://g", "token": ""}},
                                     {"actionTelegram": {"botToken": "", "chatId": "42"}}]}],
                "auth": {"users": [{"name": "a", "passwordBcrypt": ""}]},
                "sync": {"identity": {"ed25519priv": ""}}
            })
        );
    }

    #[test]
    fn every_hook_secret_and_uri_password_is_masked() {
        let config: Config = serde_json::from_value(json!({
            "repos": [{"id": "r", "uri": "s3:https://AKIA:topsecret@minio.lan:9000/bucket",
                       "env": ["NOEQUALS"],
                       "hooks": [
                {"actionDiscord": {"webhookUrl": "https://discord.com/api/webhooks/1/abc"}},
                {"actionSlack": {"webhookUrl": "https://hooks.slack.com/services/T/B/xyz"}},
                {"actionGotify": {"baseUrl": "https://u:gpw@gotify.lan", "token": "gt",
                                  "template": "t"}},
                {"actionTelegram": {"botToken": "123:AA", "chatId": "42", "template": "t"}},
                {"actionWebhook": {"webhookUrl": "https://x/y", "method": "GET", "template": "t"}}
            ]}]
        }))
        .unwrap();
        let out = serde_json::to_value(config.redacted()).unwrap();
        let repo = &out["repos"][0];
        assert_eq!(
            repo["uri"],
            "s3:https://AKIA:********@minio.lan:9000/bucket"
        );
        assert_eq!(repo["env"], json!(["********"]));
        assert_eq!(repo["hooks"][0]["actionDiscord"]["webhookUrl"], HIDDEN);
        assert_eq!(repo["hooks"][1]["actionSlack"]["webhookUrl"], HIDDEN);
        assert_eq!(
            repo["hooks"][2]["actionGotify"],
            json!({"baseUrl": "https://u:********@gotify.lan", "token": HIDDEN, "template": "t"})
        );
        assert_eq!(
            repo["hooks"][3]["actionTelegram"],
            json!({"botToken": HIDDEN, "chatId": "42", "template": "t"})
        );
        assert_eq!(
            repo["hooks"][4]["actionWebhook"],
            json!({"webhookUrl": HIDDEN, "method": "GET", "template": "t"})
        );
    }

    #[test]
    fn unknown_keys_named_like_secrets_are_masked_at_any_level() {
        let config: Config = serde_json::from_value(json!({
            "apiToken": "t1",
            "sync": {
                "identity": {"keyId": "ed25519.pub1", "ed25519priv": "p1", "ed25519pub": "u1"},
                "knownHosts": [{"instanceId": "b", "keyId": "k", "keyIdVerified": true,
                                "instanceUri": "https://peer:peerpw@b.lan:9898"}],
                "credentials": {"user": "x", "list": ["y", ""], "n": 3}
            },
            "repos": [{"id": "r", "uri": "/r", "futureSecret": "s1", "clientKey": "k1",
                       "prunePolicy": {"schedule": {"x_password": "p2"}}}],
            "plans": [{"id": "p", "repo": "r",
                       "retention": {"policyTimeBucketed": {"daily": 1, "bearerToken": "b"}}}],
            "auth": {"users": [{"name": "a", "passwordBcrypt": "h", "otpSecret": "o"}]}
        }))
        .unwrap();
        let out = serde_json::to_value(config.redacted()).unwrap();
        assert_eq!(
            out,
            json!({
                "apiToken": HIDDEN,
                "sync": {
                    "identity": {"keyId": "ed25519.pub1", "ed25519priv": HIDDEN,
                                 "ed25519pub": "u1"},
                    "knownHosts": [{"instanceId": "b", "keyId": "k", "keyIdVerified": true,
                                    "instanceUri": "https://peer:********@b.lan:9898"}],
                    "credentials": {"user": HIDDEN, "list": [HIDDEN, ""], "n": 3}
                },
                "repos": [{"id": "r", "uri": "/r", "futureSecret": HIDDEN, "clientKey": HIDDEN,
                           "prunePolicy": {"schedule": {"x_password": HIDDEN}}}],
                "plans": [{"id": "p", "repo": "r",
                           "retention": {"policyTimeBucketed": {"daily": 1,
                                                                "bearerToken": HIDDEN}}}],
                "auth": {"users": [{"name": "a", "passwordBcrypt": HIDDEN, "otpSecret": HIDDEN}]}
            })
        );
    }

    #[test]
    fn secret_names_are_whole_words() {
        for name in [
            "password",
            "passwordBcrypt",
            "token",
            "botToken",
            "client_secret",
            "ed25519priv",
            "privateKey",
            "apiKey",
            "api_key",
            "apikey",
            "key",
            "keyPem",
            "key_pem",
            "account_key",
            "secret_access_key",
            "AUTH_TOKEN",
            "sas_url",
            "Authorization",
            "pass",
            "x-api-key",
        ] {
            assert!(is_secret_name(name), "{name} should be a secret");
        }
        for name in [
            "keyId",
            "keyIdVerified",
            "access_key_id",
            "accessKeyId",
            "publicKey",
            "pub_key",
            "ed25519pub",
            "keyFile",
            "key_file",
            "passthrough",
            "monkey",
            "keyring",
            "instanceUri",
            "tokenizer",
            "compass",
            "id",
            "",
        ] {
            assert!(!is_secret_name(name), "{name} should not be a secret");
        }
    }

    #[test]
    fn words_split_on_case_digits_and_separators() {
        assert_eq!(split_words("ed25519priv"), ["ed", "25519", "priv"]);
        assert_eq!(split_words("keyIdVerified"), ["key", "id", "verified"]);
        assert_eq!(split_words("URLPath"), ["url", "path"]);
        assert_eq!(split_words("x-api_key.v2"), ["x", "api", "key", "v", "2"]);
    }

    #[test]
    fn redact_uri_hides_only_passwords() {
        for (uri, want) in [
            (
                "rest:https://me:pw@host:8000/repo",
                "rest:https://me:********@host:8000/repo",
            ),
            ("rest:https://me@host/r", "rest:https://me@host/r"),
            ("rest:https://me:@host/r", "rest:https://me:@host/r"),
            ("rest:https://:pw@host/r", "rest:https://:********@host/r"),
            (
                "rest:https://me:p@ss:w@[::1]:8000/r",
                "rest:https://me:********@[::1]:8000/r",
            ),
            (
                "rest:http://me:pw@host?x=a@b:c",
                "rest:http://me:********@host?x=a@b:c",
            ),
            (
                "sftp://me:pw@host:22//srv/restic",
                "sftp://me:********@host:22//srv/restic",
            ),
            ("sftp:me@host:/srv/restic", "sftp:me@host:/srv/restic"),
            ("s3:s3.amazonaws.com/bucket", "s3:s3.amazonaws.com/bucket"),
            (
                "s3:http://key:secret@minio:9000/b",
                "s3:http://key:********@minio:9000/b",
            ),
            ("/srv/restic", "/srv/restic"),
            ("https://host/a@b:c", "https://host/a@b:c"),
            ("rclone:remote:path/x", "rclone:remote:path/x"),
            (
                "rclone::sftp,host=h,user=me,pass=XYZ:path",
                "rclone::sftp,host=h,user=me,pass=********:path",
            ),
            (
                "rclone::s3,access_key_id=AK,secret_access_key='a,b:c''d',region=x:bucket/p",
                "rclone::s3,access_key_id=AK,secret_access_key=********,region=x:bucket/p",
            ),
            (
                "rclone::webdav,url=\"https://me:wpw@dav\",pass=:p",
                "rclone::webdav,url=\"https://me:********@dav\",pass=:p",
            ),
            ("rclone:r,token=\"unclosed", "rclone:r,token=********"),
            (
                "two http://a:b@h and https://c:d@i/",
                "two http://a:********@h and https://c:********@i/",
            ),
        ] {
            assert_eq!(redact_uri(uri), want, "{uri}");
        }
    }
}
