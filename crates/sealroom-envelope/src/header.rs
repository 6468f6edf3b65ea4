//! The sealed file header (format version 1), see `docs/format.md`.
//!
//! ```text
//! offset size field
//!      0    8 magic "SEALROOM"
//!      8    1 version = 1
//!      9    1 cipher  = 1 (AES-256-GCM, HKDF-SHA256 per-file key, STREAM nonces)
//!     10    2 reserved, zero
//!     12    4 segment size, big-endian u32 = 65536
//!     16    8 plaintext length, big-endian u64
//!     24   16 key id of the CEK
//!     40   32 per-file random salt
//!     72    8 check: SHA-256(bytes 0..72)[0..8] (detects damage without the key)
//!     80   32 HMAC-SHA256(header key, bytes 0..72)  (detects modification)
//!    112      first segment
//! ```

use aws_lc_rs::{aead, digest, hkdf, hmac};

use crate::error::{Error, Result};
use crate::key::{Cek, KeyId};

/// The magic bytes every sealed file starts with.
pub const MAGIC: [u8; 8] = *b"SEALROOM";
/// The format version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Cipher suite 1: AES-256-GCM, HKDF-SHA256 per-file keys, STREAM nonces.
pub const CIPHER_AES256GCM_STREAM: u8 = 1;
/// Plaintext bytes per segment.
pub const SEGMENT_SIZE: usize = 64 * 1024;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// Ciphertext bytes per full segment.
pub const SEALED_SEGMENT_SIZE: usize = SEGMENT_SIZE + TAG_LEN;
/// Header length in bytes.
pub const HEADER_LEN: usize = 112;
/// Per-file salt length.
pub const SALT_LEN: usize = 32;
/// Largest plaintext a sealed file may hold: the 11-byte segment counter never wraps before this,
/// and it keeps every offset computation inside `u64`.
pub const MAX_PLAINTEXT_LEN: u64 = 1 << 60;

const FIELDS_LEN: usize = 72;
const CHECK_LEN: usize = 8;
const PAYLOAD_INFO: &[u8] = b"sealroom v1 payload key";
const HEADER_INFO: &[u8] = b"sealroom v1 header key";

/// The parsed fields of a sealed file's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Length of the plaintext in bytes.
    pub plaintext_len: u64,
    /// Key id of the CEK the file was sealed with.
    pub key_id: KeyId,
    /// The per-file random salt.
    pub salt: [u8; SALT_LEN],
}

/// The keys derived from a CEK and a file's salt.
pub(crate) struct FileKeys {
    pub(crate) payload: aead::LessSafeKey,
    header: hmac::Key,
}

impl FileKeys {
    pub(crate) fn derive(cek: &Cek, salt: &[u8; SALT_LEN]) -> Result<Self> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(cek.expose());
        let okm = prk
            .expand(&[PAYLOAD_INFO], &aead::AES_256_GCM)
            .map_err(|_| Error::Key("HKDF expansion failed".into()))?;
        let payload = aead::LessSafeKey::new(aead::UnboundKey::from(okm));
        let okm = prk
            .expand(&[HEADER_INFO], hmac::HMAC_SHA256)
            .map_err(|_| Error::Key("HKDF expansion failed".into()))?;
        Ok(FileKeys {
            payload,
            header: hmac::Key::from(okm),
        })
    }
}

impl Header {
    /// Number of segments a plaintext of this length is sealed into (at least one).
    pub fn segment_count(&self) -> u64 {
        segment_count(self.plaintext_len)
    }

    /// Total length of the sealed file, header included.
    pub fn sealed_len(&self) -> u64 {
        sealed_len(self.plaintext_len)
    }

