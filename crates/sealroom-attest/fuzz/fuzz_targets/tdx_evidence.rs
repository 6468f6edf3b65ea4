#![no_main]
//! The whole TDX verifier (evidence JSON, quote, PCK chain, CRLs, collateral JSON) on arbitrary
//! bytes.
use libfuzzer_sys::fuzz_target;
use sealroom_attest::tdx::{TdxPolicy, TdxVerifier};
use sealroom_attest::{ReferenceMeasurements, ReportData, VerificationTime, Verifier};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = TdxVerifier::new(TdxPolicy::strict(ReferenceMeasurements::AnyCheckedByCaller)) {
        let _ = v.verify(data, &ReportData([0; 64]), VerificationTime(1_751_328_000));
    }
});
