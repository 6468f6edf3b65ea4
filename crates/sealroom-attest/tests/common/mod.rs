//! Shared helpers: the genuine evidence lives in `shared/testdata/attestation` beside the repo.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

pub fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/attestation")
        .join(rel)
}

pub fn read(rel: &str) -> Vec<u8> {
    let p = testdata(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

pub fn flip(mut v: Vec<u8>, at: usize) -> Vec<u8> {
    v[at] ^= 0x01;
    v
}

/// Parses "YYYY-MM-DDTHH:MM:SSZ".
pub fn at(s: &str) -> sealroom_attest::VerificationTime {
    sealroom_attest::VerificationTime::parse_rfc3339(s).unwrap()
}
