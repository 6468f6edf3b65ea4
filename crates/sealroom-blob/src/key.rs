//! Blob keys: `/`-separated segments of `[A-Za-z0-9._-]`, no segment starting with `.`, so a
//! key can never leave the store's directory or name its temporary files.

/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 512;

/// A rejected key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid blob key {key:?}: {reason}")]
pub struct KeyError {
    /// The key, cut to 64 characters.
    pub key: String,
    /// Why.
    pub reason: &'static str,
}

/// A validated blob key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(String);

impl BlobKey {
    /// Validates a key.
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let bad = |reason| KeyError {
            key: s.chars().take(64).collect(),
            reason,
        };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.len() > MAX_KEY_LEN {
            return Err(bad("longer than 512 bytes"));
        }
        let mut depth = 0;
        for seg in s.split('/') {
            depth += 1;
            if seg.is_empty() {
                return Err(bad("empty segment (leading, trailing or double /)"));
            }
            if seg.starts_with('.') {
                return Err(bad("a segment starts with ."));
            }
            if seg.len() > 128 {
                return Err(bad("a segment is longer than 128 bytes"));
            }
            if !seg
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
            {
                return Err(bad("only letters, digits, . _ - and / are allowed"));
            }
        }
        if depth > 16 {
            return Err(bad("more than 16 segments"));
        }
        Ok(BlobKey(s.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for BlobKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        BlobKey::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["a", "projects/0190/versions/v1/package.tar", "x-y_z.1"] {
            assert!(BlobKey::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "../a", "a/../b", ".tmp/x", "a/.b", "a b", "a\\b", "é", "a/./b",
        ] {
            assert!(BlobKey::parse(bad).is_err(), "{bad}");
        }
        assert!(BlobKey::parse("a/".repeat(17).trim_end_matches('/')).is_err());
        assert!(BlobKey::parse(&"a".repeat(513)).is_err());
    }
}
