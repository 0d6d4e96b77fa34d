//! CONTRACT §2 login tokens against the real binary: `v1.Authentication/Login` and
//! `HashPassword`, `Authorization: Bearer` on `v1.Backrest/*`, and the tokens that must
//! stop working: tampered, expired, `alg: none`, of a user removed from the config. A
//! token must outlive a restart.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

fn json_headers() -> Vec<(String, String)> {
    vec![("Content-Type".into(), "application/json".into())]
}

/// Calls a `v1.Authentication` method, with no credentials.
fn auth_rpc(fr: &Footrest, method: &str, body: &Value) -> HttpResponse {
    fr.request(
        "POST",
        &format!("/v1.Authentication/{method}"),
        &json_headers(),
        &serde_json::to_vec(body).unwrap(),
    )
}

fn login(fr: &Footrest, user: &str, password: &str) -> HttpResponse {
    auth_rpc(
        fr,
        "Login",
        &json!({"username": user, "password": password}),
    )
}

/// A token from a successful login.
fn token_of(fr: &Footrest, user: &str, password: &str) -> String {
    let r = login(fr, user, password);
    assert_eq!(r.status, 200, "Login {user}: {}", r.text());
    r.json()["token"].as_str().expect("token").to_string()
}

/// GetOperations with `Authorization: <authorization>`.
fn get_operations(fr: &Footrest, authorization: &str) -> HttpResponse {
    let mut headers = json_headers();
    headers.push(("Authorization".into(), authorization.into()));
    fr.request("POST", "/v1.Backrest/GetOperations", &headers, b"{}")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn assert_token_refused(fr: &Footrest, token: &str, what: &str) {
    let r = get_operations(fr, &bearer(token));
    assert_eq!(r.status, 401, "{what}: {}", r.text());
    r.assert_error(401, "unauthenticated");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"footrest\"")
    );
}

/// A token signed with the key in the data dir, as footrest would sign it.
fn mint(sandbox: &Sandbox, header: &Value, claims: &Value) -> String {
    let key = std::fs::read(sandbox.data_dir().join("jwt-secret")).expect("jwt-secret");
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(format!("{h}.{c}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{h}.{c}.{sig}")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Auth on, users `admin` and `bob` (both `changeme`), one plan.
fn users_config(sandbox: &Sandbox, users: &[(&str, &str)]) -> Value {
    let src = sandbox.path("src");
    sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src]}]),
        auth_users(users),
    )
}

fn start(sandbox: &Sandbox) -> Footrest {
    sandbox.source("src", 1);
    sandbox.write_config(&users_config(
        sandbox,
        &[("admin", CHANGEME_HASH), ("bob", CHANGEME_HASH)],
    ));
    Footrest::start(sandbox)
}

/// Replaces the config file the way editors save (a new file renamed into place) and
/// waits until footrest has reloaded it.
fn replace_config(sandbox: &Sandbox, fr: &Footrest, config: &Value) {
    let reloads = fr.stderr().matches("config reloaded").count();
    let tmp = sandbox.path("config.json.new");
    std::fs::write(&tmp, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    std::fs::rename(&tmp, sandbox.config_path()).unwrap();
    wait_until("the config reload", Duration::from_secs(20), || {
        fr.stderr().matches("config reloaded").count() > reloads
    });
}

#[test]
fn login_then_bearer_and_every_bad_token_refused() {
    let sandbox = Sandbox::new();
    let fr = start(&sandbox);

    // No key before the first login.
    let secret = sandbox.data_dir().join("jwt-secret");
    assert!(!secret.exists());

    let token = token_of(&fr, "admin", "changeme");
    let r = get_operations(&fr, &bearer(&token));
    assert_eq!(r.status, 200, "{}", r.text());
    let meta = std::fs::metadata(&secret).unwrap();
    assert_eq!(meta.len(), 64);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // The token's claims: sub, and exp seven days ahead.
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "admin");
    let exp = claims["exp"].as_u64().unwrap();
    let week = 7 * 24 * 3600;
    assert!(exp.abs_diff(now() + week) < 60, "exp {exp}");

    // Wrong password, unknown user, nothing at all: the same exact answer.
    for (user, password) in [("admin", "wrong"), ("nobody", "changeme"), ("", "")] {
        let r = login(&fr, user, password);
        assert_eq!(r.status, 401, "{}", r.text());
        assert_eq!(
            r.json(),
            json!({"code": "unauthenticated", "message": "invalid password"})
        );
    }
    let r = auth_rpc(&fr, "Login", &json!({"username": "admin", "password": 5}));
    assert!(!r.assert_error(400, "invalid_argument").contains('5'));

    // Tampered: one character of each part changed.
    for part in 0..3 {
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let p = &mut parts[part];
        let c = if p.starts_with('e') { "f" } else { "e" };
        p.replace_range(0..1, c);
        assert_token_refused(&fr, &parts.join("."), &format!("part {part} tampered"));
    }

    // A token minted with footrest's own key is good while unexpired...
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let good = mint(
        &sandbox,
        &header,
        &json!({"sub": "admin", "exp": now() + 600}),
    );
    assert_eq!(get_operations(&fr, &bearer(&good)).status, 200);
    // ...and refused once expired.
    let expired = mint(
        &sandbox,
        &header,
        &json!({"sub": "admin", "iat": now() - 3600, "exp": now() - 1}),
    );
    assert_token_refused(&fr, &expired, "expired");

    // alg none, with and without a signature.
    let none_header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
    let claims = URL_SAFE_NO_PAD.encode(json!({"sub": "admin", "exp": now() + 600}).to_string());
    assert_token_refused(&fr, &format!("{none_header}.{claims}."), "alg none");
    let none_signed = mint(
        &sandbox,
        &json!({"alg": "none"}),
        &json!({"sub": "admin", "exp": now() + 600}),
    );
    assert_token_refused(&fr, &none_signed, "alg none, signed");

    // Garbage.
    for junk in ["", "x", "a.b.c", "...", &format!("{token}.")] {
        assert_token_refused(&fr, junk, junk);
    }
    // Basic still works.
    assert_eq!(get_operations(&fr, &basic("admin", "changeme")).status, 200);
    // The server is still up and never logged a token.
    let log = fr.stderr();
    assert!(!log.contains(&token), "a token in the log");
    assert!(!log.contains("panic"), "{log}");
}

