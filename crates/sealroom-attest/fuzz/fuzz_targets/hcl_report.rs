#![no_main]
//! Azure HCL report parser.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = sealroom_attest::azure::HclReport::parse(data) {
        let _ = h.expected_snp_report_data();
    }
});