    /// Encodes the header, computing its check and MAC with `keys`.
    pub(crate) fn encode(&self, keys: &FileKeys) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8] = VERSION;
        out[9] = CIPHER_AES256GCM_STREAM;
        // 10..12 reserved, zero.
        out[12..16].copy_from_slice(&(SEGMENT_SIZE as u32).to_be_bytes());
        out[16..24].copy_from_slice(&self.plaintext_len.to_be_bytes());
        out[24..40].copy_from_slice(&self.key_id.0);
        out[40..72].copy_from_slice(&self.salt);
        let check = digest::digest(&digest::SHA256, &out[..FIELDS_LEN]);
        out[72..80].copy_from_slice(&check.as_ref()[..CHECK_LEN]);
        let tag = hmac::sign(&keys.header, &out[..FIELDS_LEN]);
        out[80..112].copy_from_slice(tag.as_ref());
        out
    }

    /// Parses a header without a key: magic, version, check, fixed fields. The result is not yet
    /// authenticated; call [`Header::authenticate`] with the CEK before trusting it.
    pub fn parse(bytes: &[u8]) -> Result<Header> {
        if bytes.is_empty() {
            return Err(Error::NotSealed {
                reason: "it is empty".into(),
            });
        }
        let prefix = bytes.len().min(MAGIC.len());
        if bytes[..prefix] != MAGIC[..prefix] {
            return Err(Error::NotSealed {
                reason: "it does not start with the SEALROOM magic bytes".into(),
            });
        }
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated {
                reason: format!(
                    "the header is {} bytes, a complete one is {HEADER_LEN}",
                    bytes.len()
                ),
            });
        }
        if bytes[8] != VERSION {
            return Err(Error::UnknownVersion {
                found: bytes[8],
                supported: VERSION,
            });
        }
        let check = digest::digest(&digest::SHA256, &bytes[..FIELDS_LEN]);
        if check.as_ref()[..CHECK_LEN] != bytes[72..80] {
            return Err(Error::TamperedHeader {
                reason: "its checksum does not match its contents".into(),
            });
        }
        if bytes[9] != CIPHER_AES256GCM_STREAM {
            return Err(Error::TamperedHeader {
                reason: format!("unknown cipher suite {}", bytes[9]),
            });
        }
        if bytes[10..12] != [0, 0] {
            return Err(Error::TamperedHeader {
                reason: "reserved bytes are not zero".into(),
            });
        }
        let seg = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        if seg as usize != SEGMENT_SIZE {
            return Err(Error::TamperedHeader {
                reason: format!("segment size {seg}; version 1 uses {SEGMENT_SIZE}"),
            });
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[16..24]);
        let plaintext_len = u64::from_be_bytes(len);
        if plaintext_len > MAX_PLAINTEXT_LEN {
            return Err(Error::TamperedHeader {
                reason: format!("plaintext length {plaintext_len} is beyond the format's limit"),
            });
        }
        let mut key_id = [0u8; 16];
        key_id.copy_from_slice(&bytes[24..40]);
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&bytes[40..72]);
        Ok(Header {
            plaintext_len,
            key_id: KeyId(key_id),
            salt,
        })
    }

    /// Checks the CEK's key id and the header MAC; returns the file's keys.
    pub(crate) fn authenticate(&self, bytes: &[u8], cek: &Cek) -> Result<FileKeys> {
        let given = cek.key_id();
        if given != self.key_id {
            return Err(Error::WrongKey {
                sealed: self.key_id,
                given,
            });
        }
        let keys = FileKeys::derive(cek, &self.salt)?;
        hmac::verify(&keys.header, &bytes[..FIELDS_LEN], &bytes[80..HEADER_LEN]).map_err(|_| {
            Error::TamperedHeader {
                reason: "its authentication tag does not verify".into(),
            }
        })?;
        Ok(keys)
    }
}

/// Number of segments for a plaintext length (an empty plaintext is one empty segment).
pub fn segment_count(plaintext_len: u64) -> u64 {
    plaintext_len.div_ceil(SEGMENT_SIZE as u64).max(1)
}

/// Total sealed length for a plaintext length, header included.
pub fn sealed_len(plaintext_len: u64) -> u64 {
    HEADER_LEN as u64 + plaintext_len + segment_count(plaintext_len) * TAG_LEN as u64
}

/// The STREAM nonce of segment `index`: an 11-byte big-endian counter, then 1 for the last
/// segment and 0 otherwise.
pub(crate) fn nonce(index: u64, last: bool) -> aead::Nonce {
    let mut n = [0u8; aead::NONCE_LEN];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    aead::Nonce::assume_unique_for_key(n)
}
