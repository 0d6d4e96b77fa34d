//! Authentication of API calls (CONTRACT §2): HTTP Basic against the config's bcrypt
//! users, with a small cache of credentials already verified so that a script polling
//! the API does not pay bcrypt on every call, and login tokens: `Login` trades a user
//! name and password for an HS256 JWT that `Authorization: Bearer` then carries. The
//! cache holds keyed SHA-256 digests of (user, password, stored hash), never a password;
//! it is dropped whenever the users change. Wrong passwords are never cached, and
//! repeated failures are slowed down. The token signing key is 64 random bytes in
//! `<data dir>/jwt-secret` (mode 0600), made at the first login and read back after a
//! restart, so tokens outlive the process; a token is good while it is unexpired and its
//! user is still in the config in force. This module never logs or returns a password,
//! a hash, a token or the key.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
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

/// The message of every Basic failure: it never says whether the user exists.
const FAILURE_MESSAGE: &str = "authentication failed: wrong user name or password";
/// The message of every Bearer failure, whatever was wrong with the token.
const TOKEN_FAILURE_MESSAGE: &str = "authentication failed: the token is invalid or has expired; \
     get a new one with v1.Authentication/Login";
/// The message of every failed `Login` (Backrest's text): it never says whether the
/// user exists.
const LOGIN_FAILURE_MESSAGE: &str = "invalid password";
/// `Login` with authentication disabled: there are no users to log in as.
const LOGIN_DISABLED_MESSAGE: &str = "authentication is disabled in the config, so there is \
     nobody to log in as: call v1.Backrest methods without credentials";

/// The file in the data dir that holds the token signing key.
pub const JWT_SECRET_FILE: &str = "jwt-secret";
/// The size of the token signing key: HMAC-SHA256's block size.
const JWT_KEY_LEN: usize = 64;
/// How long a login token is good for (Backrest's 7 days).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// The one JOSE header footrest writes.
const JWT_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

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

/// Whose failures a delay is counted for: an address (Basic, Bearer), or the user name
/// a `Login` named (a keyed digest, so an attacker's long names cost no memory). `Login`
/// is keyed by name because its handler does not see the address; that slows a guesser
/// of one account from any number of addresses.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum FailureKey {
    Peer(IpAddr),
    Login([u8; 32]),
}

/// A bcrypt hash at the cost footrest hashes with, checked when the user does not exist
/// so that the time taken does not tell whether a user name is known. Only its cost
/// matters (the answer is thrown away), so it is a constant: hashing a fresh one cost a
/// quarter of a second at every start.
const DECOY_HASH: &str = "$2b$12$ReHldRBCmjhSpshgLOP1.OeqWgmfxUAS09Enkp97rEYcHjffaOaLC";

/// Checks credentials and login tokens. Shared by all request threads.
pub struct Authenticator {
    users: RwLock<Arc<Users>>,
    key: [u8; 32],
    cache: Mutex<HashMap<[u8; 32], Instant>>,
    failures: Mutex<HashMap<FailureKey, (u32, Instant)>>,
    /// `<data dir>/jwt-secret`.
    jwt_key_path: PathBuf,
    /// The token signing key once read or made; the lock also keeps two first logins
    /// from making two keys.
    jwt_key: Mutex<Option<Arc<JwtKey>>>,
}