#[test]
fn a_token_survives_a_restart() {
    let sandbox = Sandbox::new();
    let mut fr = start(&sandbox);
    let token = token_of(&fr, "bob", "changeme");
    let key = std::fs::read(sandbox.data_dir().join("jwt-secret")).unwrap();
    fr.signal(libc::SIGTERM);
    assert!(fr.wait_exit(Duration::from_secs(60)).success());

    let fr = Footrest::start(&sandbox);
    let r = get_operations(&fr, &bearer(&token));
    assert_eq!(r.status, 200, "{}", r.text());
    // The same key, and a new login signs with it too.
    let again = token_of(&fr, "bob", "changeme");
    assert_eq!(get_operations(&fr, &bearer(&again)).status, 200);
    assert_eq!(
        std::fs::read(sandbox.data_dir().join("jwt-secret")).unwrap(),
        key
    );
}

#[test]
fn a_removed_user_loses_access_and_hash_password_makes_a_usable_user() {
    let sandbox = Sandbox::new();
    let fr = start(&sandbox);
    let admin = token_of(&fr, "admin", "changeme");
    let bob = token_of(&fr, "bob", "changeme");
    assert_eq!(get_operations(&fr, &bearer(&bob)).status, 200);

    // HashPassword: a value bcrypt accepts for the password.
    let password = "n3w:pässwörd with spaces";
    let r = auth_rpc(&fr, "HashPassword", &json!({"value": password}));
    assert_eq!(r.status, 200, "{}", r.text());
    let value = r.json()["value"].as_str().unwrap().to_string();
    let hash = footrest::api::auth::decode_hash(&value).unwrap();
    assert!(hash.starts_with("$2"), "{hash}");
    assert!(bcrypt::verify(password, &hash).unwrap());
    assert!(!bcrypt::verify("n3w:pässwörd", &hash).unwrap());
    for empty in [json!({"value": ""}), json!({})] {
        let r = auth_rpc(&fr, "HashPassword", &empty);
        let message = r.assert_error(400, "invalid_argument");
        assert!(message.starts_with("value: "), "{message}");
    }

    // bob leaves the config and carol, with the hashed password, joins it.
    replace_config(
        &sandbox,
        &fr,
        &users_config(&sandbox, &[("admin", CHANGEME_HASH), ("carol", &value)]),
    );
    assert_token_refused(&fr, &bob, "token of a removed user");
    let r = login(&fr, "bob", "changeme");
    assert_eq!(
        r.json(),
        json!({"code": "unauthenticated", "message": "invalid password"})
    );
    assert_eq!(get_operations(&fr, &bearer(&admin)).status, 200);
    assert_eq!(get_operations(&fr, &basic("carol", password)).status, 200);
    let carol = token_of(&fr, "carol", password);
    assert_eq!(get_operations(&fr, &bearer(&carol)).status, 200);
    assert!(!fr.stderr().contains(&value), "a hash in the log");
}

#[test]
fn with_auth_disabled_login_says_so_and_hash_password_works() {
    let sandbox = Sandbox::new();
    let src = sandbox.source("src", 1);
    sandbox.write_config(&sandbox.config(
        json!([{"id": "docs", "repo": "local", "paths": [src]}]),
        auth_off(),
    ));
    let fr = Footrest::start(&sandbox);
    let r = login(&fr, "admin", "changeme");
    let message = r.assert_error(401, "unauthenticated");
    assert!(message.contains("authentication is disabled"), "{message}");
    assert!(!sandbox.data_dir().join("jwt-secret").exists());
    let r = auth_rpc(&fr, "HashPassword", &json!({"value": "pw"}));
    assert_eq!(r.status, 200, "{}", r.text());
    // Anything goes on v1.Backrest, a stray token included.
    assert_eq!(get_operations(&fr, "Bearer junk").status, 200);
}
