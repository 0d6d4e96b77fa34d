//! Actions against real processes and real HTTP on loopback: tiny_http receivers on
//! port 0 stand in for every service; nothing leaves the machine.

use super::*;
use std::io::Write as _;
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use serde_json::Value;

// ---------------------------------------------------------------------------------
// HTTP

#[derive(Debug)]
struct Captured {
    method: String,
    /// Path and query as sent.
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Captured {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// A loopback HTTP server that answers `count` requests with `status` and `answer`
/// and hands each request it got to the test.
struct Receiver {
    base: String,
    rx: mpsc::Receiver<Captured>,
}

impl Receiver {
    fn start(status: u16, answer: &str, count: usize) -> Receiver {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let (tx, rx) = mpsc::channel();
        let answer = answer.to_string();
        thread::spawn(move || {
            for _ in 0..count {
                let Ok(Some(mut req)) = server.recv_timeout(Duration::from_secs(20)) else {
                    return;
                };
                let mut body = Vec::new();
                req.as_reader().read_to_end(&mut body).unwrap();
                let got = Captured {
                    method: req.method().as_str().to_string(),
                    url: req.url().to_string(),
                    headers: req
                        .headers()
                        .iter()
                        .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
                        .collect(),
                    body,
                };
                let resp =
                    tiny_http::Response::from_string(answer.clone()).with_status_code(status);
                let _ = req.respond(resp);
                if tx.send(got).is_err() {
                    return;
                }
            }
        });
        Receiver {
            base: format!("http://127.0.0.1:{port}"),
            rx,
        }
    }

    fn next(&self) -> Captured {
        self.rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the receiver got no request")
    }
}

fn quick() -> Timeouts {
    Timeouts {
        connect: Duration::from_millis(500),
        total: Duration::from_secs(1),
    }
}

fn endpoints(base: &str) -> Endpoints {
    Endpoints {
        discord: format!("{base}/api/webhooks"),
        slack_hooks: format!("{base}/services"),
        slack_api: format!("{base}/api"),
        telegram: base.to_string(),
    }
}

/// Asserts that no secret appears in any of the texts.
fn no_secret(texts: &[&str], secrets: &[&str]) {
    for t in texts {
        for s in secrets {
            assert!(!t.contains(s), "secret {s:?} leaked into {t:?}");
        }
    }
}

const TOKEN: &str = "Sup3rS3cretT0ken";

#[test]
fn webhook_post_sends_body_and_content_type() {
    let r = Receiver::start(200, "ok", 1);
    let url = format!("{}/hook/{TOKEN}?key={TOKEN}x", r.base);
    let out = webhook(
        &url,
        WebhookMethod::Post,
        "{\"a\":1}",
        "application/json",
        &quick(),
    )
    .unwrap();
    let got = r.next();
    assert_eq!(got.method, "POST");
    assert_eq!(got.url, format!("/hook/{TOKEN}?key={TOKEN}x"));
    assert_eq!(got.header("Content-Type"), Some("application/json"));
    assert!(got.header("User-Agent").unwrap().starts_with("footrest/"));
    assert_eq!(got.text(), "{\"a\":1}");
    let port = r.base.rsplit(':').next().unwrap();
    assert_eq!(
        out.output,
        format!("POST http://127.0.0.1:{port}/*** -> 200")
    );
    no_secret(&[&out.output], &[TOKEN]);
}

#[test]
fn webhook_unknown_method_is_post_and_get_sends_no_body() {
    let r = Receiver::start(204, "", 2);
    webhook(
        &format!("{}/x", r.base),
        WebhookMethod::Unknown,
        "b",
        "text/plain",
        &quick(),
    )
    .unwrap();
    assert_eq!(r.next().method, "POST");

    let out = webhook(
        &format!("{}/get?q=1", r.base),
        WebhookMethod::Get,
        "ignored",
        "text/plain",
        &quick(),
    )
    .unwrap();
    let got = r.next();
    assert_eq!(got.method, "GET");
    assert_eq!(got.url, "/get?q=1");
    assert!(got.body.is_empty());
    assert_eq!(got.header("Content-Type"), None);
    assert!(matches!(got.header("Content-Length"), None | Some("0")));
    assert!(out.output.starts_with("GET http://127.0.0.1:"));
    assert!(out.output.ends_with("-> 204"));
}

#[test]
fn webhook_credentials_in_the_url_become_basic_auth() {
    let r = Receiver::start(401, &format!("bad password {TOKEN} for me"), 1);
    let url = r.base.replace("http://", &format!("http://me:{TOKEN}@")) + "/p";
    let err = webhook(&url, WebhookMethod::Post, "x", "", &quick()).unwrap_err();
    let got = r.next();
    use base64::Engine;
    let want = base64::engine::general_purpose::STANDARD.encode(format!("me:{TOKEN}"));
    assert_eq!(
        got.header("Authorization"),
        Some(format!("Basic {want}").as_str())
    );
    // An empty content type sends no Content-Type header.
    assert_eq!(got.header("Content-Type"), None);
    let text = err.to_string();
    assert!(text.contains("401 Unauthorized"), "{text}");
    assert!(text.contains("bad password *** for me"), "{text}");
    no_secret(&[&text, &format!("{err:?}")], &[TOKEN, &want]);
}

#[test]
fn a_500_is_a_failure_with_status_and_a_scrubbed_snippet() {
    let echo = format!(
        "Internal error while handling /hooks/{TOKEN}: {}",
        "z".repeat(500)
    );
    let r = Receiver::start(500, &echo, 1);
    let url = format!("{}/hooks/{TOKEN}", r.base);
    let err = webhook(&url, WebhookMethod::Post, "x", "text/plain", &quick()).unwrap_err();
    let ActionError::Failed { message } = &err else {
        panic!("{err:?}")
    };
    assert!(message.starts_with("POST http://127.0.0.1:"), "{message}");
    assert!(
        message.contains(
            "/*** answered 500 Internal Server Error: Internal error while handling /hooks/***: zzz"
        ),
        "{message}"
    );
    assert!(message.ends_with("..."), "{message}");
    assert!(message.len() < 400, "{}", message.len());
    no_secret(&[message], &[TOKEN]);
}

#[test]
fn redirects_are_not_followed() {
    // The redirect points back at the receiver, so a follow would show up there.
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        while let Ok(Some(req)) = server.recv_timeout(Duration::from_secs(20)) {
            let _ = tx.send(req.url().to_string());
            let location = format!("http://127.0.0.1:{port}/next/{TOKEN}");
            let resp = tiny_http::Response::empty(302)
                .with_header(tiny_http::Header::from_bytes("Location", location).unwrap());
            let _ = req.respond(resp);
        }
    });
    let err = webhook(
        &format!("http://127.0.0.1:{port}/a"),
        WebhookMethod::Post,
        "x",
        "",
        &quick(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("302 Found"), "{text}");
    assert!(
        text.contains(&format!("to http://127.0.0.1:{port}/***")),
        "{text}"
    );
    assert!(text.contains("not followed"), "{text}");
    no_secret(&[&text], &[TOKEN]);
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "/a");
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "the redirect was followed"
    );
}

