//! Fernet tokens, as made by Python `cryptography.fernet` (the Rhino example's and MedPerf's older
//! encryption scripts), decrypted as a stream.
//!
//! A token is the URL-safe base64 of `0x80 | timestamp (8, big-endian) | IV (16) | AES-128-CBC
//! ciphertext (PKCS#7 padded) | HMAC-SHA256 (32)`, the HMAC covering everything before it. The
//! key is the URL-safe base64 of 32 bytes: the HMAC key, then the AES key.
//!
//! [`decrypt`] decodes the base64 and decrypts as it reads, holding back only the last 32 bytes
//! (the tag candidate) and the last cipher block (for the padding), so memory stays at a few
//! hundred KiB whatever the token's size (Python's `Fernet.decrypt` holds the whole token, its
//! decoding and the plaintext at once). It returns `Ok` only after the tag was verified in constant
//! time; the padding is checked after the tag, so no padding oracle exists.

use std::fmt;
use std::io::{Read, Write};

use aws_lc_rs::cipher::{DecryptionContext, StreamingDecryptingKey, UnboundCipherKey, AES_128};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use zeroize::Zeroizing;

use super::b64::B64Decoder;
use super::{ImportError, Result, CHUNK};

const VERSION: u8 = 0x80;
const HEADER_LEN: usize = 1 + 8 + 16;
const TAG_LEN: usize = 32;
const BLOCK: usize = 16;
/// Shortest token: header, one block (the padding of an empty plaintext), tag.
const MIN_LEN: u64 = (HEADER_LEN + BLOCK + TAG_LEN) as u64;
/// Largest key file accepted (44 characters of base64 plus whitespace).
const MAX_KEY_TEXT: usize = 1024;
const WHAT: &str = "Fernet token";

/// A Fernet key: a 16-byte HMAC-SHA256 key and a 16-byte AES-128 key. Zeroized on drop; its
/// `Debug` shows no key bytes.
#[derive(Clone)]
pub struct FernetKey {
    bytes: Zeroizing<[u8; 32]>,
}

impl FernetKey {
    /// A key from its 32 raw bytes (signing key, then encryption key).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        FernetKey {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// Parses a key file's contents: URL-safe base64 of 32 bytes (`Fernet.generate_key()`),
    /// surrounding whitespace (a trailing newline) ignored.
    pub fn parse(text: &[u8]) -> Result<Self> {
        let bad = |reason: String| ImportError::InvalidKey { reason };
        if text.len() > MAX_KEY_TEXT {
            return Err(bad(format!(
                "{} bytes is too long for a Fernet key (44 characters of URL-safe base64)",
                text.len()
            )));
        }
        let trimmed = text.trim_ascii();
        let mut decoder = B64Decoder::new();
        let mut out = Zeroizing::new(Vec::with_capacity(48));
        decoder
            .feed(trimmed, &mut out)
            .and_then(|()| decoder.finish(&mut out))
            .map_err(|e| {
                bad(format!(
                    "not URL-safe base64 ({} at character {})",
                    e.reason, e.offset
                ))
            })?;
        let bytes: [u8; 32] = out.as_slice().try_into().map_err(|_| {
            bad(format!(
                "it decodes to {} bytes; a Fernet key is 32 (`Fernet.generate_key()`)",
                out.len()
            ))
        })?;
        Ok(Self::from_bytes(bytes))
    }

    /// Reads a key file (see [`FernetKey::parse`]).
    pub fn read_file(path: &std::path::Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| ImportError::InvalidKey {
            reason: format!("cannot open {}: {e}", path.display()),
        })?;
        let mut text = Zeroizing::new(Vec::new());
        file.take(MAX_KEY_TEXT as u64 + 1)
            .read_to_end(&mut text)
            .map_err(|e| ImportError::InvalidKey {
                reason: format!("cannot read {}: {e}", path.display()),
            })?;
        Self::parse(&text).map_err(|e| match e {
            ImportError::InvalidKey { reason } => ImportError::InvalidKey {
                reason: format!("{}: {reason}", path.display()),
            },
            other => other,
        })
    }

    fn signing_key(&self) -> &[u8] {
        &self.bytes[..16]
    }

    fn encryption_key(&self) -> &[u8] {
        &self.bytes[16..]
    }
}

impl fmt::Debug for FernetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FernetKey(..)")
    }
}

/// What [`decrypt`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FernetSummary {
    /// The token's timestamp (seconds since the Unix epoch) as its maker wrote it.
    pub timestamp: u64,
    /// Plaintext bytes written.
    pub plaintext_len: u64,
    /// Token bytes read (base64 text, whitespace included).
    pub token_len: u64,
}

