//! Fuzzes the signed-URL query parser and verifier, and the dataset-URL expiry reader that reads
//! the same URLs: none may panic, and a parsed query must survive verification attempts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealroom_blob::signed::{parse_query, UrlSigner};
use sealroom_types::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_query(s);
    let signer = UrlSigner::new([7; 32]);
    let (path, query) = s.split_once('?').unwrap_or(("/api/v1/blobs/x", s));
    let _ = signer.verify("GET", path, query, Timestamp::EPOCH);
    let _ = sealroom_types::assess_dataset_url(s, Timestamp::EPOCH);
});
