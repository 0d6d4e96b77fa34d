//! Authentication of API calls (CONTRACT §2): HTTP Basic against the config's bcrypt
//! users, with a small cache of credentials already verified so that a script polling
//! the API does not pay bcrypt on every call. The cache holds keyed SHA-256 digests of
//! (user, password, stored hash), never a password; it is dropped whenever the users
//! change. Wrong passwords are never cached, and repeated failures from one address are
//! slowed down. This module never logs or returns a password or a hash.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::api::connect::{ApiError, Code};
use crate::config;

/// How many verified credentials are remembered.
const CACHE_ENTRIES: usize = 64;
/// How long a verified credential is remembered.
const CACHE_TTL: Duration = Duration::from_secs(3600);
/// Failure delay: doubles per recent failure from one address, up to the cap.
const FAILURE_DELAY_START: Duration = Duration::from_millis(50);
const FAILURE_DELAY_CAP: Duration = Duration::from_secs(2);
/// Failures older than this are forgotten.
const FAILURE_MEMORY: Duration = Duration::from_secs(300);
/// Addresses tracked for failure delays at most.
const FAILURE_ENTRIES: usize = 1024;

/// The message of every authentication failure: it never says whether the user exists.
const FAILURE_MESSAGE: &str = "authentication failed: wrong user name or password";

/// One user: the name and the bcrypt hash string (already unwrapped from base64).
struct User {
    name: String,
    hash: String,
}

#[derive(Default)]
struct Users {
    /// `None`: authentication is disabled.
    users: Option<Vec<User>>,
}

/// Checks credentials. Shared by all request threads.
pub struct Authenticator {
    users: RwLock<Arc<Users>>,
    key: [u8; 32],
    cache: Mutex<HashMap<[u8; 32], Instant>>,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    /// A hash of a random password, checked when the user does not exist so that the
    /// time taken does not tell whether a user name is known.
    decoy: String,
}

impl Authenticator {
    /// An authenticator for the users of `auth` (`None` or disabled: no authentication).
    pub fn new(auth: Option<&config::Auth>) -> Authenticator {
        let key = random_bytes();
        let decoy = bcrypt::hash(hex(&random_bytes()), bcrypt::DEFAULT_COST).unwrap_or_default();
        let a = Authenticator {
            users: RwLock::new(Arc::new(Users::default())),
            key,
            cache: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            decoy,
        };
        a.set_users(auth);
        a
    }

    /// Replaces the user list (a config reload) and forgets every cached credential.
    pub fn set_users(&self, auth: Option<&config::Auth>) {
        let users = match auth {
            Some(auth) if !auth.disabled => Some(
                auth.users
                    .iter()
                    .map(|u| User {
                        name: u.name.clone(),
                        hash: decode_hash(&u.password_bcrypt).unwrap_or_default(),
                    })
                    .collect(),
            ),
            _ => None,
        };
        *write_lock(&self.users) = Arc::new(Users { users });
        lock(&self.cache).clear();
    }

    pub fn enabled(&self) -> bool {
        read_lock(&self.users).users.is_some()
    }

    /// Checks the `Authorization` header of a request from `peer`. Returns the user name
    /// (empty when authentication is disabled).
    pub fn check(&self, authorization: Option<&str>, peer: IpAddr) -> Result<String, ApiError> {
        let users = Arc::clone(&read_lock(&self.users));
        let Some(users) = users.users.as_ref() else {
            return Ok(String::new());
        };
        let Some(header) = authorization else {
            return Err(ApiError::new(
                Code::Unauthenticated,
                "authentication required: send HTTP Basic credentials (curl -u USER:PASSWORD)",
            ));
        };
        let result = parse_basic(header)
            .and_then(|(name, password)| self.verify(users, &name, &password).then_some(name));
        match result {
            Some(name) => {
                lock(&self.failures).remove(&peer);
                Ok(name)
            }
            None => {
                std::thread::sleep(self.note_failure(peer));
                Err(ApiError::new(Code::Unauthenticated, FAILURE_MESSAGE))
            }
        }
    }

    fn verify(&self, users: &[User], name: &str, password: &str) -> bool {
        let Some(user) = users.iter().find(|u| u.name == name) else {
            let _ = bcrypt::verify(password, &self.decoy);
            return false;
        };
        let digest = self.digest(name, password, &user.hash);
        {
            let mut cache = lock(&self.cache);
            if let Some(at) = cache.get(&digest) {
                if at.elapsed() < CACHE_TTL {
                    return true;
                }
                cache.remove(&digest);
            }
        }
        // bcrypt runs outside every lock: it takes tens to hundreds of milliseconds.
        if !bcrypt::verify(password, &user.hash).unwrap_or(false) {
            return false;
        }
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_ENTRIES
            && let Some(oldest) = cache.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k)
        {
            cache.remove(&oldest);
        }
        cache.insert(digest, Instant::now());
        true
    }

    /// The cache key: SHA-256 over a per-process random key and the credential, with
    /// lengths so that no two different credentials share an input.
    fn digest(&self, name: &str, password: &str, hash: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        for part in [name, password, hash] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().into()
    }

    /// Records a failure from `peer` and returns how long to wait before answering.
    fn note_failure(&self, peer: IpAddr) -> Duration {
        let mut failures = lock(&self.failures);
        let now = Instant::now();
        failures.retain(|_, (_, at)| now.duration_since(*at) < FAILURE_MEMORY);
        if failures.len() >= FAILURE_ENTRIES && !failures.contains_key(&peer) {
            return FAILURE_DELAY_CAP;
        }
        let entry = failures.entry(peer).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let doublings = entry.0.saturating_sub(1).min(16);
        FAILURE_DELAY_START
            .saturating_mul(1 << doublings)
            .min(FAILURE_DELAY_CAP)
    }
}

