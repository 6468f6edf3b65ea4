//! Sealroom's blob store: where artifact files, WCEK-sealed packages, outputs and (for a DS
//! without cloud storage) encrypted datasets live.
//!
//! - [`BlobStore`] is the joint; [`LocalBlobStore`] keeps files under `<data-dir>/blobs`.
//!   Uploads stream from any `AsyncRead` into a temporary file, are hashed (SHA-256) on the way,
//!   checked against an expected size/hash when given, flushed to disk, and only then committed
//!   under their key by a rename (or a hard link, when an existing blob must not be replaced).
//! - [`signed`] makes and checks signed URLs: HMAC-SHA256 over method, path, permission
//!   (read/list) and expiry, verified in constant time; the query (`sv=sealroom1&sp=r&se=...&sig=...`)
//!   carries an Azure-style `se=` expiry that `sealroom_types::parse_url_expiry` reads.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use sealroom_blob::{BlobKey, BlobStore, LocalBlobStore, PutOptions};
//! let dir = tempfile::tempdir()?;
//! let store = LocalBlobStore::open(dir.path()).await?;
//! let key = BlobKey::parse("projects/p1/report.json")?;
//! let meta = store.put(&key, &mut &b"{}"[..], PutOptions::default()).await?;
//! assert_eq!(meta.size, 2);
//! # Ok(()) }
//! ```

mod key;
mod local;
pub mod signed;

use std::pin::Pin;

use async_trait::async_trait;
use tokio::io::AsyncRead;

pub use key::{BlobKey, KeyError, MAX_KEY_LEN};
pub use local::LocalBlobStore;

/// Result alias of this crate.
pub type Result<T, E = BlobError> = std::result::Result<T, E>;

/// What can go wrong in a blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No blob under this key.
    #[error("blob {0} not found")]
    NotFound(String),
    /// A blob already exists under this key and overwriting was not asked for.
    #[error("blob {0} already exists")]
    AlreadyExists(String),
    /// The key is not acceptable.
    #[error(transparent)]
    InvalidKey(#[from] KeyError),
    /// The upload is larger than allowed.
    #[error("upload is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The upload's SHA-256 or size is not what the caller expected (nothing was stored).
    #[error("upload does not match: expected {expected}, got {actual}")]
    Mismatch {
        /// Expected (hex SHA-256 or size).
        expected: String,
        /// Actual.
        actual: String,
    },
    /// The requested byte range lies outside the blob.
    #[error("range {start}-{end:?} is not satisfiable for a blob of {size} bytes")]
    RangeNotSatisfiable {
        /// First byte asked for.
        start: u64,
        /// Last byte asked for.
        end: Option<u64>,
        /// The blob's size.
        size: u64,
    },
    /// A file-system error, with the path involved.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Options of a put.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Replace an existing blob (default: refuse with `AlreadyExists`).
    pub overwrite: bool,
    /// Refuse (and store nothing) if the content's SHA-256 differs.
    pub expected_sha256: Option<[u8; 32]>,
    /// Refuse (and store nothing) if the content is larger.
    pub max_size: Option<u64>,
}

/// What a put stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// The key.
    pub key: BlobKey,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
}

impl BlobMeta {
    /// The SHA-256 in lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    /// The key.
    pub key: BlobKey,
    /// Size in bytes.
    pub size: u64,
}

/// A byte range: `start..=end` (`end` `None`: to the end of the blob), as HTTP `Range` has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive), or `None` for the rest.
    pub end: Option<u64>,
}

impl ByteRange {
    /// Parses one HTTP range, `bytes=START-[END]` (multi-ranges and suffix ranges are not
    /// supported and return `None`).
    pub fn parse_http(header: &str) -> Option<ByteRange> {
        let spec = header.trim().strip_prefix("bytes=")?;
        if spec.len() > 41 || spec.contains(',') {
            return None;
        }
        let (a, b) = spec.split_once('-')?;
        let start: u64 = a
            .parse()
            .ok()
            .filter(|_| !a.is_empty() && a.bytes().all(|c| c.is_ascii_digit()))?;
        let end = if b.is_empty() {
            None
        } else if b.bytes().all(|c| c.is_ascii_digit()) {
            Some(b.parse::<u64>().ok()?)
        } else {
            return None;
        };
        if matches!(end, Some(e) if e < start) {
            return None;
        }
        Some(ByteRange { start, end })
    }

    /// `(offset, length)` within a blob of `size` bytes, or `RangeNotSatisfiable`.
    pub fn resolve(self, size: u64) -> Result<(u64, u64)> {
        if self.start >= size || matches!(self.end, Some(e) if e < self.start) {
            return Err(BlobError::RangeNotSatisfiable {
                start: self.start,
                end: self.end,
                size,
            });
        }
        let last = self.end.map_or(size - 1, |e| e.min(size - 1));
        Ok((self.start, last - self.start + 1))
    }
}

/// A blob being read.
pub struct BlobReader {
    /// The whole blob's size.
    pub total_size: u64,
    /// Offset of the first byte returned.
    pub offset: u64,
    /// Number of bytes the reader yields.
    pub length: u64,
    /// The bytes.
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("total_size", &self.total_size)
            .field("offset", &self.offset)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

/// A place to keep blobs by key.
#[async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Streams `reader` into a new blob under `key`, committed atomically with its SHA-256.
    async fn put(
        &self,
        key: &BlobKey,
        reader: &mut (dyn AsyncRead + Unpin + Send),
        opts: PutOptions,
    ) -> Result<BlobMeta>;
    /// Reads a blob, or a byte range of it.
    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<BlobReader>;
    /// A blob's size, or `NotFound`.
    async fn size(&self, key: &BlobKey) -> Result<u64>;
    /// Deletes a blob; `false` if there was none.
    async fn delete(&self, key: &BlobKey) -> Result<bool>;
    /// The blobs whose keys start with `prefix` (a whole-segment prefix such as `projects/p1/`,
    /// or empty for all), in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            ByteRange::parse_http("bytes=0-99"),
            Some(ByteRange {
                start: 0,
                end: Some(99)
            })
        );
        assert_eq!(
            ByteRange::parse_http("bytes=5-"),
            Some(ByteRange {
                start: 5,
                end: None
            })
        );
        for bad in [
            "bytes=-5",
            "bytes=5-1",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=+1-2",
            "bytes=a-",
        ] {
            assert_eq!(ByteRange::parse_http(bad), None, "{bad}");
        }
        let r = ByteRange {
            start: 5,
            end: Some(1000),
        };
        assert_eq!(r.resolve(10).unwrap(), (5, 5));
        assert!(ByteRange {
            start: 10,
            end: None
        }
        .resolve(10)
        .is_err());
        assert!(ByteRange {
            start: 0,
            end: None
        }
        .resolve(0)
        .is_err());
    }
}
