//! The configuration factory builds working verifiers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use sealroom_attest::config::VerifierConfig;
use sealroom_attest::snp::{SnpEvidence, SnpReport};
use sealroom_attest::Technology;

#[test]
fn snp_config_builds_a_verifier_that_verifies_genuine_evidence() {
    let report = common::read("snp/test-report.bin");
    let parsed = SnpReport::parse(&report).unwrap();
    let cfg = serde_json::json!({
        "technology": "sev-snp",
        "measurements": {"one-of": [hex::encode(parsed.measurement)]},
        "min_tcb": {"bootloader": 0, "tee": 0, "snp": 0, "microcode": 0, "fmc": null},
    });
    let cfg: VerifierConfig = serde_json::from_value(cfg).unwrap();
    assert_eq!(cfg.technology(), Technology::SevSnp);
    let v = cfg.build().unwrap();
    let ev = SnpEvidence::new(&report, &common::read("snp/test-vcek.der")).to_bytes();
    let claims = v
        .verify(&ev, &parsed.report_data, common::at("2025-06-01T00:00:00Z"))
        .unwrap();
    assert_eq!(claims.technology, Technology::SevSnp);
}

#[test]
fn bad_configs_are_refused() {
    for bad in [
        serde_json::json!({"technology": "simulated", "site_public_key": "00"}),
        serde_json::json!({"technology": "tdx", "measurements": "any-checked-by-caller", "accepted_tcb_status": []}),
        serde_json::json!({"technology": "azure-snp-vtpm", "measurements": "any-checked-by-caller", "required_pcrs": [[30, "00"]]}),
    ] {
        let cfg: VerifierConfig = serde_json::from_value(bad.clone()).unwrap();
        assert!(cfg.build().is_err(), "{bad}");
    }
    let unknown = serde_json::json!({"technology": "sgx"});
    assert!(serde_json::from_value::<VerifierConfig>(unknown).is_err());
}
