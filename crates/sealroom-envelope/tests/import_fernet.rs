//! Fernet tokens made by Python `cryptography.fernet` (the real library), decrypted by
//! `import::fernet` as a stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use sealroom_envelope::import::fernet::{self, FernetKey};
use sealroom_envelope::import::ImportError;

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn data(len: usize, seed: u64) -> Vec<u8> {
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

/// Makes a key file with `Fernet.generate_key()` (plus a trailing newline, as scripts write it)
/// and encrypts `plain` to a token file with `Fernet(key).encrypt`.
fn python_fernet(dir: &Path, name: &str, plain: &[u8]) -> (PathBuf, PathBuf) {
    let plain_path = dir.join(format!("{name}.plain"));
    std::fs::write(&plain_path, plain).unwrap();
    let key_path = dir.join(format!("{name}.key"));
    let token_path = dir.join(format!("{name}.token"));
    let script = r#"
import sys
from cryptography.fernet import Fernet
key = Fernet.generate_key()
open(sys.argv[1], "wb").write(key + b"\n")
data = open(sys.argv[2], "rb").read()
open(sys.argv[3], "wb").write(Fernet(key).encrypt(data))
"#;
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(&key_path)
        .arg(&plain_path)
        .arg(&token_path)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "python3 cryptography.fernet failed");
    (key_path, token_path)
}

fn decrypt(key: &FernetKey, token: &[u8]) -> Result<Vec<u8>, ImportError> {
    let mut out = Vec::new();
    fernet::decrypt(key, token, &mut out).map(|_| out)
}

#[test]
fn python_tokens_decrypt_byte_identically() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = [
        0usize,
        1,
        15,
        16,
        17,
        48 * 1024 - 1,
        48 * 1024,
        65_535,
        65_536,
        65_537,
        3 * 65_536 + 100,
        3 * 1024 * 1024 + 5,
    ];
    for (i, &size) in sizes.iter().enumerate() {
        let plain = data(size, i as u64);
        let (key_path, token_path) = python_fernet(dir.path(), &format!("t{i}"), &plain);
        let key = FernetKey::read_file(&key_path).unwrap();
        let token = std::fs::read(&token_path).unwrap();
        let mut out = Vec::new();
        let summary = fernet::decrypt(&key, &token[..], &mut out).unwrap();
        assert_eq!(out.len(), plain.len(), "size {size}");
        assert!(out == plain, "size {size}: plaintext differs");
        assert_eq!(summary.plaintext_len, size as u64);
        assert_eq!(summary.token_len, token.len() as u64);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(summary.timestamp <= now && summary.timestamp + 3600 > now);

        // Read in tiny pieces (every split of base64 groups, blocks and the tag).
        if size < 70_000 {
            let mut out = Vec::new();
            let reader = OneByteAtATime(&token[..]);
            fernet::decrypt(&key, reader, &mut out).unwrap();
            assert!(out == plain);
        }
    }
}

/// A reader that returns at most 7 bytes per call.
struct OneByteAtATime<'a>(&'a [u8]);

impl std::io::Read for OneByteAtATime<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(7);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn whitespace_and_line_breaks_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let plain = data(1000, 9);
    let (key_path, token_path) = python_fernet(dir.path(), "ws", &plain);
    let key = FernetKey::read_file(&key_path).unwrap();
    let token = std::fs::read(&token_path).unwrap();
    let mut wrapped = Vec::new();
    for line in token.chunks(76) {
        wrapped.extend_from_slice(line);
        wrapped.extend_from_slice(b"\r\n");
    }
    assert_eq!(decrypt(&key, &wrapped).unwrap(), plain);
}

#[test]
fn wrong_key_fails_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let plain = data(5000, 3);
    let (_, token_path) = python_fernet(dir.path(), "a", &plain);
    let (other_key_path, _) = python_fernet(dir.path(), "b", b"x");
    let other = FernetKey::read_file(&other_key_path).unwrap();
    let token = std::fs::read(&token_path).unwrap();
    let err = decrypt(&other, &token).unwrap_err();
    assert!(matches!(err, ImportError::FernetAuthentication), "{err}");
    assert!(err.to_string().contains("key is wrong"), "{err}");
}