/// Decrypts the Fernet token read from `input`, writing the plaintext to `output`.
///
/// Plaintext reaches `output` before the tag at the end of the token is checked; on any error
/// the caller must discard what was written.
pub fn decrypt<R: Read, W: Write>(
    key: &FernetKey,
    mut input: R,
    mut output: W,
) -> Result<FernetSummary> {
    let mut state = Decryptor::new(key);
    let mut text = vec![0u8; CHUNK];
    loop {
        let n = match input.read(&mut text) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ImportError::Read { source: e }),
        };
        state.feed(&text[..n], &mut output)?;
    }
    state.finish(&mut output)
}

/// The streaming state: base64 decoder, header, HMAC, CBC decryptor and the held-back tail.
struct Decryptor<'k> {
    key: &'k FernetKey,
    b64: B64Decoder,
    /// Decoded bytes not yet processed: always ends with the (up to) 32 bytes that may be the tag.
    pending: Zeroizing<Vec<u8>>,
    header: [u8; HEADER_LEN],
    header_len: usize,
    hmac: hmac::Context,
    cipher: Option<StreamingDecryptingKey>,
    plain: Zeroizing<Vec<u8>>,
    decoded: u64,
    written: u64,
}

impl<'k> Decryptor<'k> {
    fn new(key: &'k FernetKey) -> Self {
        let hkey = hmac::Key::new(hmac::HMAC_SHA256, key.signing_key());
        Decryptor {
            key,
            b64: B64Decoder::new(),
            pending: Zeroizing::new(Vec::with_capacity(CHUNK)),
            header: [0; HEADER_LEN],
            header_len: 0,
            hmac: hmac::Context::with_key(&hkey),
            cipher: None,
            plain: Zeroizing::new(vec![0u8; CHUNK + BLOCK]),
            decoded: 0,
            written: 0,
        }
    }

    fn feed(&mut self, text: &[u8], output: &mut impl Write) -> Result<()> {
        let before = self.pending.len();
        if let Err(e) = self.b64.feed(text, &mut self.pending) {
            return Err(self.base64_error(e));
        }
        self.decoded += (self.pending.len() - before) as u64;
        self.process(output)
    }

    fn base64_error(&self, e: super::b64::B64Error) -> ImportError {
        if e.offset < (HEADER_LEN as u64 * 4).div_ceil(3) {
            // Not even the header is base64: this is something else.
            ImportError::NotFernet {
                reason: format!("{} (at byte {})", e.reason, e.offset),
            }
        } else {
            ImportError::Malformed {
                what: WHAT,
                offset: e.offset,
                reason: e.reason,
            }
        }
    }

    /// Processes all pending bytes except the last 32.
    fn process(&mut self, output: &mut impl Write) -> Result<()> {
        let ready = self.pending.len().saturating_sub(TAG_LEN);
        if ready == 0 {
            return Ok(());
        }
        let mut start = 0;
        if self.header_len < HEADER_LEN {
            let take = (HEADER_LEN - self.header_len).min(ready);
            self.header[self.header_len..self.header_len + take]
                .copy_from_slice(&self.pending[..take]);
            if self.header_len == 0 && self.header[0] != VERSION {
                return Err(ImportError::NotFernet {
                    reason: format!(
                        "the first decoded byte is 0x{:02x}, a Fernet token's is 0x80",
                        self.header[0]
                    ),
                });
            }
            self.header_len += take;
            start = take;
            if self.header_len == HEADER_LEN {
                self.hmac.update(&self.header);
                let iv: [u8; 16] = self.header[9..].try_into().map_err(|_| internal())?;
                let unbound = UnboundCipherKey::new(&AES_128, self.key.encryption_key())
                    .map_err(|_| internal())?;
                let cipher = StreamingDecryptingKey::cbc_pkcs7(
                    unbound,
                    DecryptionContext::Iv128(FixedLength::from(iv)),
                )
                .map_err(|_| internal())?;
                self.cipher = Some(cipher);
            }
        }
        if let Some(cipher) = self.cipher.as_mut() {
            for piece in self.pending[start..ready].chunks(CHUNK) {
                self.hmac.update(piece);
                let update = cipher
                    .update(piece, &mut self.plain)
                    .map_err(|_| internal())?;
                let out = update.written();
                output
                    .write_all(out)
                    .map_err(|e| ImportError::Write { source: e })?;
                self.written += out.len() as u64;
            }
        }
        self.pending.drain(..ready);
        Ok(())
    }

