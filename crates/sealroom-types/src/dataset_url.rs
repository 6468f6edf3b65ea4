//! Dataset URLs: reading the expiry out of a signed URL and the resulting status
//! Valid / Invalid / Expired (manual §13.7).
//!
//! Three kinds of signed URL are understood:
//! - **Sealroom** signed URLs (`sv=sealroom1&sp=r&se=<RFC 3339>&sig=<hex>`), made by
//!   `sealroom-blob`;
//! - **Azure SAS** (`sv=<service version>`, `se=<ISO 8601>`, `sig=`);
//! - **S3 presigned** (`X-Amz-Date=<YYYYMMDDTHHMMSSZ>` + `X-Amz-Expires=<seconds>`,
//!   `X-Amz-Signature=`).
//!
//! Parsing is bounded ([`MAX_DATASET_URL_LEN`]) and never trusts the signature: that is checked by
//! whoever serves the URL. A URL whose expiry is in less than [`EXPIRY_MARGIN_SECS`] (24 hours) is
//! `Expired`, since a run started on it could lose access part-way.

use crate::{wire_enum, Timestamp};

/// Longest accepted dataset URL, in bytes.
pub const MAX_DATASET_URL_LEN: usize = 8192;
/// A URL expiring within this many seconds counts as expired (24 hours).
pub const EXPIRY_MARGIN_SECS: i64 = 24 * 3600;
/// The `sv=` value that marks a Sealroom signed URL.
pub const SEALROOM_SIGNED_URL_VERSION: &str = "sealroom1";
/// S3 presigned URLs are valid for at most seven days.
const MAX_AMZ_EXPIRES: i64 = 604_800;

/// Status of a dataset's URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetUrlStatus {
    /// A signed URL that is good for at least 24 more hours.
    Valid,
    /// Not a URL, or no signature / expiry could be read from it.
    Invalid,
    /// A signed URL that expires in 24 hours or less (or already has).
    Expired,
}
wire_enum!(DatasetUrlStatus, "dataset URL status", {
    Valid => "valid", Invalid => "invalid", Expired => "expired",
});

/// Which kind of signed URL was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UrlKind {
    /// Made by Sealroom's built-in blob store.
    Sealroom,
    /// An Azure Storage shared access signature.
    AzureSas,
    /// An S3 (SigV4) presigned URL.
    S3Presigned,
}
wire_enum!(UrlKind, "URL kind", {
    Sealroom => "sealroom", AzureSas => "azure_sas", S3Presigned => "s3_presigned",
});

/// The kind and expiry of a signed URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UrlExpiry {
    /// Which kind of signed URL.
    pub kind: UrlKind,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// Why no expiry could be read from a URL (these all mean status `Invalid`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetUrlError {
    /// Longer than [`MAX_DATASET_URL_LEN`].
    #[error("URL is longer than {MAX_DATASET_URL_LEN} bytes")]
    TooLong,
    /// Not an `http(s)://host/...` URL.
    #[error("not an http(s) URL with a host")]
    NotHttp,
    /// Contains whitespace, control characters or a bad percent-escape.
    #[error("URL contains {0}")]
    BadCharacters(&'static str),
    /// No signed-URL parameters found.
    #[error("SAS token not provided or invalid URL: no signature and expiry parameters found")]
    NoSignature,
    /// A parameter appears twice.
    #[error("URL parameter {0:?} appears more than once")]
    Duplicate(String),
    /// A required parameter is missing.
    #[error("{kind} URL lacks its {param:?} parameter")]
    Missing {
        /// The kind recognised.
        kind: UrlKind,
        /// The parameter.
        param: &'static str,
    },
    /// The expiry parameter does not parse.
    #[error("URL parameter {param:?} is not a valid {expected}")]
    BadExpiry {
        /// The parameter.
        param: &'static str,
        /// What was expected.
        expected: &'static str,
    },
}

/// The outcome of checking a dataset URL at a given time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DatasetUrlAssessment {
    /// The status.
    pub status: DatasetUrlStatus,
    /// The recognised kind and expiry, when the URL could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<UrlExpiry>,
    /// A sentence for people.
    pub message: String,
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes a query component (`+` is a space, as in forms).
pub(crate) fn percent_decode(s: &str) -> Result<String, DatasetUrlError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let (Some(h), Some(l)) = (
                    b.get(i + 1).copied().and_then(hex_val),
                    b.get(i + 2).copied().and_then(hex_val),
                ) else {
                    return Err(DatasetUrlError::BadCharacters("a bad percent-escape"));
                };
                out.push(h << 4 | l);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| DatasetUrlError::BadCharacters("percent-escaped non-UTF-8"))
}

