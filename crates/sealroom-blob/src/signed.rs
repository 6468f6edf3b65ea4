//! Signed URLs for blobs served by the control plane.
//!
//! A signed URL is `<base><path>?sv=sealroom1&sp=<r|l>&se=<RFC 3339 UTC>&sig=<hex>` where
//! `sig = HMAC-SHA256(key, "sealroom-signed-url-v1\n" METHOD "\n" path "\n" sp "\n" se)`.
//! `sp=r` lets `GET`/`HEAD` read exactly `path`; `sp=l` lets `GET` list under `path`. `HEAD` is
//! signed as `GET`. The MAC is checked in constant time, before the expiry, so a forged URL learns
//! nothing from timing; the query parser is bounded and rejects duplicates and unknown parameters.
//!
//! ```
//! use sealroom_blob::signed::{Permission, UrlSigner};
//! use sealroom_types::Timestamp;
//! let signer = UrlSigner::generate();
//! let now = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
//! let url = signer.sign("GET", "/api/v1/blobs/ds/data.sealed", Permission::Read, now.plus_secs(7 * 86400)).unwrap();
//! let query = url.query();
//! assert!(signer.verify("GET", "/api/v1/blobs/ds/data.sealed", &query, now).is_ok());
//! assert!(signer.verify("GET", "/api/v1/blobs/ds/other", &query, now).is_err());
//! // The types crate reads the expiry like any other signed dataset URL.
//! let full = url.to_url("https://sealroom.example");
//! let x = sealroom_types::parse_url_expiry(&full).unwrap();
//! assert_eq!(x.kind, sealroom_types::UrlKind::Sealroom);
//! ```

use aws_lc_rs::{constant_time, hmac};
use sealroom_types::{Timestamp, SEALROOM_SIGNED_URL_VERSION};
use zeroize::Zeroizing;

/// Longest query accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 1024;
/// Longest signed path, in bytes.
pub const MAX_PATH_LEN: usize = 1024;
const DOMAIN: &[u8] = b"sealroom-signed-url-v1\n";

/// What a signed URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// `sp=r`: read the one blob at the path (`GET`, `HEAD`).
    Read,
    /// `sp=l`: list the blobs under the path (`GET`).
    List,
}

impl Permission {
    /// The `sp=` letter.
    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "r",
            Permission::List => "l",
        }
    }

    fn allows(self, method: &str) -> bool {
        match self {
            Permission::Read => method == "GET" || method == "HEAD",
            Permission::List => method == "GET",
        }
    }
}

/// Why a signed URL was refused. The messages name the problem without revealing secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedUrlError {
    /// The query does not parse.
    #[error("malformed signed URL: {0}")]
    Malformed(&'static str),
    /// A required parameter is missing.
    #[error("signed URL lacks the {0:?} parameter")]
    Missing(&'static str),
    /// The path is not acceptable for signing.
    #[error("path cannot be signed: {0}")]
    BadPath(&'static str),
    /// The signature does not match (wrong key, path, method, permission or expiry).
    #[error("signature does not match")]
    BadSignature,
    /// The permission does not allow this method.
    #[error("the URL's permission does not allow {0}")]
    NotAllowed(String),
    /// The URL has expired.
    #[error("the signed URL expired at {0}")]
    Expired(Timestamp),
}

/// The parameters of a signed-URL query, parsed but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedQuery {
    /// What it allows.
    pub permission: Permission,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// The `se=` text exactly as signed.
    pub se: String,
    /// The MAC.
    pub sig: [u8; 32],
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn pct_decode(s: &str) -> Result<String, SignedUrlError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = b.get(i + 1).copied().and_then(hex_val);
            let l = b.get(i + 2).copied().and_then(hex_val);
            match (h, l) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(SignedUrlError::Malformed("bad percent-escape")),
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| SignedUrlError::Malformed("not UTF-8"))
}

/// Parses a signed-URL query (the part after `?`, without a fragment). Bounded: at most
/// [`MAX_QUERY_LEN`] bytes; `sv`, `sp`, `se`, `sig` each exactly once; nothing else.
pub fn parse_query(query: &str) -> Result<SignedQuery, SignedUrlError> {
    if query.len() > MAX_QUERY_LEN {
        return Err(SignedUrlError::Malformed("query too long"));
    }
    let (mut sv, mut sp, mut se, mut sig) = (None, None, None, None);
    for part in query.split('&') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = part
            .split_once('=')
            .ok_or(SignedUrlError::Malformed("parameter without ="))?;
        let slot = match k {
            "sv" => &mut sv,
            "sp" => &mut sp,
            "se" => &mut se,
            "sig" => &mut sig,
            _ => return Err(SignedUrlError::Malformed("unknown parameter")),
        };
        if slot.is_some() {
            return Err(SignedUrlError::Malformed("parameter given twice"));
        }
        *slot = Some(pct_decode(v)?);
    }
    let sv = sv.ok_or(SignedUrlError::Missing("sv"))?;
    if sv != SEALROOM_SIGNED_URL_VERSION {
        return Err(SignedUrlError::Malformed("unsupported signed URL version"));
    }
    let permission = match sp.ok_or(SignedUrlError::Missing("sp"))?.as_str() {
        "r" => Permission::Read,
        "l" => Permission::List,
        _ => return Err(SignedUrlError::Malformed("sp must be r or l")),
    };
    let se = se.ok_or(SignedUrlError::Missing("se"))?;
    let expires_at = Timestamp::parse_rfc3339(&se)
        .map_err(|_| SignedUrlError::Malformed("se is not an RFC 3339 timestamp"))?;
    let sig_hex = sig.ok_or(SignedUrlError::Missing("sig"))?;
    let mut sig = [0u8; 32];
    if sig_hex.len() != 64 || hex::decode_to_slice(&sig_hex, &mut sig).is_err() {
        return Err(SignedUrlError::Malformed("sig must be 64 hex digits"));
    }
    Ok(SignedQuery {
        permission,
        expires_at,
        se,
        sig,
    })
}

