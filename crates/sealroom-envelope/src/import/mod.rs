//! Importers for peers' encrypted artifacts: Fernet tokens ([`fernet`]) and OpenPGP symmetric
//! files ([`openpgp`]).
//!
//! Both decrypt as a stream: they read the input in 64 KiB pieces and write plaintext to the
//! caller's sink as soon as it is decrypted, so memory stays bounded whatever the input's size.
//! Because the formats authenticate only at the end (Fernet's HMAC tag, OpenPGP's MDC packet), a
//! decryptor returns `Ok` only after that check passed; plaintext written before an error must be
//! thrown away by the caller (the `sealroom import` commands write to a temporary file that is
//! renamed into place only on success).
//!
//! See `docs/import.md` for the formats, what is supported, and the limits.

use std::fmt;
use std::io;

pub mod fernet;
pub mod openpgp;

mod b64;

/// Result alias for the importers.
pub type Result<T, E = ImportError> = std::result::Result<T, E>;

/// Why a peer's file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input is not a Fernet token at all (not base64, wrong version byte, empty).
    #[error("not a Fernet token: {reason}")]
    NotFernet { reason: String },

    /// The input is not an OpenPGP message (or not an encrypted one).
    #[error("not an OpenPGP encrypted file: {reason}")]
    NotOpenPgp { reason: String },

    /// The key file given for a Fernet token is not a Fernet key.
    #[error("invalid Fernet key: {reason}")]
    InvalidKey { reason: String },

    /// Fernet's HMAC-SHA256 did not verify: the key is wrong or the token was modified.
    #[error("authentication failed: the Fernet token's HMAC-SHA256 tag does not match; the key is wrong or the token was modified or truncated")]
    FernetAuthentication,

    /// The passphrase does not decrypt the OpenPGP file's session key.
    #[error("wrong passphrase: {reason}")]
    WrongPassphrase { reason: String },

    /// The OpenPGP file's integrity check (MDC) failed: the ciphertext was modified or truncated.
    #[error("the encrypted data was modified or truncated: {reason}")]
    Modified { reason: String },

    /// An algorithm, packet or version this importer does not handle.
    #[error("unsupported: {what}")]
    Unsupported { what: String },

    /// An OpenPGP Symmetrically Encrypted Data packet (tag 9), which has no integrity protection.
    #[error("refusing an OpenPGP Symmetrically Encrypted Data packet (tag 9): it has no integrity protection (no MDC), so a modification could not be detected; re-encrypt it with a current gpg (which writes tag 18, SEIPD)")]
    Unprotected,

    /// The input breaks the format's rules.
    #[error("malformed {what} at byte {offset}: {reason}")]
    Malformed {
        what: &'static str,
        offset: u64,
        reason: String,
    },

    /// The input ends before the format says it may.
    #[error("truncated {what} at byte {offset}: {reason}")]
    Truncated {
        what: &'static str,
        offset: u64,
        reason: String,
    },

    /// A configured limit (output size, decompression ratio, nesting, S2K work) was exceeded.
    #[error("input exceeds a limit: {what}")]
    LimitExceeded { what: String },

    /// Reading the input failed.
    #[error("cannot read the input: {source}")]
    Read {
        #[source]
        source: io::Error,
    },

    /// Writing the plaintext to the caller's sink failed.
    #[error("cannot write the output: {source}")]
    Write {
        #[source]
        source: io::Error,
    },
}

/// Bounds on what one import may do, so that a hostile input cannot exhaust disk, memory or CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most plaintext bytes written to the sink.
    pub max_output: u64,
    /// Most plaintext bytes per input byte once more than [`Limits::RATIO_GRACE`] bytes were
    /// written (a guard against compression bombs); 0 turns the check off.
    pub max_ratio: u64,
    /// Most bytes an OpenPGP iterated-and-salted S2K may hash (the format's own maximum is
    /// 65,011,712).
    pub max_s2k_count: u64,
    /// Deepest nesting of OpenPGP compressed packets.
    pub max_depth: usize,
}

impl Limits {
    /// Output below this size is never refused for its compression ratio.
    pub const RATIO_GRACE: u64 = 64 << 20;
    /// The largest count an OpenPGP S2K specifier can encode.
    pub const S2K_MAX_COUNT: u64 = 65_011_712;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_output: 1 << 40,
            max_ratio: 10_000,
            max_s2k_count: Self::S2K_MAX_COUNT,
            max_depth: 8,
        }
    }
}

/// Size of the buffers the importers read and decrypt in.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Wraps an importer error so that it can travel through `std::io::Read` chains.
pub(crate) fn to_io(err: ImportError) -> io::Error {
    io::Error::other(err)
}

/// Recovers an importer error from an I/O error; any other I/O error goes to `other`.
pub(crate) fn from_io(err: io::Error, other: impl FnOnce(io::Error) -> ImportError) -> ImportError {
    match err.downcast::<ImportError>() {
        Ok(inner) => inner,
        Err(err) => other(err),
    }
}

/// A reader at the bottom of a chain: retries interrupted reads, turns I/O errors into
/// [`ImportError::Read`], and counts the bytes read (for offsets and the compression ratio).
pub(crate) struct SourceReader<R> {
    inner: R,
    pub(crate) count: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: io::Read> SourceReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        SourceReader {
            inner,
            count: Default::default(),
        }
    }
}

impl<R: io::Read> io::Read for SourceReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.count.set(self.count.get() + n as u64);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(to_io(ImportError::Read { source: e })),
            }
        }
    }
}

impl<R> fmt::Debug for SourceReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceReader")
            .field("count", &self.count.get())
            .finish_non_exhaustive()
    }
}
