//! The envelope's error type. Each variant names the problem in words a user can act on; the
//! `sealroom` binary maps each kind to its own documented exit code (`docs/exit-codes.md`).

use std::io;
use std::path::PathBuf;

use crate::key::KeyId;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while sealing, unsealing, wrapping or importing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input does not start with the sealed-file magic bytes.
    #[error("not a sealed file: {reason}")]
    NotSealed { reason: String },

    /// A sealed file of a format version this build does not read.
    #[error("unknown sealed-file format version {found} (this build reads version {supported})")]
    UnknownVersion { found: u8, supported: u8 },

    /// The file was sealed under another CEK.
    #[error("wrong key: sealed with key id {sealed}, the key given has id {given}")]
    WrongKey { sealed: KeyId, given: KeyId },

    /// The header's fields or its authentication tag do not check out.
    #[error("the sealed file's header was modified or is damaged: {reason}")]
    TamperedHeader { reason: String },

    /// A segment's AES-GCM tag did not verify: the segment (or its position) was modified.
    #[error("segment {index} failed authentication: the sealed file was modified (bytes {start}..{end})")]
    TamperedSegment { index: u64, start: u64, end: u64 },

    /// Anything else that proves modification: extra bytes, a manifest that does not match.
    #[error("the sealed data was modified: {reason}")]
    Tampered { reason: String },

    /// The sealed file is shorter than its header says.
    #[error("truncated: {reason}")]
    Truncated { reason: String },

    /// A key file that cannot be read or does not hold a key of the expected form.
    #[error("key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },

    /// RSA-OAEP wrapping or unwrapping failed, or a KEK could not be made or parsed.
    #[error("{0}")]
    Key(String),

    /// A peer's file (Fernet, OpenPGP) could not be imported.
    #[error(transparent)]
    Import(#[from] crate::import::ImportError),

    /// Input the caller gave that cannot be used (a path that is not a file, an existing output).
    #[error("{0}")]
    Usage(String),

    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with a description of the operation.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Adds context to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}