impl Authenticator {
    /// An authenticator for the users of `auth` (`None` or disabled: no authentication),
    /// keeping its token signing key in `data_dir`. Nothing is read or written there
    /// until the first login or the first Bearer token.
    pub fn new(auth: Option<&config::Auth>, data_dir: &Path) -> Authenticator {
        let key = random_bytes();
        let a = Authenticator {
            users: RwLock::new(Arc::new(Users::default())),
            key,
            cache: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            jwt_key_path: data_dir.join(JWT_SECRET_FILE),
            jwt_key: Mutex::new(None),
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

    /// Checks the `Authorization` header of a request from `peer`: Basic credentials or
    /// a Bearer token from [`Authenticator::login`]. Returns the user name (empty when
    /// authentication is disabled). A failure is `unauthenticated`, answered after the
    /// failure delay; an unreadable signing key is `internal`.
    pub fn check(&self, authorization: Option<&str>, peer: IpAddr) -> Result<String, ApiError> {
        let users = Arc::clone(&read_lock(&self.users));
        let Some(users) = users.users.as_ref() else {
            return Ok(String::new());
        };
        let Some(header) = authorization else {
            return Err(ApiError::new(
                Code::Unauthenticated,
                "authentication required: send HTTP Basic credentials (curl -u USER:PASSWORD) \
                 or a token from v1.Authentication/Login (-H 'Authorization: Bearer TOKEN')",
            ));
        };
        let result = match parse_bearer(header) {
            Some(token) => self.check_bearer(users, token),
            None => parse_basic(header)
                .and_then(|(name, password)| self.verify(users, &name, &password).then_some(name))
                .ok_or_else(|| ApiError::new(Code::Unauthenticated, FAILURE_MESSAGE)),
        };
        match result {
            Ok(name) => {
                lock(&self.failures).remove(&FailureKey::Peer(peer));
                Ok(name)
            }
            Err(e) => {
                if e.code == Code::Unauthenticated {
                    std::thread::sleep(self.note_failure(FailureKey::Peer(peer)));
                }
                Err(e)
            }
        }
    }

    /// `Login`: checks the user name and password like Basic does and returns a signed
    /// token for the user, good for [`TOKEN_LIFETIME`]. Every wrong name or password is
    /// `unauthenticated` "invalid password", answered after the failure delay. The first
    /// login makes the signing key; a key file that cannot be read or made is `internal`
    /// with what to do.
    pub fn login(&self, name: &str, password: &str) -> Result<String, ApiError> {
        let users = Arc::clone(&read_lock(&self.users));
        let Some(list) = users.users.as_ref() else {
            return Err(ApiError::new(Code::Unauthenticated, LOGIN_DISABLED_MESSAGE));
        };
        let who = FailureKey::Login(self.name_digest(name));
        if !self.verify(list, name, password) {
            std::thread::sleep(self.note_failure(who));
            return Err(ApiError::new(Code::Unauthenticated, LOGIN_FAILURE_MESSAGE));
        }
        lock(&self.failures).remove(&who);
        let key = self.signing_key().map_err(|e| {
            error!("a login could not be answered: {e}");
            ApiError::internal(e.to_string())
        })?;
        Ok(mint_token(&key, name, unix_now()))
    }

    /// A Bearer token's user, if the token is good and the user is still in `users`.
    fn check_bearer(&self, users: &[User], token: &str) -> Result<String, ApiError> {
        let refused = |why: TokenError| {
            debug!("a bearer token was refused: {why}");
            ApiError::new(Code::Unauthenticated, TOKEN_FAILURE_MESSAGE)
        };
        let key = match self.verifying_key() {
            Ok(Some(key)) => key,
            Ok(None) => return Err(refused(TokenError::NoKey)),
            Err(e) => {
                error!("a bearer token could not be checked: {e}");
                return Err(ApiError::internal(e.to_string()));
            }
        };
        let name = verify_token(&key, token, unix_now()).map_err(refused)?;
        if !users.iter().any(|u| u.name == name) {
            return Err(refused(TokenError::UnknownUser));
        }
        Ok(name)
    }

    /// The signing key, read from its file or made there on first use.
    fn signing_key(&self) -> Result<Arc<JwtKey>, KeyError> {
        let mut slot = lock(&self.jwt_key);
        if let Some(key) = slot.as_ref() {
            return Ok(Arc::clone(key));
        }
        let key = Arc::new(load_or_create_key(&self.jwt_key_path)?);
        *slot = Some(Arc::clone(&key));
        Ok(key)
    }

    /// The signing key if there is one; `None` before the first login ever (no token
    /// can be good then, and checking one makes no key).
    fn verifying_key(&self) -> Result<Option<Arc<JwtKey>>, KeyError> {
        let mut slot = lock(&self.jwt_key);
        if let Some(key) = slot.as_ref() {
            return Ok(Some(Arc::clone(key)));
        }
        let Some(key) = load_key(&self.jwt_key_path)? else {
            return Ok(None);
        };
        let key = Arc::new(key);
        *slot = Some(Arc::clone(&key));
        Ok(Some(key))
    }

    fn verify(&self, users: &[User], name: &str, password: &str) -> bool {
        let Some(user) = users.iter().find(|u| u.name == name) else {
            let _ = bcrypt::verify(password, DECOY_HASH);
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

    /// A keyed digest of a user name given to `Login`, for its failure count.
    fn name_digest(&self, name: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(b"login-name");
        h.update(name.as_bytes());
        h.finalize().into()
    }

    /// Records a failure of `who` and returns how long to wait before answering.
    fn note_failure(&self, who: FailureKey) -> Duration {
        let mut failures = lock(&self.failures);
        let now = Instant::now();
        failures.retain(|_, (_, at)| now.duration_since(*at) < FAILURE_MEMORY);
        if failures.len() >= FAILURE_ENTRIES && !failures.contains_key(&who) {
            return FAILURE_DELAY_CAP;
        }
        let entry = failures.entry(who).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let doublings = entry.0.saturating_sub(1).min(16);
        FAILURE_DELAY_START
            .saturating_mul(1 << doublings)
            .min(FAILURE_DELAY_CAP)
    }
}

/// The token of `Bearer <token>`; `None` for any other scheme.
pub fn parse_bearer(header: &str) -> Option<&str> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// What went wrong with the token signing key file. The key itself is never shown.
#[derive(Debug)]
pub enum KeyError {
    /// The file exists but cannot be read.
    Read { path: PathBuf, source: io::Error },
    /// The file is not 64 bytes: damaged, or not footrest's.
    WrongSize { path: PathBuf, size: u64 },
    /// The path is a folder or something else that is not a file.
    NotAFile { path: PathBuf },
    /// A new key could not be written.
    Create { path: PathBuf, source: io::Error },
    /// No randomness for a new key.
    Random(io::Error),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Read { path, source } => write!(
                f,
                "cannot read the login token key {}: {source}; it must be a file readable by \
                 footrest's user (mode 0600)",
                path.display()
            ),
            KeyError::WrongSize { path, size } => write!(
                f,
                "the login token key {} holds {size} bytes instead of {JWT_KEY_LEN}, so it is \
                 damaged or not footrest's: delete it and log in again (a new key is made at \
                 the next login; tokens issued before stop working)",
                path.display()
            ),
            KeyError::NotAFile { path } => write!(
                f,
                "the login token key {} is not a file: remove what is there and log in again \
                 (a new key is made at the next login)",
                path.display()
            ),
            KeyError::Create { path, source } => write!(
                f,
                "cannot write a new login token key to {}: {source}; the data dir must be \
                 writable by footrest's user",
                path.display()
            ),
            KeyError::Random(e) => {
                write!(f, "cannot read /dev/urandom to make a login token key: {e}")
            }
        }
    }
}

impl std::error::Error for KeyError {}

/// The HS256 signing key. Deliberately without `Debug`: it must never be printed.
struct JwtKey([u8; JWT_KEY_LEN]);

/// Why a token was refused: for the debug log only; the client always gets one message.
#[derive(Debug, PartialEq, Eq)]
enum TokenError {
    /// Not three base64url parts of JSON objects, or a claim missing or of a wrong type.
    Malformed(&'static str),
    /// `alg` is not HS256 (`none` included).
    Algorithm,
    /// The signature does not match: tampered with, or made with another key.
    Signature,
    Expired,
    NotYetValid,
    /// No key has been made yet, so footrest never issued a token.
    NoKey,
    /// The token's user is no longer in the config.
    UnknownUser,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Malformed(what) => write!(f, "malformed: {what}"),
            TokenError::Algorithm => f.write_str("its algorithm is not HS256"),
            TokenError::Signature => f.write_str("its signature does not match"),
            TokenError::Expired => f.write_str("it has expired"),
            TokenError::NotYetValid => f.write_str("it is not valid yet"),
            TokenError::NoKey => f.write_str("no token was ever issued here (no key yet)"),
            TokenError::UnknownUser => f.write_str("its user is no longer in the config"),
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

fn hmac_of(key: &JwtKey, header: &str, claims: &str) -> HmacSha256 {
    // A 64-byte key is exactly HMAC-SHA256's block size: `new` takes it as it is.
    let mut mac = <HmacSha256 as KeyInit>::new(&key.0.into());
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(claims.as_bytes());
    mac
}

/// A signed token for `user`, issued at `now` (Unix seconds).
fn mint_token(key: &JwtKey, user: &str, now: u64) -> String {
    let header = URL_SAFE_NO_PAD.encode(JWT_HEADER);
    let claims = serde_json::json!({
        "sub": user,
        "iat": now,
        "exp": now.saturating_add(TOKEN_LIFETIME.as_secs()),
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = URL_SAFE_NO_PAD.encode(hmac_of(key, &header, &claims).finalize().into_bytes());
    format!("{header}.{claims}.{signature}")
}

/// Checks a token at `now` (Unix seconds): three parts, `alg` HS256, the signature
/// (compared in constant time), `exp` in the future, `nbf` (if any) in the past.
/// Returns the `sub` claim.
fn verify_token(key: &JwtKey, token: &str, now: u64) -> Result<String, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("not three dot-separated parts"));
    };
    let head = json_part(header, "header")?;
    if head.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(TokenError::Algorithm);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed("the signature is not base64url"))?;
    hmac_of(key, header, claims)
        .verify_slice(&signature)
        .map_err(|_| TokenError::Signature)?;
    let claims = json_part(claims, "claims")?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .ok_or(TokenError::Malformed("no numeric exp claim"))?;
    if exp <= now as f64 {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf
            .as_f64()
            .ok_or(TokenError::Malformed("nbf is not a number"))?;
        if nbf > now as f64 {
            return Err(TokenError::NotYetValid);
        }
    }
    match claims.get("sub").and_then(Value::as_str) {
        Some(sub) if !sub.is_empty() => Ok(sub.to_string()),
        _ => Err(TokenError::Malformed("no sub claim")),
    }
}

/// One token part: base64url (no padding) of a JSON object.
fn json_part(part: &str, what: &'static str) -> Result<Map<String, Value>, TokenError> {
    let raw = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed(what))?;
    match serde_json::from_slice(&raw) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Malformed(what)),
    }
}

