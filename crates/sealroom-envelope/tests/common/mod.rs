//! Helpers shared by the envelope's integration tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::io::Cursor;

use sealroom_envelope::{stream, Cek, Result};

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn key(byte: u8) -> Cek {
    Cek::from_bytes([byte; 32])
}

pub fn seal_bytes(plain: &[u8], cek: &Cek) -> Vec<u8> {
    let (out, _) = stream::seal(&mut &plain[..], Cursor::new(Vec::new()), cek, &()).unwrap();
    out.into_inner()
}

pub fn unseal_bytes(sealed: &[u8], cek: &Cek) -> Result<Vec<u8>> {
    stream::unseal(&mut &sealed[..], Vec::new(), cek, &()).map(|(v, _)| v)
}
