//! Random access to a sealed file: any byte range, verifying only the segments it touches.
//!
//! The enclave serves HTTP `Range` requests from this: a range of a 1 GiB dataset file costs
//! the segments it overlaps, not the whole file.

use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::os::unix::fs::FileExt;

use aws_lc_rs::aead;

use crate::error::{Error, Result};
use crate::header::{
    nonce, FileKeys, Header, HEADER_LEN, SEALED_SEGMENT_SIZE, SEGMENT_SIZE, TAG_LEN,
};
use crate::key::Cek;

/// A sealed file opened for random access. Reads take `&self`, so one `SealedFile` can serve
/// many ranges concurrently.
pub struct SealedFile {
    file: File,
    header: Header,
    keys: FileKeys,
}

impl std::fmt::Debug for SealedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedFile")
            .field("plaintext_len", &self.header.plaintext_len)
            .field("key_id", &self.header.key_id)
            .finish_non_exhaustive()
    }
}

impl SealedFile {
    /// Opens a sealed file: reads and authenticates its header and checks its length.
    pub fn open(file: File, cek: &Cek) -> Result<Self> {
        let mut bytes = [0u8; HEADER_LEN];
        let mut n = 0;
        while n < HEADER_LEN {
            match file.read_at(&mut bytes[n..], n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("reading the header", e)),
            }
        }
        let header = Header::parse(&bytes[..n])?;
        let keys = header.authenticate(&bytes, cek)?;
        let actual = file
            .metadata()
            .map_err(|e| Error::io("reading the sealed file's size", e))?
            .len();
        check_length(&header, actual)?;
        Ok(SealedFile { file, header, keys })
    }

    /// The plaintext length.
    pub fn len(&self) -> u64 {
        self.header.plaintext_len
    }

    /// Whether the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.header.plaintext_len == 0
    }

    /// The authenticated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Decrypts segment `index` into `buf` (resized to the plaintext length) and verifies it.
    pub fn read_segment(&self, index: u64, buf: &mut Vec<u8>) -> Result<()> {
        let count = self.header.segment_count();
        if index >= count {
            return Err(Error::Usage(format!(
                "segment {index} is beyond the last segment ({})",
                count - 1
            )));
        }
        let start_plain = index * SEGMENT_SIZE as u64;
        let plain_len = (self.header.plaintext_len - start_plain).min(SEGMENT_SIZE as u64) as usize;
        let offset = HEADER_LEN as u64 + index * SEALED_SEGMENT_SIZE as u64;
        buf.resize(plain_len + TAG_LEN, 0);
        self.file.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                Error::Truncated {
                    reason: format!("the sealed file ends inside segment {index}"),
                }
            } else {
                Error::io("reading the sealed file", e)
            }
        })?;
        let last = index + 1 == count;
        let n = self
            .keys
            .payload
            .open_in_place(nonce(index, last), aead::Aad::empty(), buf)
            .map_err(|_| crate::stream::tampered_segment(index))?
            .len();
        buf.truncate(n);
        Ok(())
    }

    /// Reads plaintext starting at `offset` into `buf`; returns how many bytes were read (0 at
    /// the end). Verifies every segment it touches; several segments are opened in parallel.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if offset >= self.header.plaintext_len || buf.is_empty() {
            return Ok(0);
        }
        let total = (buf.len() as u64).min(self.header.plaintext_len - offset) as usize;
        // Split the output into one piece per segment touched.
        let mut pieces: Vec<(u64, usize, &mut [u8])> = Vec::new();
        let mut rest = &mut buf[..total];
        let mut pos = offset;
        while !rest.is_empty() {
            let index = pos / SEGMENT_SIZE as u64;
            let within = (pos - index * SEGMENT_SIZE as u64) as usize;
            let n = (SEGMENT_SIZE - within).min(rest.len());
            let (head, tail) = rest.split_at_mut(n);
            pieces.push((index, within, head));
            rest = tail;
            pos += n as u64;
        }
        let fill =
            |(index, within, out): &mut (u64, usize, &mut [u8]), seg: &mut Vec<u8>| -> Result<()> {
                self.read_segment(*index, seg)?;
                let n = out.len();
                if seg.len() < *within + n {
                    return Err(crate::stream::tampered_segment(*index));
                }
                out.copy_from_slice(&seg[*within..*within + n]);
                Ok(())
            };
        if pieces.len() == 1 {
            let mut seg = Vec::with_capacity(SEALED_SEGMENT_SIZE);
            fill(&mut pieces[0], &mut seg)?;
        } else {
            use rayon::prelude::*;
            pieces.par_iter_mut().try_for_each_init(
                || Vec::with_capacity(SEALED_SEGMENT_SIZE),
                |seg, piece| fill(piece, seg),
            )?;
        }
        Ok(total)
    }

    /// A reader over the plaintext bytes `range` (clamped to the file), for streaming responses.
    pub fn range_reader(&self, range: Range<u64>) -> RangeReader<'_> {
        let end = range.end.min(self.header.plaintext_len);
        let start = range.start.min(end);
        RangeReader {
            file: self,
            pos: start,
            end,
            seg: Vec::with_capacity(SEALED_SEGMENT_SIZE),
            seg_index: None,
        }
    }
}

/// Checks that a sealed file is exactly as long as its header says.
pub(crate) fn check_length(header: &Header, actual: u64) -> Result<()> {
    let expected = header.sealed_len();
    if actual < expected {
        return Err(Error::Truncated {
            reason: format!("the sealed file has {actual} bytes, its header says {expected}"),
        });
    }
    if actual > expected {
        return Err(Error::Tampered {
            reason: format!(
                "the sealed file has {actual} bytes, {} more than its header says",
                actual - expected
            ),
        });
    }
    Ok(())
}

/// Streams a plaintext range of a [`SealedFile`], one verified segment at a time.
#[derive(Debug)]
pub struct RangeReader<'a> {
    file: &'a SealedFile,
    pos: u64,
    end: u64,
    seg: Vec<u8>,
    seg_index: Option<u64>,
}

impl RangeReader<'_> {
    /// Bytes left to read.
    pub fn remaining(&self) -> u64 {
        self.end - self.pos
    }
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.end || buf.is_empty() {
            return Ok(0);
        }
        let index = self.pos / SEGMENT_SIZE as u64;
        if self.seg_index != Some(index) {
            self.seg_index = None;
            self.file
                .read_segment(index, &mut self.seg)
                .map_err(io::Error::other)?;
            self.seg_index = Some(index);
        }
        let within = (self.pos - index * SEGMENT_SIZE as u64) as usize;
        let left = (self.end - self.pos) as usize;
        let n = (self.seg.len() - within).min(buf.len()).min(left);
        buf[..n].copy_from_slice(&self.seg[within..within + n]);
        self.pos += n as u64;
        Ok(n)
    }
}