fn check_path(path: &str) -> Result<(), SignedUrlError> {
    if !path.starts_with('/') {
        return Err(SignedUrlError::BadPath("must start with /"));
    }
    if path.len() > MAX_PATH_LEN {
        return Err(SignedUrlError::BadPath("too long"));
    }
    if path
        .bytes()
        .any(|c| c <= b' ' || c >= 0x7f || matches!(c, b'?' | b'#' | b'%'))
    {
        return Err(SignedUrlError::BadPath(
            "contains a character that would need escaping",
        ));
    }
    if path.split('/').any(|s| s == ".." || s == ".") {
        return Err(SignedUrlError::BadPath("contains . or .. segments"));
    }
    Ok(())
}

/// A signed URL made by [`UrlSigner::sign`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrl {
    /// The signed path.
    pub path: String,
    /// What it allows.
    pub permission: Permission,
    /// When it expires (whole seconds).
    pub expires_at: Timestamp,
    sig: [u8; 32],
}

impl SignedUrl {
    /// The query string, without `?`.
    pub fn query(&self) -> String {
        format!(
            "sv={SEALROOM_SIGNED_URL_VERSION}&sp={}&se={}&sig={}",
            self.permission.as_str(),
            self.expires_at,
            hex::encode(self.sig)
        )
    }

    /// `base` (scheme and authority, e.g. `https://host:8443`) + path + query.
    pub fn to_url(&self, base: &str) -> String {
        format!(
            "{}{}?{}",
            base.trim_end_matches('/'),
            self.path,
            self.query()
        )
    }
}

/// Signs and verifies URLs with a 32-byte HMAC key (zeroized on drop, never printed).
pub struct UrlSigner {
    key: hmac::Key,
    raw: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(<key>)")
    }
}

