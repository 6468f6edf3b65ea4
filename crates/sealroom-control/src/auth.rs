//! Credentials: argon2id password hashes, opaque bearer tokens (only their SHA-256 is stored),
//! and the login rate limiter.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use sealroom_store::TokenKind;
use zeroize::Zeroizing;

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest password accepted (argon2 input; also bounds the work per login).
pub const MAX_PASSWORD_LEN: usize = 256;
/// How long a login session lasts.
pub const SESSION_TTL_SECS: i64 = 12 * 3600;

/// Checks a new password's length.
pub fn check_new_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(format!(
            "the password must have at most {MAX_PASSWORD_LEN} bytes"
        ));
    }
    Ok(())
}

/// An argon2id PHC string for `password` (OWASP parameters: m=19 MiB, t=2, p=1).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut bytes = [0u8; 16];
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut bytes[..]);
    let salt = SaltString::encode_b64(&bytes).map_err(|e| format!("making a salt failed: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password failed: {e}"))
}

/// Whether `password` matches the PHC string `phc` (constant time inside argon2).
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the username is unknown, so that the time taken does not tell
/// whether a user exists.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("sealroom-timing-equaliser").unwrap_or_default())
}

/// A fresh random password for the first admin (24 characters, URL-safe).
pub fn random_password() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 18]);
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut bytes[..]);
    Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..]))
}

/// A new bearer token: `sr<kind>_` + 32 random bytes, URL-safe base64. Returns the token (shown
/// once) and the hex SHA-256 that is stored.
pub fn mint_token(kind: TokenKind) -> (Zeroizing<String>, String) {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut bytes[..]);
    let prefix = match kind {
        TokenKind::Session => "srs_",
        TokenKind::Api => "sra_",
        TokenKind::Site => "srt_",
    };
    let token = Zeroizing::new(format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..])
    ));
    let hash = token_hash(&token);
    (token, hash)
}

/// The stored form of a token: hex SHA-256.
pub fn token_hash(token: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref())
}

/// Failed-login limiter: at most `max_failures` failures per username and per client address
/// within `window`; while over, logins are refused with 429 before the password is checked.
#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    /// A limiter.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        LoginLimiter {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(username: &str, addr: Option<IpAddr>) -> [String; 2] {
        [
            format!("u:{}", username.to_lowercase()),
            match addr {
                Some(a) => format!("a:{a}"),
                None => "a:unknown".to_string(),
            },
        ]
    }

    /// Seconds until another attempt is allowed, if the limit is reached.
    pub fn retry_after(&self, username: &str, addr: Option<IpAddr>) -> Option<u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for key in Self::keys(username, addr) {
            if let Some((count, since)) = map.get(&key).copied() {
                let age = now.duration_since(since);
                if age >= self.window {
                    map.remove(&key);
                } else if count >= self.max_failures {
                    let left = (self.window - age).as_secs().max(1);
                    wait = Some(wait.map_or(left, |w: u64| w.max(left)));
                }
            }
        }
        wait
    }

    /// Counts a failure.
    pub fn failed(&self, username: &str, addr: Option<IpAddr>) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            let window = self.window;
            map.retain(|_, (_, since)| now.duration_since(*since) < window);
        }
        for key in Self::keys(username, addr) {
            let e = map.entry(key).or_insert((0, now));
            if now.duration_since(e.1) >= self.window {
                *e = (0, now);
            }
            e.0 += 1;
        }
    }

    /// Clears the username's failures after a successful login.
    pub fn succeeded(&self, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("u:{}", username.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(!verify_password("x", "not a phc string"));
        let (t, hash) = mint_token(TokenKind::Api);
        assert!(t.starts_with("sra_"));
        assert_eq!(hash, token_hash(&t));
        assert_ne!(mint_token(TokenKind::Api).1, hash);
        assert!(check_new_password("short").is_err());
    }

    #[test]
    fn limiter() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(l.retry_after("Bob", Some(a)).is_none());
            l.failed("bob", Some(a));
        }
        assert!(l.retry_after("bob", None).is_some(), "per user");
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.retry_after("alice", Some(a)).is_some(), "per address");
        assert!(l.retry_after("alice", Some(b)).is_none());
    }
}
