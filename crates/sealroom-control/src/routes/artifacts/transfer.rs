//! Streamed uploads into the blob store and streamed downloads out of it, shared by the artifact
//! and storage routes. Request bodies are never held in memory: they flow through the blob store's
//! `put`, which hashes them, enforces `max_upload` and commits nothing on failure.

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use sealroom_blob::{BlobKey, BlobMeta, BlobReader, PutOptions};
use sealroom_types::ErrorCode;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::{ReaderStream, StreamReader};

use crate::extract::has_content_type;
use crate::{ApiResult, ControlState, Failure};

/// 415 unless the body is `application/octet-stream`.
pub(crate) fn require_octet_stream(headers: &HeaderMap) -> ApiResult<()> {
    if has_content_type(headers, "application/octet-stream") {
        Ok(())
    } else {
        Err(Failure::new(
            ErrorCode::UnsupportedMediaType,
            "send the file as the raw body with `Content-Type: application/octet-stream`",
        ))
    }
}

/// 413 at once when the declared `Content-Length` is over `limit`.
pub(crate) fn check_declared_length(headers: &HeaderMap, limit: u64) -> ApiResult<()> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => Err(too_large(limit)),
        _ => Ok(()),
    }
}

pub(crate) fn too_large(limit: u64) -> Failure {
    Failure::new(
        ErrorCode::PayloadTooLarge,
        format!("the upload is larger than this server accepts ({limit} bytes)"),
    )
}

/// A request body being read.
pub(crate) struct Incoming {
    reader: Pin<Box<dyn AsyncRead + Send>>,
    /// Set when the client's body failed (disconnect, bad framing), to tell that from a disk error.
    broken: Arc<AtomicBool>,
    /// Bytes already read by [`Incoming::peek`], put back in front of the rest.
    head: Vec<u8>,
}

impl Incoming {
    pub(crate) fn new(body: Body) -> Self {
        let broken = Arc::new(AtomicBool::new(false));
        let flag = broken.clone();
        let stream = body.into_data_stream().map(move |r| {
            r.map_err(|e| {
                flag.store(true, Ordering::Relaxed);
                io::Error::other(e)
            })
        });
        Incoming {
            reader: Box::pin(StreamReader::new(stream)),
            broken,
            head: Vec::new(),
        }
    }

    fn interrupted(&self, e: impl std::fmt::Display) -> Failure {
        Failure::invalid(format!("the upload was interrupted: {e}"))
    }

    /// The first `n` bytes (fewer if the body is shorter); they stay part of the body.
    pub(crate) async fn peek(&mut self, n: usize) -> ApiResult<&[u8]> {
        while self.head.len() < n {
            let mut buf = vec![0u8; n - self.head.len()];
            let got = match self.reader.read(&mut buf).await {
                Ok(got) => got,
                Err(e) => return Err(self.interrupted(e)),
            };
            if got == 0 {
                break;
            }
            self.head.extend_from_slice(&buf[..got]);
        }
        Ok(&self.head)
    }

    /// Streams the whole body into a new blob under `key`, at most `limit` bytes.
    pub(crate) async fn store(
        &mut self,
        state: &ControlState,
        key: &BlobKey,
        limit: u64,
    ) -> ApiResult<BlobMeta> {
        let head = std::mem::take(&mut self.head);
        let mut all = AsyncReadExt::chain(&head[..], &mut self.reader);
        let opts = PutOptions {
            max_size: Some(limit),
            ..PutOptions::default()
        };
        match state.blobs().put(key, &mut all, opts).await {
            Ok(m) => Ok(m),
            Err(sealroom_blob::BlobError::TooLarge { limit }) => Err(too_large(limit)),
            Err(e) if self.broken.load(Ordering::Relaxed) => {
                Err(Failure::invalid(format!("the upload was interrupted: {e}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// After a refusal, reads and drops what is left of a small body (at most
    /// [`DRAIN_LIMIT`] bytes, for at most [`DRAIN_TIME`]), so that a client still sending it
    /// reads the error instead of a reset connection. Larger bodies are cut off.
    pub(crate) async fn drain(&mut self, headers: &HeaderMap) {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > DRAIN_LIMIT) {
            return;
        }
        let mut sink = tokio::io::sink();
        let mut limited = (&mut self.reader).take(DRAIN_LIMIT);
        let _ = tokio::time::timeout(DRAIN_TIME, tokio::io::copy(&mut limited, &mut sink)).await;
    }
}

/// Most bytes read and dropped after a refused upload.
pub(crate) const DRAIN_LIMIT: u64 = 8 << 20;
/// Longest time spent doing so.
pub(crate) const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Deletes a blob that no record will point to (best effort: a failure is logged).
pub(crate) async fn discard(state: &ControlState, key: &BlobKey) {
    if let Err(e) = state.blobs().delete(key).await {
        tracing::error!(key = %key, error = %e, "could not delete an orphaned blob");
    }
}

/// A streamed response of a blob (or a range of it).
pub(crate) fn blob_response(
    status: StatusCode,
    blob: BlobReader,
    content_type: &str,
    extra: Vec<(header::HeaderName, String)>,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.length));
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    let body = Body::from_stream(ReaderStream::with_capacity(blob.reader, 64 * 1024));
    (status, headers, body).into_response()
}

/// Reads an async blob from a blocking thread (for parsers that take `std::io::Read`).
pub(crate) struct BlockingReader {
    handle: tokio::runtime::Handle,
    inner: Pin<Box<dyn AsyncRead + Send>>,
}

impl BlockingReader {
    /// Wraps a reader; use it only inside `spawn_blocking`.
    pub(crate) fn new(inner: Pin<Box<dyn AsyncRead + Send>>) -> Self {
        BlockingReader {
            handle: tokio::runtime::Handle::current(),
            inner,
        }
    }
}

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let inner = &mut self.inner;
        self.handle.block_on(inner.read(buf))
    }
}
