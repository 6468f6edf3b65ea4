//! Sealing and unsealing between two regular files with positional I/O on all cores.
//!
//! Segments are independent and sit at fixed offsets, so each worker reads its segment with
//! `pread`, seals or opens it in place, and writes it with `pwrite`: no thread funnels the data,
//! and the copies are the same two a `cp` makes. This is the path `sealroom encrypt` and
//! `decrypt` take for single files; streams (pipes, trees that hash as they go) use [`crate::stream`].

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use aws_lc_rs::aead;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rayon::prelude::*;

use crate::access::check_length;
use crate::error::{Error, Result};
use crate::header::{
    nonce, segment_count, FileKeys, Header, HEADER_LEN, MAX_PLAINTEXT_LEN, SALT_LEN,
    SEALED_SEGMENT_SIZE, SEGMENT_SIZE, TAG_LEN,
};
use crate::key::Cek;
use crate::stream::{tampered_segment, Progress, SealSummary, UnsealSummary};

/// Segments a worker takes at a time (1 MiB): large enough for efficient I/O, small enough to
/// balance the load.
const SEGMENTS_PER_TASK: u64 = 16;

fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    file.read_exact_at(buf, offset)
}

/// Seals the regular file `input` into `output` (an empty file). `input` must not change while
/// this runs; if its length changes, sealing fails.
pub fn seal_file(
    input: &File,
    output: &File,
    cek: &Cek,
    progress: &dyn Progress,
) -> Result<SealSummary> {
    let len = input
        .metadata()
        .map_err(|e| Error::io("reading the input's size", e))?
        .len();
    if len > MAX_PLAINTEXT_LEN {
        return Err(Error::Usage(format!(
            "input larger than the sealed format's limit of {MAX_PLAINTEXT_LEN} bytes"
        )));
    }
    let mut salt = [0u8; SALT_LEN];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| Error::Key("the operating system's random generator failed".into()))?;
    let keys = FileKeys::derive(cek, &salt)?;
    let header = Header {
        plaintext_len: len,
        key_id: cek.key_id(),
        salt,
    };
    output
        .set_len(header.sealed_len())
        .map_err(|e| Error::io("sizing the output", e))?;
    let count = segment_count(len);
    let tasks = count.div_ceil(SEGMENTS_PER_TASK);
    (0..tasks).into_par_iter().try_for_each_init(
        || vec![0u8; SEGMENTS_PER_TASK as usize * SEALED_SEGMENT_SIZE],
        |buf, task| -> Result<()> {
            let first = task * SEGMENTS_PER_TASK;
            let last = (first + SEGMENTS_PER_TASK).min(count);
            let plain_start = first * SEGMENT_SIZE as u64;
            let plain_end = (last * SEGMENT_SIZE as u64).min(len);
            let plain_len = (plain_end - plain_start) as usize;
            // Read the plaintext of all segments, then spread it out back to front so each
            // segment gets room for its tag.
            read_exact_at(input, &mut buf[..plain_len], plain_start).map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    Error::Usage("the input became shorter while it was being sealed".into())
                } else {
                    Error::io("reading the input", e)
                }
            })?;
            let segs = (last - first) as usize;
            let mut sealed_len = 0;
            for i in (0..segs).rev() {
                let start = i * SEGMENT_SIZE;
                let n = (plain_len - start).min(SEGMENT_SIZE);
                buf.copy_within(start..start + n, i * SEALED_SEGMENT_SIZE);
                if i == segs - 1 {
                    sealed_len = i * SEALED_SEGMENT_SIZE + n + TAG_LEN;
                }
            }
            for i in 0..segs {
                let index = first + i as u64;
                let n = (plain_len - i * SEGMENT_SIZE).min(SEGMENT_SIZE);
                let slot = &mut buf[i * SEALED_SEGMENT_SIZE..i * SEALED_SEGMENT_SIZE + n + TAG_LEN];
                let tag = keys
                    .payload
                    .seal_in_place_separate_tag(
                        nonce(index, index + 1 == count),
                        aead::Aad::empty(),
                        &mut slot[..n],
                    )
                    .map_err(|_| Error::Key("AES-GCM sealing failed".into()))?;
                slot[n..].copy_from_slice(tag.as_ref());
            }
            let offset = HEADER_LEN as u64 + first * SEALED_SEGMENT_SIZE as u64;
            output
                .write_all_at(&buf[..sealed_len], offset)
                .map_err(|e| Error::io("writing the output", e))?;
            progress.advance(plain_len as u64);
            Ok(())
        },
    )?;
    let now = input
        .metadata()
        .map_err(|e| Error::io("reading the input's size", e))?
        .len();
    if now != len {
        return Err(Error::Usage(format!(
            "the input changed size while it was being sealed ({len} -> {now} bytes)"
        )));
    }
    output
        .write_all_at(&header.encode(&keys), 0)
        .map_err(|e| Error::io("writing the header", e))?;
    Ok(SealSummary {
        plaintext_len: len,
        sealed_len: header.sealed_len(),
        key_id: header.key_id,
    })
}

