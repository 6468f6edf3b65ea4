//! Streaming sealing and unsealing on all cores.
//!
//! Plaintext is cut into 64 KiB segments; a batch of segments is sealed (or opened) in parallel
//! with rayon while a writer thread writes the previous batch, so reading, the cipher and writing
//! overlap. Memory stays at a few batches whatever the file size.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use aws_lc_rs::aead;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::header::{
    nonce, FileKeys, Header, HEADER_LEN, MAX_PLAINTEXT_LEN, SALT_LEN, SEALED_SEGMENT_SIZE,
    SEGMENT_SIZE, TAG_LEN,
};
use crate::key::{Cek, KeyId};

/// Segments per batch (4 MiB of plaintext).
const BATCH_SEGMENTS: usize = 64;
const BATCH_BYTES: usize = BATCH_SEGMENTS * SEGMENT_SIZE;
/// Batches queued for the writer thread.
const WRITE_QUEUE: usize = 2;

/// Receives progress as bytes of plaintext are processed.
pub trait Progress: Sync {
    /// `bytes` more plaintext bytes were sealed or unsealed.
    fn advance(&self, bytes: u64);
}

/// No progress reporting.
impl Progress for () {
    fn advance(&self, _bytes: u64) {}
}

/// What sealing produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealSummary {
    /// Plaintext bytes sealed.
    pub plaintext_len: u64,
    /// Bytes written, header included.
    pub sealed_len: u64,
    /// Key id of the CEK used.
    pub key_id: KeyId,
}

/// A writer thread that owns the output and recycles buffers.
struct WriterThread<W> {
    tx: Option<SyncSender<Vec<u8>>>,
    recycled: Receiver<Vec<u8>>,
    handle: Option<JoinHandle<(W, io::Result<()>)>>,
}

impl<W: Write + Send + 'static> WriterThread<W> {
    fn spawn(mut inner: W) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(WRITE_QUEUE);
        let (back_tx, recycled) = mpsc::sync_channel::<Vec<u8>>(WRITE_QUEUE + 2);
        let handle = std::thread::spawn(move || {
            for buf in rx {
                if let Err(e) = inner.write_all(&buf) {
                    return (inner, Err(e));
                }
                let _ = back_tx.try_send(buf);
            }
            let flushed = inner.flush();
            (inner, flushed)
        });
        WriterThread {
            tx: Some(tx),
            recycled,
            handle: Some(handle),
        }
    }

    /// A buffer to fill: a recycled one if available.
    fn buffer(&self) -> Vec<u8> {
        self.recycled.try_recv().unwrap_or_default()
    }

    /// Queues a buffer; if the writer has stopped, returns its error.
    fn send(&mut self, buf: Vec<u8>) -> Result<()> {
        let sent = match &self.tx {
            Some(tx) => tx.send(buf).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            match self.join() {
                Ok(_) => Err(Error::io(
                    "writing output",
                    io::Error::other("writer stopped"),
                )),
                Err(e) => Err(e),
            }
        }
    }

    /// Waits for everything queued to be written; returns the output.
    fn join(&mut self) -> Result<W> {
        self.tx = None;
        let handle = self.handle.take().ok_or_else(|| {
            Error::io("writing output", io::Error::other("writer already joined"))
        })?;
        match handle.join() {
            Ok((inner, Ok(()))) => Ok(inner),
            Ok((_, Err(e))) => Err(Error::io("writing output", e)),
            Err(_) => Err(Error::io(
                "writing output",
                io::Error::other("writer thread panicked"),
            )),
        }
    }
}

/// Seals `plain` (segments of `SEGMENT_SIZE`, the last one possibly shorter) into `out`, in
/// parallel. `first_index` is the index of the first segment; `last` marks the final batch.
fn seal_batch(
    keys: &FileKeys,
    plain: &[u8],
    first_index: u64,
    last: bool,
    out: &mut Vec<u8>,
) -> Result<()> {
    let segments = plain.len().div_ceil(SEGMENT_SIZE).max(1);
    out.resize(plain.len() + segments * TAG_LEN, 0);
    let key = &keys.payload;
    out.par_chunks_mut(SEALED_SEGMENT_SIZE)
        .enumerate()
        .try_for_each(|(i, slot)| {
            let start = i * SEGMENT_SIZE;
            let end = (start + SEGMENT_SIZE).min(plain.len());
            let n = end - start;
            slot[..n].copy_from_slice(&plain[start..end]);
            let is_last = last && i + 1 == segments;
            let tag = key
                .seal_in_place_separate_tag(
                    nonce(first_index + i as u64, is_last),
                    aead::Aad::empty(),
                    &mut slot[..n],
                )
                .map_err(|_| Error::Key("AES-GCM sealing failed".into()))?;
            slot[n..n + TAG_LEN].copy_from_slice(tag.as_ref());
            Ok(())
        })
}