/// Reads the key file; `None` when there is none yet.
fn load_key(path: &Path) -> Result<Option<JwtKey>, KeyError> {
    let read_error = |source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(e)),
    };
    if !meta.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() != JWT_KEY_LEN as u64 {
        return Err(KeyError::WrongSize {
            path: path.to_path_buf(),
            size: meta.len(),
        });
    }
    if meta.permissions().mode() & 0o077 != 0 {
        warn!(
            "the login token key {} can be read by other users, who could then make tokens: \
             chmod 600 it",
            path.display()
        );
    }
    let mut key = [0u8; JWT_KEY_LEN];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(read_error)?;
    Ok(Some(JwtKey(key)))
}

/// Reads the key file, or makes it (64 bytes from /dev/urandom, mode 0600, never over an
/// existing file) when there is none.
fn load_or_create_key(path: &Path) -> Result<JwtKey, KeyError> {
    if let Some(key) = load_key(path)? {
        return Ok(key);
    }
    let mut key = [0u8; JWT_KEY_LEN];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(KeyError::Random)?;
    let create_error = |source| KeyError::Create {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        // Made by someone else since we looked: theirs is the key.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return load_key(path)?.ok_or_else(|| create_error(e));
        }
        Err(e) => return Err(create_error(e)),
    };
    if let Err(e) = file.write_all(&key).and_then(|()| file.sync_all()) {
        // Leave no short key file behind: the next login tries again.
        let _ = fs::remove_file(path);
        return Err(create_error(e));
    }
    if let Some(dir) = path.parent() {
        let _ = fs::File::open(dir).and_then(|d| d.sync_all());
    }
    info!("made a new login token key at {}", path.display());
    Ok(JwtKey(key))
}