    fn finish(mut self, output: &mut impl Write) -> Result<FernetSummary> {
        let before = self.pending.len();
        if let Err(e) = self.b64.finish(&mut self.pending) {
            return Err(self.base64_error(e));
        }
        self.decoded += (self.pending.len() - before) as u64;
        self.process(output)?;
        if self.decoded == 0 {
            return Err(ImportError::NotFernet {
                reason: "the input is empty".into(),
            });
        }
        if self.decoded < MIN_LEN {
            let first = if self.header_len > 0 {
                self.header[0]
            } else {
                self.pending.first().copied().unwrap_or_default()
            };
            if first != VERSION {
                return Err(ImportError::NotFernet {
                    reason: format!(
                        "the first decoded byte is 0x{first:02x}, a Fernet token's is 0x80"
                    ),
                });
            }
            return Err(ImportError::Truncated {
                what: WHAT,
                offset: self.b64.consumed(),
                reason: format!(
                    "it decodes to {} bytes; the shortest Fernet token is {MIN_LEN}",
                    self.decoded
                ),
            });
        }
        let ciphertext_len = self.decoded - (HEADER_LEN + TAG_LEN) as u64;
        if !ciphertext_len.is_multiple_of(BLOCK as u64) {
            return Err(ImportError::Truncated {
                what: WHAT,
                offset: self.b64.consumed(),
                reason: format!(
                    "its ciphertext is {ciphertext_len} bytes, not a whole number of 16-byte blocks (truncated or damaged)"
                ),
            });
        }
        // `process` left exactly the last 32 bytes: the tag.
        let tag = self.hmac.sign();
        if self.pending.len() != TAG_LEN
            || verify_slices_are_equal(tag.as_ref(), &self.pending).is_err()
        {
            return Err(ImportError::FernetAuthentication);
        }
        let cipher = self.cipher.take().ok_or_else(internal)?;
        let last = cipher.finish(&mut self.plain).map_err(|_| ImportError::Malformed {
            what: WHAT,
            offset: self.b64.consumed(),
            reason: "the authenticated plaintext has invalid PKCS#7 padding (the token's maker is broken)".into(),
        })?;
        let out = last.written();
        output
            .write_all(out)
            .map_err(|e| ImportError::Write { source: e })?;
        self.written += out.len() as u64;
        output
            .flush()
            .map_err(|e| ImportError::Write { source: e })?;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&self.header[1..9]);
        Ok(FernetSummary {
            timestamp: u64::from_be_bytes(ts),
            plaintext_len: self.written,
            token_len: self.b64.consumed(),
        })
    }
}

/// aws-lc-rs refused an operation whose inputs we sized correctly (an invariant, not input).
fn internal() -> ImportError {
    ImportError::Unsupported {
        what: "the AES-CBC implementation refused an operation (internal error)".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn key_parsing() {
        let text = b"SGVsbG8gd29ybGQhIEhlbGxvIHdvcmxkISBIZWxsbyE=\n";
        // 32 bytes of base64 ("Hello world! Hello world! Hello!").
        let key = FernetKey::parse(text).unwrap();
        assert_eq!(key.signing_key(), b"Hello world! Hel");
        assert!(format!("{key:?}").contains(".."));
        assert!(matches!(
            FernetKey::parse(b"c2hvcnQ="),
            Err(ImportError::InvalidKey { .. })
        ));
        assert!(matches!(
            FernetKey::parse(b"not base64 at all!"),
            Err(ImportError::InvalidKey { .. })
        ));
    }

    #[test]
    fn refuses_non_tokens() {
        let key = FernetKey::from_bytes([1; 32]);
        let mut out = Vec::new();
        assert!(matches!(
            decrypt(&key, &b""[..], &mut out),
            Err(ImportError::NotFernet { .. })
        ));
        assert!(matches!(
            decrypt(&key, &b"%PDF-1.7 binary"[..], &mut out),
            Err(ImportError::NotFernet { .. })
        ));
        // Valid base64 of a byte that is not 0x80.
        let text = "A".repeat(200);
        assert!(matches!(
            decrypt(&key, text.as_bytes(), &mut out),
            Err(ImportError::NotFernet { .. })
        ));
        // 0x80 and too short.
        assert!(matches!(
            decrypt(&key, &b"gAAAAA=="[..], &mut out),
            Err(ImportError::Truncated { .. })
        ));
    }
}