/// Splits a URL's query into decoded `(key, value)` pairs (at most 64).
fn query_pairs(url: &str) -> Result<Vec<(String, String)>, DatasetUrlError> {
    let without_fragment = url.split('#').next().unwrap_or("");
    let Some((_, query)) = without_fragment.split_once('?') else {
        return Ok(Vec::new());
    };
    let mut pairs = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        if pairs.len() == 64 {
            return Err(DatasetUrlError::BadCharacters(
                "more than 64 query parameters",
            ));
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((percent_decode(k)?, percent_decode(v)?));
    }
    Ok(pairs)
}

/// Checks `scheme://host` and the character set.
fn check_shape(url: &str) -> Result<(), DatasetUrlError> {
    if url.len() > MAX_DATASET_URL_LEN {
        return Err(DatasetUrlError::TooLong);
    }
    if url.bytes().any(|c| c <= b' ' || c == 0x7f) {
        return Err(DatasetUrlError::BadCharacters(
            "whitespace or control characters",
        ));
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(DatasetUrlError::NotHttp);
    };
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..host_end];
    if authority.is_empty() || authority.contains('@') || authority.starts_with(':') {
        return Err(DatasetUrlError::NotHttp);
    }
    Ok(())
}

/// Reads the kind and expiry of a signed URL.
pub fn parse_url_expiry(url: &str) -> Result<UrlExpiry, DatasetUrlError> {
    check_shape(url)?;
    let pairs = query_pairs(url)?;
    let get = |name: &str, ci: bool| -> Result<Option<&str>, DatasetUrlError> {
        let mut found = None;
        for (k, v) in &pairs {
            let hit = if ci {
                k.eq_ignore_ascii_case(name)
            } else {
                k == name
            };
            if hit {
                if found.is_some() {
                    return Err(DatasetUrlError::Duplicate(name.to_owned()));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found)
    };
    fn need<'v>(
        kind: UrlKind,
        param: &'static str,
        v: Option<&'v str>,
    ) -> Result<&'v str, DatasetUrlError> {
        v.filter(|v| !v.is_empty())
            .ok_or(DatasetUrlError::Missing { kind, param })
    }

    let amz_date = get("X-Amz-Date", true)?;
    let amz_expires = get("X-Amz-Expires", true)?;
    let amz_sig = get("X-Amz-Signature", true)?;
    if amz_date.is_some() || amz_expires.is_some() || amz_sig.is_some() {
        let kind = UrlKind::S3Presigned;
        let date = need(kind, "X-Amz-Date", amz_date)?;
        let expires = need(kind, "X-Amz-Expires", amz_expires)?;
        need(kind, "X-Amz-Signature", amz_sig)?;
        let start = Timestamp::parse_basic(date).map_err(|_| DatasetUrlError::BadExpiry {
            param: "X-Amz-Date",
            expected: "YYYYMMDDTHHMMSSZ timestamp",
        })?;
        let secs = expires
            .parse::<i64>()
            .ok()
            .filter(|s| {
                (1..=MAX_AMZ_EXPIRES).contains(s) && expires.bytes().all(|c| c.is_ascii_digit())
            })
            .ok_or(DatasetUrlError::BadExpiry {
                param: "X-Amz-Expires",
                expected: "number of seconds between 1 and 604800",
            })?;
        return Ok(UrlExpiry {
            kind,
            expires_at: start.plus_secs(secs),
        });
    }

    let sv = get("sv", false)?;
    let se = get("se", false)?;
    let sig = get("sig", false)?;
    let kind = match sv {
        Some(SEALROOM_SIGNED_URL_VERSION) => {
            need(UrlKind::Sealroom, "sp", get("sp", false)?)?;
            UrlKind::Sealroom
        }
        Some(_) if sig.is_some() || se.is_some() => UrlKind::AzureSas,
        _ => return Err(DatasetUrlError::NoSignature),
    };
    need(kind, "sig", sig)?;
    let se = need(kind, "se", se)?;
    let expires_at = Timestamp::parse_rfc3339(se).map_err(|_| DatasetUrlError::BadExpiry {
        param: "se",
        expected: "ISO 8601 timestamp",
    })?;
    Ok(UrlExpiry { kind, expires_at })
}

