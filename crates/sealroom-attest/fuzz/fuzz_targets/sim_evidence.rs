#![no_main]
//! Simulated evidence parser and verifier.
use libfuzzer_sys::fuzz_target;
use sealroom_attest::{ReportData, VerificationTime, Verifier};

fuzz_target!(|data: &[u8]| {
    let _ = sealroom_attest::sim::SimulatedReport::parse(data);
    if let Ok(v) = sealroom_attest::sim::SimulatedVerifier::new(&[7u8; 32]) {
        let _ = v.verify(data, &ReportData([0; 64]), VerificationTime(0));
    }
});