#[test]
fn https_works_and_a_server_that_speaks_no_tls_is_a_clear_failure() {
    // The TLS stack (rustls with its bundled roots and crypto provider) is in place:
    // a plain-HTTP server answering a TLS handshake fails the call, nothing panics.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let started = Instant::now();
    let err = webhook(
        &format!("https://127.0.0.1:{port}/{TOKEN}"),
        WebhookMethod::Post,
        "x",
        "",
        &quick(),
    )
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(err, ActionError::Failed { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("POST https://127.0.0.1:{port}/*** failed: ")),
        "{text}"
    );
    no_secret(&[&text], &[TOKEN]);
}

#[test]
fn a_dead_port_fails_fast() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let err = webhook(
        &format!("http://127.0.0.1:{port}/hook/{TOKEN}"),
        WebhookMethod::Post,
        "x",
        "",
        &quick(),
    )
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    let text = err.to_string();
    assert!(text.contains("refused"), "{text}");
    no_secret(&[&text], &[TOKEN]);
}

#[test]
fn a_silent_listener_times_out() {
    // The kernel accepts the connection; nobody ever reads or answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    let err = healthchecks(
        &format!("http://127.0.0.1:{port}/{TOKEN}"),
        Ping::Success,
        "x",
        &quick(),
    )
    .unwrap_err();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(matches!(err, ActionError::Timeout { .. }), "{err:?}");
    let text = err.to_string();
    assert_eq!(
        text,
        format!("POST http://127.0.0.1:{port}/*** timed out after 1s")
    );
    drop(listener);
}