/// Status of a dataset URL at `now`: `Invalid` when no expiry can be read, `Expired` when it
/// expires in 24 hours or less, else `Valid`.
pub fn assess_dataset_url(url: &str, now: Timestamp) -> DatasetUrlAssessment {
    match parse_url_expiry(url) {
        Err(e) => DatasetUrlAssessment {
            status: DatasetUrlStatus::Invalid,
            expiry: None,
            message: e.to_string(),
        },
        Ok(x) if x.expires_at <= now.plus_secs(EXPIRY_MARGIN_SECS) => DatasetUrlAssessment {
            status: DatasetUrlStatus::Expired,
            expiry: Some(x),
            message: format!(
                "the signed URL expires at {}, less than 24 hours from now",
                x.expires_at
            ),
        },
        Ok(x) => DatasetUrlAssessment {
            status: DatasetUrlStatus::Valid,
            expiry: Some(x),
            message: format!("valid until {}", x.expires_at),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn manual_examples() {
        let now = t("2023-03-22T17:00:00Z");
        let valid = "https://datasteward.blob.core.windows.net/ds-q-a-opensslv2?sp=r&st=2023-03-22T16:02:58Z&se=2023-07-01T00:02:58Z&spr=https&sv=2021-12-02&sr=c&sig=qc85EP6lnO8bEYQIWThEwvxRj%2Bt0I";
        let a = assess_dataset_url(valid, now);
        assert_eq!(a.status, DatasetUrlStatus::Valid, "{}", a.message);
        assert_eq!(a.expiry.unwrap().kind, UrlKind::AzureSas);
        assert_eq!(a.expiry.unwrap().expires_at, t("2023-07-01T00:02:58Z"));

        let invalid = "https://datasteward.blob.core.windows.net/ds-q-a-opensslv2?sp=rl&st=2023-03-22T16:02:58Z&se=2023-07-01T00:02:58Z&ep6ln08bEYQlWThEwnxRj%2Bt0lmWVG1rL2NZHXE%3D&comp=list&restype";
        assert_eq!(
            assess_dataset_url(invalid, now).status,
            DatasetUrlStatus::Invalid
        );

        let expired = "https://datasteward.blob.core.windows.net/ds-q-a-opensslv1?sp=racwdl&st=2023-03-03T08:44:33Z&se=2022-03-03T16:44:33Z&spr=https&sv=2021-06-08&sr=c&sig=Euf0v%2BTKp";
        assert_eq!(
            assess_dataset_url(expired, now).status,
            DatasetUrlStatus::Expired
        );
    }

    #[test]
    fn margin_is_24_hours() {
        let now = t("2026-01-01T00:00:00Z");
        let url = |se: &str| format!("https://a.example/c?sv=2022-11-02&se={se}&sig=x");
        assert_eq!(
            assess_dataset_url(&url("2026-01-02T00:00:00Z"), now).status,
            DatasetUrlStatus::Expired
        );
        assert_eq!(
            assess_dataset_url(&url("2026-01-02T00:00:01Z"), now).status,
            DatasetUrlStatus::Valid
        );
        assert_eq!(
            assess_dataset_url(&url("2026-01-03"), now).status,
            DatasetUrlStatus::Valid
        );
    }

    #[test]
    fn s3_presigned() {
        let url = "https://bucket.s3.eu-west-1.amazonaws.com/data.tar?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20260101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature=abcd";
        let x = parse_url_expiry(url).unwrap();
        assert_eq!(x.kind, UrlKind::S3Presigned);
        assert_eq!(x.expires_at, t("2026-01-08T00:00:00Z"));
        let over = url.replace("604800", "604801");
        assert!(matches!(
            parse_url_expiry(&over),
            Err(DatasetUrlError::BadExpiry { .. })
        ));
        let nosig = url.replace("&X-Amz-Signature=abcd", "");
        assert!(matches!(
            parse_url_expiry(&nosig),
            Err(DatasetUrlError::Missing { .. })
        ));
        let neg = url.replace("604800", "+5");
        assert!(parse_url_expiry(&neg).is_err());
    }

    #[test]
    fn sealroom_signed() {
        let url = "http://127.0.0.1:8080/api/v1/blobs/p/x?sv=sealroom1&sp=r&se=2026-02-01T00:00:00Z&sig=00ff";
        let x = parse_url_expiry(url).unwrap();
        assert_eq!(x.kind, UrlKind::Sealroom);
        assert_eq!(x.expires_at, t("2026-02-01T00:00:00Z"));
        assert!(matches!(
            parse_url_expiry(&url.replace("sp=r&", "")),
            Err(DatasetUrlError::Missing { param: "sp", .. })
        ));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "ftp://a/b?sv=1&se=2026-01-01&sig=x",
            "https://?sv=1&se=2026-01-01&sig=x",
            "https://a/b c?sv=1&se=2026-01-01&sig=x",
            "https://a/b?sv=1&se=2026-01-01&sig=x&se=2027-01-01",
            "https://a/b?sv=1&se=soon&sig=x",
            "https://a/b?sv=1&se=2026-01-01&sig=%zz",
            "https://a/b",
            "https://user@a/b?sv=1&se=2026-01-01&sig=x",
        ] {
            assert!(parse_url_expiry(bad).is_err(), "{bad}");
        }
        let long = format!("https://a/{}?sv=1&se=2026-01-01&sig=x", "a".repeat(9000));
        assert_eq!(parse_url_expiry(&long), Err(DatasetUrlError::TooLong));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = assess_dataset_url(&s, Timestamp::EPOCH);
            let _ = assess_dataset_url(&format!("https://h/p?{s}"), Timestamp::EPOCH);
        }
    }
}