/// Unseals the sealed regular file `input` into `output` (an empty file). Checks the header, the
/// key, the exact length and every segment; on error the caller discards `output`.
pub fn unseal_file(
    input: &File,
    output: &File,
    cek: &Cek,
    progress: &dyn Progress,
) -> Result<UnsealSummary> {
    let mut bytes = [0u8; HEADER_LEN];
    let mut n = 0;
    while n < HEADER_LEN {
        match input.read_at(&mut bytes[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading the header", e)),
        }
    }
    let header = Header::parse(&bytes[..n])?;
    let keys = header.authenticate(&bytes, cek)?;
    let actual = input
        .metadata()
        .map_err(|e| Error::io("reading the input's size", e))?
        .len();
    check_length(&header, actual)?;
    let len = header.plaintext_len;
    output
        .set_len(len)
        .map_err(|e| Error::io("sizing the output", e))?;
    let count = header.segment_count();
    let tasks = count.div_ceil(SEGMENTS_PER_TASK);
    let failed = (0..tasks)
        .into_par_iter()
        .map_init(
            || vec![0u8; SEGMENTS_PER_TASK as usize * SEALED_SEGMENT_SIZE],
            |buf, task| -> Result<Option<u64>> {
                let first = task * SEGMENTS_PER_TASK;
                let last = (first + SEGMENTS_PER_TASK).min(count);
                let plain_start = first * SEGMENT_SIZE as u64;
                let plain_end = (last * SEGMENT_SIZE as u64).min(len);
                let plain_len = (plain_end - plain_start) as usize;
                let segs = (last - first) as usize;
                let sealed_len = plain_len + segs * TAG_LEN;
                let offset = HEADER_LEN as u64 + first * SEALED_SEGMENT_SIZE as u64;
                read_exact_at(input, &mut buf[..sealed_len], offset).map_err(|e| {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        Error::Truncated {
                            reason: "the sealed file became shorter while it was being read".into(),
                        }
                    } else {
                        Error::io("reading the sealed input", e)
                    }
                })?;
                // Open each segment in place, then close the gaps left by the tags.
                for i in 0..segs {
                    let index = first + i as u64;
                    let n = (plain_len - i * SEGMENT_SIZE).min(SEGMENT_SIZE);
                    let slot =
                        &mut buf[i * SEALED_SEGMENT_SIZE..i * SEALED_SEGMENT_SIZE + n + TAG_LEN];
                    if keys
                        .payload
                        .open_in_place(nonce(index, index + 1 == count), aead::Aad::empty(), slot)
                        .is_err()
                    {
                        return Ok(Some(index));
                    }
                    if i > 0 {
                        buf.copy_within(
                            i * SEALED_SEGMENT_SIZE..i * SEALED_SEGMENT_SIZE + n,
                            i * SEGMENT_SIZE,
                        );
                    }
                }
                output
                    .write_all_at(&buf[..plain_len], plain_start)
                    .map_err(|e| Error::io("writing the output", e))?;
                progress.advance(plain_len as u64);
                Ok(None)
            },
        )
        .try_reduce(
            || None,
            |a, b| {
                Ok(match (a, b) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, y) => x.or(y),
                })
            },
        )?;
    if let Some(index) = failed {
        return Err(tampered_segment(index));
    }
    Ok(UnsealSummary {
        plaintext_len: len,
        key_id: header.key_id,
    })
}
