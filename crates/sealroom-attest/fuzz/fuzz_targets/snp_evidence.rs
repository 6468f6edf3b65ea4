#![no_main]
//! The whole SEV-SNP verifier (evidence JSON, VCEK parsing, chain) on arbitrary bytes.
use libfuzzer_sys::fuzz_target;
use sealroom_attest::snp::{SnpPolicy, SnpVerifier, TcbVersion};
use sealroom_attest::{ReferenceMeasurements, ReportData, VerificationTime, Verifier};

fuzz_target!(|data: &[u8]| {
    let policy = SnpPolicy {
        measurements: ReferenceMeasurements::AnyCheckedByCaller,
        min_tcb: TcbVersion::default(),
        allow_debug: false,
    };
    if let Ok(v) = SnpVerifier::milan(policy) {
        let _ = v.verify(data, &ReportData([0; 64]), VerificationTime(1_750_000_000));
    }
});
