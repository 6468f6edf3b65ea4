//! String-to-key specifiers (RFC 4880 §3.7): simple, salted, iterated and salted.

use aws_lc_rs::digest;
use zeroize::Zeroizing;

use super::super::{ImportError, Limits, Result};

/// A hash algorithm an S2K may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hash(&'static digest::Algorithm);

impl Hash {
    pub(crate) fn from_id(id: u8) -> Result<Self> {
        Ok(Hash(match id {
            2 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            8 => &digest::SHA256,
            9 => &digest::SHA384,
            10 => &digest::SHA512,
            11 => &digest::SHA224,
            1 => return Err(unsupported_hash("MD5", id)),
            3 => return Err(unsupported_hash("RIPEMD-160", id)),
            _ => return Err(unsupported_hash("unknown", id)),
        }))
    }
}

fn unsupported_hash(name: &str, id: u8) -> ImportError {
    ImportError::Unsupported {
        what: format!("S2K hash algorithm {name} ({id}); SHA-1, SHA-224, SHA-256, SHA-384 and SHA-512 are supported"),
    }
}

/// A parsed S2K specifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum S2k {
    Simple {
        hash: Hash,
    },
    Salted {
        hash: Hash,
        salt: [u8; 8],
    },
    Iterated {
        hash: Hash,
        salt: [u8; 8],
        count: u64,
    },
}

impl S2k {
    /// Parses a specifier at the start of `data`; returns it and its length.
    pub(crate) fn parse(
        data: &[u8],
        limits: &Limits,
    ) -> std::result::Result<(Self, usize), ParseError> {
        let kind = *data.first().ok_or(ParseError::Short)?;
        let hash_id = *data.get(1).ok_or(ParseError::Short)?;
        let salt = |data: &[u8]| -> std::result::Result<[u8; 8], ParseError> {
            data.get(2..10)
                .and_then(|s| s.try_into().ok())
                .ok_or(ParseError::Short)
        };
        match kind {
            0 => Ok((
                S2k::Simple {
                    hash: Hash::from_id(hash_id).map_err(ParseError::Other)?,
                },
                2,
            )),
            1 => Ok((
                S2k::Salted {
                    hash: Hash::from_id(hash_id).map_err(ParseError::Other)?,
                    salt: salt(data)?,
                },
                10,
            )),
            3 => {
                let salt = salt(data)?;
                let c = *data.get(10).ok_or(ParseError::Short)?;
                let count = (16u64 + u64::from(c & 15)) << ((c >> 4) + 6);
                if count > limits.max_s2k_count {
                    return Err(ParseError::Other(ImportError::LimitExceeded {
                        what: format!(
                            "the S2K asks to hash {count} bytes, more than the limit of {}",
                            limits.max_s2k_count
                        ),
                    }));
                }
                Ok((
                    S2k::Iterated {
                        hash: Hash::from_id(hash_id).map_err(ParseError::Other)?,
                        salt,
                        count,
                    },
                    11,
                ))
            }
            101 => Err(ParseError::Other(ImportError::Unsupported {
                what: "GnuPG's private S2K extension (101, a key stub or smartcard)".into(),
            })),
            other => Err(ParseError::Other(ImportError::Unsupported {
                what: format!(
                    "S2K type {other} (simple 0, salted 1 and iterated+salted 3 are supported)"
                ),
            })),
        }
    }

    /// Derives `key_len` bytes of key from `passphrase`.
    pub(crate) fn derive(&self, passphrase: &[u8], key_len: usize) -> Zeroizing<Vec<u8>> {
        let (hash, salt, count) = match self {
            S2k::Simple { hash } => (*hash, &[][..], 0),
            S2k::Salted { hash, salt } => (*hash, &salt[..], 0),
            S2k::Iterated { hash, salt, count } => (*hash, &salt[..], *count),
        };
        let mut unit = Zeroizing::new(Vec::with_capacity(salt.len() + passphrase.len()));
        unit.extend_from_slice(salt);
        unit.extend_from_slice(passphrase);
        // Hash salt || passphrase repeated to `count` bytes (at least once in full).
        let total = count.max(unit.len() as u64);
        let mut big = Zeroizing::new(Vec::new());
        if !unit.is_empty() {
            let reps = (65536 / unit.len()).max(1);
            big.reserve(reps * unit.len());
            for _ in 0..reps {
                big.extend_from_slice(&unit);
            }
        }
        let mut out = Zeroizing::new(Vec::with_capacity(key_len + 64));
        let mut preload = 0usize;
        while out.len() < key_len {
            let mut ctx = digest::Context::new(hash.0);
            for _ in 0..preload {
                ctx.update(&[0]);
            }
            let mut left = total;
            while left > 0 {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(big.len());
                ctx.update(&big[..take]);
                left -= take as u64;
            }
            out.extend_from_slice(ctx.finish().as_ref());
            preload += 1;
        }
        out.truncate(key_len);
        out
    }
}

/// Why an S2K specifier could not be parsed.
#[derive(Debug)]
pub(crate) enum ParseError {
    Short,
    Other(ImportError),
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn count_decoding_and_limit() {
        let limits = Limits::default();
        let mut spec = vec![3u8, 8];
        spec.extend_from_slice(&[0u8; 8]);
        spec.push(255);
        let (s2k, used) = S2k::parse(&spec, &limits).unwrap();
        assert_eq!(used, 11);
        assert!(matches!(
            s2k,
            S2k::Iterated {
                count: 65_011_712,
                ..
            }
        ));
        let small = Limits {
            max_s2k_count: 1 << 16,
            ..limits
        };
        assert!(matches!(
            S2k::parse(&spec, &small),
            Err(ParseError::Other(ImportError::LimitExceeded { .. }))
        ));
        spec[10] = 96; // (16 << 12) = 65536
        assert!(S2k::parse(&spec, &small).is_ok());
        assert!(matches!(
            S2k::parse(&[3, 8, 1], &limits),
            Err(ParseError::Short)
        ));
        assert!(matches!(
            S2k::parse(&[0, 1], &limits),
            Err(ParseError::Other(ImportError::Unsupported { .. }))
        ));
    }

    #[test]
    fn simple_s2k_extends_with_preloaded_zeros() {
        let s2k = S2k::Simple {
            hash: Hash::from_id(2).unwrap(),
        };
        let key = s2k.derive(b"pw", 32);
        let first = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, b"pw");
        let second = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, b"\0pw");
        assert_eq!(&key[..20], first.as_ref());
        assert_eq!(&key[20..], &second.as_ref()[..12]);
    }
}
