#![no_main]
//! The streaming Fernet decryptor on arbitrary bytes (with a fixed key; the seeds are tokens made
//! by Python `cryptography.fernet` under it), whole and read in small pieces.
use libfuzzer_sys::fuzz_target;
use sealroom_envelope::import::fernet::{decrypt, FernetKey};

/// Returns at most 5 bytes per read, to exercise every split of base64 groups and blocks.
struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(5);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let key = FernetKey::from_bytes([0x42; 32]);
    let mut whole = Vec::new();
    let a = decrypt(&key, data, &mut whole);
    let mut pieces = Vec::new();
    let b = decrypt(&key, Trickle(data), &mut pieces);
    assert_eq!(a.is_ok(), b.is_ok());
    if a.is_ok() {
        assert_eq!(whole, pieces);
    }
});