/// Streams plaintext into a sealed file. Implements [`Write`]; call [`SealWriter::finish`] at the
/// end, which writes the final segment and then the header (at offset 0, hence `Seek`).
///
/// Dropping a `SealWriter` without `finish` leaves an incomplete file that does not unseal: the
/// header stays zeroed. Callers write to a temporary file and rename it only after `finish`.
pub struct SealWriter<W: Write + Seek + Send + 'static> {
    keys: FileKeys,
    header: Header,
    batch: Vec<u8>,
    filled: usize,
    next_index: u64,
    total: u64,
    writer: WriterThread<W>,
}

impl<W: Write + Seek + Send + 'static> std::fmt::Debug for SealWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealWriter")
            .field("key_id", &self.header.key_id)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl<W: Write + Seek + Send + 'static> SealWriter<W> {
    /// Starts a sealed file on `inner` (positioned at its start) with a fresh random salt.
    pub fn new(inner: W, cek: &Cek) -> Result<Self> {
        let mut salt = [0u8; SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| Error::Key("the operating system's random generator failed".into()))?;
        Self::with_salt(inner, cek, salt)
    }

    /// Starts a sealed file with a given salt. Only for test vectors: a salt must never be reused
    /// with the same CEK.
    #[doc(hidden)]
    pub fn with_salt(inner: W, cek: &Cek, salt: [u8; SALT_LEN]) -> Result<Self> {
        let keys = FileKeys::derive(cek, &salt)?;
        let header = Header {
            plaintext_len: 0,
            key_id: cek.key_id(),
            salt,
        };
        let mut writer = WriterThread::spawn(inner);
        // A zeroed placeholder; the real header is written by `finish`.
        writer.send(vec![0u8; HEADER_LEN])?;
        Ok(SealWriter {
            keys,
            header,
            batch: vec![0u8; BATCH_BYTES],
            filled: 0,
            next_index: 0,
            total: 0,
            writer,
        })
    }

    /// Reads `reader` to its end and seals everything, reporting progress.
    pub fn copy_from(&mut self, reader: &mut dyn Read, progress: &dyn Progress) -> Result<u64> {
        let mut copied = 0u64;
        loop {
            if self.filled == BATCH_BYTES {
                // More may follow, so none of these segments is the last one.
                if !self.peek_more(reader)? {
                    break;
                }
            }
            let n = match reader.read(&mut self.batch[self.filled..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("reading the input", e)),
            };
            self.filled += n;
            self.add_total(n)?;
            copied += n as u64;
            progress.advance(n as u64);
        }
        Ok(copied)
    }

    /// With a full batch: reads one more byte; if there is one, flushes the batch and keeps it.
    fn peek_more(&mut self, reader: &mut dyn Read) -> Result<bool> {
        let mut one = [0u8; 1];
        loop {
            match reader.read(&mut one) {
                Ok(0) => return Ok(false),
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("reading the input", e)),
            }
        }
        self.flush_batch(false)?;
        self.batch[0] = one[0];
        self.filled = 1;
        self.add_total(1)?;
        Ok(true)
    }

    fn add_total(&mut self, n: usize) -> Result<()> {
        self.total += n as u64;
        if self.total > MAX_PLAINTEXT_LEN {
            return Err(Error::Usage(format!(
                "input larger than the sealed format's limit of {MAX_PLAINTEXT_LEN} bytes"
            )));
        }
        Ok(())
    }

    fn flush_batch(&mut self, last: bool) -> Result<()> {
        let mut out = self.writer.buffer();
        let plain = &self.batch[..self.filled];
        seal_batch(&self.keys, plain, self.next_index, last, &mut out)?;
        self.next_index += plain.len().div_ceil(SEGMENT_SIZE).max(1) as u64;
        self.filled = 0;
        self.writer.send(out)
    }

    /// Seals the final segment, writes the header and returns the output and a summary.
    pub fn finish(mut self) -> Result<(W, SealSummary)> {
        self.flush_batch(true)?;
        let mut inner = self.writer.join()?;
        self.header.plaintext_len = self.total;
        let bytes = self.header.encode(&self.keys);
        inner
            .seek(SeekFrom::Start(0))
            .and_then(|_| inner.write_all(&bytes))
            .and_then(|()| inner.seek(SeekFrom::End(0)))
            .and_then(|_| inner.flush())
            .map_err(|e| Error::io("writing the header", e))?;
        let summary = SealSummary {
            plaintext_len: self.total,
            sealed_len: self.header.sealed_len(),
            key_id: self.header.key_id,
        };
        Ok((inner, summary))
    }
}

impl<W: Write + Seek + Send + 'static> Write for SealWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.filled == BATCH_BYTES {
            self.flush_batch(false).map_err(io::Error::other)?;
        }
        let n = buf.len().min(BATCH_BYTES - self.filled);
        self.batch[self.filled..self.filled + n].copy_from_slice(&buf[..n]);
        self.filled += n;
        self.add_total(n).map_err(io::Error::other)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Segments are written as batches fill; the last one only at `finish`.
        Ok(())
    }
}

/// Seals everything `reader` yields into `writer`.
pub fn seal<W: Write + Seek + Send + 'static>(
    reader: &mut dyn Read,
    writer: W,
    cek: &Cek,
    progress: &dyn Progress,
) -> Result<(W, SealSummary)> {
    let mut sealer = SealWriter::new(writer, cek)?;
    sealer.copy_from(reader, progress)?;
    sealer.finish()
}

