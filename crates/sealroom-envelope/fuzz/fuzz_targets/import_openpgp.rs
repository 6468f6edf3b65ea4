#![no_main]
//! The streaming OpenPGP decryptor on arbitrary bytes, with the passphrase "fuzz" (the seeds are
//! `gpg --symmetric` files under it) and small limits so each run stays cheap.
use libfuzzer_sys::fuzz_target;
use sealroom_envelope::import::{openpgp, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_output: 16 << 20,
        max_ratio: 1000,
        max_s2k_count: 1 << 16,
        max_depth: 8,
    };
    let _ = openpgp::decrypt(b"fuzz", data, std::io::sink(), &limits);
});
