#![no_main]
//! The whole Azure CVM verifier (evidence JSON, HCL report, runtime data, TPM quote) on arbitrary
//! bytes.
use libfuzzer_sys::fuzz_target;
use sealroom_attest::azure::{AzurePolicy, AzureSnpVtpmVerifier};
use sealroom_attest::snp::{AmdChain, SnpPolicy, TcbVersion};
use sealroom_attest::{ReferenceMeasurements, ReportData, VerificationTime, Verifier};

fuzz_target!(|data: &[u8]| {
    let _ = sealroom_attest::azure::AzureEvidence::parse(data);
    let Ok(chain) = AmdChain::milan() else { return };
    let policy = AzurePolicy {
        snp: SnpPolicy {
            measurements: ReferenceMeasurements::AnyCheckedByCaller,
            min_tcb: TcbVersion::default(),
            allow_debug: false,
        },
        required_pcrs: vec![],
    };
    if let Ok(v) = AzureSnpVtpmVerifier::new(vec![chain], policy) {
        let _ = v.verify(data, &ReportData([0; 64]), VerificationTime(1_750_000_000));
    }
});