#[test]
fn every_flipped_byte_and_every_truncation_fails() {
    let dir = tempfile::tempdir().unwrap();
    let plain = data(40, 5);
    let (key_path, token_path) = python_fernet(dir.path(), "flip", &plain);
    let key = FernetKey::read_file(&key_path).unwrap();
    let text = std::fs::read(&token_path).unwrap();
    let raw = URL_SAFE.decode(&text).unwrap();
    assert_eq!(decrypt(&key, &text).unwrap(), plain);
    for i in 0..raw.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = raw.clone();
            bad[i] ^= bit;
            let token = URL_SAFE.encode(&bad);
            let err = decrypt(&key, token.as_bytes()).expect_err("a modified token must fail");
            if i == 0 {
                assert!(
                    matches!(err, ImportError::NotFernet { .. }),
                    "byte {i}: {err}"
                );
            } else {
                assert!(
                    matches!(err, ImportError::FernetAuthentication),
                    "byte {i}: {err}"
                );
            }
        }
    }
    // Truncated text, at every length.
    for len in 0..text.len() {
        decrypt(&key, &text[..len]).expect_err("a truncated token must fail");
    }
    // Truncated decoded bytes, re-encoded cleanly.
    for len in 0..raw.len() {
        let token = URL_SAFE.encode(&raw[..len]);
        decrypt(&key, token.as_bytes()).expect_err("a truncated token must fail");
    }
    // Extra bytes appended.
    let mut longer = raw.clone();
    longer.extend_from_slice(&[0u8; 16]);
    decrypt(&key, URL_SAFE.encode(&longer).as_bytes()).expect_err("an extended token must fail");
}

#[test]
fn garbage_is_not_a_token() {
    let key = FernetKey::from_bytes([3; 32]);
    for input in [
        &b""[..],
        b"\n",
        b"hello, world",
        b"{\"json\": true}",
        &[0x80, 0x81, 0xff],
    ] {
        let err = decrypt(&key, input).unwrap_err();
        assert!(matches!(err, ImportError::NotFernet { .. }), "{err}");
    }
    // Bad characters after a valid start are reported with their offset.
    let dir = tempfile::tempdir().unwrap();
    let (key_path, token_path) = python_fernet(dir.path(), "g", &data(300, 1));
    let key = FernetKey::read_file(&key_path).unwrap();
    let mut token = std::fs::read(&token_path).unwrap();
    token[200] = b'*';
    let err = decrypt(&key, &token).unwrap_err();
    match err {
        ImportError::Malformed { offset, .. } => assert_eq!(offset, 200),
        other => panic!("expected Malformed, got {other}"),
    }
}

#[test]
fn key_files_as_python_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (key_path, _) = python_fernet(dir.path(), "k", b"");
    let text = std::fs::read(&key_path).unwrap();
    assert_eq!(text.len(), 45, "44 characters and a newline");
    FernetKey::parse(&text).unwrap();
    FernetKey::parse(text.trim_ascii()).unwrap();
    let err = FernetKey::parse(&text[..20]).unwrap_err();
    assert!(matches!(err, ImportError::InvalidKey { .. }), "{err}");
    let err = FernetKey::read_file(&dir.path().join("missing.key")).unwrap_err();
    assert!(err.to_string().contains("missing.key"), "{err}");
}

/// Random mutations of the fuzz seeds (Python tokens under the key 0x42 * 32): never a panic,
/// and a mutation that still decrypts (one that only touches whitespace, padding, unused low bits
/// or swaps equivalent alphabet characters) yields the original plaintext.
#[test]
fn random_mutations_of_the_fuzz_seeds() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/import_fernet");
    let key = FernetKey::from_bytes([0x42; 32]);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut failures = 0;
    for entry in std::fs::read_dir(&seeds).unwrap() {
        let seed = std::fs::read(entry.unwrap().path()).unwrap();
        let plain = decrypt(&key, &seed).unwrap();
        for _ in 0..500 {
            let mut m = seed.clone();
            for _ in 0..1 + next() % 3 {
                let at = (next() % m.len() as u64) as usize;
                match next() % 3 {
                    0 => m[at] = b"AZaz09-_=+/\n*"[(next() % 13) as usize],
                    1 => m.insert(at, b"AQgw"[(next() % 4) as usize]),
                    _ => {
                        m.remove(at);
                    }
                }
            }
            match decrypt(&key, &m) {
                Ok(out) => assert!(out == plain, "a mutated token decrypted to something else"),
                Err(_) => failures += 1,
            }
        }
    }
    assert!(failures > 1000);
}
