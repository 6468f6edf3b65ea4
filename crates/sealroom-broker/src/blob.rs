//! The stored form of a KEK private key: a small versioned binary blob.
//!
//! ```text
//! magic    "SRKB"             4 bytes
//! version  1                  1 byte
//! provider 1 = file, 2 = pkcs11  1 byte
//! key_ref  u16 BE length + bytes   which master key / HSM wrapping key sealed it (ASCII)
//! label    u16 BE length + bytes   what it is for, e.g. "project <id> role ds" (UTF-8)
//! payload  u32 BE length + bytes   provider-specific ciphertext
//! ```
//!
//! Everything before the payload length is the blob's *header*. The file provider authenticates
//! the header as AES-GCM associated data; the PKCS#11 provider puts SHA-256 of the header in
//! front of the wrapped key. Parsing is bounded: a blob is at most [`MAX_BLOB_LEN`] bytes and
//! each field has its own limit.

use std::fmt;

use crate::error::{BrokerError, Result};

const MAGIC: &[u8; 4] = b"SRKB";
/// The blob format version this build writes and reads.
pub const BLOB_VERSION: u8 = 1;
/// Largest blob accepted (an RSA-8192 PKCS#8 is about 4.8 KB).
pub const MAX_BLOB_LEN: usize = 16 * 1024;
/// Largest key reference.
pub const MAX_KEY_REF_LEN: usize = 256;
/// Largest label.
pub const MAX_LABEL_LEN: usize = 256;

/// Which provider made a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// The encrypted file store (master key).
    File,
    /// A PKCS#11 token (HSM wrapping key).
    Pkcs11,
}

impl ProviderKind {
    /// The name used in configuration and messages.
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::File => "file",
            ProviderKind::Pkcs11 => "pkcs11",
        }
    }

    fn code(self) -> u8 {
        match self {
            ProviderKind::File => 1,
            ProviderKind::Pkcs11 => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(ProviderKind::File),
            2 => Some(ProviderKind::Pkcs11),
            _ => None,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a key is for: bound into its stored blob so that a blob copied to another project or
/// role is refused. For example `project 0190… role ds`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyLabel(String);

impl KeyLabel {
    /// A label: 1 to 256 bytes of UTF-8 without control characters.
    pub fn new(label: impl Into<String>) -> Result<Self> {
        let label = label.into();
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(BrokerError::Config(format!(
                "a key label is 1 to {MAX_LABEL_LEN} bytes, this one has {}",
                label.len()
            )));
        }
        if label.chars().any(char::is_control) {
            return Err(BrokerError::Config(
                "a key label may not contain control characters".into(),
            ));
        }
        Ok(KeyLabel(label))
    }

    /// The label Sealroom uses for a project role's KEK: `project <id> role <role>`.
    pub fn for_project_role(project_id: &str, role: &str) -> Result<Self> {
        Self::new(format!("project {project_id} role {role}"))
    }

    /// The label text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyLabel({:?})", self.0)
    }
}

impl fmt::Display for KeyLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A KEK private key sealed for storage: an opaque versioned blob that only the provider that
/// made it (with the same master key or HSM wrapping key) can open. The store keeps these bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedPrivateKey(Vec<u8>);

impl SealedPrivateKey {
    /// Wraps stored bytes; they are parsed when a provider uses them.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        SealedPrivateKey(bytes)
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes to store.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The blob's public header (provider, key reference, label), without opening it. The
    /// header is authenticated only when a provider opens the blob.
    pub fn describe(&self) -> Result<BlobInfo> {
        let blob = KeyBlob::decode(&self.0)?;
        Ok(BlobInfo {
            provider: blob.provider,
            key_ref: blob.key_ref,
            label: blob.label,
        })
    }
}

impl fmt::Debug for SealedPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedPrivateKey(<{} bytes>)", self.0.len())
    }
}

/// The public header of a sealed private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// The provider that made it.
    pub provider: ProviderKind,
    /// Which master key or wrapping key sealed it.
    pub key_ref: String,
    /// What the key is for.
    pub label: String,
}

/// A parsed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyBlob {
    pub provider: ProviderKind,
    pub key_ref: String,
    pub label: String,
    pub payload: Vec<u8>,
}

impl KeyBlob {
    /// The header bytes: everything before the payload length.
    pub(crate) fn header(provider: ProviderKind, key_ref: &str, label: &str) -> Result<Vec<u8>> {
        if key_ref.len() > MAX_KEY_REF_LEN || !key_ref.is_ascii() {
            return Err(BrokerError::Crypto(format!(
                "internal: key reference {key_ref:?} is not ASCII of at most {MAX_KEY_REF_LEN} bytes"
            )));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(BrokerError::Crypto(
                "internal: label longer than the blob format allows".into(),
            ));
        }
        let mut out = Vec::with_capacity(10 + key_ref.len() + label.len());
        out.extend_from_slice(MAGIC);
        out.push(BLOB_VERSION);
        out.push(provider.code());
        // Both lengths were checked above to fit in u16.
        out.extend_from_slice(&(key_ref.len() as u16).to_be_bytes());
        out.extend_from_slice(key_ref.as_bytes());
        out.extend_from_slice(&(label.len() as u16).to_be_bytes());
        out.extend_from_slice(label.as_bytes());
        Ok(out)
    }

