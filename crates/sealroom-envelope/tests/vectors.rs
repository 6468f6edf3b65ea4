//! Committed test vectors (`tests/vectors/`), checked in both directions, and checked once more
//! by an independent implementation of `docs/format.md` in Python (`tests/vectors/check.py`).
//!
//! Regenerate (only when the format version changes): `SEALROOM_WRITE_VECTORS=1 cargo test -p
//! sealroom-envelope --test vectors`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Cursor;
use std::path::PathBuf;

use sealroom_envelope::stream::SealWriter;
use sealroom_envelope::Cek;

/// (name, plaintext length): the empty file, one byte, and lengths around segment boundaries.
const VECTORS: &[(&str, usize)] = &[
    ("empty", 0),
    ("one-byte", 1),
    ("segment-minus-one", 65_535),
    ("one-segment", 65_536),
    ("segment-plus-one", 65_537),
    ("two-segments-plus-five", 131_077),
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn vector_key() -> Cek {
    Cek::from_bytes(std::array::from_fn(|i| i as u8))
}

fn vector_salt() -> [u8; 32] {
    std::array::from_fn(|i| 0x80 + i as u8)
}

fn plaintext(len: usize) -> Vec<u8> {
    // Documented in tests/vectors/README.md: byte i is (i * 31 + 7) mod 251.
    (0..len).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

fn seal_with_vector_salt(plain: &[u8]) -> Vec<u8> {
    let mut w =
        SealWriter::with_salt(Cursor::new(Vec::new()), &vector_key(), vector_salt()).unwrap();
    std::io::Write::write_all(&mut w, plain).unwrap();
    w.finish().unwrap().0.into_inner()
}

#[test]
fn vectors_encrypt_and_decrypt() {
    let writing = std::env::var_os("SEALROOM_WRITE_VECTORS").is_some();
    for (name, len) in VECTORS {
        let plain = plaintext(*len);
        let sealed = seal_with_vector_salt(&plain);
        let path = dir().join(format!("{name}.sealed"));
        if writing {
            std::fs::write(&path, &sealed).unwrap();
            continue;
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            sealed, committed,
            "sealing {name} no longer matches its vector"
        );
        assert_eq!(
            common::unseal_bytes(&committed, &vector_key()).unwrap(),
            plain,
            "vector {name} does not unseal to its plaintext"
        );
    }
}

#[test]
fn vectors_match_an_independent_python_implementation() {
    let status = std::process::Command::new("python3")
        .arg(dir().join("check.py"))
        .arg(dir())
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "tests/vectors/check.py rejected the vectors"
    );
}
