#![no_main]
//! TDX quote v4 parser.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sealroom_attest::tdx::TdxQuote::parse(data);
});
