#![no_main]
//! SEV-SNP extended-report certificate table parser (host-supplied bytes).
use libfuzzer_sys::fuzz_target;
use sealroom_attest::snp::{find_cert, GUID_VCEK, GUID_VLEK};

fuzz_target!(|data: &[u8]| {
    let _ = find_cert(data, &GUID_VCEK);
    let _ = find_cert(data, &GUID_VLEK);
});