/// The time now in Unix seconds (0 for a clock before 1970).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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
    /// A data dir for tests that never reach the key file.
    const NO_DIR: &str = "/nonexistent/footrest-test";

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
        let a = Authenticator::new(Some(&auth_with(&[("admin", CHANGEME)])), Path::new(NO_DIR));
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
        let a = Authenticator::new(Some(&auth_with(&[("admin", CHANGEME)])), Path::new(NO_DIR));
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
        let a = Authenticator::new(Some(&auth_with(&[("admin", CHANGEME)])), Path::new(NO_DIR));
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
        let a = Authenticator::new(None, Path::new(NO_DIR));
        assert!(!a.enabled());
        assert_eq!(a.check(None, PEER).unwrap(), "");
    }

    #[test]
    fn failure_delay_grows_and_is_capped() {
        let a = Authenticator::new(None, Path::new(NO_DIR));
        let first = a.note_failure(FailureKey::Peer(PEER));
        let second = a.note_failure(FailureKey::Peer(PEER));
        assert_eq!(first, FAILURE_DELAY_START);
        assert_eq!(second, FAILURE_DELAY_START * 2);
        for _ in 0..40 {
            a.note_failure(FailureKey::Peer(PEER));
        }
        assert_eq!(a.note_failure(FailureKey::Peer(PEER)), FAILURE_DELAY_CAP);
    }

    #[test]
    fn hash_password_round_trips() {
        let value = hash_password("s3cret:ü").unwrap();
        let hash = decode_hash(&value).unwrap();
        assert!(hash.starts_with("$2"));
        assert!(bcrypt::verify("s3cret:ü", &hash).unwrap());
    }

    // ---- login tokens ----

    /// An authenticator with users `admin` (changeme) and `bob` (changeme), its key in
    /// a fresh data dir.
    fn with_key_dir() -> (tempfile::TempDir, Authenticator) {
        let dir = tempfile::tempdir().unwrap();
        let a = Authenticator::new(
            Some(&auth_with(&[("admin", CHANGEME), ("bob", CHANGEME)])),
            dir.path(),
        );
        (dir, a)
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    fn test_key(byte: u8) -> JwtKey {
        JwtKey([byte; JWT_KEY_LEN])
    }

    const NOW: u64 = 1_764_000_000;

    fn decode_json(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    /// A token with the given header and claims, signed with `key`.
    fn forge(key: &JwtKey, header: &Value, claims: &Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let c = URL_SAFE_NO_PAD.encode(claims.to_string());
        let sig = URL_SAFE_NO_PAD.encode(hmac_of(key, &h, &c).finalize().into_bytes());
        format!("{h}.{c}.{sig}")
    }

    #[test]
    fn a_token_round_trips_with_the_contract_shape() {
        let key = test_key(7);
        let token = mint_token(&key, "admin", NOW);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert!(!token.contains('='), "no padding");
        assert_eq!(
            decode_json(parts[0]),
            serde_json::json!({"alg": "HS256", "typ": "JWT"})
        );
        assert_eq!(
            decode_json(parts[1]),
            serde_json::json!({"sub": "admin", "iat": NOW, "exp": NOW + 7 * 24 * 3600})
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 32);
        assert_eq!(verify_token(&key, &token, NOW).unwrap(), "admin");
        assert_eq!(
            verify_token(&key, &token, NOW + 7 * 24 * 3600 - 1).unwrap(),
            "admin"
        );
    }

    #[test]
    fn a_token_expires() {
        let key = test_key(7);
        let token = mint_token(&key, "admin", NOW);
        assert_eq!(
            verify_token(&key, &token, NOW + 7 * 24 * 3600),
            Err(TokenError::Expired)
        );
        let stale = forge(
            &key,
            &serde_json::json!({"alg": "HS256", "typ": "JWT"}),
            &serde_json::json!({"sub": "admin", "exp": NOW - 1}),
        );
        assert_eq!(verify_token(&key, &stale, NOW), Err(TokenError::Expired));
        let no_exp = forge(
            &key,
            &serde_json::json!({"alg": "HS256"}),
            &serde_json::json!({"sub": "admin"}),
        );
        assert!(matches!(
            verify_token(&key, &no_exp, NOW),
            Err(TokenError::Malformed(_))
        ));
        let early = forge(
            &key,
            &serde_json::json!({"alg": "HS256"}),
            &serde_json::json!({"sub": "admin", "exp": NOW + 60, "nbf": NOW + 30}),
        );
        assert_eq!(
            verify_token(&key, &early, NOW),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn changing_any_byte_of_any_part_is_refused() {
        let key = test_key(7);
        let token = mint_token(&key, "admin", NOW);
        let bytes = token.as_bytes();
        let mut tried = 0;
        for i in 0..bytes.len() {
            if bytes[i] == b'.' {
                continue;
            }
            for replacement in [b'A', b'_', b'0'] {
                if bytes[i] == replacement {
                    continue;
                }
                let mut forged = bytes.to_vec();
                forged[i] = replacement;
                let forged = String::from_utf8(forged).unwrap();
                assert!(
                    verify_token(&key, &forged, NOW).is_err(),
                    "byte {i} changed to {} was accepted",
                    replacement as char
                );
                tried += 1;
            }
        }
        assert!(tried > 100);
        // A claim changed and re-encoded, the old signature kept.
        let parts: Vec<&str> = token.split('.').collect();
        let claims = URL_SAFE_NO_PAD
            .encode(serde_json::json!({"sub": "bob", "exp": NOW + 3600}).to_string());
        let swapped = format!("{}.{claims}.{}", parts[0], parts[2]);
        assert_eq!(
            verify_token(&key, &swapped, NOW),
            Err(TokenError::Signature)
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let key = test_key(7);
        let claims = serde_json::json!({"sub": "admin", "exp": NOW + 3600});
        for alg in ["none", "None", "HS512", "RS256", "hs256", ""] {
            let h = URL_SAFE_NO_PAD.encode(serde_json::json!({"alg": alg}).to_string());
            let c = URL_SAFE_NO_PAD.encode(claims.to_string());
            // Unsigned, as an alg-none token is, and signed with our key too.
            assert_eq!(
                verify_token(&key, &format!("{h}.{c}."), NOW),
                Err(TokenError::Algorithm),
                "{alg}"
            );
            let signed = forge(&key, &serde_json::json!({"alg": alg}), &claims);
            assert_eq!(
                verify_token(&key, &signed, NOW),
                Err(TokenError::Algorithm),
                "{alg}"
            );
        }
        let no_alg = forge(&key, &serde_json::json!({"typ": "JWT"}), &claims);
        assert_eq!(verify_token(&key, &no_alg, NOW), Err(TokenError::Algorithm));
    }

    #[test]
    fn a_token_of_another_key_is_refused() {
        let token = mint_token(&test_key(7), "admin", NOW);
        assert_eq!(
            verify_token(&test_key(8), &token, NOW),
            Err(TokenError::Signature)
        );
    }

    #[test]
    fn malformed_tokens_are_refused_without_panic() {
        let key = test_key(7);
        let good = mint_token(&key, "admin", NOW);
        let (head, _) = good.split_once('.').unwrap();
        let cases = [
            String::new(),
            ".".into(),
            "..".into(),
            "...".into(),
            "a.b.c".into(),
            format!("{good}."),
            format!("{good}.x"),
            head.to_string(),
            format!("{head}.."),
            format!("{head}.e30.!!!!"),
            format!("{}.e30.", URL_SAFE_NO_PAD.encode("[]")),
            format!("{}.e30.", URL_SAFE_NO_PAD.encode("{")),
            "é.é.é".into(),
            good.replace('.', " "),
        ];
        for token in cases {
            assert!(verify_token(&key, &token, NOW).is_err(), "{token:?}");
        }
        let claims_cases = [
            serde_json::json!({"sub": "", "exp": NOW + 60}),
            serde_json::json!({"sub": 5, "exp": NOW + 60}),
            serde_json::json!({"exp": NOW + 60}),
            serde_json::json!({"sub": "admin", "exp": "later"}),
            serde_json::json!({"sub": "admin", "exp": NOW + 60, "nbf": "now"}),
        ];
        for claims in claims_cases {
            let token = forge(&key, &serde_json::json!({"alg": "HS256"}), &claims);
            assert!(
                matches!(
                    verify_token(&key, &token, NOW),
                    Err(TokenError::Malformed(_))
                ),
                "{claims}"
            );
        }
    }

    #[test]
    fn login_then_bearer_until_the_user_is_removed() {
        let (_dir, a) = with_key_dir();
        let token = a.login("bob", "changeme").unwrap();
        assert_eq!(a.check(Some(&bearer(&token)), PEER).unwrap(), "bob");
        assert_eq!(
            a.check(Some(&format!("bearer   {token} ")), PEER).unwrap(),
            "bob"
        );
        // Basic still works next to it.
        assert_eq!(
            a.check(Some(&basic("admin", "changeme")), PEER).unwrap(),
            "admin"
        );
        // bob leaves the config: his token stops working at once.
        a.set_users(Some(&auth_with(&[("admin", CHANGEME)])));
        let e = a.check(Some(&bearer(&token)), PEER).unwrap_err();
        assert_eq!(e.code, Code::Unauthenticated);
        assert_eq!(e.message, TOKEN_FAILURE_MESSAGE);
        assert!(!e.message.contains("bob"));
        // Back in the config: good again (the token itself was never revoked).
        a.set_users(Some(&auth_with(&[("admin", CHANGEME), ("bob", CHANGEME)])));
        assert_eq!(a.check(Some(&bearer(&token)), PEER).unwrap(), "bob");
        // Auth disabled: nothing is checked.
        a.set_users(None);
        assert_eq!(a.check(Some(&bearer("junk")), PEER).unwrap(), "");
    }

    #[test]
    fn bad_tokens_get_one_message_and_the_failure_delay() {
        let (_dir, a) = with_key_dir();
        let token = a.login("admin", "changeme").unwrap();
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        for bad in [tampered.as_str(), "", "x.y.z"] {
            let e = a.check(Some(&bearer(bad)), PEER).unwrap_err();
            assert_eq!(e.code, Code::Unauthenticated, "{bad:?}");
            assert_eq!(e.message, TOKEN_FAILURE_MESSAGE);
            assert!(!e.message.contains(&token));
        }
        assert_eq!(lock(&a.failures)[&FailureKey::Peer(PEER)].0, 3);
        a.check(Some(&bearer(&token)), PEER).unwrap();
        assert!(lock(&a.failures).is_empty());
    }

    #[test]
    fn login_failures_say_invalid_password_whoever_asks() {
        let (dir, a) = with_key_dir();
        for (user, password) in [("admin", "wrong"), ("nobody", "changeme"), ("", "")] {
            let e = a.login(user, password).unwrap_err();
            assert_eq!(e.code, Code::Unauthenticated);
            assert_eq!(e.message, "invalid password");
        }
        // Counted per user name: a second miss on admin waits longer.
        let admin = FailureKey::Login(a.name_digest("admin"));
        assert_eq!(lock(&a.failures)[&admin].0, 1);
        assert!(a.login("admin", "wrong").is_err());
        assert_eq!(lock(&a.failures)[&admin].0, 2);
        // No key is made by failures.
        assert!(!dir.path().join(JWT_SECRET_FILE).exists());
        a.login("admin", "changeme").unwrap();
        assert!(!lock(&a.failures).contains_key(&admin));
    }

    #[test]
    fn login_with_auth_disabled_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let a = Authenticator::new(None, dir.path());
        let e = a.login("admin", "changeme").unwrap_err();
        assert_eq!(e.code, Code::Unauthenticated);
        assert!(e.message.contains("authentication is disabled"), "{e}");
        assert!(!dir.path().join(JWT_SECRET_FILE).exists());
    }

    #[test]
    fn the_key_file_is_made_0600_and_reused() {
        let (dir, a) = with_key_dir();
        let path = dir.path().join(JWT_SECRET_FILE);
        // A token before any login: refused, and no key is made for it.
        let e = a
            .check(
                Some(&bearer(&mint_token(&test_key(0), "admin", unix_now()))),
                PEER,
            )
            .unwrap_err();
        assert_eq!(e.code, Code::Unauthenticated);
        assert!(!path.exists());

        let token = a.login("admin", "changeme").unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 64);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let key = fs::read(&path).unwrap();
        assert_ne!(key, vec![0u8; 64]);

        // A second authenticator (a restart) reads the same key: the token is good and
        // the file is unchanged by another login.
        let b = Authenticator::new(Some(&auth_with(&[("admin", CHANGEME)])), dir.path());
        assert_eq!(b.check(Some(&bearer(&token)), PEER).unwrap(), "admin");
        let again = b.login("admin", "changeme").unwrap();
        assert_eq!(a.check(Some(&bearer(&again)), PEER).unwrap(), "admin");
        assert_eq!(fs::read(&path).unwrap(), key);

        // A token made with the file's key by someone else verifies too (the tests
        // outside rely on that).
        let mut k = [0u8; JWT_KEY_LEN];
        k.copy_from_slice(&key);
        let outside = mint_token(&JwtKey(k), "admin", unix_now());
        assert_eq!(b.check(Some(&bearer(&outside)), PEER).unwrap(), "admin");
    }

    #[test]
    fn a_bad_key_file_is_an_error_that_says_what_to_do() {
        let (dir, a) = with_key_dir();
        let path = dir.path().join(JWT_SECRET_FILE);
        fs::write(&path, b"too short").unwrap();
        let e = a.login("admin", "changeme").unwrap_err();
        assert_eq!(e.code, Code::Internal);
        assert!(e.message.contains("holds 9 bytes instead of 64"), "{e}");
        assert!(e.message.contains("delete it"), "{e}");
        assert!(e.message.contains(&path.display().to_string()), "{e}");
        // Bearer checks say the same, and nothing overwrote the file.
        let e = a
            .check(Some(&bearer(&mint_token(&test_key(1), "admin", NOW))), PEER)
            .unwrap_err();
        assert_eq!(e.code, Code::Internal);
        assert_eq!(fs::read(&path).unwrap(), b"too short");
        // Deleted as told: the next login makes a good one.
        fs::remove_file(&path).unwrap();
        let token = a.login("admin", "changeme").unwrap();
        assert_eq!(a.check(Some(&bearer(&token)), PEER).unwrap(), "admin");

        // A folder where the key should be.
        let dir2 = tempfile::tempdir().unwrap();
        fs::create_dir(dir2.path().join(JWT_SECRET_FILE)).unwrap();
        let c = Authenticator::new(Some(&auth_with(&[("admin", CHANGEME)])), dir2.path());
        let e = c.login("admin", "changeme").unwrap_err();
        assert!(e.message.contains("is not a file"), "{e}");
        // A data dir that cannot be written.
        let c = Authenticator::new(Some(&auth_with(&[("admin", CHANGEME)])), Path::new(NO_DIR));
        let e = c.login("admin", "changeme").unwrap_err();
        assert_eq!(e.code, Code::Internal);
        assert!(
            e.message.contains("cannot write a new login token key"),
            "{e}"
        );
    }

    #[test]
    fn the_decoy_costs_what_a_real_check_costs() {
        let parts: bcrypt::HashParts = DECOY_HASH.parse().expect("a valid bcrypt hash");
        assert_eq!(parts.get_cost(), bcrypt::DEFAULT_COST);
        assert!(!bcrypt::verify("not the decoy's password", DECOY_HASH).unwrap());
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(parse_bearer("Bearer abc"), Some("abc"));
        assert_eq!(parse_bearer("  bearer   abc  "), Some("abc"));
        assert_eq!(parse_bearer("Bearer "), Some(""));
        assert_eq!(parse_bearer("Bearer"), Some(""));
        assert_eq!(parse_bearer("Basic abc"), None);
        assert_eq!(parse_bearer("Bearerabc"), None);
    }
}