/// What unsealing produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsealSummary {
    /// Plaintext bytes written.
    pub plaintext_len: u64,
    /// Key id of the CEK used.
    pub key_id: KeyId,
}

/// Reads and authenticates the header at the start of `reader`.
pub(crate) fn read_header(reader: &mut dyn Read, cek: &Cek) -> Result<(Header, FileKeys)> {
    let mut bytes = [0u8; HEADER_LEN];
    let n = read_full(reader, &mut bytes).map_err(|e| Error::io("reading the header", e))?;
    let header = Header::parse(&bytes[..n])?;
    let keys = header.authenticate(&bytes, cek)?;
    Ok((header, keys))
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub(crate) fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Opens a batch of sealed segments in place, in parallel, and compacts the plaintext into
/// `out`. Reports the first segment that fails.
pub(crate) fn open_batch(
    keys: &FileKeys,
    sealed: &mut [u8],
    first_index: u64,
    last_index: u64,
    out: &mut Vec<u8>,
) -> Result<()> {
    let segments = sealed.len().div_ceil(SEALED_SEGMENT_SIZE);
    let plain_len = sealed.len() - segments * TAG_LEN;
    out.resize(plain_len, 0);
    let key = &keys.payload;
    let failed = sealed
        .par_chunks_mut(SEALED_SEGMENT_SIZE)
        .zip(out.par_chunks_mut(SEGMENT_SIZE))
        .enumerate()
        .filter_map(|(i, (slot, dst))| {
            let index = first_index + i as u64;
            match key.open_in_place(nonce(index, index == last_index), aead::Aad::empty(), slot) {
                Ok(plain) if plain.len() == dst.len() => {
                    dst.copy_from_slice(plain);
                    None
                }
                _ => Some(index),
            }
        })
        .min();
    // An empty final segment has no plaintext chunk to zip with: open it on its own.
    let failed = match failed {
        None if plain_len == 0 && segments == 1 => {
            let index = first_index;
            key.open_in_place(
                nonce(index, index == last_index),
                aead::Aad::empty(),
                sealed,
            )
            .err()
            .map(|_| index)
        }
        other => other,
    };
    match failed {
        None => Ok(()),
        Some(index) => Err(tampered_segment(index)),
    }
}

pub(crate) fn tampered_segment(index: u64) -> Error {
    let start = HEADER_LEN as u64 + index * SEALED_SEGMENT_SIZE as u64;
    Error::TamperedSegment {
        index,
        start,
        end: start + SEALED_SEGMENT_SIZE as u64,
    }
}

/// Unseals a sealed stream into `writer`, checking every segment, the exact length, and that
/// nothing follows the last segment. On error, what was written so far must be discarded by the
/// caller (the CLI writes to a temporary file that is removed).
pub fn unseal<W: Write + Send + 'static>(
    reader: &mut dyn Read,
    writer: W,
    cek: &Cek,
    progress: &dyn Progress,
) -> Result<(W, UnsealSummary)> {
    let (header, keys) = read_header(reader, cek)?;
    let total_segments = header.segment_count();
    let last_index = total_segments - 1;
    let mut writer = WriterThread::spawn(writer);
    let mut sealed = vec![0u8; BATCH_SEGMENTS * SEALED_SEGMENT_SIZE];
    let mut remaining_plain = header.plaintext_len;
    let mut index = 0u64;
    let mut offset = HEADER_LEN as u64;
    while index < total_segments {
        let count = (total_segments - index).min(BATCH_SEGMENTS as u64);
        let plain_in_batch = remaining_plain.min(count * SEGMENT_SIZE as u64);
        let want = (plain_in_batch + count * TAG_LEN as u64) as usize;
        let got = read_full(reader, &mut sealed[..want])
            .map_err(|e| Error::io("reading the sealed input", e))?;
        if got < want {
            let _ = writer.join();
            return Err(Error::Truncated {
                reason: format!(
                    "the sealed file ends at byte {}, its header says it has {}",
                    offset + got as u64,
                    header.sealed_len()
                ),
            });
        }
        let mut out = writer.buffer();
        if let Err(e) = open_batch(&keys, &mut sealed[..want], index, last_index, &mut out) {
            let _ = writer.join();
            return Err(e);
        }
        writer.send(out)?;
        progress.advance(plain_in_batch);
        remaining_plain -= plain_in_batch;
        offset += want as u64;
        index += count;
    }
    let mut extra = [0u8; 4096];
    let trailing =
        read_full(reader, &mut extra).map_err(|e| Error::io("reading the sealed input", e))?;
    if trailing > 0 {
        let _ = writer.join();
        return Err(Error::Tampered {
            reason: format!(
                "bytes follow the last segment (at byte {}; the file should end there)",
                header.sealed_len()
            ),
        });
    }
    let inner = writer.join()?;
    Ok((
        inner,
        UnsealSummary {
            plaintext_len: header.plaintext_len,
            key_id: header.key_id,
        },
    ))
}