/// Splits `Basic base64(user:password)` at the first `:`. `None` when malformed.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Unwraps a config `passwordBcrypt` value (base64 of the bcrypt string).
pub fn decode_hash(password_bcrypt: &str) -> Option<String> {
    let raw = STANDARD.decode(password_bcrypt.trim()).ok()?;
    String::from_utf8(raw).ok()
}

/// A `passwordBcrypt` value for a password: bcrypt (cost 10), then base64, as Backrest
/// writes it.
pub fn hash_password(password: &str) -> Result<String, String> {
    let hash = bcrypt::hash(password, bcrypt::DEFAULT_COST)
        .map_err(|e| format!("could not hash the password: {e}"))?;
    Ok(STANDARD.encode(hash))
}

fn random_bytes() -> [u8; 32] {
    let mut out = [0u8; 32];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut out))
        .is_err()
    {
        // Without /dev/urandom, mix what the process has; the key only needs to differ
        // between processes and be unknown to clients.
        let seed = format!("{:?}{}", Instant::now(), std::process::id());
        out = Sha256::digest(seed.as_bytes()).into();
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
fn read_lock<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}
fn write_lock<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// base64 of the bcrypt hash of `changeme` (CONTRACT §2).
    const CHANGEME: &str =
        "JDJhJDEwJC9iekxLWkN5Z056QUlidjhmZmwyMy45TmNXVE1PNnNVRTViLmtUclBpcHVnd1IxaGpzOHFh";
    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn auth_with(users: &[(&str, &str)]) -> config::Auth {
        let json = serde_json::json!({
            "users": users.iter().map(|(n, h)| serde_json::json!({"name": n, "passwordBcrypt": h})).collect::<Vec<_>>()
        });
        serde_json::from_value(json).unwrap()
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    }

    #[test]
    fn basic_header_splits_at_the_first_colon() {
        assert_eq!(
            parse_basic(&basic("admin", "a:b:c")),
            Some(("admin".into(), "a:b:c".into()))
        );
        assert_eq!(
            parse_basic(&basic("ädmin", "pässwörd")),
            Some(("ädmin".into(), "pässwörd".into()))
        );
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(
            parse_basic(&format!("Basic {}", STANDARD.encode("nocolon"))),
            None
        );
    }

    #[test]
    fn the_contract_example_hash_checks() {
        let a = Authenticator::new(Some(&auth_with(&[("admin", CHANGEME)])));
        assert_eq!(
            a.check(Some(&basic("admin", "changeme")), PEER).unwrap(),
            "admin"
        );
        // Cached now: the same answer again.
        assert_eq!(
            a.check(Some(&basic("admin", "changeme")), PEER).unwrap(),
            "admin"
        );
        assert_eq!(lock(&a.cache).len(), 1);
    }

    #[test]
    fn failures_are_unauthenticated_and_never_cached() {
        let a = Authenticator::new(Some(&auth_with(&[("admin", CHANGEME)])));
        let wrong = a
            .check(Some(&basic("admin", "changeme!")), PEER)
            .unwrap_err();
        assert_eq!(wrong.code, Code::Unauthenticated);
        let unknown = a
            .check(Some(&basic("nobody", "changeme")), PEER)
            .unwrap_err();
        assert_eq!(
            unknown.message, wrong.message,
            "must not tell which users exist"
        );
        let case = a
            .check(Some(&basic("Admin", "changeme")), PEER)
            .unwrap_err();
        assert_eq!(case.code, Code::Unauthenticated);
        assert!(a.check(None, PEER).is_err());
        assert!(lock(&a.cache).is_empty());
    }

    #[test]
    fn changing_users_drops_the_cache() {
        let a = Authenticator::new(Some(&auth_with(&[("admin", CHANGEME)])));
        a.check(Some(&basic("admin", "changeme")), PEER).unwrap();
        let other = hash_password("other").unwrap();
        a.set_users(Some(&auth_with(&[("admin", &other)])));
        assert!(lock(&a.cache).is_empty());
        assert!(a.check(Some(&basic("admin", "changeme")), PEER).is_err());
        assert_eq!(
            a.check(Some(&basic("admin", "other")), PEER).unwrap(),
            "admin"
        );
    }

    #[test]
    fn disabled_auth_lets_everyone_in() {
        let a = Authenticator::new(None);
        assert!(!a.enabled());
        assert_eq!(a.check(None, PEER).unwrap(), "");
    }

    #[test]
    fn failure_delay_grows_and_is_capped() {
        let a = Authenticator::new(None);
        let first = a.note_failure(PEER);
        let second = a.note_failure(PEER);
        assert_eq!(first, FAILURE_DELAY_START);
        assert_eq!(second, FAILURE_DELAY_START * 2);
        for _ in 0..40 {
            a.note_failure(PEER);
        }
        assert_eq!(a.note_failure(PEER), FAILURE_DELAY_CAP);
    }

    #[test]
    fn hash_password_round_trips() {
        let value = hash_password("s3cret:ü").unwrap();
        let hash = decode_hash(&value).unwrap();
        assert!(hash.starts_with("$2"));
        assert!(bcrypt::verify("s3cret:ü", &hash).unwrap());
    }
}