#[test]
fn healthchecks_pings_each_kind() {
    let r = Receiver::start(200, "OK", 4);
    let base = format!("{}/ping/{TOKEN}/", r.base);
    for (ping, path) in [
        (Ping::Start, "/start"),
        (Ping::Success, ""),
        (Ping::Fail, "/fail"),
        (Ping::Log, "/log"),
    ] {
        let out = healthchecks(&base, ping, "backup of photos", &quick()).unwrap();
        let got = r.next();
        assert_eq!(got.method, "POST");
        assert_eq!(got.url, format!("/ping/{TOKEN}{path}"));
        assert_eq!(got.header("Content-Type"), Some("text/plain"));
        assert_eq!(got.text(), "backup of photos");
        no_secret(&[&out.output], &[TOKEN]);
    }
    let r = Receiver::start(200, "OK", 1);
    healthchecks(
        &format!("{}/ping/key/slug?create=1", r.base),
        Ping::Fail,
        "",
        &quick(),
    )
    .unwrap();
    assert_eq!(r.next().url, "/ping/key/slug/fail?create=1");
}

#[test]
fn discord_and_slack_post_json() {
    let r = Receiver::start(204, "", 2);
    let long = "é".repeat(2500);
    discord(
        &format!("{}/api/webhooks/1/{TOKEN}", r.base),
        &long,
        &quick(),
    )
    .unwrap();
    let got = r.next();
    assert_eq!(got.url, format!("/api/webhooks/1/{TOKEN}"));
    assert_eq!(got.header("Content-Type"), Some("application/json"));
    let content = got.json()["content"].as_str().unwrap().to_string();
    assert_eq!(content.chars().count(), DISCORD_CONTENT_MAX);
    assert!(content.ends_with("é…"));

    slack(
        &format!("{}/services/A/B/{TOKEN}", r.base),
        "done \"ok\"",
        &quick(),
    )
    .unwrap();
    let got = r.next();
    assert_eq!(got.url, format!("/services/A/B/{TOKEN}"));
    assert_eq!(got.json(), serde_json::json!({"text": "done \"ok\""}));
}

#[test]
fn gotify_posts_a_message_and_hides_its_token() {
    let r = Receiver::start(200, "{}", 1);
    let out = gotify(
        &format!("{}/gotify/", r.base),
        "A.b/c+d",
        "Title",
        "Body",
        7,
        &quick(),
    )
    .unwrap();
    let got = r.next();
    assert_eq!(got.method, "POST");
    assert_eq!(got.url, "/gotify/message?token=A.b%2Fc%2Bd");
    assert_eq!(
        got.json(),
        serde_json::json!({"title": "Title", "message": "Body", "priority": 7})
    );
    no_secret(&[&out.output], &["A.b/c+d", "A.b%2Fc%2Bd"]);

    let r = Receiver::start(401, &format!("{{\"error\":\"token {TOKEN} unknown\"}}"), 1);
    let err = gotify(&r.base, TOKEN, "t", "m", 5, &quick()).unwrap_err();
    assert_eq!(r.next().url, format!("/message?token={TOKEN}"));
    let text = err.to_string();
    assert!(text.contains("401"), "{text}");
    no_secret(&[&text, &format!("{err:?}")], &[TOKEN]);
    assert!(matches!(
        gotify(&r.base, "", "t", "m", 5, &quick()),
        Err(ActionError::Invalid { .. })
    ));
}

