//! Untrusted bytes a server or client reads: keys, ciphertexts (any kind, by header) and model
//! documents. Every input must give `Ok` or a clean error, never a panic or an unbounded
//! allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sealroom_fhe::crypto::parse_any(data);
    let _ = sealroom_fhe::Model::from_json(data);
});