    /// This blob's header bytes.
    pub(crate) fn header_bytes(&self) -> Result<Vec<u8>> {
        Self::header(self.provider, &self.key_ref, &self.label)
    }

    /// Header, payload length and payload.
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let mut out = self.header_bytes()?;
        let len = u32::try_from(self.payload.len())
            .ok()
            .filter(|_| out.len() + 4 + self.payload.len() <= MAX_BLOB_LEN)
            .ok_or_else(|| BrokerError::Crypto("internal: key blob payload too large".into()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.payload);
        Ok(out)
    }

    /// Parses a blob, checking every length against its limit and the end of the input.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_BLOB_LEN {
            return Err(BrokerError::damaged(format!(
                "{} bytes is more than a key blob can be ({MAX_BLOB_LEN})",
                bytes.len()
            )));
        }
        let mut r = Reader(bytes);
        let magic = r.take(4, "magic")?;
        if magic != MAGIC {
            return Err(BrokerError::damaged(
                "it does not start with the key blob magic \"SRKB\"",
            ));
        }
        let version = r.take(1, "version")?[0];
        if version != BLOB_VERSION {
            return Err(BrokerError::damaged(format!(
                "key blob format version {version}; this build reads version {BLOB_VERSION}"
            )));
        }
        let code = r.take(1, "provider")?[0];
        let provider = ProviderKind::from_code(code)
            .ok_or_else(|| BrokerError::damaged(format!("unknown provider code {code}")))?;
        let key_ref_len = usize::from(r.u16("key reference length")?);
        if key_ref_len > MAX_KEY_REF_LEN {
            return Err(BrokerError::damaged("key reference too long"));
        }
        let key_ref = r.take(key_ref_len, "key reference")?;
        if !key_ref.is_ascii() {
            return Err(BrokerError::damaged("key reference is not ASCII"));
        }
        let label_len = usize::from(r.u16("label length")?);
        if label_len > MAX_LABEL_LEN {
            return Err(BrokerError::damaged("label too long"));
        }
        let label = std::str::from_utf8(r.take(label_len, "label")?)
            .map_err(|_| BrokerError::damaged("label is not UTF-8"))?;
        let payload_len = r.u32("payload length")? as usize;
        let payload = r.take(payload_len, "payload")?;
        if !r.0.is_empty() {
            return Err(BrokerError::damaged(format!(
                "{} unexpected bytes after the payload",
                r.0.len()
            )));
        }
        Ok(KeyBlob {
            provider,
            key_ref: String::from_utf8_lossy(key_ref).into_owned(),
            label: label.to_string(),
            payload: payload.to_vec(),
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(BrokerError::damaged(format!(
                "truncated in the {what} ({} bytes left, {n} needed)",
                self.0.len()
            )));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u16(&mut self, what: &str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Parses a key blob's structure (no cryptography). Exposed for the fuzz target.
#[doc(hidden)]
pub fn fuzz_parse(bytes: &[u8]) {
    if let Ok(blob) = KeyBlob::decode(bytes) {
        // A parsed blob encodes back to the same bytes.
        let again = blob.encode().ok();
        assert_eq!(again.as_deref(), Some(bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> KeyBlob {
        KeyBlob {
            provider: ProviderKind::Pkcs11,
            key_ref: "wrap#00ff".into(),
            label: "project p role ds".into(),
            payload: vec![1, 2, 3],
        }
    }

    #[test]
    fn round_trip() {
        let b = sample();
        let bytes = b.encode().unwrap();
        assert_eq!(KeyBlob::decode(&bytes).unwrap(), b);
        fuzz_parse(&bytes);
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let bytes = sample().encode().unwrap();
        for n in 0..bytes.len() {
            let err = KeyBlob::decode(&bytes[..n]).unwrap_err();
            assert!(matches!(err, BrokerError::DamagedKeyBlob { .. }), "{err}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        let err = KeyBlob::decode(&longer).unwrap_err().to_string();
        assert!(err.contains("unexpected bytes"), "{err}");
    }

    #[test]
    fn version_and_magic_are_checked() {
        let mut bytes = sample().encode().unwrap();
        bytes[4] = 2;
        let err = KeyBlob::decode(&bytes).unwrap_err().to_string();
        assert!(err.contains("version 2"), "{err}");
        bytes[0] = b'X';
        let err = KeyBlob::decode(&bytes).unwrap_err().to_string();
        assert!(err.contains("magic"), "{err}");
    }

    #[test]
    fn labels_are_checked() {
        assert!(KeyLabel::new("").is_err());
        assert!(KeyLabel::new("a\nb").is_err());
        assert!(KeyLabel::new("x".repeat(257)).is_err());
        assert_eq!(
            KeyLabel::for_project_role("p1", "ds").unwrap().as_str(),
            "project p1 role ds"
        );
    }
}