impl UrlSigner {
    /// A signer with this key.
    pub fn new(key: [u8; 32]) -> Self {
        let raw = Zeroizing::new(key);
        UrlSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, raw.as_slice()),
            raw,
        }
    }

    /// A signer with a fresh random key.
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        // The system RNG failing is not recoverable; a zero key would be worse than a panic.
        #[allow(clippy::expect_used)]
        aws_lc_rs::rand::fill(k.as_mut_slice()).expect("system random number generator failed");
        Self::new(*k)
    }

    /// The key bytes (to persist in the data directory with restrictive permissions).
    pub fn key_bytes(&self) -> &[u8; 32] {
        &self.raw
    }

    fn mac(&self, method: &str, path: &str, sp: &str, se: &str) -> hmac::Tag {
        let method = if method == "HEAD" { "GET" } else { method };
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(DOMAIN);
        for part in [method, path, sp] {
            ctx.update(part.as_bytes());
            ctx.update(b"\n");
        }
        ctx.update(se.as_bytes());
        ctx.sign()
    }

    /// Signs `method path` with a permission until `expires_at` (cut to whole seconds).
    pub fn sign(
        &self,
        method: &str,
        path: &str,
        permission: Permission,
        expires_at: Timestamp,
    ) -> Result<SignedUrl, SignedUrlError> {
        check_path(path)?;
        if !permission.allows(method) {
            return Err(SignedUrlError::NotAllowed(
                method.chars().take(16).collect(),
            ));
        }
        let expires_at = Timestamp::from_secs(expires_at.as_secs());
        let tag = self.mac(method, path, permission.as_str(), &expires_at.to_string());
        let mut sig = [0u8; 32];
        sig.copy_from_slice(tag.as_ref());
        Ok(SignedUrl {
            path: path.to_owned(),
            permission,
            expires_at,
            sig,
        })
    }

    /// Verifies a request (`method`, the request's `path`, its raw `query`) at `now`.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        query: &str,
        now: Timestamp,
    ) -> Result<SignedQuery, SignedUrlError> {
        let q = parse_query(query)?;
        check_path(path)?;
        let expected = self.mac(method, path, q.permission.as_str(), &q.se);
        constant_time::verify_slices_are_equal(expected.as_ref(), &q.sig)
            .map_err(|_| SignedUrlError::BadSignature)?;
        if !q.permission.allows(method) {
            return Err(SignedUrlError::NotAllowed(
                method.chars().take(16).collect(),
            ));
        }
        if now >= q.expires_at {
            return Err(SignedUrlError::Expired(q.expires_at));
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn sign_verify_and_tamper() {
        let s = UrlSigner::new([7; 32]);
        let now = t("2026-01-01T00:00:00Z");
        let exp = t("2026-01-02T00:00:00.900Z");
        let u = s
            .sign("GET", "/api/v1/blobs/a/b", Permission::Read, exp)
            .unwrap();
        assert_eq!(u.expires_at, t("2026-01-02T00:00:00Z"));
        let q = u.query();
        assert!(
            q.starts_with("sv=sealroom1&sp=r&se=2026-01-02T00:00:00Z&sig="),
            "{q}"
        );
        assert!(s.verify("GET", "/api/v1/blobs/a/b", &q, now).is_ok());
        assert!(s.verify("HEAD", "/api/v1/blobs/a/b", &q, now).is_ok());
        assert_eq!(
            s.verify("PUT", "/api/v1/blobs/a/b", &q, now),
            Err(SignedUrlError::BadSignature)
        );
        assert_eq!(
            s.verify("GET", "/api/v1/blobs/a/c", &q, now),
            Err(SignedUrlError::BadSignature)
        );
        let longer = q.replace("se=2026-01-02", "se=2027-01-02");
        assert_eq!(
            s.verify("GET", "/api/v1/blobs/a/b", &longer, now),
            Err(SignedUrlError::BadSignature)
        );
        let list = q.replace("sp=r", "sp=l");
        assert_eq!(
            s.verify("GET", "/api/v1/blobs/a/b", &list, now),
            Err(SignedUrlError::BadSignature)
        );
        let other = UrlSigner::new([8; 32]);
        assert_eq!(
            other.verify("GET", "/api/v1/blobs/a/b", &q, now),
            Err(SignedUrlError::BadSignature)
        );
        assert_eq!(
            s.verify("GET", "/api/v1/blobs/a/b", &q, exp),
            Err(SignedUrlError::Expired(t("2026-01-02T00:00:00Z")))
        );
        // Percent-encoded ':' in se= still verifies (the signed text is the decoded one).
        let enc = q.replace(':', "%3A");
        assert!(s.verify("GET", "/api/v1/blobs/a/b", &enc, now).is_ok());
    }

    #[test]
    fn list_permission() {
        let s = UrlSigner::generate();
        let now = t("2026-01-01T00:00:00Z");
        let u = s
            .sign(
                "GET",
                "/api/v1/blobs/ds/",
                Permission::List,
                now.plus_secs(60),
            )
            .unwrap();
        assert!(s
            .verify("GET", "/api/v1/blobs/ds/", &u.query(), now)
            .is_ok());
        assert!(matches!(
            s.verify("HEAD", "/api/v1/blobs/ds/", &u.query(), now),
            Err(SignedUrlError::NotAllowed(_))
        ));
        assert!(s.sign("PUT", "/x", Permission::Read, now).is_err());
        assert!(format!("{s:?}").contains("<key>"));
    }

    #[test]
    fn parser_rejects() {
        let good = format!(
            "sv=sealroom1&sp=r&se=2026-01-01T00:00:00Z&sig={}",
            "ab".repeat(32)
        );
        assert!(parse_query(&good).is_ok());
        for bad in [
            String::new(),
            good.replace("sv=sealroom1", "sv=2021-06-08"),
            good.replace("sp=r", "sp=rw"),
            good.replace("se=2026-01-01T00:00:00Z", "se=tomorrow"),
            good.replace(&"ab".repeat(32), "abc"),
            format!("{good}&sp=r"),
            format!("{good}&x=1"),
            format!("{good}&novalue"),
            good.replace("sig=", "sig=%zz"),
            format!("{good}&{}", "a".repeat(MAX_QUERY_LEN)),
        ] {
            assert!(parse_query(&bad).is_err(), "{bad}");
        }
        let s = UrlSigner::new([1; 32]);
        for p in ["", "rel", "/a/../b", "/a b", "/a?b", "/a%2e"] {
            assert!(
                s.sign("GET", p, Permission::Read, Timestamp::EPOCH)
                    .is_err(),
                "{p}"
            );
        }
    }

    #[test]
    fn expiry_readable_by_types_crate() {
        let s = UrlSigner::new([3; 32]);
        let exp = t("2030-05-01T12:00:00Z");
        let url = s
            .sign("GET", "/api/v1/blobs/x", Permission::Read, exp)
            .unwrap()
            .to_url("http://127.0.0.1:8080/");
        let x = sealroom_types::parse_url_expiry(&url).unwrap();
        assert_eq!(x.kind, sealroom_types::UrlKind::Sealroom);
        assert_eq!(x.expires_at, exp);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(q in "\\PC{0,300}") {
            let _ = parse_query(&q);
            let _ = UrlSigner::new([0; 32]).verify("GET", "/x", &q, Timestamp::EPOCH);
        }
    }
}