#[test]
fn telegram_sends_to_the_bot_api_and_hides_the_bot_token() {
    let bot = format!("123456:{TOKEN}");
    let r = Receiver::start(200, "{\"ok\":true}", 1);
    let out = telegram_via(&r.base, &bot, "-10042", "<b>done</b>", &quick()).unwrap();
    let got = r.next();
    assert_eq!(got.url, format!("/bot{bot}/sendMessage"));
    assert_eq!(
        got.json(),
        serde_json::json!({"chat_id": "-10042", "text": "<b>done</b>", "parse_mode": "HTML"})
    );
    no_secret(&[&out.output], &[TOKEN]);

    let r = Receiver::start(
        404,
        &format!("{{\"ok\":false,\"description\":\"Not Found: /bot{bot}/sendMessage\"}}"),
        1,
    );
    let err = telegram_via(&r.base, &bot, "1", "x", &quick()).unwrap_err();
    r.next();
    let text = err.to_string();
    assert!(text.contains("404 Not Found"), "{text}");
    no_secret(&[&text, &format!("{err:?}")], &[TOKEN]);
}

#[test]
fn shoutrrr_ntfy_with_basic_auth_and_title() {
    let r = Receiver::start(200, "{}", 1);
    let host = r.base.trim_start_matches("http://");
    let url =
        format!("ntfy://alice:{TOKEN}@{host}/backups?scheme=http&priority=4&tags=floppy_disk");
    let out = shoutrrr_via(
        &url,
        "Backup done",
        "3 files",
        &quick(),
        &endpoints(&r.base),
    )
    .unwrap();
    let got = r.next();
    assert_eq!(got.method, "POST");
    assert_eq!(got.url, "/backups");
    assert_eq!(got.header("Title"), Some("Backup done"));
    assert_eq!(got.header("Priority"), Some("4"));
    assert_eq!(got.header("Tags"), Some("floppy_disk"));
    assert_eq!(
        got.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{TOKEN}"));
    assert_eq!(
        got.header("Authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(got.text(), "3 files");
    no_secret(&[&out.output], &[TOKEN, "alice"]);
}

#[test]
fn shoutrrr_gotify_discord_slack_and_generic() {
    let r = Receiver::start(200, "{\"ok\":true}", 6);
    let host = r.base.trim_start_matches("http://");
    let ep = endpoints(&r.base);

    shoutrrr_via(
        &format!("gotify://{host}/sub/{TOKEN}?disabletls=yes&priority=8"),
        "",
        "msg",
        &quick(),
        &ep,
    )
    .unwrap();
    let got = r.next();
    assert_eq!(got.url, format!("/sub/message?token={TOKEN}"));
    assert_eq!(
        got.json(),
        serde_json::json!({"title": "Shoutrrr notification", "message": "msg", "priority": 8})
    );

    shoutrrr_via(
        &format!("discord://{TOKEN}@98765"),
        "",
        "msg",
        &quick(),
        &ep,
    )
    .unwrap();
    let got = r.next();
    assert_eq!(got.url, format!("/api/webhooks/98765/{TOKEN}"));
    assert_eq!(got.json(), serde_json::json!({"content": "msg"}));

    let (a, b, c) = ("T00000000", "B00000000", "XXXXXXXXXXXXXXXXXXXXXXXX");
    shoutrrr_via(
        &format!("slack://hook:{a}-{b}-{c}@webhook"),
        "",
        "msg",
        &quick(),
        &ep,
    )
    .unwrap();
    let got = r.next();
    assert_eq!(got.url, format!("/services/{a}/{b}/{c}"));
    assert_eq!(got.json(), serde_json::json!({"text": "msg"}));

    shoutrrr_via(
        &format!("slack://xoxb:{a}-{b}-{c}@C024BE91L"),
        "",
        "msg",
        &quick(),
        &ep,
    )
    .unwrap();
    let got = r.next();
    assert_eq!(got.url, "/api/chat.postMessage");
    assert_eq!(
        got.header("Authorization"),
        Some(format!("Bearer xoxb-{a}-{b}-{c}").as_str())
    );
    assert_eq!(
        got.json(),
        serde_json::json!({"channel": "C024BE91L", "text": "msg"})
    );

    shoutrrr_via(
        &format!("generic+{}/in/{TOKEN}?keep=1", r.base),
        "ignored",
        "plain msg",
        &quick(),
        &ep,
    )
    .unwrap();
    let got = r.next();
    assert_eq!(got.method, "POST");
    assert_eq!(got.url, format!("/in/{TOKEN}?keep=1"));
    assert_eq!(got.header("Content-Type"), Some("text/plain"));
    assert_eq!(got.text(), "plain msg");

    let url = format!(
        "generic+{}/json?template=json&titlekey=subject&$host=nas&@Authorization=Bearer%20{TOKEN}",
        r.base
    );
    let out = shoutrrr_via(&url, "Title", "msg", &quick(), &ep).unwrap();
    let got = r.next();
    assert_eq!(got.url, "/json");
    assert_eq!(got.header("Content-Type"), Some("application/json"));
    assert_eq!(
        got.header("Authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        got.json(),
        serde_json::json!({"subject": "Title", "message": "msg", "host": "nas"})
    );
    no_secret(&[&out.output], &[TOKEN]);
}

#[test]
fn shoutrrr_telegram_sends_to_each_chat() {
    let r = Receiver::start(200, "{\"ok\":true}", 2);
    let url = format!("telegram://123456:{TOKEN}@telegram?chats=@chan1,42");
    let out = shoutrrr_via(&url, "", "hello", &quick(), &endpoints(&r.base)).unwrap();
    let first = r.next();
    let second = r.next();
    for got in [&first, &second] {
        assert_eq!(got.url, format!("/bot123456:{TOKEN}/sendMessage"));
    }
    assert_eq!(
        first.json(),
        serde_json::json!({"chat_id": "@chan1", "text": "hello"})
    );
    assert_eq!(second.json()["chat_id"], "42");
    assert_eq!(out.output.lines().count(), 2);
    no_secret(&[&out.output], &[TOKEN]);
}

#[test]
fn shoutrrr_slack_api_refusal_is_a_failure() {
    let r = Receiver::start(200, "{\"ok\":false,\"error\":\"channel_not_found\"}", 1);
    let (a, b, c) = ("T00000000", "B00000000", "XXXXXXXXXXXXXXXXXXXXXXXX");
    let err = shoutrrr_via(
        &format!("slack://xoxb:{a}-{b}-{c}@C1"),
        "",
        "m",
        &quick(),
        &endpoints(&r.base),
    )
    .unwrap_err();
    r.next();
    let text = err.to_string();
    assert!(text.contains("channel_not_found"), "{text}");
    no_secret(&[&text], &[c]);
}

#[test]
fn shoutrrr_failures_hide_secrets() {
    let r = Receiver::start(500, &format!("cannot deliver to {TOKEN}"), 1);
    let host = r.base.trim_start_matches("http://");
    let err = shoutrrr_via(
        &format!("ntfy://:{TOKEN}@{host}/topic?disabletls=yes"),
        "",
        "m",
        &quick(),
        &Endpoints::default(),
    )
    .unwrap_err();
    r.next();
    let text = err.to_string();
    assert!(text.contains("500"), "{text}");
    no_secret(&[&text, &format!("{err:?}")], &[TOKEN]);

    let err = shoutrrr(
        &format!("pushover://shoutrrr:{TOKEN}@user/"),
        "",
        "m",
        &quick(),
    )
    .unwrap_err();
    assert!(matches!(err, ActionError::Invalid { .. }));
    let text = err.to_string();
    assert!(text.contains("pushover"), "{text}");
    no_secret(&[&text], &[TOKEN]);

    let err = validate_shoutrrr_url(&format!("telegram://{TOKEN}@telegram")).unwrap_err();
    no_secret(&[&err], &[TOKEN]);
    validate_shoutrrr_url("ntfy://ntfy.sh/topic").unwrap();
}

#[test]
fn invalid_urls_are_invalid() {
    for bad in ["", "ftp://host/x", "not a url", "http://"] {
        let err = webhook(bad, WebhookMethod::Post, "", "", &quick()).unwrap_err();
        assert!(matches!(err, ActionError::Invalid { .. }), "{bad}: {err:?}");
    }
}

#[test]
fn durations_read_like_a_person_wrote_them() {
    for (d, want) in [
        (Duration::from_millis(250), "250ms"),
        (Duration::from_secs(1), "1s"),
        (Duration::from_millis(1500), "1.5s"),
        (Duration::from_secs(600), "10m"),
        (Duration::from_secs(150), "2m30s"),
        (Duration::from_secs(7200), "2h"),
    ] {
        assert_eq!(human_duration(d), want);
    }
}

// ---------------------------------------------------------------------------------
// Commands

fn run(script: &str, env: &[(&str, &str)], timeout: Duration) -> (Result<(), ActionError>, String) {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut log = Vec::new();
    let res = run_command(script, &env, timeout, &mut log, &StopHandle::new());
    (res, String::from_utf8(log).unwrap())
}

const LONG: Duration = Duration::from_secs(30);

/// Whether `pid` is gone (or only a zombie waiting for init to reap it) within 2 s: a
/// signalled process takes a moment to finish exiting, and it is not our child, so it
/// cannot be waited for.
fn dies_soon(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let dead = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        };
        if dead {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn command_output_lands_in_the_log_in_order() {
    let (res, log) = run("echo one; echo two >&2; printf three", &[], LONG);
    res.unwrap();
    assert_eq!(log, "one\ntwo\nthree\n");
}

#[test]
fn command_sees_footrests_env_plus_its_own() {
    let (res, log) = run(
        "echo \"plan=$BACKREST_PLAN\"; echo \"path=${PATH:+set}\"; read x; echo \"stdin=[$x]\"",
        &[("BACKREST_PLAN", "photos")],
        LONG,
    );
    res.unwrap();
    assert_eq!(log, "plan=photos\npath=set\nstdin=[]\n");
}

#[test]
fn a_non_zero_exit_is_a_failure_with_status_and_last_lines() {
    let (res, log) = run(
        "echo first; echo almost; echo 'disk full' >&2; exit 3",
        &[],
        LONG,
    );
    let err = res.unwrap_err();
    assert_eq!(
        err,
        ActionError::Failed {
            message: "the hook command exited with status 3: first | almost | disk full".into()
        }
    );
    assert_eq!(log, "first\nalmost\ndisk full\n");
}

#[test]
fn shebang_scripts_run_with_their_interpreter_from_a_private_file() {
    let (res, log) = run(
        "#!/bin/sh\necho \"file=$0\"\nls -ld \"$(dirname \"$0\")\" | cut -c1-10\necho \"$GREETING\"",
        &[("GREETING", "hi")],
        LONG,
    );
    res.unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let file = lines[0].strip_prefix("file=").unwrap();
    assert!(file.ends_with("/hook-script"), "{file}");
    assert_eq!(lines[1], "drwx------");
    assert_eq!(lines[2], "hi");
    // The temporary directory is gone afterwards.
    let dir = std::path::Path::new(file).parent().unwrap();
    assert!(!dir.exists(), "{dir:?} was left behind");

    let (res, log) = run(
        "#!/usr/bin/env python3\nimport os, sys\nprint('py', sys.version_info[0], os.environ['X'])\nsys.exit(4)",
        &[("X", "y")],
        LONG,
    );
    assert_eq!(log, "py 3 y\n");
    assert!(res.unwrap_err().to_string().contains("status 4"));

    let (res, _) = run("#!\necho hi", &[], LONG);
    assert!(matches!(res, Err(ActionError::Invalid { .. })));
}

#[test]
fn a_hanging_command_is_killed_by_its_timeout() {
    let started = Instant::now();
    let (res, log) = run("echo start; sleep 100", &[], Duration::from_secs(1));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(
        res.unwrap_err(),
        ActionError::Timeout {
            what: "the hook command".into(),
            after: Duration::from_secs(1)
        }
    );
    assert!(log.starts_with("start\n"), "{log}");
    assert!(log.contains("timed out after 1s"), "{log}");
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    // The script starts a child that sleeps (with its output elsewhere, so it does not
    // hold our pipe) and waits for it.
    let started = Instant::now();
    let (res, log) = run(
        "sleep 100 >/dev/null 2>&1 & echo \"child=$!\"; wait",
        &[],
        Duration::from_secs(1),
    );
    assert!(matches!(res, Err(ActionError::Timeout { .. })));
    assert!(started.elapsed() < Duration::from_secs(4));
    let pid: i32 = log
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("child="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(dies_soon(pid), "the child {pid} outlived the timeout");
}

#[test]
fn a_command_that_ignores_sigterm_gets_sigkill() {
    let started = Instant::now();
    let (res, log) = run(
        "trap '' TERM; sleep 100 & echo \"child=$!\"; wait",
        &[],
        Duration::from_millis(500),
    );
    let took = started.elapsed();
    assert!(matches!(res, Err(ActionError::Timeout { .. })));
    assert!(
        took >= Duration::from_millis(5400) && took < Duration::from_secs(9),
        "{took:?}"
    );
    let pid: i32 = log
        .lines()
        .next()
        .unwrap()
        .strip_prefix("child=")
        .unwrap()
        .parse()
        .unwrap();
    assert!(dies_soon(pid), "the child {pid} outlived SIGKILL");
}

/// A log that stops the handle when the script says it is ready.
struct StopWhenReady {
    stop: StopHandle,
    seen: Vec<u8>,
}

impl Write for StopWhenReady {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.seen.extend_from_slice(buf);
        if String::from_utf8_lossy(&self.seen).contains("ready\n") {
            self.stop.stop(Duration::from_secs(5));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_stop_ends_the_command_early() {
    let stop = StopHandle::new();
    let mut log = StopWhenReady {
        stop: stop.clone(),
        seen: Vec::new(),
    };
    let started = Instant::now();
    let res = run_command("echo ready; sleep 100", &[], LONG, &mut log, &stop);
    assert!(started.elapsed() < Duration::from_secs(3));
    let err = res.unwrap_err();
    assert!(matches!(err, ActionError::Stopped { .. }), "{err:?}");
    assert!(err.to_string().contains("was stopped"));

    // Already stopped: nothing runs.
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let mut sink = Vec::new();
    let res = run_command(
        &format!("touch {}", marker.display()),
        &[],
        LONG,
        &mut sink,
        &stop,
    );
    assert!(matches!(res, Err(ActionError::Stopped { .. })));
    assert!(!marker.exists());
}

#[test]
fn a_background_child_holding_the_pipe_does_not_hold_the_hook() {
    let started = Instant::now();
    let (res, log) = run("sleep 5 & echo done", &[], LONG);
    res.unwrap();
    assert_eq!(log, "done\n");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn a_missing_interpreter_is_a_clear_failure() {
    let (res, _) = run("#!/nonexistent/interpreter\necho hi", &[], LONG);
    let text = res.unwrap_err().to_string();
    assert!(text.contains("starting the hook command failed"), "{text}");
}
